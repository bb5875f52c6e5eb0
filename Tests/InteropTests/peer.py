"""A libzmq peer (via pyzmq) for swift-zmtp's interop tests.

Usage: peer.py MODE [ENDPOINT]

Modes that bind print "PORT <n>" on the first line once bound. Every mode prints one line per
received item as "RECV <frame-hex>,<frame-hex>,..." and exits 0 on success; a timeout exits 3.
Each mode is bounded in time (10 s of receive timeout) so a failing test never hangs.
"""
import sys
import threading
import zmq
import zmq.utils.monitor
import zmq.utils.z85

TIMEOUT_MS = 10_000


def hexframes(frames):
    return ",".join(f.hex() for f in frames) if frames else ""


def announce(sock):
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    print(f"PORT {port}", flush=True)


def expected_messages():
    """The messages both directions exchange: multipart, empty frames, a 1.2 MB frame (over 1 MiB)."""
    return [
        [b"log-write", b"conn", b"\x00\x01\x02"],
        [b""],
        [b"x" * 1_200_000],
        [b"last"],
    ]


class ZapAllowList:
    """A ZAP handler like Zeek's: admits CURVE clients whose public key (Z85) is allowed, 400 otherwise."""

    def __init__(self, ctx, allowed):
        self.allowed = set(allowed)
        self.stop = threading.Event()
        self.sock = ctx.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind("inproc://zeromq.zap.01")
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            if not self.sock.poll(50):
                continue
            frames = self.sock.recv_multipart()
            request_id, mechanism, credentials = frames[1], frames[5], frames[6:]
            ok = mechanism == b"CURVE" and len(credentials) == 1 and zmq.utils.z85.encode(credentials[0]).decode() in self.allowed
            self.sock.send_multipart([b"1.0", request_id, b"200" if ok else b"400",
                                      b"OK" if ok else b"Invalid ZAP request", b"0" if ok else b"", b""])
        self.sock.close()

    def close(self):
        self.stop.set()
        self.thread.join()


def curve_server(sock, secret):
    sock.curve_server = True
    sock.curve_secretkey = secret.encode()


def curve_client(sock, server_public, client_public, client_secret):
    sock.curve_serverkey = server_public.encode()
    sock.curve_publickey = client_public.encode()
    sock.curve_secretkey = client_secret.encode()


def print_events_until_outcome(monitor):
    """Prints monitor events; returns True on HANDSHAKE_SUCCEEDED, False on a handshake failure."""
    failures = {zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                zmq.EVENT_HANDSHAKE_FAILED_AUTH}
    while True:
        event = zmq.utils.monitor.recv_monitor_message(monitor)
        print(f"EVENT {event['event']} {event['value']}", flush=True)
        if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            return True
        if event["event"] in failures:
            return False


