/// CurveZMQ's command layouts, nonces and MESSAGE boxes (RFC 26, carried over ZMTP by RFC 25).
///
/// Sizes are of the whole command body, name included (the name-length octet and the name):
/// ```
/// HELLO     200   version 01 00 | 72 zero octets | C' | short nonce | Box[64 zeros](C'->S)        (80)
/// WELCOME   168   long nonce | Box[S' + cookie](S->C')                                            (144)
/// INITIATE >=257  cookie (96) | short nonce | Box[C + vouch + metadata](C'->S')                  (>=144)
/// READY    >=30   short nonce | Box[metadata](S'->C')                                             (>=16)
/// MESSAGE  >=33   short nonce | Box[flags + payload](C'<->S')                                     (>=17)
/// cookie = long nonce | SecretBox[C' + s'](cookie key);  vouch = long nonce | Box[C' + S](C->S')
/// ```
/// Short nonces are 8-octet big-endian counters behind a 16-octet prefix; long nonces are 16 random
/// octets behind an 8-octet prefix.
enum CurveWire {
    static let keyLength = 32
    static let macLength = 16
    static let shortNonceLength = 8
    static let longNonceLength = 16
    static let cookieLength = longNonceLength + macLength + 2 * keyLength  // 96
    static let vouchLength = longNonceLength + macLength + 2 * keyLength  // 96
    static let helloPaddingLength = 72

    static let helloName = Array("HELLO".utf8)
    static let welcomeName = Array("WELCOME".utf8)
    static let initiateName = Array("INITIATE".utf8)
    static let readyName = Array("READY".utf8)
    static let messageName = Array("MESSAGE".utf8)
    /// A MESSAGE body's first eight octets (name length 7, then the name) as one machine word.
    static let messagePrefixWord: UInt64 = ([UInt8(messageName.count)] + messageName).withUnsafeBytes {
        $0.loadUnaligned(as: UInt64.self)
    }

    /// Data sizes (after the name) of the fixed-size commands and the minimum of the others.
    static let helloDataLength = 2 + helloPaddingLength + keyLength + shortNonceLength + macLength + 64  // 194
    static let welcomeDataLength = longNonceLength + macLength + keyLength + cookieLength  // 160
    static let initiateMinimumDataLength = cookieLength + shortNonceLength + macLength + keyLength + vouchLength  // 248
    static let readyMinimumDataLength = shortNonceLength + macLength  // 24
    static let messageMinimumDataLength = shortNonceLength + macLength + 1  // 25

    static let helloNoncePrefix = Array("CurveZMQHELLO---".utf8)
    static let welcomeNoncePrefix = Array("WELCOME-".utf8)
    static let cookieNoncePrefix = Array("COOKIE--".utf8)
    static let initiateNoncePrefix = Array("CurveZMQINITIATE".utf8)
    static let vouchNoncePrefix = Array("VOUCH---".utf8)
    static let readyNoncePrefix = Array("CurveZMQREADY---".utf8)
    static let clientMessageNoncePrefix = Array("CurveZMQMESSAGEC".utf8)
    static let serverMessageNoncePrefix = Array("CurveZMQMESSAGES".utf8)

    /// Payload flags inside a MESSAGE box: bit 0 MORE (RFC 26), bit 1 "this is a ZMTP command" (a
    /// libzmq extension, libzmq-behaviours.md §1). Other bits are reserved.
    static let messageFlagMore: UInt8 = 0x01
    static let messageFlagCommand: UInt8 = 0x02

    static func shortNonce(_ prefix: [UInt8], _ counter: UInt64) -> [UInt8] {
        var nonce = prefix
        withUnsafeBytes(of: counter.bigEndian) { nonce.append(contentsOf: $0) }
        return nonce
    }

