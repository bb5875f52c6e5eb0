import CZMTPSystem
import ZMTPWire

#if canImport(Glibc)
import Glibc
#endif

/// A plain stream connection with deadlines on every call, for scripted peers (`zmtp conform`) that
/// must write exactly the octets they choose and see exactly what comes back, with no ZMTP engine in
/// between. Blocking, one owner; not for the data path.
public final class RawStream {
    /// The descriptor, owned; -1 once closed.
    private var fd: Int32
    /// Where the stream goes (or, accepted, where it was accepted).
    public let endpoint: Endpoint

    init(_ descriptor: consuming FileDescriptor, endpoint: Endpoint) {
        self.fd = descriptor.release()
        self.endpoint = endpoint
    }

    deinit { close() }

    /// What a read found.
    public enum ReadResult: Equatable, Sendable {
        /// Octets, at least one.
        case data([UInt8])
        /// The peer closed the stream (EOF), or reset it.
        case closed
        /// Nothing arrived before the deadline.
        case timedOut
    }

    /// Connects to `endpoint` (tcp or ipc), waiting at most `timeout`.
    public static func connect(_ endpoint: Endpoint, timeout: Duration) throws(EngineError) -> RawStream {
        let addresses: [SocketAddress]
        switch endpoint {
        case .tcp(let host, let port): addresses = try SocketAddress.resolve(host: host, port: port, ipv6: true, passive: false)
        case .ipc(let path): addresses = [SocketAddress.unix(path: path)]
        }
        var lastError = EngineError("cannot connect to \(endpoint)")
        for address in addresses {
            do throws(SystemError) {
                let fd = FileDescriptor(try Syscall.socket(domain: address.family, type: Int32(SOCK_STREAM.rawValue)))
                if address.family != AF_UNIX {
                    try Syscall.setOption(fd.raw, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1)
                }
                let status = address.withSockaddr { Glibc.connect(fd.raw, $0, $1) }
                if status != 0 && errno != EINPROGRESS { throw SystemError("connect", errno: errno) }
                if status != 0 {
                    guard try wait(fd.raw, for: Int16(POLLOUT), until: EventLoop.now() + timeout) else {
                        throw SystemError("connect", errno: ETIMEDOUT)
                    }
                    let failure = try Syscall.option(fd.raw, level: SOL_SOCKET, name: SO_ERROR)
                    if failure != 0 { throw SystemError("connect", errno: failure) }
                }
                return RawStream(fd, endpoint: endpoint)
            } catch {
                lastError = EngineError(error, while: "connecting to \(endpoint)")
            }
        }
        throw lastError
    }

    /// Writes all of `bytes`, waiting at most until `deadline` for room.
    /// - Returns: false if the peer closed the stream first (EPIPE, ECONNRESET) or the deadline passed.
    @discardableResult
    public func write(_ bytes: [UInt8], until deadline: MonotonicInstant) -> Bool {
        guard fd >= 0 else { return false }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written > 0 {
                offset += written
                continue
            }
            if written < 0 && (errno == EAGAIN || errno == EINTR) {
                guard (try? Self.wait(fd, for: Int16(POLLOUT), until: deadline)) == true else { return false }
                continue
            }
            return false
        }
        return true
    }

    /// Reads what is available (at most `limit` octets), waiting until `deadline` for the first.
    public func read(limit: Int = 65_536, until deadline: MonotonicInstant) -> ReadResult {
        guard fd >= 0 else { return .closed }
        while true {
            guard let ready = try? Self.wait(fd, for: Int16(POLLIN), until: deadline) else { return .closed }
            guard ready else { return .timedOut }
            var buffer = [UInt8](repeating: 0, count: limit)
            let count = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 { return .data(Array(buffer[0..<count])) }
            if count == 0 { return .closed }
            if errno == EAGAIN || errno == EINTR { continue }
            return .closed  // ECONNRESET and the like: the peer is gone
        }
    }

    /// Stops sending (a half close): the peer reads EOF but may still answer.
    public func shutdownWrite() {
        if fd >= 0 { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }
    }

    /// Closes the stream. Calling it again does nothing.
    public func close() {
        if fd >= 0 { Syscall.close(fd) }
        fd = -1
    }

    /// Waits until `fd` is ready for `events`; false at the deadline. Errors and hang-ups count as ready
    /// (the next call reports them).
    static func wait(_ fd: Int32, for events: Int16, until deadline: MonotonicInstant) throws(SystemError) -> Bool {
        while true {
            let now = EventLoop.now()
            let remaining = deadline.nanoseconds > now.nanoseconds ? deadline.nanoseconds - now.nanoseconds : 0
            let milliseconds = remaining / 1_000_000 + (remaining % 1_000_000 == 0 ? 0 : 1)  // no overflow near UInt64.max
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let status = Glibc.poll(&entry, 1, Int32(clamping: milliseconds))
            if status > 0 { return true }
            if status == 0 {
                if EventLoop.now() >= deadline { return false }
                continue
            }
            if errno == EINTR { continue }
            throw SystemError("poll", errno: errno)
        }
    }
}

