#if canImport(Glibc)
import Glibc
#endif

/// A mutex with one condition variable, for threads that block (a socket's `send`/`receive` waiting for
/// room or a message). `Synchronization.Mutex` has no condition variable.
@usableFromInline
final class ConditionLock: @unchecked Sendable {
    // @unchecked: the pthread objects are only used through lock/unlock/wait/broadcast below.
    @usableFromInline let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    @usableFromInline init() {
        // Adaptive: a thread that finds the lock taken spins briefly before sleeping. The socket's
        // lock is held for short critical sections by an application thread and an I/O thread at
        // once; sleeping at once costs a futex wake-up and two context switches for every collision.
        var mutexAttributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&mutexAttributes)
        pthread_mutexattr_settype(&mutexAttributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        pthread_mutex_init(mutex, &mutexAttributes)
        pthread_mutexattr_destroy(&mutexAttributes)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    @inlinable
    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits (lock held) until signalled or until `deadlineNanoseconds` (CLOCK_MONOTONIC) passes; nil
    /// waits forever. Returns false on timeout.
    @usableFromInline
    func wait(until deadlineNanoseconds: UInt64?) -> Bool {
        guard let deadline = deadlineNanoseconds else {
            pthread_cond_wait(condition, mutex)
            return true
        }
        var spec = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(condition, mutex, &spec) == 0
    }

    /// Wakes every waiter (lock held or not).
    @usableFromInline
    func broadcast() { pthread_cond_broadcast(condition) }
}

/// A FIFO queue with O(1) push and pop (a growable ring buffer whose capacity is a power of two, so
/// wrapping is a mask, not a division).
public struct RingQueue<Element> {
    private var storage: [Element?] = []
    private var head = 0
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    /// Consuming: a caller's last use of a value moves it in, with no retain/release pair.
    public mutating func push(_ element: consuming Element) {
        if count == storage.count { grow() }
        storage[(head &+ count) & (storage.count &- 1)] = consume element
        count += 1
    }

    public mutating func pop() -> Element? {
        guard count > 0 else { return nil }
        let element = storage[head].take()  // moved out: no retain/release pair
        head = (head &+ 1) & (storage.count &- 1)
        count -= 1
        return element
    }

    /// The element `pop()` would return, left in place.
    public var first: Element? { count > 0 ? storage[head] : nil }

    /// Moves the first element to the back (round robin) without taking it out and putting it back.
    public mutating func rotate() {
        guard count > 1 else { return }
        let tailIndex = (head &+ count) & (storage.count &- 1)
        if tailIndex != head { storage.swapAt(head, tailIndex) }
        head = (head &+ 1) & (storage.count &- 1)
    }

    public mutating func removeAll() {
        storage = []
        head = 0
        count = 0
    }

    private mutating func grow() {
        let capacity = max(16, storage.count * 2)
        var bigger = [Element?](repeating: nil, count: capacity)
        for index in 0..<count { bigger[index] = storage[(head + index) & (storage.count - 1)].take() }
        storage = bigger
        head = 0
    }
}