    static func counter(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Splits a command body into its name and data; the name must be `expected`.
    static func data(of body: [UInt8], expecting expected: [UInt8]) throws(ZMTPError) -> ArraySlice<UInt8> {
        body[try dataOffset(of: body, expecting: expected)...]
    }

    /// Where a command body's data starts; the name must be `expected`.
    static func dataOffset(of body: [UInt8], expecting expected: [UInt8]) throws(ZMTPError) -> Int {
        guard let length = body.first, length > 0, Int(length) < body.count else {
            throw .peer(.malformedCommand, "command name missing, empty or longer than the body")
        }
        var matches = Int(length) == expected.count
        if matches {
            // Compared in place: no bounds check per octet (length < body.count was checked).
            matches = body.withUnsafeBytes { body in
                expected.withUnsafeBytes { expected in
                    for index in 0..<expected.count where body[1 + index] != expected[index] { return false }
                    return true
                }
            }
        }
        guard matches else {
            let name = body[1...Int(length)]
            throw .peer(
                .unexpectedCommand,
                "expected \(String(decoding: expected, as: UTF8.self)), got \(String(decoding: name, as: UTF8.self))")
        }
        return Int(length) + 1
    }

    /// A command body: name length, name, then `parts`.
    static func command(_ name: [UInt8], _ parts: [UInt8]...) -> [UInt8] {
        var body: [UInt8] = [UInt8(name.count)] + name
        body.reserveCapacity(body.count + parts.reduce(0) { $0 + $1.count })
        for part in parts { body += part }
        return body
    }

    static func failed(_ reason: String) -> ZMTPError { .peer(.handshakeFailed, reason) }
}

/// The message phase of a CURVE connection: every frame travels as a MESSAGE whose box holds a flags
/// octet and the payload, under the short-term keys' shared key, with strictly increasing nonces in
/// each direction.
struct CurveSession: Sendable {
    let crypto: any CurveCrypto
    let key: SecretBytes
    /// The nonce our next command or MESSAGE uses.
    var nextSendNonce: UInt64
    /// The last nonce the peer used (HELLO/INITIATE for a server, READY for a client).
    var lastReceivedNonce: UInt64
    /// 24-octet nonce buffers reused for every MESSAGE (prefix, then the counter written in place).
    private var sendNonce: [UInt8]
    private var receiveNonce: [UInt8]

    init(
        crypto: any CurveCrypto, key: SecretBytes, sendPrefix: [UInt8], receivePrefix: [UInt8],
        nextSendNonce: UInt64, lastReceivedNonce: UInt64
    ) {
        self.crypto = crypto
        self.key = key
        self.nextSendNonce = nextSendNonce
        self.lastReceivedNonce = lastReceivedNonce
        self.sendNonce = sendPrefix + [UInt8](repeating: 0, count: 8)
        self.receiveNonce = receivePrefix + [UInt8](repeating: 0, count: 8)
    }

