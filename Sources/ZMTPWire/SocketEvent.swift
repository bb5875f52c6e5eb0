
#if canImport(Glibc)
import Glibc
#endif

/// Something that happened to a socket's endpoints or connections (reported by the engine and by
/// `Socket.monitor`; defined here, with no I/O, because its values are the wire core's errors): libzmq's socket monitor events
/// (`zmq_socket_monitor`), with libzmq's numbers and values so that code written against libzmq's
/// monitor (Zeek treats 0x2000 and 0x4000 as fatal) reads them unchanged.
///
/// | kind | value |
/// |---|---|
/// | ``Kind/connected``, ``Kind/listening``, ``Kind/accepted``, ``Kind/closed``, ``Kind/disconnected`` | the file descriptor |
/// | ``Kind/connectDelayed``, ``Kind/bindFailed``, ``Kind/acceptFailed``, ``Kind/handshakeFailedNoDetail`` | an `errno` |
/// | ``Kind/connectRetried`` | the delay before the next attempt, in milliseconds |
/// | ``Kind/handshakeFailedProtocol`` | a ``ProtocolError`` value |
/// | ``Kind/handshakeFailedAuth`` | the ZAP status code (300, 400, 500) |
/// | ``Kind/handshakeSucceeded``, ``Kind/monitorStopped`` | 0 |
///
/// The endpoint is the one given to `connect` for a connecting socket, and the bound endpoint (with
/// its port resolved) for connections accepted on a listener, as in libzmq.
public struct SocketEvent: Sendable, Hashable, CustomStringConvertible {
    /// The event, as libzmq's `ZMQ_EVENT_*` bit. A set of kinds selects what a monitor reports.
    public struct Kind: OptionSet, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        /// A connection to a `connect` endpoint was established (before its handshake).
        public static let connected = Kind(rawValue: 0x0001)
        /// A connect is in progress (non-blocking connect); value `EINPROGRESS`.
        public static let connectDelayed = Kind(rawValue: 0x0002)
        /// A connect failed or a connection dropped; another attempt follows after the value's ms.
        public static let connectRetried = Kind(rawValue: 0x0004)
        /// A `bind` is listening.
        public static let listening = Kind(rawValue: 0x0008)
        /// A `bind` failed (libzmq reports this on the monitor; `Socket.bind` also throws).
        public static let bindFailed = Kind(rawValue: 0x0010)
        /// A listener accepted a connection.
        public static let accepted = Kind(rawValue: 0x0020)
        /// A listener could not accept (out of descriptors or memory); it pauses, then retries.
        public static let acceptFailed = Kind(rawValue: 0x0040)
        /// A listener, or a connecting socket whose connect failed, was closed.
        public static let closed = Kind(rawValue: 0x0080)
        /// Closing a descriptor failed (never reported: Linux's `close` cannot fail in a way we act on).
        public static let closeFailed = Kind(rawValue: 0x0100)
        /// A connection ended other than by closing our own socket: the peer closed it, it failed
        /// (including during the handshake), or heartbeats found the peer dead.
        public static let disconnected = Kind(rawValue: 0x0200)
        /// The monitor ended (the socket closed); always the last event.
        public static let monitorStopped = Kind(rawValue: 0x0400)
        /// A handshake failed without a protocol-level reason: the peer closed the connection or
        /// timed out during it, or its greeting was not ZMTP 3; value an `errno`.
        public static let handshakeFailedNoDetail = Kind(rawValue: 0x0800)
        /// A handshake (and authentication, if any) completed.
        public static let handshakeSucceeded = Kind(rawValue: 0x1000)
        /// A handshake failed on a protocol error; value a ``ProtocolError`` value.
        public static let handshakeFailedProtocol = Kind(rawValue: 0x2000)
        /// Authentication failed, ours (our ZAP handler refused the peer) or theirs (the peer sent
        /// ERROR with a ZAP status); value the status code.
        public static let handshakeFailedAuth = Kind(rawValue: 0x4000)
        /// Every event (`ZMQ_EVENT_ALL`).
        public static let all = Kind(rawValue: 0xFFFF)

        static let names: [(Kind, String)] = [
            (.connected, "CONNECTED"), (.connectDelayed, "CONNECT_DELAYED"), (.connectRetried, "CONNECT_RETRIED"),
            (.listening, "LISTENING"), (.bindFailed, "BIND_FAILED"), (.accepted, "ACCEPTED"),
            (.acceptFailed, "ACCEPT_FAILED"), (.closed, "CLOSED"), (.closeFailed, "CLOSE_FAILED"),
            (.disconnected, "DISCONNECTED"), (.monitorStopped, "MONITOR_STOPPED"),
            (.handshakeFailedNoDetail, "HANDSHAKE_FAILED_NO_DETAIL"), (.handshakeSucceeded, "HANDSHAKE_SUCCEEDED"),
            (.handshakeFailedProtocol, "HANDSHAKE_FAILED_PROTOCOL"), (.handshakeFailedAuth, "HANDSHAKE_FAILED_AUTH"),
        ]

