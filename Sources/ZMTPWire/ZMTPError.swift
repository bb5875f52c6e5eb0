/// The one error type of the wire core.
///
/// Errors are equal by ``code`` alone, so tests and callers match on what went wrong, not on the wording
/// or where it was raised. The set of codes is open (``Code`` is a struct of static values, not an enum),
/// so adding a code later does not break anyone's `switch`.
///
/// Every error says whose fault it was (``blame``): a ``Blame/peer`` error means the remote side sent
/// something the protocol forbids, and the right response is to close that one connection; a
/// ``Blame/local`` error means this program misused the API.
public struct ZMTPError: Error, Hashable, CustomStringConvertible, Sendable {
    /// What went wrong, as a stable, comparable value.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A short, stable, machine-friendly name, e.g. `invalidSignature`.
        public let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        // Greeting (RFC 37 §Formal Grammar, §Version Negotiation).
        /// The first octet of the greeting is not 0xFF, or the signature is otherwise not ZMTP's.
        public static let invalidSignature = Code("invalidSignature")
        /// The peer speaks a ZMTP version we do not support (1.0 or 2.0).
        public static let unsupportedVersion = Code("unsupportedVersion")
        /// The peer's greeting names a different security mechanism from ours.
        public static let mechanismMismatch = Code("mechanismMismatch")
        /// The peer's as-server octet contradicts the mechanism's rules.
        public static let invalidAsServer = Code("invalidAsServer")

        // Framing.
        /// Reserved flag bits set, MORE on a command, or a size with the top bit set.
        public static let malformedFrame = Code("malformedFrame")
        /// A frame announced a size above the configured maximum message size.
        public static let messageTooLarge = Code("messageTooLarge")
        /// A command frame announced a size above ``Limits/maxCommandSize``.
        public static let commandTooLarge = Code("commandTooLarge")

        // Commands and metadata.
        /// A command whose body does not follow its grammar (name, lengths, trailing bytes).
        public static let malformedCommand = Code("malformedCommand")
        /// A metadata property list that does not follow RFC 37's grammar.
        public static let malformedMetadata = Code("malformedMetadata")
        /// A command (or data frame) that is not allowed in the current state.
        public static let unexpectedCommand = Code("unexpectedCommand")
        /// The peer's Socket-Type is missing or cannot talk to ours (RFC 37 §The Socket-Type Property).
        public static let incompatibleSocketType = Code("incompatibleSocketType")
        /// The peer sent an ERROR command; ``ZMTPError/reason`` holds its text.
        public static let peerError = Code("peerError")
        /// A security mechanism refused the handshake (bad box, bad key, bad nonce, replay...).
        public static let handshakeFailed = Code("handshakeFailed")
        /// The authenticator (ZAP) refused the peer.
        public static let authenticationFailed = Code("authenticationFailed")

        // Time.
        /// The handshake did not complete within the handshake timeout.
        public static let handshakeTimeout = Code("handshakeTimeout")
        /// The peer went silent past its heartbeat TTL or our heartbeat timeout.
        public static let heartbeatTimeout = Code("heartbeatTimeout")

        // Local misuse and encodings.
        /// The connection is closed (after an error or ``Connection/close()``).
        public static let connectionClosed = Code("connectionClosed")
        /// An API call that is not valid in the current state (e.g. sending before the handshake).
        public static let invalidState = Code("invalidState")
        /// An argument the caller passed is out of range (a 256-octet property name, an empty message).
        public static let invalidArgument = Code("invalidArgument")
        /// Z85 text or bytes of the wrong length, or characters outside the Z85 alphabet.
        public static let invalidZ85 = Code("invalidZ85")
    }

    /// Who caused the error.
    public enum Blame: Hashable, Sendable {
        /// The remote peer violated the protocol or timed out; close its connection.
        case peer
        /// This program misused the API or passed invalid input.
        case local
    }

    public let code: Code
    public let blame: Blame
    /// A human-readable explanation: what was expected and what arrived.
    public let reason: String
    /// When set, the protocol calls for telling the peer before closing: the connection queues an
    /// ERROR command with this reason (e.g. "invalid-socket-type", a ZAP status code).
    public var errorCommandReason: String?
    /// The ZAP status code behind an authentication failure: for ``Code/authenticationFailed`` the
    /// status our authenticator refused with (300, 400, 500); for ``Code/peerError`` the status the
    /// peer's ERROR carried, when its reason is exactly `300`, `400` or `500` (libzmq's rule for
    /// reporting HANDSHAKE_FAILED_AUTH). Nil otherwise.
    public var authenticationStatus: Int?
    public let file: String
    public let line: Int

    public init(
        _ code: Code, blame: Blame, _ reason: String, errorCommandReason: String? = nil,
        file: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.blame = blame
        self.reason = reason
        self.errorCommandReason = errorCommandReason
        self.file = file
        self.line = line
    }

    /// A protocol violation by the remote peer.
    @inlinable
    public static func peer(
        _ code: Code, _ reason: String, file: String = #fileID, line: Int = #line
    ) -> ZMTPError {
        ZMTPError(code, blame: .peer, reason, file: file, line: line)
    }

    /// Misuse by the local program.
    @inlinable
    public static func local(
        _ code: Code, _ reason: String, file: String = #fileID, line: Int = #line
    ) -> ZMTPError {
        ZMTPError(code, blame: .local, reason, file: file, line: line)
    }

    public static func == (lhs: ZMTPError, rhs: ZMTPError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String { "\(code.name): \(reason)" }
}