    private static func write(_ counter: UInt64, into nonce: inout [UInt8]) {
        nonce.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: counter.bigEndian, toByteOffset: 16, as: UInt64.self)  // nonce is 24 octets
        }
    }

    /// Appends one MESSAGE frame carrying `body`. libzmq only reads MESSAGE from data frames
    /// (libzmq-behaviours.md §1), so that is how we send it; the ZMTP frame never has MORE set (MORE
    /// travels inside the box).
    mutating func encode(frame body: [UInt8], more: Bool, isCommand: Bool, into out: inout OutboundBuffer) throws(ZMTPError) {
        try takeSendNonce()
        let (crypto, key, nonce) = (self.crypto, self.key, self.sendNonce)
        body.withUnsafeBytes {
            Self.seal($0, more: more, isCommand: isCommand, crypto: crypto, key: key, nonce: nonce, into: &out)
        }
    }

    /// ``encode(frame:more:isCommand:into:)`` from octets in place.
    mutating func encode(
        frameBytes body: UnsafeRawBufferPointer, more: Bool, isCommand: Bool, into out: inout OutboundBuffer
    ) throws(ZMTPError) {
        try takeSendNonce()
        Self.seal(body, more: more, isCommand: isCommand, crypto: crypto, key: key, nonce: sendNonce, into: &out)
    }

    /// Writes the next send nonce into `sendNonce`, or fails when the counter is used up.
    private mutating func takeSendNonce() throws(ZMTPError) {
        guard nextSendNonce < UInt64.max else { throw .local(.invalidState, "CURVE nonces exhausted on this connection") }
        Self.write(nextSendNonce, into: &sendNonce)
        nextSendNonce += 1
    }

    /// Appends the MESSAGE frame sealing `body` with `nonce` (the one `takeSendNonce` wrote). Static,
    /// so that a caller's closure passes the three fields instead of copying the session.
    private static func seal(
        _ body: UnsafeRawBufferPointer, more: Bool, isCommand: Bool, crypto: any CurveCrypto, key: SecretBytes,
        nonce: [UInt8], into out: inout OutboundBuffer
    ) {
        // Written straight into the outbound buffer and sealed there: name, short nonce, room for the
        // MAC, flags and body; no array per message.
        let header = 1 + CurveWire.messageName.count + CurveWire.shortNonceLength
        let flags = (more ? CurveWire.messageFlagMore : 0) | (isCommand ? CurveWire.messageFlagCommand : 0)
        out.appendFrame(size: header + CurveWire.macLength + 1 + body.count) { frame in
            frame[0] = UInt8(CurveWire.messageName.count)
            CurveWire.messageName.withUnsafeBytes { name in
                UnsafeMutableRawBufferPointer(rebasing: frame[1...]).copyMemory(from: name)
            }
            nonce.withUnsafeBytes { nonce in
                UnsafeMutableRawBufferPointer(rebasing: frame[(1 + CurveWire.messageName.count)...])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: nonce[16...]))
            }
            frame[header + CurveWire.macLength] = flags
            UnsafeMutableRawBufferPointer(rebasing: frame[(header + CurveWire.macLength + 1)...]).copyMemory(from: body)
            crypto.sealInPlace(UnsafeMutableRawBufferPointer(rebasing: frame[header...]), nonce: nonce, key: key)
        }
    }

    /// Opens one MESSAGE (from a data or a command frame) into the frame it carries, in place: the
    /// plaintext is decrypted over the box and moved to the front of the same array.
    mutating func decode(_ frame: consuming Frame) throws(ZMTPError) -> Frame {
        var frame = frame
        // The usual case in one comparison: length octet 7 then "MESSAGE"; anything else takes the
        // general check, which names what was wrong.
        let isMessage = frame.body.count >= 8
            && frame.body.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == CurveWire.messagePrefixWord
        let offset = isMessage ? 8 : try CurveWire.dataOffset(of: frame.body, expecting: CurveWire.messageName)
        let dataLength = frame.body.count - offset
        guard dataLength >= CurveWire.messageMinimumDataLength else {
            throw .peer(.malformedCommand, "MESSAGE of \(dataLength) data octets, minimum is 25")
        }
        // dataLength >= 25 was checked, so the 8-octet counter is there.
        let counter = frame.body.withUnsafeBytes { UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        guard counter > lastReceivedNonce else {
            throw CurveWire.failed("MESSAGE nonce \(counter) does not exceed the last one (\(lastReceivedNonce)): replay")
        }
        Self.write(counter, into: &receiveNonce)
        let boxStart = offset + CurveWire.shortNonceLength
        let (crypto, key, nonce) = (self.crypto, self.key, self.receiveNonce)
        let opened = frame.body.withUnsafeMutableBytes { raw in
            crypto.openInPlace(UnsafeMutableRawBufferPointer(rebasing: raw[boxStart...]), nonce: nonce, key: key)
        }
        guard opened else { throw CurveWire.failed("MESSAGE box does not open") }
        lastReceivedNonce = counter
        let flags = frame.body[boxStart]
        guard flags & ~(CurveWire.messageFlagMore | CurveWire.messageFlagCommand) == 0 else {
            throw .peer(.malformedFrame, "MESSAGE flags 0x\(String(flags, radix: 16)) set reserved bits")
        }
        let isCommand = flags & CurveWire.messageFlagCommand != 0
        let more = flags & CurveWire.messageFlagMore != 0
        if isCommand && more { throw .peer(.malformedFrame, "command inside MESSAGE has MORE set") }
        // [name, nonce][flags, body][16 stale octets] -> [body]: one memmove, then a shorter count.
        let bodyLength = frame.body.count - CurveWire.macLength - (boxStart + 1)
        frame.body.withUnsafeMutableBytes { raw in
            if let base = raw.baseAddress, bodyLength > 0 { base.copyMemory(from: base + boxStart + 1, byteCount: bodyLength) }
        }
        frame.body.removeLast(frame.body.count - bodyLength)
        frame.more = more
        frame.isCommand = isCommand
        return frame
    }
}
