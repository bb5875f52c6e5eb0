"""A libzmq peer (via pyzmq) for swift-zmtp's interop tests.

Usage: peer.py MODE [ENDPOINT]

Modes that bind print "PORT <n>" on the first line once bound. Every mode prints one line per
received item as "RECV <frame-hex>,<frame-hex>,..." and exits 0 on success; a timeout exits 3.
Each mode is bounded in time (10 s of receive timeout) so a failing test never hangs.
"""
import sys
import zmq
import zmq.utils.monitor

TIMEOUT_MS = 10_000


def hexframes(frames):
    return ",".join(f.hex() for f in frames) if frames else ""


def announce(sock):
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    print(f"PORT {port}", flush=True)


def expected_messages():
    """The messages both directions exchange: multipart, empty frames, a 100 kB frame."""
    return [
        [b"log-write", b"conn", b"\x00\x01\x02"],
        [b""],
        [b"x" * 100_000],
        [b"last"],
    ]


def main():
    mode = sys.argv[1]
    ctx = zmq.Context()
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
        else:
            print(f"unknown mode {mode}", file=sys.stderr)
            return 2
    except zmq.Again:
        print("TIMEOUT", flush=True)
        return 3
    finally:
        ctx.destroy(linger=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
