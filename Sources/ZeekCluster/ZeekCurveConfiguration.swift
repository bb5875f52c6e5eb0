import ZMTPWire

/// Zeek's rules for CURVE configuration (Zeek 8.2+, `load_curve_config()`; zeek-wire.md §6.1), so that
/// a swift-zmtp broker or logger accepts exactly the configurations a Zeek node would.
///
/// - Four keys, each 40 Z85 characters: server public/secret, client public/secret. They come either
///   from explicit configuration (Zeek's script variables; our command-line flags) or from the
///   `ZEEK_CLUSTER_BACKEND_ZEROMQ_CURVE_*` environment variables. An empty value counts as unset.
/// - Explicit and environment keys together are a fatal error, with Zeek's message.
/// - The environment wins when it enables a side; otherwise the explicit keys are used (possibly none:
///   NULL security).
/// - The client side is on with server public + client secret + client public keys; the server side
///   with server secret + client public keys (the client public key is the one ZAP admits).
public struct ZeekCurveConfiguration: Sendable {
    /// What a connecting node uses.
    public struct Client: Sendable {
        public var serverPublicKey: CurvePublicKey
        public var keyPair: CurveKeyPair
    }

    /// What the broker's XPUB/XSUB and a logger's PULL use.
    public struct Server: Sendable {
        public var secretKey: CurveSecretKey
        /// The one client key Zeek's ZAP handler admits.
        public var allowedClientKey: CurvePublicKey

        /// Zeek's ZAP policy for this configuration.
        public var zapHandler: AllowListZAPHandler { AllowListZAPHandler(allowedClientKeys: [allowedClientKey]) }
    }

    /// The four keys as text; an empty string means unset.
    public struct Keys: Sendable, Equatable {
        public var serverPublicKey = ""
        public var serverSecretKey = ""
        public var clientPublicKey = ""
        public var clientSecretKey = ""

        public init(serverPublicKey: String = "", serverSecretKey: String = "", clientPublicKey: String = "", clientSecretKey: String = "") {
            self.serverPublicKey = serverPublicKey
            self.serverSecretKey = serverSecretKey
            self.clientPublicKey = clientPublicKey
            self.clientSecretKey = clientSecretKey
        }

        var isEmpty: Bool { self == Keys() }
        var enablesClient: Bool { !serverPublicKey.isEmpty && !clientSecretKey.isEmpty && !clientPublicKey.isEmpty }
        var enablesServer: Bool { !serverSecretKey.isEmpty && !clientPublicKey.isEmpty }
    }

    /// Where the configuration came from.
    public enum Source: Sendable, Equatable {
        case none
        case explicit
        case environment
    }

    /// The environment variables Zeek reads.
    public enum EnvironmentVariable {
        public static let clientPublicKey = "ZEEK_CLUSTER_BACKEND_ZEROMQ_CURVE_CLIENT_PUBLICKEY"
        public static let clientSecretKey = "ZEEK_CLUSTER_BACKEND_ZEROMQ_CURVE_CLIENT_SECRETKEY"
        public static let serverPublicKey = "ZEEK_CLUSTER_BACKEND_ZEROMQ_CURVE_SERVER_PUBLICKEY"
        public static let serverSecretKey = "ZEEK_CLUSTER_BACKEND_ZEROMQ_CURVE_SERVER_SECRETKEY"
    }

    /// Zeek's fatal error for mixed configuration (its btest baseline
    /// `cluster.zeromq.encryption-config-error-script-environment`).
    public static let mixedConfigurationMessage =
        "ZeroMQ CURVE configured via script variable redefinitions and environment variables at the same time."
    /// Zeek's fatal error for a ZAP client key that is not 40 characters.
    public static let badClientKeyMessage = "ZeroMQ/ZAP: client public key has unexpected size"

    public var client: Client?
    public var server: Server?
    public var source: Source

    /// The keys set in `environment` (empty values count as unset).
    public static func keys(fromEnvironment environment: [String: String]) -> Keys {
        Keys(
            serverPublicKey: environment[EnvironmentVariable.serverPublicKey] ?? "",
            serverSecretKey: environment[EnvironmentVariable.serverSecretKey] ?? "",
            clientPublicKey: environment[EnvironmentVariable.clientPublicKey] ?? "",
            clientSecretKey: environment[EnvironmentVariable.clientSecretKey] ?? "")
    }

    /// Applies Zeek's rules to explicit keys and the process environment.
    /// - Throws: ``ZeekConfigurationError`` with Zeek's message for mixed configuration, or a message
    ///   naming the key that is not 40 Z85 characters.
    public static func resolve(explicit: Keys, environment: [String: String]) throws(ZeekConfigurationError) -> ZeekCurveConfiguration {
        let fromEnvironment = keys(fromEnvironment: environment)
        if !explicit.isEmpty && !fromEnvironment.isEmpty {
            throw ZeekConfigurationError(mixedConfigurationMessage)
        }
        let (keys, source): (Keys, Source)
        if fromEnvironment.enablesClient || fromEnvironment.enablesServer {
            (keys, source) = (fromEnvironment, .environment)
        } else if explicit.enablesClient || explicit.enablesServer {
            (keys, source) = (explicit, .explicit)
        } else {
            return ZeekCurveConfiguration(client: nil, server: nil, source: .none)
        }
        var configuration = ZeekCurveConfiguration(client: nil, server: nil, source: source)
        if keys.enablesClient {
            configuration.client = Client(
                serverPublicKey: try publicKey(keys.serverPublicKey, "server public key"),
                keyPair: CurveKeyPair(
                    publicKey: try publicKey(keys.clientPublicKey, "client public key"),
                    secretKey: try secretKey(keys.clientSecretKey, "client secret key")))
        }
        if keys.enablesServer {
            guard keys.clientPublicKey.utf8.count == 40 else { throw ZeekConfigurationError(badClientKeyMessage) }
            configuration.server = Server(
                secretKey: try secretKey(keys.serverSecretKey, "server secret key"),
                allowedClientKey: try publicKey(keys.clientPublicKey, "client public key"))
        }
        return configuration
    }

    private static func publicKey(_ text: String, _ name: String) throws(ZeekConfigurationError) -> CurvePublicKey {
        do throws(ZMTPError) {
            return try CurvePublicKey(z85: text)
        } catch {
            throw ZeekConfigurationError("ZeroMQ CURVE \(name) is not a 40-character Z85 key (\(error.reason))")
        }
    }

    private static func secretKey(_ text: String, _ name: String) throws(ZeekConfigurationError) -> CurveSecretKey {
        do throws(ZMTPError) {
            return try CurveSecretKey(z85: text)
        } catch {
            throw ZeekConfigurationError("ZeroMQ CURVE \(name) is not a 40-character Z85 key (\(error.reason))")
        }
    }
}

/// A configuration Zeek would refuse; ``message`` is what to print before exiting with status 1.
public struct ZeekConfigurationError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
