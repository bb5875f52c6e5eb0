#!/usr/bin/env python3
"""scale-peers.py: many raw ZMTP 3.1 NULL peers in one process, for scale measurements of a proxy.

    scale-peers.py ENDPOINT --count N [--socket-type SUB] [--topic-prefix P | --subscribe-all]
                   [--in-flight K] [--hold S | --expect-messages M --message-size B] [--timeout S]

Opens N connections to ENDPOINT (tcp://HOST:PORT or ipc:///path), at most K handshakes at a time
(default 64, below libzmq's listen backlog of 100, so that the kernel never drops a SYN and the time
measured is the proxy's, not TCP's retransmission timer). Each connection sends a greeting, a READY with Socket-Type, and, for SUB, one subscription:
"P<i>." for connection i with --topic-prefix (every peer its own topic, like a Zeek node's), or
everything with --subscribe-all. It prints, as `key=value` lines on stdout:

  connected=N seconds=T          when every handshake has completed (the peer's greeting and
                                 READY have arrived), T measured from the first connect
  delivered=D seconds=T rate=R   with --expect-messages: when every connection has received M
                                 messages of B bytes (or --timeout passed); T from the first data
                                 byte to the last, R = D / T messages per second over all peers

With --stall a connection stops reading once it has subscribed, like a stuck subscriber. With
--hold S it keeps the connections open (reading and discarding) for S seconds, or until
SIGTERM/SIGINT. The peer's data is counted, not parsed: with fixed-size single-frame messages
of B <= 255 bytes each frame is B + 2 octets. Implementation-neutral on purpose (no libzmq, no
swift-zmtp), so the same load drives either proxy. Exit status 1 if a connection fails.
"""
import argparse
import os
import resource
import selectors
import signal
import socket
import sys
import time

SIGNATURE = b"\xff" + b"\x00" * 8 + b"\x7f"


def greeting() -> bytes:
    mechanism = b"NULL".ljust(20, b"\x00")
    return SIGNATURE + bytes([3, 1]) + mechanism + b"\x00" + b"\x00" * 31


def command(name: bytes, body: bytes) -> bytes:
    payload = bytes([len(name)]) + name + body
    assert len(payload) < 256
    return bytes([0x04, len(payload)]) + payload


def ready(socket_type: bytes) -> bytes:
    key = b"Socket-Type"
    return command(b"READY", bytes([len(key)]) + key + len(socket_type).to_bytes(4, "big") + socket_type)


def message(body: bytes) -> bytes:
    assert len(body) < 256
    return bytes([0x00, len(body)]) + body


class Peer:
    __slots__ = ("sock", "index", "inbox", "handshaken", "received", "first", "last")

    def __init__(self, sock, index):
        self.sock = sock
        self.index = index
        self.inbox = b""
        self.handshaken = False
        self.received = 0  # data octets after the handshake
        self.first = None
        self.last = None


def parse_endpoint(endpoint):
    if endpoint.startswith("tcp://"):
        host, _, port = endpoint[6:].rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return family, (host, int(port))
    if endpoint.startswith("ipc://"):
        return socket.AF_UNIX, endpoint[6:]
    sys.exit(f"scale-peers: unsupported endpoint {endpoint}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("endpoint")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--socket-type", default="SUB")
    parser.add_argument("--topic-prefix")
    parser.add_argument("--subscribe-all", action="store_true")
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--hold", type=float, default=0)
    parser.add_argument("--expect-messages", type=int, default=0)
    parser.add_argument("--message-size", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--stall", action="store_true", help="stop reading once subscribed (a stuck subscriber)")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.count + 1024), hard))

    family, address = parse_endpoint(args.endpoint)
    prelude = greeting() + ready(args.socket_type.encode())
    stop = {"now": False}
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.__setitem__("now", True))

    selector = selectors.DefaultSelector()
    peers = []
    pending = 0
    started = time.monotonic()
    deadline = started + args.timeout
    connected = 0
    connected_at = started
    buffer = bytearray(1 << 18)
    view = memoryview(buffer)

    def subscription(index):
        if args.subscribe_all:
            return message(b"\x01")
        if args.topic_prefix is not None:
            return message(b"\x01" + f"{args.topic_prefix}{index}.".encode())
        return b""

    def open_next():
        nonlocal pending
        index = len(peers)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        if family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.connect(address)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as error:
            sys.exit(f"scale-peers: connect {index}: {error}")
        peer = Peer(sock, index)
        peers.append(peer)
        pending += 1
        # Everything we say before the handshake can go at once: the peer reads it in order.
        selector.register(sock, selectors.EVENT_WRITE | selectors.EVENT_READ, peer)

    frame = args.message_size + 2
    expected = args.expect_messages * frame
    done_peers = 0
    while not stop["now"]:
        while pending < args.in_flight and len(peers) < args.count:
            open_next()
        now = time.monotonic()
        if now > deadline:
            break
        for key, events in selector.select(timeout=0.5):
            peer = key.data
            sock = peer.sock
            if events & selectors.EVENT_WRITE:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    sys.exit(f"scale-peers: connect {peer.index}: {os.strerror(error)}")
                sock.sendall(prelude)
                selector.modify(sock, selectors.EVENT_READ, peer)
            if not events & selectors.EVENT_READ:
                continue
            try:
                n = sock.recv_into(buffer)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as error:
                sys.exit(f"scale-peers: connection {peer.index}: {error}")
            if n == 0:
                sys.exit(f"scale-peers: connection {peer.index} closed by the peer")
            if peer.handshaken:
                peer.received += n
                peer.last = time.monotonic()
                if peer.first is None:
                    peer.first = peer.last
                if peer.received >= expected > 0 and peer.received - n < expected:
                    done_peers += 1
                continue
            peer.inbox += bytes(view[:n])
            # Greeting (64 octets), then the peer's READY: a short (0x04) or long (0x06) command.
            if len(peer.inbox) < 66:
                continue
            flags = peer.inbox[64]
            if flags == 0x04:
                end = 66 + peer.inbox[65]
            elif flags == 0x06 and len(peer.inbox) >= 73:
                end = 73 + int.from_bytes(peer.inbox[65:73], "big")
            else:
                continue
            if len(peer.inbox) < end:
                continue
            peer.handshaken = True
            extra = len(peer.inbox) - end
            peer.inbox = b""
            sub = subscription(peer.index)
            if sub:
                sock.sendall(sub)
            if args.stall:
                selector.unregister(sock)
            pending -= 1
            connected += 1
            if extra:
                peer.received = extra
                peer.first = peer.last = time.monotonic()
            if connected == args.count:
                connected_at = time.monotonic()
                print(f"connected={connected} seconds={connected_at - started:.3f}", flush=True)
        if connected == args.count:
            if expected and done_peers == args.count:
                break
            if not expected and args.hold and time.monotonic() - connected_at > args.hold:
                break
            if not expected and not args.hold:
                break
    if connected < args.count:
        print(f"scale-peers: only {connected} of {args.count} handshakes completed", file=sys.stderr)
        sys.exit(1)
    if expected:
        firsts = [p.first for p in peers if p.first is not None]
        lasts = [p.last for p in peers if p.last is not None]
        delivered = sum(min(p.received, expected) // frame for p in peers)
        span = (max(lasts) - min(firsts)) if firsts else 0.0
        rate = delivered / span if span > 0 else 0.0
        print(f"delivered={delivered} seconds={span:.3f} rate={rate:.0f}", flush=True)
        if delivered < args.expect_messages * args.count:
            print(f"scale-peers: {delivered} of {args.expect_messages * args.count} messages arrived", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
