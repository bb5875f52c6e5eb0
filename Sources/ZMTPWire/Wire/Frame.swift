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
/// an allocation per message; a single frame of up to ``Frames/inlineCapacity`` octets copied from
/// the wire is kept inside the message itself, with no allocation at all until someone asks for it
/// as an array.
public struct Message: Hashable, Sendable, ExpressibleByArrayLiteral {
    public var frames: Frames

    @inlinable public init(frames: [[UInt8]]) { self.frames = Frames(frames) }
    @inlinable public init(frames: Frames) { self.frames = frames }
    @inlinable public init(_ frames: [UInt8]...) { self.frames = Frames(frames) }
    @inlinable public init(arrayLiteral elements: [UInt8]...) { self.frames = Frames(elements) }
    /// A message of one frame.
    @inlinable public init(single frame: [UInt8]) { self.frames = Frames(single: frame) }
    /// A message of one frame copied from `bytes`: inside the message when it fits.
    @inlinable public init(copying bytes: UnsafeRawBufferPointer) { self.frames = Frames(copying: bytes) }

    /// A message whose frames are the UTF-8 bytes of `strings`.
    public init(strings: [String]) { self.frames = Frames(strings.map { Array($0.utf8) }) }

    /// Total payload octets over all frames.
    @inlinable public var byteCount: Int {
        switch frames.storage {
        case .single(let frame):
            return frame.count
        case .inline(let frame):
            return Int(frame.count)
        case .multiple(let all):
            var total = 0
            for frame in all { total += frame.count }
            return total
        }
    }

    /// The frames of a message, in order: a random-access collection of byte arrays that compares
    /// equal to the `[[UInt8]]` with the same frames.
    ///
    /// Reading a small inline frame as an array (`frames[0]`) allocates that array;
    /// ``byteCount(ofFrame:)`` and ``withUnsafeBytes(ofFrame:_:)`` never allocate.
    public struct Frames: RandomAccessCollection, MutableCollection, Hashable, Sendable, ExpressibleByArrayLiteral {
        /// The largest frame kept inside the message (libzmq keeps up to 33 octets inside its
        /// `zmq_msg_t` the same way; 16 keeps a message three words long).
        public static let inlineCapacity = 16

        /// Up to 16 octets of one frame.
        @usableFromInline struct InlineFrame: Sendable {
            @usableFromInline var words: (UInt64, UInt64)
            @usableFromInline var count: UInt8
            @inlinable init(words: (UInt64, UInt64), count: UInt8) {
                self.words = words
                self.count = count
            }
        }

        /// One frame's array, a multipart message's arrays, or an inline frame.
        @usableFromInline enum Storage: Sendable {
            case single([UInt8])
            case multiple([[UInt8]])
            case inline(InlineFrame)
        }

        @usableFromInline var storage: Storage

        /// Whether the frame is held inside the message (tests, and the encoder's fast path).
        @inlinable var isInline: Bool {
            if case .inline = storage { return true }
            return false
        }

        @inlinable public init(_ frames: [[UInt8]]) {
            storage = frames.count == 1 ? .single(frames[0]) : .multiple(frames)
        }
        @inlinable public init(single frame: [UInt8]) {
            storage = .single(frame)
        }
        /// One frame copied from `bytes`, inline when it fits.
        @inlinable public init(copying bytes: UnsafeRawBufferPointer) {
            guard bytes.count <= Self.inlineCapacity else {
                storage = .single(Array(bytes))
                return
            }
            var words: (UInt64, UInt64) = (0, 0)
            Swift.withUnsafeMutableBytes(of: &words) { target in
                if let base = bytes.baseAddress, let destination = target.baseAddress {
                    destination.copyMemory(from: base, byteCount: bytes.count)
                }
            }
            storage = .inline(InlineFrame(words: words, count: UInt8(truncatingIfNeeded: bytes.count)))
        }
        @inlinable public init(arrayLiteral elements: [UInt8]...) { self.init(elements) }

        @inlinable public var startIndex: Int { 0 }
        @inlinable public var endIndex: Int {
            if case .multiple(let frames) = storage { return frames.count }
            return 1
        }

        @inlinable public subscript(position: Int) -> [UInt8] {
            get {
                switch storage {
                case .single(let frame):
                    precondition(position == 0, "frame index out of range")
                    return frame
                case .multiple(let frames):
                    return frames[position]
                case .inline:
                    precondition(position == 0, "frame index out of range")
                    return withUnsafeBytes(ofFrame: 0) { Array($0) }
                }
            }
            set {
                if case .multiple(var frames) = storage {
                    storage = .single([])  // let go of the array so that the write below does not copy it
                    frames[position] = newValue
                    storage = .multiple(frames)
                } else {
                    precondition(position == 0, "frame index out of range")
                    storage = .single(newValue)
                }
            }
        }

        /// The size of frame `index` in octets, without copying the frame out.
        @inlinable public func byteCount(ofFrame index: Int) -> Int {
            switch storage {
            case .single(let frame):
                precondition(index == 0, "frame index out of range")
                return frame.count
            case .multiple(let frames):
                return frames[index].count
            case .inline(let frame):
                precondition(index == 0, "frame index out of range")
                return Int(frame.count)
            }
        }

        /// Calls `body` with the octets of frame `index` in place, never allocating.
        @inlinable public func withUnsafeBytes<R, E: Error>(
            ofFrame index: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R
        ) throws(E) -> R {
            switch storage {
            case .single(let frame):
                precondition(index == 0, "frame index out of range")
                return try frame.withRawBytes(body)
            case .multiple(let frames):
                return try frames[index].withRawBytes(body)
            case .inline(let frame):
                precondition(index == 0, "frame index out of range")
                var words = frame.words
                let count = Int(frame.count)
                let result: Result<R, E> = Swift.withUnsafeBytes(of: &words) { raw in
                    do throws(E) {
                        return .success(try body(UnsafeRawBufferPointer(rebasing: raw[0..<count])))
                    } catch {
                        return .failure(error)
                    }
                }
                return try result.get()
            }
        }

        /// Adds a frame at the end.
        @inlinable public mutating func append(_ frame: [UInt8]) {
            switch storage {
            case .multiple(var frames):
                storage = .single([])  // let go of the array so that the append does not copy it
                frames.append(frame)
                storage = .multiple(frames)
            case .single(let first):
                storage = .multiple([first, frame])
            case .inline:
                storage = .multiple([self[0], frame])
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
