/// ZAP, the ZeroMQ Authentication Protocol (RFC 27): the request a server hands its authenticator for
/// every handshake that needs one, and the reply that admits or refuses the peer.
///
/// Over ZeroMQ a request is a multipart message of at least six frames
/// (`"1.0" | request-id | domain | address | identity | mechanism | credentials...`) and a reply exactly
/// six (`"1.0" | request-id | status-code | status-text | user-id | metadata`). swift-zmtp calls a
/// ``ZAPHandler`` directly; the codecs exist for handlers that live behind a socket and for conformance.
public struct ZAPRequest: Hashable, Sendable {
    public static let version = "1.0"
    /// One request is outstanding per connection at a time, so its id is constant (libzmq uses "1").
    public static let defaultRequestID = Array("1".utf8)

    public var requestID: [UInt8]
    /// The server socket's ZAP domain (`ZMQ_ZAP_DOMAIN`); empty when none is set.
    public var domain: String
    /// The peer's address, e.g. `127.0.0.1` (filled in by the engine).
    public var address: String
    /// The peer's routing id (its Identity metadata), possibly empty.
    public var identity: [UInt8]
    /// `NULL`, `PLAIN` or `CURVE`.
    public var mechanism: String
    /// Mechanism-specific: none for NULL, user name and password for PLAIN, the client's 32-octet
    /// long-term public key for CURVE.
    public var credentials: [[UInt8]]

    public init(
        requestID: [UInt8] = ZAPRequest.defaultRequestID, domain: String, address: String, identity: [UInt8],
        mechanism: String, credentials: [[UInt8]]
    ) {
        self.requestID = requestID
        self.domain = domain
        self.address = address
        self.identity = identity
        self.mechanism = mechanism
        self.credentials = credentials
    }

    /// The client's CURVE public key, for a CURVE request.
    public var curveClientKey: CurvePublicKey? {
        guard mechanism == "CURVE", credentials.count == 1 else { return nil }
        return try? CurvePublicKey(bytes: credentials[0])
    }

    /// The request as ZAP frames.
    public var encoded: Message {
        Message(frames: [
            Array(Self.version.utf8), requestID, Array(domain.utf8), Array(address.utf8), identity,
            Array(mechanism.utf8),
        ] + credentials)
    }

    /// Parses ZAP request frames.
    /// - Throws: `malformedCommand` (blame `.peer`) for a wrong version, too few frames, a domain or
    ///   address that is not UTF-8 (a fuzzer find: decoding must not alter them), or credentials that
    ///   do not fit the mechanism (NULL: none; PLAIN: two; CURVE: one of 32 octets).
    public static func decode(_ message: Message) throws(ZMTPError) -> ZAPRequest {
        let frames = message.frames
        guard frames.count >= 6 else { throw .peer(.malformedCommand, "ZAP request has \(frames.count) frames, needs 6 or more") }
        guard frames[0] == Array(version.utf8) else { throw .peer(.malformedCommand, "ZAP request version is not 1.0") }
        let mechanism = String(decoding: frames[5], as: UTF8.self)
        let credentials = Array(frames[6...])
        switch mechanism {
        case "NULL" where credentials.isEmpty: break
        case "PLAIN" where credentials.count == 2: break
        case "CURVE" where credentials.count == 1 && credentials[0].count == CurvePublicKey.length: break
        default:
            throw .peer(.malformedCommand, "ZAP request credentials do not fit mechanism '\(mechanism)'")
        }
        guard let domain = String(validating: frames[2], as: UTF8.self),
            let address = String(validating: frames[3], as: UTF8.self)
        else {
            throw .peer(.malformedCommand, "ZAP request domain or address is not UTF-8 text")
        }
        return ZAPRequest(
            requestID: frames[1], domain: domain, address: address, identity: frames[4],
            mechanism: mechanism, credentials: credentials)
    }
}

/// A ZAP reply (RFC 27).
public struct ZAPReply: Hashable, Sendable {
    /// RFC 27's status codes.
    public enum Status: String, Hashable, Sendable {
        /// Admitted.
        case success = "200"
        /// Temporary failure: the client may retry later. We close without an ERROR.
        case temporaryError = "300"
        /// Authentication failure: the client's credentials are refused.
        case authenticationFailure = "400"
        /// Internal error in the authenticator.
        case internalError = "500"
    }

    public var requestID: [UInt8]
    public var status: Status
    public var statusText: String
    /// Becomes the peer's `User-Id` metadata property when admitted.
    public var userID: [UInt8]
    public var metadata: Metadata

    public init(requestID: [UInt8], status: Status, statusText: String, userID: [UInt8] = [], metadata: Metadata = Metadata()) {
        self.requestID = requestID
        self.status = status
        self.statusText = statusText
        self.userID = userID
        self.metadata = metadata
    }

    public var encoded: Message {
        var metadataBytes: [UInt8] = []
        metadata.encode(into: &metadataBytes)
        return Message(frames: [
            Array(ZAPRequest.version.utf8), requestID, Array(status.rawValue.utf8), Array(statusText.utf8), userID,
            metadataBytes,
        ])
    }

    /// Parses ZAP reply frames.
    /// - Throws: `malformedCommand` for anything but six frames, version 1.0, a known status code and a
    ///   valid metadata frame.
    public static func decode(_ message: Message) throws(ZMTPError) -> ZAPReply {
        let frames = message.frames
        guard frames.count == 6 else { throw .peer(.malformedCommand, "ZAP reply has \(frames.count) frames, needs 6") }
        guard frames[0] == Array(ZAPRequest.version.utf8) else { throw .peer(.malformedCommand, "ZAP reply version is not 1.0") }
        guard let status = Status(rawValue: String(decoding: frames[2], as: UTF8.self)), frames[2].count == 3 else {
            throw .peer(.malformedCommand, "ZAP reply status code is not 200, 300, 400 or 500")
        }
        let metadata: Metadata
        do throws(ZMTPError) {
            metadata = try Metadata.decode(frames[5])
        } catch {
            throw .peer(.malformedCommand, "ZAP reply metadata: \(error.reason)")
        }
        guard let statusText = String(validating: frames[3], as: UTF8.self) else {
            throw .peer(.malformedCommand, "ZAP reply status text is not UTF-8")
        }
        return ZAPReply(
            requestID: frames[1], status: status, statusText: statusText,
            userID: frames[4], metadata: metadata)
    }
}

/// Decides whether a peer may connect. Called for every CURVE handshake a server completes, and for
/// NULL handshakes when a ZAP domain is set.
public protocol ZAPHandler: Sendable {
    func authenticate(_ request: ZAPRequest) -> ZAPReply
}

/// Zeek's policy (zeek-wire.md §6.3): admit a CURVE client whose long-term public key is in the set,
/// with status 200, text `OK` and user id `0`; refuse everything else with 400
/// `Invalid ZAP request`.
public struct AllowListZAPHandler: ZAPHandler {
    public var allowedClientKeys: Set<CurvePublicKey>

    public init(allowedClientKeys: Set<CurvePublicKey>) {
        self.allowedClientKeys = allowedClientKeys
    }

    public func authenticate(_ request: ZAPRequest) -> ZAPReply {
        if let key = request.curveClientKey, allowedClientKeys.contains(key) {
            return ZAPReply(requestID: request.requestID, status: .success, statusText: "OK", userID: Array("0".utf8))
        }
        return ZAPReply(requestID: request.requestID, status: .authenticationFailure, statusText: "Invalid ZAP request")
    }
}