def main():
    mode = sys.argv[1]
    ctx = zmq.Context()
    zap = None
    try:
        if mode == "pull-bind":
            # We are libzmq's PULL; the Swift side connects and pushes expected_messages().
            sock = ctx.socket(zmq.PULL)
            sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.setsockopt(zmq.LINGER, 0)
            announce(sock)
            for _ in expected_messages():
                frames = sock.recv_multipart()
                print(f"RECV {hexframes(frames)}", flush=True)
        elif mode == "pull-bind-at":
            # libzmq PULL bound on argv[2] (tcp or ipc); receives the expected messages.
            sock = ctx.socket(zmq.PULL)
            sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind(sys.argv[2])
            print("BOUND", flush=True)
            for _ in expected_messages():
                frames = sock.recv_multipart()
                print(f"RECV {hexframes(frames)}", flush=True)
        elif mode == "pub-bind-at":
            # libzmq PUB bound on argv[2]; publishes a non-matching and a "zeek." message every 10 ms
            # until its stdin closes (or 10 s pass).
            sock = ctx.socket(zmq.PUB)
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind(sys.argv[2])
            print("BOUND", flush=True)
            done = threading.Event()
            threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
            tick = 0
            while not done.wait(0.01) and tick < 1000:
                sock.send_multipart([b"other.topic", b"no"])
                sock.send_multipart([b"zeek.tick", str(tick).encode()])
                tick += 1
        elif mode == "pull-bind-ipv6":
            # libzmq PULL on an ephemeral [::1] port; receives the expected messages.
            sock = ctx.socket(zmq.PULL)
            sock.setsockopt(zmq.IPV6, 1)
            sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.setsockopt(zmq.LINGER, 0)
            port = sock.bind_to_random_port("tcp://[::1]")
            print(f"PORT {port}", flush=True)
            for _ in expected_messages():
                frames = sock.recv_multipart()
                print(f"RECV {hexframes(frames)}", flush=True)
        elif mode == "many-pulls":
            # argv[2] libzmq PULLs on ephemeral ports (printed on one line); counts what each receives
            # until argv[3] messages arrived in total, then prints "COUNTS n1 n2 ...".
            n, total = int(sys.argv[2]), int(sys.argv[3])
            socks = [ctx.socket(zmq.PULL) for _ in range(n)]
            ports = [s.bind_to_random_port("tcp://127.0.0.1") for s in socks]
            print("PORTS " + " ".join(map(str, ports)), flush=True)
            poller = zmq.Poller()
            for s in socks:
                poller.register(s, zmq.POLLIN)
            counts = [0] * n
            while sum(counts) < total:
                ready = dict(poller.poll(TIMEOUT_MS))
                if not ready:
                    print("TIMEOUT", flush=True)
                    return 3
                for i, s in enumerate(socks):
                    if s in ready:
                        s.recv_multipart()
                        counts[i] += 1
            print("COUNTS " + " ".join(map(str, counts)), flush=True)
        elif mode == "many-pushes":
            # argv[3] libzmq PUSHes connect to argv[2]; each sends argv[4] messages [peer, seq].
            n, each = int(sys.argv[3]), int(sys.argv[4])
            socks = [ctx.socket(zmq.PUSH) for _ in range(n)]
            for s in socks:
                s.connect(sys.argv[2])
            for seq in range(each):
                for i, s in enumerate(socks):
                    s.send(bytes([i, seq]))
            for s in socks:
                s.close(linger=TIMEOUT_MS)
            print("SENT", flush=True)
        elif mode == "push-connect":
            # We are libzmq's PUSH connecting to a Swift listener.
            sock = ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.SNDTIMEO, TIMEOUT_MS)
            sock.setsockopt(zmq.LINGER, TIMEOUT_MS)
            sock.connect(sys.argv[2])
            for msg in expected_messages():
                sock.send_multipart(msg)
            # Closing with a linger lets libzmq finish the handshake and flush before we exit.
            sock.close(linger=TIMEOUT_MS)
            print("SENT", flush=True)
        elif mode == "xpub-bind":
            # libzmq's XPUB: reports each subscription it receives, then publishes to it.
            sock = ctx.socket(zmq.XPUB)
            sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.setsockopt(zmq.LINGER, 0)
            announce(sock)
            sub = sock.recv()
            print(f"RECV {sub.hex()}", flush=True)
            sock.send_multipart([b"other.topic", b"no"])
            sock.send_multipart([sub[1:] + b"event", b"yes"])
            cancel = sock.recv()
            print(f"RECV {cancel.hex()}", flush=True)
        elif mode == "pub-connect":
            # libzmq's SUB connecting to a Swift publisher: subscribes to "zeek." and waits for data.
            sock = ctx.socket(zmq.SUB)
            sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SUBSCRIBE, b"zeek.")
            sock.connect(sys.argv[2])
            frames = sock.recv_multipart()
            print(f"RECV {hexframes(frames)}", flush=True)
        elif mode == "pub-connect-monitored":
            # libzmq's PUB connecting to a Swift PULL, which must refuse it with ERROR. Prints every
            # monitor event until the connection is gone.
            sock = ctx.socket(zmq.PUB)
            sock.setsockopt(zmq.LINGER, 0)
            monitor = sock.get_monitor_socket()
            monitor.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.connect(sys.argv[2])
            while True:
                event = zmq.utils.monitor.recv_monitor_message(monitor)
                print(f"EVENT {event['event']}", flush=True)
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    break
            print("DONE", flush=True)
        elif mode == "sub-connect-heartbeat":
            # libzmq SUB to a Swift publisher, heartbeating with IVL and TTL (ms; 0 = off). argv:
            # endpoint ivl ttl. Subscribes to "zeek.", prints the first message, then waits for stdin
            # to close (the test stops this process meanwhile to make it silent).
            sock = ctx.socket(zmq.SUB)
            sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.setsockopt(zmq.LINGER, 0)
            if int(sys.argv[3]):
                sock.setsockopt(zmq.HEARTBEAT_IVL, int(sys.argv[3]))
            if int(sys.argv[4]):
                sock.setsockopt(zmq.HEARTBEAT_TTL, int(sys.argv[4]))
            sock.setsockopt(zmq.SUBSCRIBE, b"zeek.")
            sock.connect(sys.argv[2])
            frames = sock.recv_multipart()
            print(f"RECV {hexframes(frames)}", flush=True)
            sys.stdin.read()
        elif mode == "xsub-connect":
            # libzmq XSUB to a Swift XPUB: subscribes to "zeek.", prints the first message it gets,
            # cancels, and waits for stdin to close.
            sock = ctx.socket(zmq.XSUB)
            sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.setsockopt(zmq.LINGER, 1000)
            sock.connect(sys.argv[2])
            sock.send(b"\x01zeek.")
            frames = sock.recv_multipart()
            print(f"RECV {hexframes(frames)}", flush=True)
            sock.send(b"\x00zeek.")
            sys.stdin.read()
        elif mode == "xpub-bind-at":
            # libzmq XPUB bound on argv[2] (verbose): prints each subscription message; publishes
            # "zeek.event" once a "zeek." subscription arrives; stops after a cancellation.
            sock = ctx.socket(zmq.XPUB)
            sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)
            sock.bind(sys.argv[2])
            print("BOUND", flush=True)
            while True:
                sub = sock.recv()
                print(f"RECV {sub.hex()}", flush=True)
                if sub == b"\x01zeek.":
                    sock.send_multipart([b"other.topic", b"no"])
                    sock.send_multipart([b"zeek.event", b"yes"])
                if sub[:1] == b"\x00":
                    break
        elif mode == "curve-client-monitored":
            # libzmq CURVE client of TYPE to a Swift CURVE server; argv: type endpoint server-public
            # client-public client-secret. Prints monitor events until the handshake's outcome.
            sock = ctx.socket(getattr(zmq, sys.argv[2]))
            sock.setsockopt(zmq.LINGER, 0)
            curve_client(sock, sys.argv[4], sys.argv[5], sys.argv[6])
            monitor = sock.get_monitor_socket()
            monitor.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.connect(sys.argv[3])
            print_events_until_outcome(monitor)
        elif mode == "curve-pull-bind":
            # libzmq CURVE server (PULL) with a ZAP allow-list. argv: server-secret allowed-client-public
            # count. Receives `count` expected messages; with count 0 it only waits for stdin to close.
            zap = ZapAllowList(ctx, [sys.argv[3]])
            sock = ctx.socket(zmq.PULL)
            sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.setsockopt(zmq.LINGER, 0)
            curve_server(sock, sys.argv[2])
            announce(sock)
            if sys.argv[4] == "0":
                sys.stdin.readline()
            for _ in range(int(sys.argv[4])):
                frames = sock.recv_multipart()
                print(f"RECV {hexframes(frames)}", flush=True)
        elif mode == "curve-xpub-bind":
            # libzmq CURVE server (XPUB) with ZAP: like xpub-bind. argv: server-secret allowed-client-public
            zap = ZapAllowList(ctx, [sys.argv[3]])
            sock = ctx.socket(zmq.XPUB)
            sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.setsockopt(zmq.LINGER, 0)
            curve_server(sock, sys.argv[2])
            announce(sock)
            sub = sock.recv()
            print(f"RECV {sub.hex()}", flush=True)
            sock.send_multipart([b"other.topic", b"no"])
            sock.send_multipart([sub[1:] + b"event", b"yes"])
            cancel = sock.recv()
            print(f"RECV {cancel.hex()}", flush=True)
        elif mode == "curve-push-connect":
            # libzmq CURVE client (PUSH) to a Swift CURVE server. argv: endpoint server-public
            # client-public client-secret. Prints monitor events; sends the expected messages once
            # the handshake succeeds.
            sock = ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.SNDTIMEO, TIMEOUT_MS)
            curve_client(sock, sys.argv[3], sys.argv[4], sys.argv[5])
            monitor = sock.get_monitor_socket()
            monitor.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.connect(sys.argv[2])
            if print_events_until_outcome(monitor):
                for msg in expected_messages():
                    sock.send_multipart(msg)
                sock.close(linger=TIMEOUT_MS)
                print("SENT", flush=True)
            else:
                sock.close(linger=0)
        elif mode == "curve-sub-connect":
            # libzmq CURVE client (SUB) to a Swift CURVE publisher. argv as curve-push-connect.
            sock = ctx.socket(zmq.SUB)
            sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.setsockopt(zmq.LINGER, 0)
            curve_client(sock, sys.argv[3], sys.argv[4], sys.argv[5])
            sock.setsockopt(zmq.SUBSCRIBE, b"zeek.")
            sock.connect(sys.argv[2])
            frames = sock.recv_multipart()
            print(f"RECV {hexframes(frames)}", flush=True)
        elif mode == "null-push-connect-monitored":
            # libzmq NULL client (PUSH) to a Swift CURVE server: must fail. Prints monitor events.
            sock = ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            monitor = sock.get_monitor_socket()
            monitor.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
            sock.connect(sys.argv[2])
            print_events_until_outcome(monitor)
        elif mode == "curve-public":
            # Prints libzmq's public key for a Z85 secret (checks `zmtp keygen`).
            print(zmq.curve_public(sys.argv[2].encode()).decode(), flush=True)
        else:
            print(f"unknown mode {mode}", file=sys.stderr)
            return 2
    except zmq.Again:
        print("TIMEOUT", flush=True)
        return 3
    finally:
        if zap is not None:
            zap.close()
        ctx.destroy(linger=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
