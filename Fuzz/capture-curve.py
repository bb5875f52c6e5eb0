#!/usr/bin/env python3
"""Captures a real libzmq 4.3 CURVE session (pyzmq PUSH client -> PULL server) through a recording
relay on loopback, and writes both directions as libsodium-mode seeds (first octet 0x01):
  Corpus/FuzzCurveServer/captured-libzmq-client   what the libzmq client sent
  Corpus/FuzzCurveClient/captured-libzmq-server   what the libzmq server sent
Keys are libzmq's documented test pairs, the ones the fuzz harnesses use. Re-run to refresh."""
import os
import socket
import threading
import time
import zmq

SERVER_PUBLIC = b"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
SERVER_SECRET = b"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
CLIENT_PUBLIC = b"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
CLIENT_SECRET = b"D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
here = os.path.dirname(os.path.abspath(__file__))


def pipe(src, dst, record, stop):
    src.settimeout(0.2)
    while not stop.is_set():
        try:
            data = src.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not data:
            break
        record.extend(data)
        try:
            dst.sendall(data)
        except OSError:
            break


def main():
    ctx = zmq.Context()
    server = ctx.socket(zmq.PULL)
    server.curve_server = True
    server.curve_secretkey = SERVER_SECRET
    server_port = server.bind_to_random_port("tcp://127.0.0.1")

    relay = socket.socket()
    relay.bind(("127.0.0.1", 0))
    relay.listen(1)
    relay_port = relay.getsockname()[1]

    client = ctx.socket(zmq.PUSH)
    client.curve_serverkey = SERVER_PUBLIC
    client.curve_publickey = CLIENT_PUBLIC
    client.curve_secretkey = CLIENT_SECRET
    client.connect(f"tcp://127.0.0.1:{relay_port}")

    downstream, _ = relay.accept()
    upstream = socket.create_connection(("127.0.0.1", server_port))
    to_server, to_client = bytearray(), bytearray()
    stop = threading.Event()
    threads = [threading.Thread(target=pipe, args=(downstream, upstream, to_server, stop)),
               threading.Thread(target=pipe, args=(upstream, downstream, to_client, stop))]
    for t in threads:
        t.start()
    client.send_multipart([b"log-write", b"conn", b"\x00\x01"])
    client.send(b"zeek.event")
    server.setsockopt(zmq.RCVTIMEO, 5000)
    server.recv_multipart()
    server.recv_multipart()
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    for name, data in (("FuzzCurveServer/captured-libzmq-client", to_server), ("FuzzCurveClient/captured-libzmq-server", to_client)):
        with open(os.path.join(here, "Corpus", name), "wb") as f:
            f.write(b"\x01" + bytes(data))
        print(name, len(data), "octets")
    ctx.destroy(linger=0)


if __name__ == "__main__":
    main()
