"""A Zeek cluster node as it looks on the wire (zeek-wire.md §1-§3), for testing a stand-in broker.

Usage: zeek_node.py [--log ENDPOINT] NAME ROLE BROKER_XPUB BROKER_XSUB [SERVER_PUBLIC CLIENT_PUBLIC CLIENT_SECRET]

It opens Zeek's sockets with Zeek's options: an XSUB connected to the broker's XPUB, an XPUB
(verbose, no-drop, SNDHWM 1000, LINGER 500) connected to the broker's XSUB, both monitored. It
subscribes in Zeek's order (pool, role, node id, node name topics, with trailing dots), runs the
ready-to-publish round trip, and the hello exchange: a subscription to another node's id topic is
answered with a hello event on that topic; a hello received is node_up; the cancellation of a known
node's id topic is node_down. Events are 4 frames: topic, sender node id, serializer, payload. The
payload here is JSON with a test serializer name (a broker does not look inside).

Prints one line per fact: READY, NODE_UP <name>, NODE_DOWN <name>, EVENT <topic> <sender-name> <text>,
FATAL event=0x.... value=... (then exits 1, as Zeek's Reporter::fatal). Commands on stdin:
"publish <topic> <text>", "quit", and with --log (a PUSH to a logger, Zeek's log_push options):
"log <path> <count> <batch-size>" sends <count> conn-like records in zeek-bin-serializer batches and
prints "LOGGED <count>"; "log-dns <count>" the same with another schema, to path dns; "garbage" sends
malformed log messages (wrong frame count, wrong serializer, truncated and lying batches).
A broker restart is survived (libzmq reconnects).
"""
import struct
import os
import sys
import threading
import zmq
import zmq.utils.monitor

SERIALIZER = "broker-bin-v1"


