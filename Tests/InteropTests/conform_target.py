#!/usr/bin/env python3
"""A libzmq peer for `zmtp conform` to test: binds one socket and keeps it busy.

    conform_target.py TYPE [SERVER_SECRET_Z85]

Binds TYPE (PUB, SUB, XPUB, XSUB, PUSH or PULL) on tcp://127.0.0.1:* (a CURVE server when a secret
is given), prints "PORT n", and until stdin closes:
- PUB/XPUB publish conform.A.<n>, conform.B.<n> and other.<n> every 2 ms (XPUB drains its
  subscription notifications);
- PUSH sends conform.<n> every 2 ms without blocking;
- SUB subscribes to "conform." (libzmq replays it to each new connection as a SUBSCRIBE command);
- XSUB sends the subscription message \\x01conform. every 50 ms (libzmq sends these as ZMTP 3.0
  messages even on 3.1 connections, libzmq-behaviours.md §6);
- PULL and SUB/XSUB drain what arrives.
"""
import sys
import threading
import time

import zmq

kind = sys.argv[1].upper()
context = zmq.Context()
socket = context.socket(getattr(zmq, kind))
socket.setsockopt(zmq.LINGER, 0)
socket.setsockopt(zmq.SNDHWM, 100)
if len(sys.argv) > 2:
    socket.setsockopt(zmq.CURVE_SERVER, 1)
    socket.setsockopt(zmq.CURVE_SECRETKEY, sys.argv[2].encode())
if kind == "SUB":
    socket.setsockopt(zmq.SUBSCRIBE, b"conform.")
port = socket.bind_to_random_port("tcp://127.0.0.1")
print(f"PORT {port}", flush=True)

done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()

n = 0
while not done.is_set():
    n += 1
    try:
        if kind in ("PUB", "XPUB"):
            for topic in (b"conform.A.", b"conform.B.", b"other."):
                socket.send(topic + str(n).encode(), zmq.NOBLOCK)
        elif kind == "PUSH":
            socket.send(b"conform." + str(n).encode(), zmq.NOBLOCK)
        elif kind == "XSUB" and n % 25 == 0:
            socket.send(b"\x01conform.", zmq.NOBLOCK)
    except zmq.Again:
        pass
    if kind in ("XPUB", "SUB", "XSUB", "PULL"):
        try:
            while True:
                socket.recv(zmq.NOBLOCK)
        except zmq.Again:
            pass
    time.sleep(0.002)
context.destroy(linger=0)
