import ArgumentParser
import CSodium
import ZMTPEngine
import ZMTPWire

#if canImport(Glibc)
import Glibc
#endif

/// The `zmtp` command line tool.
///
/// Exit status: 0 on success, 1 when the command failed (bad input data, a refused connection), 2 on
/// bad usage (unknown flag, missing argument). Errors are one line on standard error.
@main
struct ZMTPMain {
    static func main() {
        // A broker or logger may hold thousands of connections, one descriptor each; Linux's
        // default soft limit (1,024) is far below what the hard limit allows.
        DescriptorLimit.raiseSoftLimit()
        do {
            var command = try ZMTPCommand.parseAsRoot()
            try command.run()
        } catch let error as ToolError {
            ToolOutput.error(error.message)
            exit(1)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            // Argument parser errors: help and --version are successes, the rest is bad usage.
            if ZMTPCommand.exitCode(for: error) == .success {
                print(ZMTPCommand.fullMessage(for: error))
                exit(0)
            }
            ToolOutput.error(ZMTPCommand.message(for: error))
            ToolOutput.standardError("Usage: \(ZMTPCommand.usageString(for: error))\nSee 'zmtp --help'.")
            exit(2)
        }
    }
}

struct ZMTPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zmtp",
        abstract: "ZeroMQ's wire protocol (ZMTP 3.x) in pure Swift: tools for peers, keys and the wire.",
        subcommands: [Version.self, Z85Command.self, Keygen.self, Push.self, Pull.self, Pub.self, Sub.self, XPub.self, XSub.self, ProxyCommand.self, ZeekLogger.self, Conform.self, Bench.self]
    )

    func run() throws {
        throw ValidationError("missing subcommand (try: zmtp --help)")
    }

    static func usageString(for error: Error) -> String {
        // The usage of the subcommand the user was typing, when there is one.
        let arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "z85": return Z85Command.usageString()
        case "push": return Push.usageString()
        case "pull": return Pull.usageString()
        case "keygen": return Keygen.usageString()
        default: break
        }
        return ZMTPCommand.usageString()
    }
}

/// A failure the user should read: printed as one line, exit status 1.
struct ToolError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

enum ToolOutput {
    static func standardError(_ text: String) {
        let line = text.hasSuffix("\n") ? text : text + "\n"
        _ = line.utf8CString.withUnsafeBufferPointer { buffer in
            write(2, buffer.baseAddress, buffer.count - 1)
        }
    }

    /// Writes one line to standard output at once, with write(2) rather than stdio: no buffering to
    /// flush, and no stdio lock (`fflush(NULL)` would wait on stdin's, which a thread blocked in
    /// `readLine` holds).
    static func standardOutputLine(_ text: String) {
        var line = text
        line.append("\n")
        line.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(1, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // stdout is gone (a closed pipe): nothing more to do
                }
                offset += written
            }
        }
    }

    static func error(_ message: String) {
        standardError("zmtp: error: \(message)")
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version of zmtp and its protocol support.")

    static let toolVersion = "0.1.0"

    func run() throws {
        let sodium = String(cString: sodium_version_string())
        print("zmtp \(Self.toolVersion) (ZMTP 3.1 and 3.0, mechanisms: NULL, CURVE; libsodium \(sodium))")
    }
}
