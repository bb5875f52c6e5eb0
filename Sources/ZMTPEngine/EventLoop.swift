import CZMTPSystem
import Synchronization
import ZMTPWire

#if canImport(Glibc)
import Glibc
#endif

/// Something the event loop delivers readiness to. Called only on the loop's thread.
protocol EventHandler: AnyObject {
    /// `readable`/`writable` from epoll; `hangup` for EPOLLHUP/EPOLLERR.
    func handle(readable: Bool, writable: Bool, hangup: Bool)
}

/// Tasks other threads hand to a loop, and whether it still accepts them.
struct TaskQueue {
    var items: [@Sendable () -> Void] = []
    var accepting = true
}

/// One I/O thread: an epoll set, an eventfd to wake it, a task queue other threads feed, and a deadline
/// queue for timers (epoll_wait's timeout; no timerfd needed).
///
/// Registrations carry a token (a counter) beside the fd, so a reused fd never receives an event meant
/// for a closed registration (habit 8 of ../shared/STYLE.md). Everything except ``execute(_:)`` and
/// ``shutdown()`` must be called on the loop's thread.
public final class EventLoop: @unchecked Sendable {
    // @unchecked: `handlers`, `timers` and `nextToken` are touched only on the loop thread (hence
    // `@exclusivity(unchecked)`: no dynamic check is needed for one thread's state); the task
    // queue is behind a Mutex; the descriptors are immutable after init.
    private let epoll: Int32
    private let wakeFD: Int32
    private let tasks = Mutex<TaskQueue>(TaskQueue())
    private let stopping = Atomic<Bool>(false)
    /// Tasks queued and not yet taken; `sleeping` while the loop waits (or is about to) in epoll_wait.
    private let pendingTasks = Atomic<Int>(0)
    private let sleeping = Atomic<Bool>(false)
    /// How long the loop polls for a task before it sleeps (see ``init(name:idleSpin:)``).
    public let idleSpin: Duration
    @exclusivity(unchecked) private var handlers: [UInt64: (fd: Int32, handler: any EventHandler)] = [:]
    @exclusivity(unchecked) private var nextToken: UInt64 = 1
    @exclusivity(unchecked) private var timers = TimerQueue()
    @exclusivity(unchecked) private var thread: pthread_t?
    private let threadID = Atomic<UInt64>(0)

    /// The thread's name (what `top -H` and `perf` show), at most 15 characters.
    public let name: String

    /// The read buffer every connection of this loop shares (loop thread only). A connection reads
    /// into it and decodes what it read before the loop runs anything else, keeping only an
    /// incomplete tail of its own, so an idle connection holds no read buffer: 10,000 of them cost
    /// 64 KiB here instead of 640 MiB.
    let readBuffer: UnsafeMutableRawBufferPointer
    static let readBufferSize = 64 * 1024