/// A listening socket whose connections are ``RawStream``s (a scripted peer that the peer under test
/// connects to).
public final class RawListener {
    private let descriptor: FileDescriptor
    /// The bound endpoint (a `*` port resolved).
    public let endpoint: Endpoint
    /// The socket file we created (ipc), removed when the listener goes.
    private let socketPath: String?

    /// Binds and listens on `endpoint` (tcp, on the first of its addresses that binds; ipc, replacing a
    /// stale socket file).
    public init(_ endpoint: Endpoint) throws(EngineError) {
        let addresses: [SocketAddress]
        switch endpoint {
        case .tcp(let host, let port):
            addresses = try SocketAddress.resolve(host: host, port: port, ipv6: true, passive: true)
            socketPath = nil
        case .ipc(let path):
            unlink(path)
            addresses = [SocketAddress.unix(path: path)]
            socketPath = path
        }
        var lastError = EngineError("cannot listen on \(endpoint)")
        for address in addresses {
            do throws(SystemError) {
                let fd = FileDescriptor(try Syscall.socket(domain: address.family, type: Int32(SOCK_STREAM.rawValue)))
                if address.family != AF_UNIX { try Syscall.setOption(fd.raw, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1) }
                if address.withSockaddr({ bind(fd.raw, $0, $1) }) != 0 { throw SystemError("bind", errno: errno) }
                if listen(fd.raw, 16) != 0 { throw SystemError("listen", errno: errno) }
                if case .tcp(let host, _) = endpoint, let local = SocketAddress.local(of: fd.raw) {
                    self.endpoint = .tcp(host: host, port: local.port)
                } else {
                    self.endpoint = endpoint
                }
                descriptor = fd
                return
            } catch {
                lastError = EngineError(error, while: "listening on \(endpoint)")
            }
        }
        throw lastError
    }

    deinit {
        if let socketPath { unlink(socketPath) }
    }

    /// The next connection, or nil if none came before `deadline`.
    public func accept(until deadline: MonotonicInstant) -> RawStream? {
        while true {
            guard (try? RawStream.wait(descriptor.raw, for: Int16(POLLIN), until: deadline)) == true else { return nil }
            do throws(SystemError) {
                switch try Syscall.accept(descriptor.raw) {
                case .processed(let raw):
                    let fd = FileDescriptor(raw)
                    if case .tcp = endpoint { try? Syscall.setOption(fd.raw, level: Int32(IPPROTO_TCP), name: TCP_NODELAY, value: 1) }
                    return RawStream(fd, endpoint: endpoint)
                case .wouldBlock:
                    continue
                }
            } catch {
                // A connection that went away before we took it: wait for the next one.
                if error.errno == ECONNABORTED || error.errno == EPROTO { continue }
                return nil
            }
        }
    }
}
