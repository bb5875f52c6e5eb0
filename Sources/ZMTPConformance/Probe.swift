import ZMTPEngine
import ZMTPWire

/// The peer under test and how to reach it.
public struct ConformanceTarget: Sendable {
    /// Who opens the connections.
    public enum Mode: String, Sendable, CaseIterable {
        /// The peer under test listens (binds); we connect to it.
        case connect
        /// We listen; the peer under test connects to us (and reconnects after each case).
        case listen
    }

    public var endpoint: Endpoint
    /// The socket type of the peer under test.
    public var socketType: SocketType
    public var mode: Mode
    /// The peer's CURVE server key (connect mode): the peer is a CURVE server and we its client.
    public var curveServerKey: CurvePublicKey?
    /// Our CURVE key pair: the client's in connect mode (a fresh one if nil), the server's in listen
    /// mode (where the peer under test must know its public half).
    public var curveKeyPair: CurveKeyPair?
    /// How long to watch for a reaction before calling it "none" (each case waits a small multiple).
    public var wait: Duration
    /// The topic prefix a publisher under test publishes on (for the filtering cases).
    public var topic: [UInt8]

    public init(
        endpoint: Endpoint, socketType: SocketType, mode: Mode = .connect, curveServerKey: CurvePublicKey? = nil,
        curveKeyPair: CurveKeyPair? = nil, wait: Duration = .seconds(1), topic: [UInt8] = Array("conform".utf8)
    ) {
        self.endpoint = endpoint
        self.socketType = socketType
        self.mode = mode
        self.curveServerKey = curveServerKey
        self.curveKeyPair = curveKeyPair
        self.wait = wait
        self.topic = topic
    }

    /// Whether the connections are CURVE (we are the client in connect mode, the server in listen mode).
    public var usesCurve: Bool { mode == .connect ? curveServerKey != nil : curveKeyPair != nil }

    /// The socket type we play: the peer's natural counterpart.
    var counterpart: SocketType {
        switch socketType {
        case .pub, .xpub: return .sub
        case .sub, .xsub: return .pub
        case .push: return .pull
        case .pull: return .push
        case .req: return .rep
        case .rep: return .req
        case .dealer: return .router
        case .router: return .dealer
        case .pair: return .pair
        }
    }

    /// A socket type the peer must refuse (for the socket-type cases).
    var incompatibleType: SocketType {
        [SocketType.pair, .pull, .push, .pub].first { !socketType.compatiblePeers.contains($0) } ?? .rep
    }
}

/// Why a probe could not go on.
struct ProbeFailure: Error {
    var observed: String
    /// The peer under test never connected (listen mode): nothing could be judged.
    var noConnection = false
    init(_ observed: String, noConnection: Bool = false) {
        self.observed = observed
        self.noConnection = noConnection
    }
}

/// What the peer did after we sent something it should react to.
enum Reaction: Equatable {
    /// It closed the connection, after `milliseconds`, having sent an ERROR (its reason) or not.
    case closed(milliseconds: Int, error: String?)
    /// The connection was still open at the end of the watch.
    case open

    var description: String {
        switch self {
        case .closed(let milliseconds, let error?): return "ERROR \"\(error)\", then closed after \(milliseconds) ms"
        case .closed(let milliseconds, nil): return "closed after \(milliseconds) ms, no ERROR"
        case .open: return "connection left open"
        }
    }
}

/// One connection to the peer under test, scripted octet by octet; the ZMTP state machine of
/// ZMTPWire drives it where a case needs a correct handshake (NULL or CURVE) to get to the point.
final class Probe {
    let stream: RawStream
    let target: ConformanceTarget
    /// What was received, in order, up to ``keptLimit`` octets (a peer that sends more is flooding; the
    /// rest is counted in ``discarded`` and not kept).
    private(set) var received: [UInt8] = []
    /// Octets received past ``keptLimit``.
    private(set) var discarded = 0
    /// The frames after the 64-octet greeting, undecrypted, decoded as they arrive (at most
    /// ``frameLimit``).
    private(set) var rawFrames: [Frame] = []
    private var rawDecoder = FrameDecoder(maxMessageSize: Probe.keptLimit)
    private var rawDecoded = Probe.greetingLength
    private var rawDecodingFailed = false
    private(set) var closedByPeer = false
    /// The state machine, once ``handshake()`` started it.
    private(set) var connection: Connection?
    private var unconsumed: [UInt8] = []
    private(set) var events: [ConnectionEvent] = []
    /// What made the state machine give up (a peer ERROR, a malformed frame), as text.
    private(set) var connectionError: String?