def varbyte(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def broker_event(name, args):
    """[count 1, count 1, [name, [args...]]] in broker-bin-v1 (8.0.1+: no metadata element)."""
    def string(text):
        data = text.encode()
        return b"\x05" + varbyte(len(data)) + data

    def vector(items):
        return b"\x0e" + varbyte(len(items)) + b"".join(items)

    count1 = b"\x02" + struct.pack(">Q", 1)
    return vector([count1, count1, vector([string(name), vector([string(a) for a in args])])])


def broker_decode(data):
    """The event name and string arguments of a broker-bin-v1 event (enough for this node)."""
    position = 0

    def read_varbyte():
        nonlocal position
        value, shift = 0, 0
        while True:
            byte = data[position]
            position += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    def value():
        nonlocal position
        tag = data[position]
        position += 1
        if tag == 2:
            position += 8
            return None
        if tag == 5:
            length = read_varbyte()
            position += length
            return data[position - length:position].decode()
        if tag == 14:
            return [value() for _ in range(read_varbyte())]
        raise ValueError(f"unexpected broker tag {tag}")

    outer = value()
    return outer[2][0], outer[2][1]


def s_str(text):
    data = text if isinstance(text, bytes) else text.encode()
    return struct.pack(">I", len(data)) + data


def s_value(tag, payload):
    """A present value of TypeTag `tag`; payload None means unset."""
    if payload is None:
        return struct.pack(">iiB", tag, 0, 0)
    return struct.pack(">iiB", tag, 0, 1) + payload


CONN_FIELDS = [("ts", 5, 0, False), ("uid", 7, 0, False), ("id.orig_h", 11, 0, False), ("id.orig_p", 10, 0, False),
               ("proto", 9, 0, False), ("service", 7, 0, True), ("tags", 14, 7, False), ("n", 3, 0, False)]
DNS_FIELDS = [("ts", 5, 0, False), ("query", 7, 0, False), ("answers", 19, 7, True)]


def conn_record(node, i):
    tags = [b"a", b"b"] if i % 3 == 0 else []
    return b"".join([
        s_value(5, struct.pack(">d", 1700000000.0 + i * 0.5)),
        s_value(7, s_str(f"C{node}{i}")),
        s_value(11, bytes([4, 10, 0, 0, i % 250])),
        s_value(10, struct.pack(">QI", 1024 + i, 1)),
        s_value(9, s_str("tcp")),
        s_value(7, None if i % 2 else s_str("http")),
        s_value(14, struct.pack(">q", len(tags)) + b"".join(s_value(7, s_str(t)) for t in tags)),
        s_value(3, struct.pack(">Q", i)),
    ])


def dns_record(node, i):
    answers = [f"10.1.0.{i % 250}".encode()]
    return b"".join([
        s_value(5, struct.pack(">d", 1700000000.0 + i)),
        s_value(7, s_str(f"q{i}.{node}.example")),
        s_value(19, struct.pack(">q", len(answers)) + b"".join(s_value(7, s_str(a)) for a in answers)),
    ])


def log_batch(path, fields, records):
    header = s_str(path.capitalize() + "::LOG") + s_str("Log::WRITER_ASCII") + s_str("default") + s_str(path)
    header += struct.pack(">I", len(fields))
    for field_name, tag, subtag, optional in fields:
        header += b"\x00" + s_str(field_name) + struct.pack(">iiB", tag, subtag, 1 if optional else 0)
    return header + struct.pack(">I", len(records)) + b"".join(records)


def main():
    args = sys.argv[1:]
    log_endpoint = None
    if args[:1] == ["--log"]:
        log_endpoint, args = args[1], args[2:]
    name, role, broker_xpub, broker_xsub = args[0:4]
    keys = args[4:7]
    node_id = f"zeromq_{name}_testhost_{os.getpid()}_Ntest"
    ctx = zmq.Context()
    xsub = ctx.socket(zmq.XSUB)
    xpub = ctx.socket(zmq.XPUB)
    xpub.setsockopt(zmq.LINGER, 500)
    xpub.setsockopt(zmq.XPUB_NODROP, 1)
    xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
    xpub.setsockopt(zmq.SNDHWM, 1000)
    xsub.setsockopt(zmq.RCVHWM, 1000)
    if keys:
        for sock in (xsub, xpub):
            sock.curve_serverkey = keys[0].encode()
            sock.curve_publickey = keys[1].encode()
            sock.curve_secretkey = keys[2].encode()
    monitors = [xsub.get_monitor_socket(), xpub.get_monitor_socket()]
    xsub.connect(broker_xpub)
    xpub.connect(broker_xsub)
    log_push = None
    if log_endpoint:
        log_push = ctx.socket(zmq.PUSH)
        log_push.setsockopt(zmq.SNDHWM, 1000)
        log_push.setsockopt(zmq.LINGER, 500)
        log_push.setsockopt(zmq.IMMEDIATE, 0)
        if keys:
            log_push.curve_serverkey = keys[0].encode()
            log_push.curve_publickey = keys[1].encode()
            log_push.curve_secretkey = keys[2].encode()
        log_push.connect(log_endpoint)

    def send_log(frames):
        # Zeek sends with DONTWAIT and drops on EAGAIN; this test node waits instead, so that the
        # test can count on every record.
        log_push.send_multipart(frames)

    def log_records(path, fields, make, count, batch_size):
        sent = 0
        while sent < count:
            size = min(batch_size, count - sent)
            batch = log_batch(path, fields, [make(name, sent + i) for i in range(size)])
            send_log([b"log-write", node_id.encode(), b"zeek-bin-serializer", batch])
            sent += size

    lock = threading.Lock()

    def say(line):
        with lock:
            print(line, flush=True)

    def publish(topic, event, args):
        with lock:
            xpub.send_multipart([topic.encode(), node_id.encode(), SERIALIZER.encode(), broker_event(event, args)])

    def subscribe(topic, on=True):
        with lock:
            xsub.send((b"\x01" if on else b"\x00") + topic.encode())

    # Zeek's subscription order (setup-subscriptions.zeek).
    for topic in [f"zeek.cluster.pool.{role}", f"zeek.cluster.{role}", f"zeek.cluster.nodeid.{node_id}.",
                  f"zeek.cluster.node.{name}."]:
        subscribe(topic)
    ready_topic = f"zeek.zeromq.internal.{node_id}.1."
    subscribe(ready_topic)

    known = {}  # node id -> name
    poller = zmq.Poller()
    poller.register(xsub, zmq.POLLIN)
    poller.register(xpub, zmq.POLLIN)
    for monitor in monitors:
        poller.register(monitor, zmq.POLLIN)
    stdin_lines = []
    stdin_done = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            with lock:
                stdin_lines.append(line.strip())
        stdin_done.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    status = 0
    try:
        while True:
            with lock:
                commands, stdin_lines[:] = list(stdin_lines), []
            for command in commands:
                parts = command.split(" ", 2)
                if parts[0] == "publish" and len(parts) == 3:
                    publish(parts[1], "Test::event", [name, parts[2]])
                elif parts[0] == "quit":
                    return 0
                elif parts[0] == "log" and log_push is not None:
                    path, count, batch_size = command.split(" ")[1:4]
                    log_records(path, CONN_FIELDS, conn_record, int(count), int(batch_size))
                    say(f"LOGGED {count}")
                elif parts[0] == "log-dns" and log_push is not None:
                    count = int(parts[1])
                    log_records("dns", DNS_FIELDS, dns_record, count, 100)
                    say(f"LOGGED {count}")
                elif parts[0] == "log-flood" and log_push is not None:
                    # One 1000-record conn batch, encoded once, sent <batches> times (a throughput test).
                    batch = log_batch("conn", CONN_FIELDS, [conn_record(name, i) for i in range(1000)])
                    for _ in range(int(parts[1])):
                        send_log([b"log-write", node_id.encode(), b"zeek-bin-serializer", batch])
                    say(f"LOGGED {int(parts[1]) * 1000}")
                elif parts[0] == "garbage" and log_push is not None:
                    good = log_batch("conn", CONN_FIELDS, [conn_record(name, 0)])
                    send_log([b"log-write", node_id.encode(), b"zeek-bin-serializer"])
                    send_log([b"log-write", node_id.encode(), b"broker-bin-v1", good])
                    send_log([b"log-write", node_id.encode(), b"zeek-bin-serializer", good[:-3]])
                    lying = bytearray(good)
                    struct.pack_into(">I", lying, len(log_batch("conn", CONN_FIELDS, [])) - 4, 0x7FFFFFFF)
                    send_log([b"log-write", node_id.encode(), b"zeek-bin-serializer", bytes(lying)])
                    send_log([b"log-write", node_id.encode(), b"zeek-bin-serializer",
                              log_batch("../escape", CONN_FIELDS, [conn_record(name, 0)])])
                    say("GARBAGE 5")
            if stdin_done.is_set() and not commands:
                return 0
            for sock, _ in poller.poll(50):
                if sock in monitors:
                    event = zmq.utils.monitor.recv_monitor_message(sock)
                    if event["event"] in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_AUTH):
                        say(f"FATAL event=0x{event['event']:x} value={event['value']}")
                        status = 1
                        return status
                elif sock is xpub:
                    # Subscriptions seen by our XPUB (relayed by the broker).
                    notice = xpub.recv()
                    topic = notice[1:].decode()
                    if notice[:1] == b"\x01":
                        if topic == ready_topic:
                            say("READY")
                            subscribe(ready_topic, on=False)
                        elif topic.startswith("zeek.cluster.nodeid.") and topic != f"zeek.cluster.nodeid.{node_id}.":
                            publish(topic, "Cluster::Backend::ZeroMQ::hello", [name, node_id])
                    elif notice[:1] == b"\x00" and topic.startswith("zeek.cluster.nodeid."):
                        gone = topic[len("zeek.cluster.nodeid."):-1]
                        if gone in known:
                            say(f"NODE_DOWN {known.pop(gone)}")
                else:
                    frames = xsub.recv_multipart()
                    if len(frames) != 4 or frames[1].decode() == node_id:
                        continue
                    event, args = broker_decode(frames[3])
                    if event == "Cluster::Backend::ZeroMQ::hello":
                        peer_name, peer_id = args
                        if peer_id not in known:
                            known[peer_id] = peer_name
                            say(f"NODE_UP {peer_name}")
                    else:
                        say(f"EVENT {frames[0].decode()} {args[0]} {args[1]}")
    finally:
        # Log batches already handed to libzmq are delivered before exiting (a Zeek node lingers
        # 500 ms; a test node waits longer so that the tests can count every record).
        if log_push is not None:
            log_push.close(linger=5000)
        ctx.destroy(linger=0)


if __name__ == "__main__":
    sys.exit(main())
