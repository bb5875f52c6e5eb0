import ArgumentParser
import ZMTPWire

/// `zmtp keygen`: a CURVE key pair as Zeek's `generate_keypair()` prints it, or the public key of a
/// given secret key.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a CURVE key pair, printed as {\"public\":\"...\",\"secret\":\"...\"} (Z85).",
        discussion: """
            The output is one JSON line, as Zeek's generate_keypair() gives, usable for
            ZEEK_CLUSTER_BACKEND_ZEROMQ_CURVE_* and for libzmq's CURVE options.
            With --public-of SECRET, prints the public key (Z85) of a Z85 secret key instead.
            """
    )

    @Option(name: .customLong("public-of"), help: ArgumentHelp("Print the public key of this Z85 secret key.", valueName: "secret"))
    var publicOf: String?

    func run() throws {
        if let publicOf {
            do {
                let secret = try CurveSecretKey(z85: publicOf)
                print(CurveKeyPair(secretKey: secret).publicKey.z85)
            } catch {
                throw ToolError("--public-of: \(error.reason)")
            }
            return
        }
        let pair = CurveKeyPair.generate()
        print("{\"public\":\"\(pair.publicKey.z85)\",\"secret\":\"\(pair.secretKey.z85)\"}")
    }
}
