#!/usr/bin/env python3
"""Writes the seed corpora in Fuzz/Corpus/: small, valid protocol transcripts that let the fuzzer
start deep inside each parser. Re-run after changing it; the files are committed."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def frame(body, more=False, command=False):
    flags = (1 if more else 0) | (4 if command else 0)
    if len(body) > 255:
        return bytes([flags | 2]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


def command(name, data=b""):
    return frame(bytes([len(name)]) + name + data, command=True)


def metadata(props):
    out = b""
    for name, value in props:
        out += bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
    return out


def greeting(minor=1, mechanism=b"NULL", as_server=0, padding=b"\0" * 8):
    return b"\xff" + padding + b"\x7f" + bytes([3, minor]) + mechanism.ljust(20, b"\0") + bytes([as_server]) + b"\0" * 31


def write(target, name, data):
    d = os.path.join(here, "Corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


frames = frame(b"hello", more=True) + frame(b"x" * 300) + command(b"PING", b"\x00\x0a") + frame(b"")
write("FuzzFrameDecoder", "mixed", frames)
write("FuzzFrameDecoder", "long-small", b"\x02" + struct.pack(">Q", 3) + b"abc")
write("FuzzFrameDecoder", "command", command(b"SUBSCRIBE", b"topic"))

for target, peer in (("FuzzHandshakeServer", b"SUB"), ("FuzzHandshakeClient", b"PULL")):
    ready = command(b"READY", metadata([(b"Socket-Type", peer), (b"X-Zeek", b"1")]))
    traffic = command(b"SUBSCRIBE", b"zeek.") + command(b"PING", b"\x00\x1e" + b"ctx") + frame(b"a", more=True) + frame(b"b")
    traffic += frame(b"\x01topic") + command(b"CANCEL", b"zeek.") + command(b"PONG", b"") + command(b"ERROR", b"\x03bye")
    write(target, "session", greeting() + ready + traffic)
    write(target, "session-30", greeting(minor=0) + ready + frame(b"\x01legacy"))
    write(target, "libzmq-padding", greeting(padding=b"\0" * 7 + b"\x01") + ready)
    write(target, "greeting-only", greeting())

write("FuzzMetadata", "two", metadata([(b"Socket-Type", b"PUB"), (b"Identity", b"\x01abc")]))
write("FuzzMetadata", "empty-value", metadata([(b"X-a.b_c+d", b"")]))
write("FuzzCommand", "ready", command(b"READY", metadata([(b"Socket-Type", b"XPUB")]))[2:])
write("FuzzCommand", "error", command(b"ERROR", b"\x05hello")[2:])
write("FuzzCommand", "ping", command(b"PING", b"\x01\x00" + b"0123456789abcdef")[2:])
write("FuzzCommand", "pong", command(b"PONG", b"ctx")[2:])
# CURVE with the harness's insecure crypto (first octet even): boxes are 16 zero octets + plaintext,
# public keys equal secret keys, "random" octets are 0x5A. Server long-term 0x11.., client 0x22..,
# client short-term 0x44.., server short-term (generated) 0x33...
MAC = b"\0" * 16
S, C, C_T, S_T = b"\x11" * 32, b"\x22" * 32, b"\x44" * 32, b"\x33" * 32
def nonce8(n): return struct.pack(">Q", n)
def message(n, payload, flags=0): return frame(bytes([7]) + b"MESSAGE" + nonce8(n) + MAC + bytes([flags]) + payload)

hello = command(b"HELLO", b"\x01\x00" + b"\0" * 72 + C_T + nonce8(1) + MAC + b"\0" * 64)
cookie = b"\x5a" * 16 + MAC + C_T + S_T
vouch = b"\x5a" * 16 + MAC + C_T + S
initiate = command(b"INITIATE", cookie + nonce8(2) + MAC + C + vouch + metadata([(b"Socket-Type", b"SUB")]))
sub_cmd = command(b"SUBSCRIBE", b"zeek.")[2:]
ping_cmd = command(b"PING", b"\x00\x10ctx")[2:]
traffic = message(3, sub_cmd, 2) + message(4, b"a", 1) + message(5, b"b") + message(6, ping_cmd, 2) + message(9, b"\x01legacy")
client_greeting = greeting(mechanism=b"CURVE")
write("FuzzCurveServer", "insecure-session", b"\x00" + client_greeting + hello + initiate + traffic)
write("FuzzCurveServer", "insecure-hello", b"\x00" + client_greeting + hello)
write("FuzzCurveServer", "sodium-greeting", b"\x01" + client_greeting)

welcome = command(b"WELCOME", b"\x5a" * 16 + MAC + b"\x55" * 32 + b"\x66" * 96)
ready = command(b"READY", nonce8(1) + MAC + metadata([(b"Socket-Type", b"XPUB")]))
server_traffic = message(2, b"zeek.event", 1) + message(3, b"payload") + message(4, ping_cmd, 2)
server_greeting = greeting(mechanism=b"CURVE", as_server=1)
write("FuzzCurveClient", "insecure-session", b"\x00" + server_greeting + welcome + ready + server_traffic)
write("FuzzCurveClient", "insecure-error", b"\x00" + server_greeting + command(b"ERROR", b"\x03400"))
write("FuzzCurveClient", "sodium-greeting", b"\x01" + server_greeting)

write("FuzzCurveMessage", "insecure", b"\x00" + b"frame one\xffframe two")
write("FuzzCurveMessage", "sodium", b"\x01" + nonce8(7) + MAC + b"\x00hello")

write("FuzzZAP", "request", b"\xff".join([b"1.0", b"1", b"", b"127.0.0.1", b"", b"CURVE", b"\x22" * 32]))
write("FuzzZAP", "reply", b"\xff".join([b"1.0", b"1", b"200", b"OK", b"0", b""]))

write("FuzzZ85", "helloworld", b"HelloWorld")
write("FuzzZ85", "key", b"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7")