        /// libzmq's name without the `ZMQ_EVENT_` prefix, e.g. `HANDSHAKE_FAILED_AUTH`.
        public var description: String {
            let matching = Self.names.filter { contains($0.0) }.map(\.1)
            return matching.isEmpty ? "0x\(String(rawValue, radix: 16))" : matching.joined(separator: "|")
        }
    }

    /// libzmq's `ZMQ_PROTOCOL_ERROR_*` values, the value of ``Kind/handshakeFailedProtocol``.
    public enum ProtocolError {
        public static let zmtpUnspecified: UInt32 = 0x1000_0000
        public static let zmtpUnexpectedCommand: UInt32 = 0x1000_0001
        public static let zmtpInvalidSequence: UInt32 = 0x1000_0002
        public static let zmtpKeyExchange: UInt32 = 0x1000_0003
        public static let zmtpMalformedCommandUnspecified: UInt32 = 0x1000_0011
        public static let zmtpMalformedCommandMessage: UInt32 = 0x1000_0012
        public static let zmtpMalformedCommandHello: UInt32 = 0x1000_0013
        public static let zmtpMalformedCommandInitiate: UInt32 = 0x1000_0014
        public static let zmtpMalformedCommandError: UInt32 = 0x1000_0015
        public static let zmtpMalformedCommandReady: UInt32 = 0x1000_0016
        public static let zmtpMalformedCommandWelcome: UInt32 = 0x1000_0017
        public static let zmtpInvalidMetadata: UInt32 = 0x1000_0018
        public static let zmtpCryptographic: UInt32 = 0x1100_0001
        public static let zmtpMechanismMismatch: UInt32 = 0x1100_0002
        public static let zapUnspecified: UInt32 = 0x2000_0000
        public static let zapMalformedReply: UInt32 = 0x2000_0001
        public static let zapBadRequestID: UInt32 = 0x2000_0002
        public static let zapBadVersion: UInt32 = 0x2000_0003
        public static let zapInvalidStatusCode: UInt32 = 0x2000_0004
        public static let zapInvalidMetadata: UInt32 = 0x2000_0005
    }

    public let kind: Kind
    public let value: UInt32
    /// The endpoint: as connected to, or as bound (see the type's discussion).
    public let endpoint: String
    /// Why, in words, for events that have a reason (failures); not part of libzmq's event.
    public let detail: String?

    public init(_ kind: Kind, value: UInt32 = 0, endpoint: String, detail: String? = nil) {
        self.kind = kind
        self.value = value
        self.endpoint = endpoint
        self.detail = detail
    }

    /// One line: `HANDSHAKE_FAILED_AUTH value=400 endpoint=tcp://127.0.0.1:5555 (ZAP: 400 …)`, with
    /// protocol-error values in hexadecimal as zmq.h writes them.
    public var description: String {
        let shownValue = kind == .handshakeFailedProtocol ? "0x" + String(value, radix: 16) : String(value)
        let suffix = detail.map { " (\($0))" } ?? ""
        return "\(kind) value=\(shownValue) endpoint=\(endpoint)\(suffix)"
    }

    /// The handshake-failure event libzmq raises for `error`, which ended a connection before its
    /// handshake completed. libzmq's rules:
    /// - a ZAP refusal (ours, or the peer's ERROR with reason `300`/`400`/`500`) is
    ///   ``Kind/handshakeFailedAuth`` with the status;
    /// - any other ERROR from the peer raises no handshake event (only ``Kind/disconnected``);
    /// - protocol errors are ``Kind/handshakeFailedProtocol`` with the closest ``ProtocolError``;
    /// - a timeout, a greeting that is not ZMTP 3, or the peer closing is ``Kind/handshakeFailedNoDetail``.
    public static func handshakeFailure(_ error: ZMTPError, endpoint: String) -> SocketEvent? {
        if let status = error.authenticationStatus {
            return SocketEvent(.handshakeFailedAuth, value: UInt32(clamping: status), endpoint: endpoint, detail: error.reason)
        }
        let protocolValue: UInt32
        switch error.code {
        case .peerError:
            return nil
        case .handshakeTimeout, .heartbeatTimeout:
            return SocketEvent(.handshakeFailedNoDetail, value: UInt32(ETIMEDOUT), endpoint: endpoint, detail: error.reason)
        case .invalidSignature, .unsupportedVersion:
            return SocketEvent(.handshakeFailedNoDetail, value: UInt32(EPROTO), endpoint: endpoint, detail: error.reason)
        case .mechanismMismatch: protocolValue = ProtocolError.zmtpMechanismMismatch
        case .unexpectedCommand: protocolValue = ProtocolError.zmtpUnexpectedCommand
        case .malformedCommand: protocolValue = ProtocolError.zmtpMalformedCommandUnspecified
        case .malformedMetadata, .incompatibleSocketType: protocolValue = ProtocolError.zmtpInvalidMetadata
        case .handshakeFailed: protocolValue = ProtocolError.zmtpCryptographic
        case .authenticationFailed: protocolValue = ProtocolError.zapUnspecified
        default: protocolValue = ProtocolError.zmtpUnspecified
        }
        return SocketEvent(.handshakeFailedProtocol, value: protocolValue, endpoint: endpoint, detail: error.reason)
    }
}