    init(stream: RawStream, target: ConformanceTarget) {
        self.stream = stream
        self.target = target
    }

    static func now() -> MonotonicInstant { EventLoop.now() }
    /// A ZMTP 3 greeting's size (RFC 23/37).
    static let greetingLength = 64
    /// Octets kept per connection; what a case needs to see is far smaller.
    static let keptLimit = 1 << 20
    /// Frames and events kept per connection.
    static let frameLimit = 10_000

    // MARK: - Raw octets

    func send(_ bytes: [UInt8]) {
        stream.write(bytes, until: Self.now() + target.wait * 2)
    }

    /// Reads whatever arrives until `deadline` or the peer closes; what arrived is also kept.
    @discardableResult
    func collect(until deadline: MonotonicInstant, stopWhen done: ([UInt8]) -> Bool = { _ in false }) -> [UInt8] {
        var fresh: [UInt8] = []
        while !closedByPeer && Self.now() < deadline && !done(fresh) {
            switch stream.read(until: deadline) {
            case .data(let bytes):
                let room = max(0, Self.keptLimit - received.count)
                if bytes.count > room { discarded += bytes.count - room }
                let kept = room >= bytes.count ? bytes : Array(bytes.prefix(room))
                guard !kept.isEmpty else { continue }
                fresh += kept
                received += kept
                decodeRawFrames()
                if connection != nil { feed(kept) }
            case .closed:
                closedByPeer = true
            case .timedOut:
                break
            }
        }
        return fresh
    }

    /// Waits for at least `count` octets in total since the connection opened.
    func receive(atLeast count: Int, within: Duration) -> Bool {
        collect(until: Self.now() + within) { _ in self.received.count >= count }
        return received.count >= count
    }

    /// Watches for a close, up to `within`. An ERROR command sent before the close is reported.
    func reaction(within: Duration) -> Reaction {
        let start = Self.now()
        collect(until: start + within)
        guard closedByPeer else { return .open }
        let elapsed = Int((Self.now().nanoseconds - start.nanoseconds) / 1_000_000)
        return .closed(milliseconds: elapsed, error: peerErrorReason)
    }

    /// Decodes the frames that arrived since the last call (each octet once).
    private func decodeRawFrames() {
        guard !rawDecodingFailed, received.count > rawDecoded else { return }
        let consumed = received[rawDecoded...].withUnsafeBytes { raw -> Int in
            var input = raw
            do throws(ZMTPError) {
                while rawFrames.count < Self.frameLimit, let frame = try rawDecoder.next(from: &input) { rawFrames.append(frame) }
            } catch {
                rawDecodingFailed = true  // not ZMTP framing (an older protocol, garbage): stop looking
            }
            return raw.count - input.count
        }
        rawDecoded += consumed
    }

    /// The reason of an ERROR command the peer sent in the clear, if any.
    var peerErrorReason: String? {
        for frame in rawFrames where frame.isCommand {
            if case .error? = try? Command.decode(frame.body) { return (try? Command.decode(frame.body))?.reasonText }
        }
        return nil
    }

    // MARK: - The state machine

