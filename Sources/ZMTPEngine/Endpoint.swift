import CZMTPSystem

#if canImport(Glibc)
import Glibc
#endif

/// A ZeroMQ endpoint: `tcp://host:port` or `ipc:///path`.
///
/// - `tcp://*:5555` binds every IPv4 interface (every interface, IPv6 included, when IPv6 is enabled);
///   `tcp://[::1]:5555` is an IPv6 address; port `*` or `0` asks for an ephemeral port (read the bound
///   endpoint back afterwards).
/// - `ipc:///tmp/socket` is a Unix-domain stream socket at that path.
public enum Endpoint: Hashable, Sendable, CustomStringConvertible {
    case tcp(host: String, port: UInt16)
    case ipc(path: String)

    /// Parses an endpoint string.
    /// - Throws: ``EngineError`` with a message naming what is wrong.
    public init(_ text: String) throws(EngineError) {
        if text.hasPrefix("tcp://") {
            let rest = text.dropFirst("tcp://".count)
            guard let colon = rest.lastIndex(of: ":") else {
                throw EngineError("endpoint '\(text)' has no port (tcp://host:port)")
            }
            var host = String(rest[..<colon])
            let portText = rest[rest.index(after: colon)...]
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw EngineError("endpoint '\(text)' has no host") }
            let port: UInt16
            if portText == "*" {
                port = 0
            } else if let value = UInt16(portText) {
                port = value
            } else {
                throw EngineError("endpoint '\(text)' has an invalid port '\(portText)'")
            }
            self = .tcp(host: host, port: port)
        } else if text.hasPrefix("ipc://") {
            let path = String(text.dropFirst("ipc://".count))
            guard !path.isEmpty else { throw EngineError("endpoint '\(text)' has no path") }
            guard path.utf8.count < Int(czmtp_sun_path_size()) else {
                throw EngineError("ipc path '\(path)' is longer than \(czmtp_sun_path_size() - 1) bytes")
            }
            self = .ipc(path: path)
        } else {
            throw EngineError("unsupported endpoint '\(text)' (use tcp://host:port or ipc:///path)")
        }
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port):
            return host.contains(":") ? "tcp://[\(host)]:\(port)" : "tcp://\(host):\(port)"
        case .ipc(let path):
            return "ipc://\(path)"
        }
    }
}

/// An engine failure a user should read (bind to a taken port, unresolvable host...).
public struct EngineError: Error, Hashable, CustomStringConvertible, Sendable {
    public var message: String
    /// The system call's `errno`, when a system call failed.
    public var errno: Int32?
    /// The descriptor the failed operation was using, if any (for monitor events).
    var descriptor: Int32?
    public init(_ message: String) { self.message = message }
    public init(_ error: SystemError, while doing: String) {
        self.message = "\(doing): \(error)"
        self.errno = error.errno
    }
    public var description: String { message }
}

/// A resolved socket address (IPv4, IPv6 or Unix-domain), stored as raw `sockaddr` bytes.
struct SocketAddress: Sendable, CustomStringConvertible {
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    var family: Int32 { Int32(storage.ss_family) }

    /// Resolves a tcp host (numeric or by name; `*` is the wildcard) with getaddrinfo.
    static func resolve(host: String, port: UInt16, ipv6: Bool, passive: Bool) throws(EngineError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = ipv6 ? AF_UNSPEC : AF_INET
        hints.ai_flags = passive ? AI_PASSIVE : 0
        var list: UnsafeMutablePointer<addrinfo>?
        let node: String? = host == "*" ? (ipv6 ? "::" : nil) : host
        let status = getaddrinfo(node, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw EngineError("cannot resolve '\(host)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let address = entry.pointee.ai_addr {
                var resolved = SocketAddress()
                resolved.length = entry.pointee.ai_addrlen
                withUnsafeMutableBytes(of: &resolved.storage) { target in
                    target.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(entry.pointee.ai_addrlen)))
                }
                addresses.append(resolved)
            }
            cursor = entry.pointee.ai_next
        }
        if addresses.isEmpty { throw EngineError("'\(host)' resolves to no address") }
        return addresses
    }

    /// A Unix-domain address.
    static func unix(path: String) -> SocketAddress {
        var address = SocketAddress()
        var un = sockaddr_un()
        un.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &un.sun_path) { target in
            let bytes = Array(path.utf8)
            target.copyBytes(from: bytes.prefix(target.count - 1))
        }
        withUnsafeMutableBytes(of: &address.storage) { target in
            withUnsafeBytes(of: un) { target.copyMemory(from: $0) }
        }
        address.length = socklen_t(MemoryLayout<sa_family_t>.size + path.utf8.count + 1)
        return address
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    /// The address a socket is bound to (`getsockname`).
    static func local(of fd: Int32) -> SocketAddress? {
        var address = SocketAddress()
        address.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutableBytes(of: &address.storage) { raw in
            getsockname(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &address.length)
        }
        return status == 0 ? address : nil
    }

    /// The peer's address (`getpeername`).
    static func peer(of fd: Int32) -> SocketAddress? {
        var address = SocketAddress()
        address.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutableBytes(of: &address.storage) { raw in
            getpeername(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &address.length)
        }
        return status == 0 ? address : nil
    }

    /// Numeric host text (`127.0.0.1`, `::1`) or the Unix path.
    var host: String {
        withUnsafeBytes(of: storage) { raw -> String in
            switch family {
            case AF_INET:
                var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                var address = raw.load(as: sockaddr_in.self).sin_addr
                inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
                return String(decoding: text.prefix { $0 != 0 }.map(UInt8.init(bitPattern:)), as: UTF8.self)
            case AF_INET6:
                var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                var address = raw.load(as: sockaddr_in6.self).sin6_addr
                inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
                return String(decoding: text.prefix { $0 != 0 }.map(UInt8.init(bitPattern:)), as: UTF8.self)
            case AF_UNIX:
                let un = raw.load(as: sockaddr_un.self)
                return withUnsafeBytes(of: un.sun_path) { path in
                    String(decoding: path.prefix { $0 != 0 }, as: UTF8.self)
                }
            default:
                return "?"
            }
        }
    }

    var port: UInt16 {
        withUnsafeBytes(of: storage) { raw -> UInt16 in
            switch family {
            case AF_INET: return UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
            case AF_INET6: return UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
            default: return 0
            }
        }
    }

    var description: String {
        switch family {
        case AF_UNIX: return "ipc://\(host)"
        case AF_INET6: return "tcp://[\(host)]:\(port)"
        default: return "tcp://\(host):\(port)"
        }
    }
}
