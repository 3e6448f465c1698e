#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""A hostile pme-worker: speaks the frame protocol (pme-proto(7)) on fd 3,
then breaks it the way its service name says (evil_MODE).  Started by
fake_worker.c in place of the real worker."""
import os
import socket
import struct
import sys
import time

FD = 3
HELLO, GROUP_BEGIN, GROUP_DATA, GROUP_END, LOG = 1, 2, 3, 4, 5
REC_FAMILY, REC_SAMPLE = 1, 2
GAUGE = 2


def frame(kind, payload, version=1):
    return b"PM" + bytes([version, kind]) + struct.pack(">I", len(payload)) + payload


def s(text):
    data = text if isinstance(text, bytes) else text.encode()
    return struct.pack(">I", len(data)) + data


def family(name):
    return bytes([REC_FAMILY]) + s(name) + bytes([GAUGE]) + s("help") + s("")


def sample(labels, value):
    out = bytes([REC_SAMPLE]) + s("") + struct.pack(">H", len(labels))
    for k, v in labels:
        out += s(k) + s(v)
    return out + struct.pack(">d", value)


def begin(group, seq):
    return frame(GROUP_BEGIN, s(group) + struct.pack(">Q", seq))


def end():
    return frame(GROUP_END, bytes([1]) + struct.pack(">dIi", 0.001, 0, 0) + s("") +
                 struct.pack(">idB", 0, -1.0, 0))


def result(group, seq, name, value):
    return begin(group, seq) + frame(GROUP_DATA, family(name) + sample([], value)) + end()


def main():
    service = sys.argv[1]
    mode = service[len("evil_"):]
    sock = socket.socket(fileno=FD)
    # The SERVICE_CONFIG frame from the spawner: read and ignored.
    header = sock.recv(8, socket.MSG_WAITALL)
    length = struct.unpack(">I", header[4:8])[0]
    while length > 0:
        length -= len(sock.recv(min(length, 65536)))
    if mode == "die":
        sys.exit(1)
    sock.sendall(frame(HELLO, struct.pack(">HIII", 1, os.getpid(), os.getuid(), os.getgid()) +
                       s(service)))
    # One good result first: the supervisor must keep it.
    own = service + "_value"
    sock.sendall(result("g", 1, own, 42))
    time.sleep(0.5)
    try:
        if mode == "oversize":
            sock.sendall(b"PM\x01\x03\xff\xff\xff\xff" + b"x" * 1000)
        elif mode == "truncated":
            sock.sendall(frame(GROUP_BEGIN, s("g") + struct.pack(">Q", 2))[:9])
            sys.exit(0)
        elif mode == "garbage":
            sock.sendall(os.urandom(4096))
        elif mode == "flood":
            for seq in range(2, 100000):
                sock.sendall(result("g", seq, own, seq))
        elif mode == "foreign":
            sock.sendall(result("g", 2, "good_total", 1e9))
        elif mode == "othergroup":
            sock.sendall(result("status", 2, own, 1))
        elif mode == "utf8":
            sock.sendall(frame(LOG, bytes([4]) + s(b"bad \xff\xfe utf-8")))
        elif mode == "series":
            # Ten million series, a thousand to a frame.
            sock.sendall(begin("g", 2))
            for chunk in range(10000):
                body = family(own) + b"".join(
                    sample([("i", str(chunk * 1000 + i))], 1) for i in range(1000))
                sock.sendall(frame(GROUP_DATA, body))
        elif mode == "stall":
            # Half a frame, then nothing: the supervisor must not wait.
            sock.sendall(begin("g", 2)[:5])
        elif mode == "version":
            sock.sendall(frame(LOG, bytes([4]) + s("x"), version=9))
        time.sleep(3600)
    except (BrokenPipeError, ConnectionResetError):
        sys.exit(0)


main()