    /// Completes a correct ZMTP 3.1 handshake (NULL or CURVE, as the target says) and returns the peer.
    /// - Throws: ``ProbeFailure`` with what the peer did instead.
    @discardableResult
    func handshake(socketType: SocketType? = nil, crypto: (any CurveCrypto)? = nil) throws(ProbeFailure) -> PeerInfo {
        let configuration = ConnectionConfiguration(
            socketType: socketType ?? target.counterpart, maxMessageSize: Self.keptLimit, handshakeTimeout: nil,
            peerAddress: "conform")
        let mechanism: any SecurityMechanism
        if target.mode == .connect, let serverKey = target.curveServerKey {
            mechanism = CurveClientMechanism(
                serverPublicKey: serverKey, keyPair: target.curveKeyPair ?? CurveKeyPair.generate(),
                crypto: crypto ?? SodiumCurveCrypto())
        } else if target.mode == .listen, let keyPair = target.curveKeyPair {
            mechanism = CurveServerMechanism(keyPair: keyPair, authenticates: false)
        } else {
            mechanism = NullMechanism(role: target.mode == .connect ? .client : .server)
        }
        do throws(ZMTPError) {
            connection = try Connection(configuration: configuration, mechanism: mechanism, now: Self.now())
        } catch {
            throw ProbeFailure("cannot start a handshake: \(error)")
        }
        if !received.isEmpty { feed(received) }
        flush()
        let deadline = Self.now() + target.wait * 3
        while connection?.peer == nil {
            if let connectionError { throw ProbeFailure("handshake failed: \(connectionError)") }
            if closedByPeer { throw ProbeFailure("the peer closed the connection during the handshake") }
            if Self.now() >= deadline { throw ProbeFailure("no handshake within \(target.wait * 3) (hung)") }
            collect(until: min(deadline, Self.now() + .milliseconds(50))) { _ in self.connection?.outbound.isEmpty == false }
            flush()
        }
        guard let peer = connection?.peer else { throw ProbeFailure("no handshake") }
        return peer
    }

    /// Queues a message through the state machine (encrypted under CURVE) and writes it.
    func sendMessage(_ message: Message) {
        do throws(ZMTPError) { try connection?.send(message) } catch { connectionError = "\(error)" }
        flush()
    }

    /// Sends SUBSCRIBE or CANCEL through the state machine.
    func subscribe(_ topic: [UInt8], _ on: Bool = true) {
        do throws(ZMTPError) {
            if on { try connection?.subscribe(topic) } else { try connection?.cancel(topic) }
        } catch {
            connectionError = "\(error)"
        }
        flush()
    }

    /// Encodes `message` (a MESSAGE box under CURVE) and returns its octets unsent, to corrupt or replay.
    func encodeWithoutSending(_ message: Message) -> [UInt8] {
        flush()
        do throws(ZMTPError) { try connection?.send(message) } catch { connectionError = "\(error)" }
        return connection?.takeOutbound() ?? []
    }

    /// Writes what the state machine queued (PONGs, handshake commands, messages).
    func flush() {
        guard let bytes = connection?.takeOutbound(), !bytes.isEmpty else { return }
        send(bytes)
    }

    /// Runs the state machine until `deadline`, collecting its events.
    func pump(until deadline: MonotonicInstant, stopWhen done: ([ConnectionEvent]) -> Bool = { _ in false }) {
        while !closedByPeer && connectionError == nil && Self.now() < deadline && !done(events) {
            collect(until: min(deadline, Self.now() + .milliseconds(20)))
            flush()
        }
    }

    /// The data messages received so far through the state machine.
    var messages: [Message] {
        events.compactMap { if case .message(let message) = $0 { return message } else { return nil } }
    }

    /// Whether the peer still answers: a PING with a fresh context comes back as a PONG with it.
    func answersPing(within: Duration) -> Bool {
        guard connection != nil, connection?.peer?.version != .zmtp30 else { return !closedByPeer }
        let context = Array("alive-\(Self.now().nanoseconds % 1_000_000)".utf8)
        do throws(ZMTPError) { try connection?.ping(context: context, now: Self.now()) } catch { return false }
        flush()
        let before = events.count
        pump(until: Self.now() + within) { events in
            events[before...].contains { if case .pong(let got) = $0 { return got == context } else { return false } }
        }
        return events[before...].contains { if case .pong(let got) = $0 { return got == context } else { return false } }
    }

