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
