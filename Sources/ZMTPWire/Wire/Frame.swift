/// The flags octet that starts every ZMTP frame (RFC 37 §Framing).
///
/// ```
/// bit 0  MORE     another frame of the same message follows
/// bit 1  LONG     the size is 8 octets (network order), not 1
/// bit 2  COMMAND  the frame is a command, not message data
/// bits 3-7        reserved: sent as zero, and we reject a peer that sets them
/// ```
public struct FrameFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let more = FrameFlags(rawValue: 0x01)
    public static let long = FrameFlags(rawValue: 0x02)
    public static let command = FrameFlags(rawValue: 0x04)
    /// Bits RFC 23 reserves; a frame that sets any of them is malformed.
    public static let reserved = FrameFlags(rawValue: 0xF8)
}

/// One decoded frame: a message part or a command.
///
/// For a command frame, ``body`` holds the whole command (name length, name, data); parse it with
/// ``Command/decode(_:)``.
public struct Frame: Hashable, Sendable {
    /// Whether another frame of the same message follows. Always false for commands.
    public var more: Bool
    /// Whether this is a command frame.
    public var isCommand: Bool
    public var body: [UInt8]

    @inlinable
    public init(body: [UInt8], more: Bool = false, isCommand: Bool = false) {
        self.body = body
        self.more = more
        self.isCommand = isCommand
    }
}

/// A multipart message: one or more frames delivered atomically.
///
/// Frames are copy-on-write arrays, so handing one message to many peers shares its bytes. A
/// single-frame message (the common case) keeps its frame without an array around it, which saves
/// an allocation per message.
public struct Message: Hashable, Sendable, ExpressibleByArrayLiteral {
    public var frames: Frames

    @inlinable public init(frames: [[UInt8]]) { self.frames = Frames(frames) }
    @inlinable public init(frames: Frames) { self.frames = frames }
    @inlinable public init(_ frames: [UInt8]...) { self.frames = Frames(frames) }
    @inlinable public init(arrayLiteral elements: [UInt8]...) { self.frames = Frames(elements) }
    /// A message of one frame.
    @inlinable public init(single frame: [UInt8]) { self.frames = Frames(single: frame) }
    /// A message of one frame copied from `bytes`.
    @inlinable public init(copying bytes: UnsafeRawBufferPointer) { self.frames = Frames(single: Array(bytes)) }

    /// A message whose frames are the UTF-8 bytes of `strings`.
    public init(strings: [String]) { self.frames = Frames(strings.map { Array($0.utf8) }) }

    /// Total payload octets over all frames.
    @inlinable public var byteCount: Int {
        var total = 0
        for index in frames.indices { total += frames.byteCount(ofFrame: index) }
        return total
    }

    /// The frames of a message, in order: a random-access collection of byte arrays that compares
    /// equal to the `[[UInt8]]` with the same frames.
    public struct Frames: RandomAccessCollection, MutableCollection, Hashable, Sendable, ExpressibleByArrayLiteral {
        // Two plain fields rather than an enum with two array payloads (that layout crashed debug
        // builds across modules). `multiple` is the empty-array singleton while `isSingle` holds.
        @usableFromInline var single: [UInt8]
        @usableFromInline var multiple: [[UInt8]]
        @usableFromInline var isSingle: Bool

        @inlinable public init(_ frames: [[UInt8]]) {
            if frames.count == 1 {
                single = frames[0]
                multiple = []
                isSingle = true
            } else {
                single = []
                multiple = frames
                isSingle = false
            }
        }
        @inlinable public init(single frame: [UInt8]) {
            single = frame
            multiple = []
            isSingle = true
        }
        @inlinable public init(arrayLiteral elements: [UInt8]...) { self.init(elements) }

        @inlinable public var startIndex: Int { 0 }
        @inlinable public var endIndex: Int { isSingle ? 1 : multiple.count }

        @inlinable public subscript(position: Int) -> [UInt8] {
            get {
                if isSingle {
                    precondition(position == 0, "frame index out of range")
                    return single
                }
                return multiple[position]
            }
            set {
                if isSingle {
                    precondition(position == 0, "frame index out of range")
                    single = newValue
                } else {
                    multiple[position] = newValue
                }
            }
        }

        /// The size of frame `index` in octets, without copying the frame out (one retain fewer
        /// than `frames[index].count`).
        @inlinable public func byteCount(ofFrame index: Int) -> Int {
            if isSingle {
                precondition(index == 0, "frame index out of range")
                return single.count
            }
            return multiple[index].count
        }

        /// Calls `body` with the octets of frame `index` in place.
        @inlinable public func withUnsafeBytes<R, E: Error>(
            ofFrame index: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R
        ) throws(E) -> R {
            if isSingle {
                precondition(index == 0, "frame index out of range")
                return try single.withRawBytes(body)
            }
            return try multiple[index].withRawBytes(body)
        }

        /// Adds a frame at the end.
        @inlinable public mutating func append(_ frame: [UInt8]) {
            if isSingle {
                multiple = [single, frame]
                single = []
                isSingle = false
            } else {
                multiple.append(frame)
            }
        }

        @inlinable public static func == (lhs: Frames, rhs: Frames) -> Bool { lhs.elementsEqual(rhs) }
        @inlinable public static func == (lhs: Frames, rhs: [[UInt8]]) -> Bool { lhs.elementsEqual(rhs) }
        @inlinable public static func == (lhs: [[UInt8]], rhs: Frames) -> Bool { lhs.elementsEqual(rhs) }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(count)
            for frame in self { hasher.combine(frame) }
        }
    }
}