    private func feed(_ bytes: [UInt8]) {
        guard connection != nil, connectionError == nil else { return }
        unconsumed += bytes
        do throws(ZMTPError) {
            // Changed in place (optional chaining), not through a copy that would duplicate its buffers.
            let consumed = try connection?.receive(unconsumed, now: Self.now()) ?? 0
            unconsumed.removeFirst(consumed)
            while let event = connection?.nextEvent() {
                if events.count < Self.frameLimit { events.append(event) }
            }
        } catch {
            connectionError = "\(error)"
        }
    }

    // MARK: - Building octets by hand

    /// A 64-octet greeting with every field chosen.
    static func greeting(
        major: UInt8 = 3, minor: UInt8 = 1, mechanism: String = "NULL", asServer: Bool = false
    ) -> [UInt8] {
        var bytes: [UInt8] = [0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, major, minor]
        var name = Array(mechanism.utf8.prefix(20))
        name += [UInt8](repeating: 0, count: 20 - name.count)
        bytes += name
        bytes.append(asServer ? 1 : 0)
        bytes += [UInt8](repeating: 0, count: 31)
        return bytes
    }

    /// A frame with the flags and body given (short or long size as the flags say).
    static func frame(flags: UInt8, body: [UInt8], longSize: UInt64? = nil) -> [UInt8] {
        if flags & 0x02 != 0 || body.count > 255 {
            let size = longSize ?? UInt64(body.count)
            return [flags | 0x02] + withUnsafeBytes(of: size.bigEndian, Array.init) + body
        }
        return [flags, UInt8(body.count)] + body
    }

    /// A command frame (short or long as the body needs).
    static func frame(command: Command) -> [UInt8] {
        let body = (try? command.encodedBody()) ?? []
        return frame(flags: body.count > 255 ? 0x06 : 0x04, body: body)
    }

    /// A command frame with a raw body: name length, name, data.
    static func frame(commandNamed name: String, data: [UInt8]) -> [UInt8] {
        let nameBytes = Array(name.utf8.prefix(255))
        return frame(flags: 0x04, body: [UInt8(nameBytes.count)] + nameBytes + data)
    }

    /// A READY body with these properties, encoded by hand (names and lengths as given).
    static func ready(properties: [(String, [UInt8])]) -> [UInt8] {
        var data: [UInt8] = []
        for (name, value) in properties {
            let nameBytes = Array(name.utf8.prefix(255))
            data.append(UInt8(nameBytes.count))
            data += nameBytes
            data += withUnsafeBytes(of: UInt32(value.count).bigEndian, Array.init)
            data += value
        }
        return frame(commandNamed: "READY", data: data)
    }
}

/// Opens connections to the peer under test, one per case or more, within a fixed budget.
final class ProbeFactory {
    let target: ConformanceTarget
    private let listener: RawListener?
    /// Connections opened so far; ``maximum`` bounds them (the tester is no flood tool).
    private(set) var opened = 0
    let maximum: Int

    init(target: ConformanceTarget, maximum: Int = 2_000) throws(EngineError) {
        self.target = target
        self.maximum = maximum
        listener = target.mode == .listen ? try RawListener(target.endpoint) : nil
    }

    /// A new connection to the peer under test.
    func open() throws(ProbeFailure) -> Probe {
        guard opened < maximum else { throw ProbeFailure("connection budget (\(maximum)) used up") }
        opened += 1
        if let listener {
            let wait = max(target.wait * 3, .seconds(2))
            guard let stream = listener.accept(until: Probe.now() + wait) else {
                throw ProbeFailure("the peer did not connect within \(wait)", noConnection: true)
            }
            return Probe(stream: stream, target: target)
        }
        do throws(EngineError) {
            return Probe(stream: try RawStream.connect(target.endpoint, timeout: target.wait * 2), target: target)
        } catch {
            throw ProbeFailure("cannot connect: \(error.message)")
        }
    }
}
