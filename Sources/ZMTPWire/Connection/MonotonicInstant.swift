/// A point on a monotonic clock, in nanoseconds from an arbitrary origin.
///
/// The wire core never reads a clock: drivers pass the current instant in (the engine from
/// `CLOCK_MONOTONIC`, tests from a counter), and the connection reports its next deadline in the same
/// terms. Arithmetic is in 64-bit nanoseconds, so no TTL the protocol can express wraps around
/// (libzmq computes heartbeat TTLs in 16 bits of milliseconds: libzmq-behaviours.md §7).
public struct MonotonicInstant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64

    @inlinable public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static let zero = MonotonicInstant(nanoseconds: 0)

    @inlinable
    public static func < (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    /// `instant + duration`, saturating at the ends of the clock; negative durations move back.
    @inlinable
    public static func + (lhs: MonotonicInstant, rhs: Duration) -> MonotonicInstant {
        let (seconds, attoseconds) = rhs.components
        let delta = Int128(seconds) * 1_000_000_000 + Int128(attoseconds / 1_000_000_000)
        let sum = Int128(lhs.nanoseconds) + delta
        return MonotonicInstant(nanoseconds: UInt64(clamping: sum))
    }

    /// The duration from `other` to `self` (negative if `other` is later).
    @inlinable
    public func duration(since other: MonotonicInstant) -> Duration {
        .nanoseconds(Int64(clamping: Int128(nanoseconds) - Int128(other.nanoseconds)))
    }

    public var description: String { "\(nanoseconds)ns" }
}
