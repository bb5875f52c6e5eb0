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
/// Frames are copy-on-write arrays, so handing one message to many peers shares its bytes.
public struct Message: Hashable, Sendable, ExpressibleByArrayLiteral {
    public var frames: [[UInt8]]

    @inlinable public init(frames: [[UInt8]]) { self.frames = frames }
    @inlinable public init(_ frames: [UInt8]...) { self.frames = frames }
    @inlinable public init(arrayLiteral elements: [UInt8]...) { self.frames = elements }

    /// A message whose frames are the UTF-8 bytes of `strings`.
    public init(strings: [String]) { self.frames = strings.map { Array($0.utf8) } }

    /// Total payload octets over all frames.
    @inlinable public var byteCount: Int { frames.reduce(0) { $0 + $1.count } }
}