    /// Starts the loop on a new thread.
    /// - Parameters:
    ///   - name: the thread's name.
    ///   - idleSpin: how long the thread polls for work from other threads before it sleeps in
    ///     `epoll_wait`. A request/reply exchange then skips an eventfd wake-up on each side (about
    ///     10 % of a loopback round trip here), for at most this much CPU per idle moment; `.zero`
    ///     always sleeps at once.
    public init(name: String = "zmtp-io", idleSpin: Duration = .microseconds(10)) throws(EngineError) {
        self.name = String(name.utf8.prefix(15)) ?? "zmtp-io"
        self.idleSpin = idleSpin
        readBuffer = .allocate(byteCount: Self.readBufferSize, alignment: 16)
        do throws(SystemError) {
            epoll = try Syscall.retrying("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
            wakeFD = try Syscall.retrying("eventfd") { eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC)) }
            var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: 0))
            _ = try Syscall.retrying("epoll_ctl") { epoll_ctl(epoll, EPOLL_CTL_ADD, wakeFD, &event) }
        } catch {
            throw EngineError(error, while: "starting an I/O thread")
        }
        let unmanaged = Unmanaged.passRetained(self)
        var handle = pthread_t()
        let status = pthread_create(&handle, nil, { argument in
            guard let argument else { return nil }
            let loop = Unmanaged<EventLoop>.fromOpaque(argument).takeRetainedValue()
            loop.run()
            return nil
        }, unmanaged.toOpaque())
        guard status == 0 else {
            unmanaged.release()
            throw EngineError("pthread_create failed: \(status)")
        }
        thread = handle
    }

    deinit {
        readBuffer.deallocate()
        Syscall.close(epoll)
        Syscall.close(wakeFD)
    }

    /// Whether the caller runs on this loop's thread.
    public var inLoop: Bool { threadID.load(ordering: .acquiring) == UInt64(pthread_self()) }

    /// Runs `task` on the loop thread soon. Safe from any thread. Returns false (and drops the task)
    /// once ``shutdown()`` has begun; a task accepted before it still runs.
    @discardableResult
    public func execute(_ task: @escaping @Sendable () -> Void) -> Bool {
        let accepted = tasks.withLock { queue -> Bool in
            guard queue.accepting else { return false }
            queue.items.append(task)
            pendingTasks.add(1, ordering: .sequentiallyConsistent)
            return true
        }
        // An awake loop (working, or spinning before it sleeps) finds the task without a wake-up.
        if accepted, sleeping.load(ordering: .sequentiallyConsistent) { wake() }
        return accepted
    }

    /// Whether the loop still takes tasks (``shutdown()`` not yet called).
    public var isRunning: Bool { tasks.withLock { $0.accepting } }

    /// Stops the loop after the tasks already queued and joins its thread (unless called on it).
    /// Later calls do nothing.
    public func shutdown() {
        let first = tasks.withLock { queue -> Bool in
            guard queue.accepting else { return false }
            queue.accepting = false
            queue.items.append { [self] in stopping.store(true, ordering: .releasing) }
            return true
        }
        guard first else { return }
        wake()
        if !inLoop, let thread {
            pthread_join(thread, nil)
            self.thread = nil
        }
    }

    private func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, MemoryLayout<UInt64>.size)
    }

    // MARK: - Loop-thread API

    /// Registers `fd` for readiness; returns the token to modify or remove it with.
    func register(_ fd: Int32, handler: any EventHandler, readable: Bool, writable: Bool) throws(SystemError) -> UInt64 {
        let token = nextToken
        nextToken += 1
        var event = epoll_event(events: Self.mask(readable: readable, writable: writable), data: epoll_data_t(u64: token))
        _ = try Syscall.retrying("epoll_ctl") { epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) }
        handlers[token] = (fd, handler)
        return token
    }

    /// Changes the readiness a registration waits for.
    func modify(_ token: UInt64, readable: Bool, writable: Bool) {
        guard let entry = handlers[token] else { return }
        var event = epoll_event(events: Self.mask(readable: readable, writable: writable), data: epoll_data_t(u64: token))
        _ = epoll_ctl(epoll, EPOLL_CTL_MOD, entry.fd, &event)
    }

    /// Removes a registration (before its fd is closed).
    func deregister(_ token: UInt64) {
        guard let entry = handlers.removeValue(forKey: token) else { return }
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, entry.fd, nil)
    }

    /// Runs `task` at `deadline` unless cancelled; returns an id for ``cancel(_:)``.
    @discardableResult
    func schedule(at deadline: MonotonicInstant, _ task: @escaping () -> Void) -> UInt64 {
        timers.insert(deadline, task)
    }

    func cancel(_ timer: UInt64) { timers.cancel(timer) }

    /// Runs `task` on the loop thread at `deadline` (or soon after). Safe from any thread; cannot be
    /// cancelled, so `task` should do nothing harmful when it is no longer needed.
    public func execute(at deadline: MonotonicInstant, _ task: @escaping @Sendable () -> Void) {
        execute { [self] in self.schedule(at: deadline, task) }
    }

    /// CLOCK_MONOTONIC as the wire core's instant.
    public static func now() -> MonotonicInstant {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return MonotonicInstant(nanoseconds: UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec))
    }

    /// Level-triggered interest. RDHUP is asked for only with IN, so a registration that stopped
    /// reading (back-pressure) is not woken over and over by a peer's FIN.
    private static func mask(readable: Bool, writable: Bool) -> UInt32 {
        (readable ? EPOLLIN.rawValue | EPOLLRDHUP.rawValue : 0) | (writable ? EPOLLOUT.rawValue : 0)
    }

    private func run() {
        threadID.store(UInt64(pthread_self()), ordering: .releasing)
        czmtp_set_thread_name(name)
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        var running: [@Sendable () -> Void] = []
        while !stopping.load(ordering: .acquiring) {
            // Stay awake a few microseconds for a task (a send) before sleeping in epoll_wait: a
            // request/reply peer's answer then goes out without an eventfd wake-up.
            if idleSpin > .zero {
                let spinUntil = Self.now() + idleSpin
                while pendingTasks.load(ordering: .relaxed) == 0 && Self.now() < spinUntil {}
            }
            // Announce the sleep, then look once more (both sequentially consistent, against
            // execute()'s append-then-look): a task queued meanwhile either is seen here or wakes us.
            sleeping.store(true, ordering: .sequentiallyConsistent)
            let timeout = pendingTasks.load(ordering: .sequentiallyConsistent) > 0 ? 0 : timers.millisecondsUntilNext(now: Self.now())
            let count = events.withUnsafeMutableBufferPointer { buffer in
                epoll_wait(epoll, buffer.baseAddress, Int32(buffer.count), timeout)
            }
            sleeping.store(false, ordering: .relaxed)
            if count > 0 {
                for index in 0..<Int(count) {
                    let event = events[index]
                    let token = event.data.u64
                    if token == 0 {
                        var value: UInt64 = 0
                        _ = Glibc.read(wakeFD, &value, MemoryLayout<UInt64>.size)
                        continue
                    }
                    guard let entry = handlers[token] else { continue }  // stale: already removed
                    let flags = event.events
                    entry.handler.handle(
                        readable: flags & EPOLLIN.rawValue != 0,
                        writable: flags & EPOLLOUT.rawValue != 0,
                        hangup: flags & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0)
                }
            }
            // Swap the queue with the spare (emptied) array: no allocation per round.
            tasks.withLock { queue in
                swap(&queue.items, &running)
                pendingTasks.store(0, ordering: .relaxed)
            }
            for task in running { task() }
            running.removeAll(keepingCapacity: true)
            // Take the due timers first: their tasks may schedule new ones.
            for task in timers.takeDue(now: Self.now()) { task() }
        }
        // Drop every handler so their connections close.
        handlers.removeAll()
    }
}

