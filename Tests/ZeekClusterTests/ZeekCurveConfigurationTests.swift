import Testing
import ZMTPWire
import ZeekCluster

/// Zeek's own test keys (its btests use libzmq's documented example pairs).
enum ZeekTestKeys {
    static let serverPublic = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
    static let serverSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
    static let clientPublic = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
    static let clientSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
    typealias Variable = ZeekCurveConfiguration.EnvironmentVariable
}

@Suite("Zeek CURVE configuration rules")
struct ZeekCurveConfigurationTests {
    typealias Keys = ZeekCurveConfiguration.Keys

    @Test("no keys anywhere means NULL security")
    func nothingConfigured() throws {
        let configuration = try ZeekCurveConfiguration.resolve(explicit: Keys(), environment: [:])
        #expect(configuration.client == nil && configuration.server == nil && configuration.source == .none)
    }

    @Test("explicit keys and environment keys together fail with Zeek's message", arguments: [
        ZeekTestKeys.Variable.serverPublicKey, ZeekTestKeys.Variable.serverSecretKey,
        ZeekTestKeys.Variable.clientPublicKey, ZeekTestKeys.Variable.clientSecretKey,
    ])
    func mixedConfiguration(variable: String) {
        let explicit = Keys(serverSecretKey: ZeekTestKeys.serverSecret, clientPublicKey: ZeekTestKeys.clientPublic)
        #expect(throws: ZeekConfigurationError(ZeekCurveConfiguration.mixedConfigurationMessage)) {
            try ZeekCurveConfiguration.resolve(explicit: explicit, environment: [variable: ZeekTestKeys.clientPublic])
        }
    }

    @Test("an empty environment variable counts as unset")
    func emptyVariableIsUnset() throws {
        let explicit = Keys(serverSecretKey: ZeekTestKeys.serverSecret, clientPublicKey: ZeekTestKeys.clientPublic)
        let configuration = try ZeekCurveConfiguration.resolve(
            explicit: explicit, environment: [ZeekTestKeys.Variable.serverSecretKey: ""])
        #expect(configuration.source == .explicit)
        #expect(configuration.server?.allowedClientKey.z85 == ZeekTestKeys.clientPublic)
    }

    @Test("the server side needs the server secret and the client public key")
    func serverSide() throws {
        let environment = [
            ZeekTestKeys.Variable.serverSecretKey: ZeekTestKeys.serverSecret,
            ZeekTestKeys.Variable.clientPublicKey: ZeekTestKeys.clientPublic,
        ]
        let configuration = try ZeekCurveConfiguration.resolve(explicit: Keys(), environment: environment)
        #expect(configuration.source == .environment)
        #expect(configuration.client == nil, "the client side also needs the server public and client secret keys")
        let server = try #require(configuration.server)
        #expect(CurveKeyPair(secretKey: server.secretKey).publicKey.z85 == ZeekTestKeys.serverPublic)
        let admitted = server.zapHandler.authenticate(ZAPRequest(
            domain: "", address: "127.0.0.1", identity: [], mechanism: "CURVE",
            credentials: [try CurvePublicKey(z85: ZeekTestKeys.clientPublic).bytes]))
        #expect(admitted.status == .success && admitted.statusText == "OK" && admitted.userID == Array("0".utf8))
        let refused = server.zapHandler.authenticate(ZAPRequest(
            domain: "", address: "127.0.0.1", identity: [], mechanism: "CURVE",
            credentials: [try CurvePublicKey(z85: ZeekTestKeys.serverPublic).bytes]))
        #expect(refused.status == .authenticationFailure && refused.statusText == "Invalid ZAP request")
        #expect(server.zapHandler.authenticate(ZAPRequest(domain: "", address: "", identity: [], mechanism: "NULL", credentials: [])).status == .authenticationFailure)
    }

    @Test("the client side needs all three of server public, client secret and client public")
    func clientSide() throws {
        let partial = Keys(serverPublicKey: ZeekTestKeys.serverPublic, clientSecretKey: ZeekTestKeys.clientSecret)
        let none = try ZeekCurveConfiguration.resolve(explicit: partial, environment: [:])
        #expect(none.client == nil && none.server == nil, "a partial client configuration silently means NULL, as in Zeek")
        var full = partial
        full.clientPublicKey = ZeekTestKeys.clientPublic
        let configuration = try ZeekCurveConfiguration.resolve(explicit: full, environment: [:])
        #expect(configuration.client?.serverPublicKey.z85 == ZeekTestKeys.serverPublic)
        #expect(configuration.client?.keyPair.publicKey.z85 == ZeekTestKeys.clientPublic)
    }

    @Test("environment that enables a side wins over nothing explicit; a key that is not 40 Z85 characters fails")
    func badKeys() {
        #expect(throws: ZeekConfigurationError(ZeekCurveConfiguration.badClientKeyMessage)) {
            try ZeekCurveConfiguration.resolve(
                explicit: Keys(serverSecretKey: ZeekTestKeys.serverSecret, clientPublicKey: "tooshort"), environment: [:])
        }
        #expect(throws: ZeekConfigurationError.self) {
            try ZeekCurveConfiguration.resolve(
                explicit: Keys(serverSecretKey: String(repeating: "~", count: 40), clientPublicKey: ZeekTestKeys.clientPublic),
                environment: [:])
        }
    }
}
