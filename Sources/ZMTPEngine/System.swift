import CZMTPSystem

#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: the function's name and `errno`.
public struct SystemError: Error, Hashable, CustomStringConvertible, Sendable {
    public var function: String
    public var errno: Int32

    public init(_ function: String, errno: Int32) {
        self.function = function
        self.errno = errno
    }

    public var description: String {
        "\(function): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The outcome of a non-blocking I/O call: done (with a count) or "would block", which is a value,
/// not an error.
public enum IOResult<Value: Sendable>: Sendable {
    case processed(Value)
    case wouldBlock
}

/// Thin typed wrappers over the system calls the engine makes (habit 7 of ../shared/STYLE.md): each
/// names its C function, retries EINTR, returns EAGAIN as `.wouldBlock`, and throws `SystemError`
/// for the rest.
enum Syscall {
    /// Retries `body` while it fails with EINTR; `-1` results become `SystemError`.
    @inline(__always)
    static func retrying<T: FixedWidthInteger>(_ function: String, _ body: () -> T) throws(SystemError) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let error = errno
            if error == EINTR { continue }
            throw SystemError(function, errno: error)
        }
    }

    /// As `retrying`, with EAGAIN/EWOULDBLOCK (and EINPROGRESS for connect) as `.wouldBlock`.
    @inline(__always)
    static func nonBlocking<T: FixedWidthInteger & Sendable>(
        _ function: String, _ body: () -> T
    ) throws(SystemError) -> IOResult<T> {
        while true {
            let result = body()
            if result != -1 { return .processed(result) }
            let error = errno
            switch error {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK, EINPROGRESS: return .wouldBlock
            default: throw SystemError(function, errno: error)
            }
        }
    }

    /// `socket(2)`, non-blocking and close-on-exec.
    static func socket(domain: Int32, type: Int32) throws(SystemError) -> Int32 {
        try retrying("socket") {
            Glibc.socket(domain, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
    }

    /// `setsockopt(2)` for an integer option.
    static func setOption(_ fd: Int32, level: Int32, name: Int32, value: Int32) throws(SystemError) {
        var value = value
        _ = try retrying("setsockopt") {
            Glibc.setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// `getsockopt(2)` for an integer option (SO_ERROR after a non-blocking connect).
    static func option(_ fd: Int32, level: Int32, name: Int32) throws(SystemError) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try retrying("getsockopt") { Glibc.getsockopt(fd, level, name, &value, &length) }
        return value
    }

    /// `read(2)`.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try nonBlocking("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// A gathering write over up to `IOV_MAX` buffers: `sendmsg(2)` with `MSG_NOSIGNAL`, which is
    /// `writev(2)` except that a peer that has gone away is the error EPIPE rather than a SIGPIPE that
    /// would kill the process.
    static func writev(_ fd: Int32, _ buffers: [UnsafeRawBufferPointer]) throws(SystemError) -> IOResult<Int> {
        var vectors = buffers.prefix(Int(czmtp_iov_max())).map {
            iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count)
        }
        return try vectors.withUnsafeMutableBufferPointer { vectors throws(SystemError) in
            var header = msghdr()
            header.msg_iov = vectors.baseAddress
            header.msg_iovlen = vectors.count
            return try nonBlocking("sendmsg") { Glibc.sendmsg(fd, &header, Int32(MSG_NOSIGNAL)) }
        }
    }

    /// `accept4(2)`, non-blocking and close-on-exec.
    static func accept(_ fd: Int32) throws(SystemError) -> IOResult<Int32> {
        try nonBlocking("accept4") {
            czmtp_accept4(fd, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        }
    }

    /// `close(2)`. EINTR is not retried (on Linux the descriptor is gone either way).
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }
}

/// Owns a file descriptor and closes it exactly once.
struct FileDescriptor: ~Copyable {
    let raw: Int32

    init(_ raw: Int32) { self.raw = raw }

    /// Gives up ownership without closing (to hand the descriptor to another thread).
    consuming func release() -> Int32 {
        let raw = self.raw
        discard self
        return raw
    }

    deinit { Syscall.close(raw) }
}

/// The process's limit on open file descriptors (`RLIMIT_NOFILE`), which bounds how many
/// connections a process can hold: one descriptor per connection, plus a few per socket and I/O
/// thread.
///
/// Linux starts most processes at a soft limit of 1,024 while allowing far more (the hard limit).
/// The library never changes the limit itself; a program that expects thousands of peers (the
/// `zmtp` tool does) calls ``raiseSoftLimit()`` once at start.
public enum DescriptorLimit {
    // `RLIM_INFINITY` is all ones on Linux (it does not import into Swift as an unsigned value).
    /// The current soft and hard limits (`nil` in a field means unlimited).
    public static var current: (soft: Int?, hard: Int?) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (nil, nil) }
        return (count(limit.rlim_cur), count(limit.rlim_max))
    }

    /// Raises the soft limit as far as allowed: to the hard limit, capped at the kernel's
    /// `fs.nr_open` when the hard limit is unlimited.
    ///
    /// - Returns: the soft limit in force afterwards (`nil`: unlimited).
    @discardableResult
    public static func raiseSoftLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        var target = limit.rlim_max
        if target == rlim_t.max { target = rlim_t(kernelMaximum() ?? 1_048_576) }
        if limit.rlim_cur != rlim_t.max, limit.rlim_cur < target {
            var raised = limit
            raised.rlim_cur = target
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return count(limit.rlim_cur)
    }

    private static func count(_ value: rlim_t) -> Int? {
        value == rlim_t.max ? nil : Int(clamping: value)
    }

    /// `/proc/sys/fs/nr_open`, the most a process may ever have open.
    private static func kernelMaximum() -> Int? {
        guard let file = fopen("/proc/sys/fs/nr_open", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 32)
        guard fgets(&line, Int32(line.count), file) != nil else { return nil }
        let digits = line.prefix { $0 >= 0x30 && $0 <= 0x39 }.map { UInt8(bitPattern: $0) }
        return Int(String(decoding: digits, as: UTF8.self))
    }
}