/// A min-heap of deadlines with cancellation by id (loop thread only).
struct TimerQueue {
    private var heap: [(deadline: MonotonicInstant, id: UInt64)] = []
    private var tasks: [UInt64: () -> Void] = [:]
    private var nextID: UInt64 = 1

    mutating func insert(_ deadline: MonotonicInstant, _ task: @escaping () -> Void) -> UInt64 {
        let id = nextID
        nextID += 1
        tasks[id] = task
        heap.append((deadline, id))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { break }
            heap.swapAt(child, parent)
            child = parent
        }
        return id
    }

    mutating func cancel(_ id: UInt64) { tasks[id] = nil }

    /// epoll_wait's timeout: -1 with no timers, else milliseconds until the earliest (rounded up).
    mutating func millisecondsUntilNext(now: MonotonicInstant) -> Int32 {
        while let top = heap.first, tasks[top.id] == nil { popTop() }
        guard let top = heap.first else { return -1 }
        guard top.deadline > now else { return 0 }
        let nanoseconds = top.deadline.nanoseconds - now.nanoseconds
        return Int32(clamping: (nanoseconds + 999_999) / 1_000_000)
    }

    /// Removes and returns the tasks whose deadline has passed, earliest first.
    mutating func takeDue(now: MonotonicInstant) -> [() -> Void] {
        var due: [() -> Void] = []
        while let top = heap.first, top.deadline <= now {
            popTop()
            if let task = tasks.removeValue(forKey: top.id) { due.append(task) }
        }
        return due
    }

    private mutating func popTop() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count, heap[right].deadline < heap[smallest].deadline { smallest = right }
            if smallest == parent { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
