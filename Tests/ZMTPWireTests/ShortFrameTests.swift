import Testing
@testable import ZMTPWire

/// Reading a frame in place (its size, its octets) gives what the frame as an array gives.
@Suite("message frames read in place")
struct FrameAccessTests {
    @Test("byteCount(ofFrame:) and withUnsafeBytes(ofFrame:) agree with the frames as arrays, single and multipart")
    func inPlaceAccess() {
        let single = [UInt8]("zeek.cluster".utf8).withUnsafeBytes { Message(copying: $0) }
        #expect(single == Message(single: Array("zeek.cluster".utf8)))
        #expect(single.frames.byteCount(ofFrame: 0) == 12)
        #expect(single.frames.withUnsafeBytes(ofFrame: 0) { Array($0) } == Array("zeek.cluster".utf8))
        let multipart = Message([1, 2], [], [3, 4, 5])
        #expect((0..<3).map { multipart.frames.byteCount(ofFrame: $0) } == [2, 0, 3])
        #expect((0..<3).map { index in multipart.frames.withUnsafeBytes(ofFrame: index) { Array($0) } } == [[1, 2], [], [3, 4, 5]])
        #expect(multipart.byteCount == 5)
    }
}

/// A frame of up to 16 octets copied from the wire lives inside the message; every view of it must
/// be the same as for the array-backed message with the same bytes.
@Suite("inline frames: small bodies kept inside the message")
struct InlineFrameTests {
    static func copying(_ bytes: [UInt8]) -> Message {
        bytes.withUnsafeBytes { Message(copying: $0) }
    }

    @Test("up to the inline capacity a copied frame is inline, one octet more is an array; both equal the array message", arguments: [0, 1, 15, 16, 17, 200])
    func sameAsArrayBacked(size: Int) {
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        let copied = Self.copying(bytes)
        let plain = Message(single: bytes)
        #expect(copied.frames.isInline == (size <= Message.Frames.inlineCapacity))
        #expect(copied == plain)
        #expect(copied.hashValue == plain.hashValue)
        #expect(copied.frames.count == 1)
        #expect(copied.frames[0] == bytes)
        #expect(copied.frames.byteCount(ofFrame: 0) == size)
        #expect(copied.byteCount == size)
        #expect(copied.frames.withUnsafeBytes(ofFrame: 0) { Array($0) } == bytes)
        #expect(Array(copied.frames) == [bytes])
    }

    @Test("writing or appending to an inline message gives the same frames as for an array message")
    func mutation() {
        var replaced = Self.copying([1, 2, 3])
        replaced.frames[0] = [9, 9]
        #expect(replaced == Message(single: [9, 9]))
        #expect(!replaced.frames.isInline)

        var extended = Self.copying([1, 2, 3])
        extended.frames.append([4])
        #expect(extended == Message([1, 2, 3], [4]))
        #expect(extended.frames.count == 2)
        #expect(extended.frames.byteCount(ofFrame: 1) == 1)
        #expect(extended.byteCount == 4)
        extended.frames[1] = [5, 5]
        #expect(extended == Message([1, 2, 3], [5, 5]))
    }

    @Test("an inline message is encoded exactly as the array message")
    func encoding() {
        for size in [0, 5, 16] {
            let bytes = [UInt8](repeating: 0xAB, count: size)
            var inline = OutboundBuffer()
            inline.appendMessage(Self.copying(bytes))
            var plain = OutboundBuffer()
            plain.appendMessage(Message(single: bytes))
            #expect(inline.count == plain.count)
            #expect(inline.takeAll() == plain.takeAll())
        }
    }

    @Test("a connection delivers short frames inline, by the fast path and when they arrive in pieces")
    func receivedInline() throws {
        var wire: [UInt8] = []
        FrameEncoder.appendMessage(Message([1, 2, 3]), to: &wire)
        FrameEncoder.appendMessage(Message([UInt8](repeating: 4, count: 17)), to: &wire)
        var whole = try ShortFrameFastPathTests.readyPull()
        try whole.receive(wire, now: .zero)
        var bytewise = try ShortFrameFastPathTests.readyPull()
        for octet in wire { try bytewise.receive([octet], now: .zero) }
        for var connection in [whole, bytewise] {
            let messages = ShortFrameFastPathTests.messages(&connection)
            #expect(messages.map(\.frames.isInline) == [true, false])
            #expect(messages == [Message([1, 2, 3]), Message([UInt8](repeating: 4, count: 17))])
        }
    }
}

/// The connection's fast path for whole short data frames must deliver what the frame decoder would:
/// the same messages for any split of the same bytes, the size limit enforced, MORE frames untouched.
@Suite("Connection: short-frame fast path")
struct ShortFrameFastPathTests {
    /// A PULL connection whose NULL handshake with a scripted PUSH is done.
    static func readyPull(maxMessageSize: Int? = nil) throws -> Connection {
        var connection = try Connection(
            configuration: ConnectionConfiguration(socketType: .pull, maxMessageSize: maxMessageSize), now: .zero)
        try connection.receive(Script.greeting() + Script.ready("PUSH"), now: .zero)
        guard case .handshakeCompleted = connection.nextEvent() else {
            Issue.record("no handshake")
            return connection
        }
        return connection
    }

    static func messages(_ connection: inout Connection) -> [Message] {
        var out: [Message] = []
        while let event = connection.nextEvent() {
            if case .message(let message) = event { out.append(message) }
        }
        return out
    }

    @Test("short frames up to 255 octets, a long one, a multipart message and empty frames arrive the same whole and byte by byte")
    func anySplit() throws {
        let expected: [Message] = [
            Message([1]), Message([]), Message([UInt8](repeating: 2, count: 255)),
            Message([UInt8](repeating: 3, count: 256)), Message([4], [5, 5]), Message([6, 6, 6]),
            Message([UInt8](repeating: 7, count: 300)), Message([8]),
        ]
        var wire: [UInt8] = []
        for message in expected { FrameEncoder.appendMessage(message, to: &wire) }

        var whole = try Self.readyPull()
        try whole.receive(wire, now: .zero)
        #expect(Self.messages(&whole) == expected)

        var bytewise = try Self.readyPull()
        for octet in wire { try bytewise.receive([octet], now: .zero) }
        #expect(Self.messages(&bytewise) == expected)
    }

    @Test("the maximum message size still applies to a short frame that arrives whole")
    func sizeLimit() throws {
        var connection = try Self.readyPull(maxMessageSize: 10)
        try connection.receive(Script.message([UInt8](repeating: 1, count: 10)), now: .zero)
        #expect(Self.messages(&connection) == [Message([UInt8](repeating: 1, count: 10))])
        #expect(throws: ZMTPError.self) {
            try connection.receive(Script.message([UInt8](repeating: 1, count: 11)), now: .zero)
        }
    }
}
