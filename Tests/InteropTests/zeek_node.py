"""A Zeek cluster node as it looks on the wire (zeek-wire.md §1-§3), for testing a stand-in broker.

Usage: zeek_node.py NAME ROLE BROKER_XPUB BROKER_XSUB [SERVER_PUBLIC CLIENT_PUBLIC CLIENT_SECRET]

It opens Zeek's sockets with Zeek's options: an XSUB connected to the broker's XPUB, an XPUB
(verbose, no-drop, SNDHWM 1000, LINGER 500) connected to the broker's XSUB, both monitored. It
subscribes in Zeek's order (pool, role, node id, node name topics, with trailing dots), runs the
ready-to-publish round trip, and the hello exchange: a subscription to another node's id topic is
answered with a hello event on that topic; a hello received is node_up; the cancellation of a known
node's id topic is node_down. Events are 4 frames: topic, sender node id, serializer, payload. The
payload here is JSON with a test serializer name (a broker does not look inside).

Prints one line per fact: READY, NODE_UP <name>, NODE_DOWN <name>, EVENT <topic> <sender-name> <text>,
FATAL event=0x.... value=... (then exits 1, as Zeek's Reporter::fatal). Commands on stdin:
"publish <topic> <text>", "quit". A broker restart is survived (libzmq reconnects).
"""
import json
import os
import sys
import threading
import zmq
import zmq.utils.monitor

SERIALIZER = "test-json-v1"


def main():
    name, role, broker_xpub, broker_xsub = sys.argv[1:5]
    keys = sys.argv[5:8]
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

    lock = threading.Lock()

    def say(line):
        with lock:
            print(line, flush=True)

    def publish(topic, payload):
        with lock:
            xpub.send_multipart([topic.encode(), node_id.encode(), SERIALIZER.encode(), json.dumps(payload).encode()])

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
                    publish(parts[1], {"event": "test", "args": [name, parts[2]]})
                elif parts[0] == "quit":
                    return 0
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
                            publish(topic, {"event": "Cluster::Backend::ZeroMQ::hello", "args": [name, node_id]})
                    elif notice[:1] == b"\x00" and topic.startswith("zeek.cluster.nodeid."):
                        gone = topic[len("zeek.cluster.nodeid."):-1]
                        if gone in known:
                            say(f"NODE_DOWN {known.pop(gone)}")
                else:
                    frames = xsub.recv_multipart()
                    if len(frames) != 4 or frames[1].decode() == node_id:
                        continue
                    payload = json.loads(frames[3])
                    if payload["event"] == "Cluster::Backend::ZeroMQ::hello":
                        peer_name, peer_id = payload["args"]
                        if peer_id not in known:
                            known[peer_id] = peer_name
                            say(f"NODE_UP {peer_name}")
                    else:
                        say(f"EVENT {frames[0].decode()} {payload['args'][0]} {payload['args'][1]}")
    finally:
        ctx.destroy(linger=0)


if __name__ == "__main__":
    sys.exit(main())
