#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""fake_redis.py SOCK TRIGGER - a Redis that lies, for tests/test_bridge.sh.

Speaks just enough RESP2 on the unix socket SOCK for shm-bridge to arm
(ROLE: master, CLIENT ID, CLIENT TRACKING, SUBSCRIBE) and to answer its
pings, then, whenever the file TRIGGER appears (write it elsewhere and
rename it there), sends the frame it names to every subscribed connection
and removes it: replies a real Redis never
sends on an invalidation connection, to see the bridge fail closed.
"""
import os
import select
import socket
import sys

CH = b"__redis__:invalidate"


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def arr(*items):
    return b"*%d\r\n" % len(items) + b"".join(items)


FRAMES = {
    # invalidation payload of a type Redis never sends
    "int_payload": arr(bulk(b"message"), bulk(CH), b":1\r\n"),
    # an array of keys with a non-string element
    "array_int_elem": arr(bulk(b"message"), bulk(CH), arr(bulk(b"quote:z"), b":5\r\n")),
    "array_nil_elem": arr(bulk(b"message"), bulk(CH), arr(b"$-1\r\n")),
    # the subscription ended: no invalidation will come any more
    "unsubscribe": arr(bulk(b"unsubscribe"), bulk(CH), b":0\r\n"),
    # a message of a shape Redis never sends
    "message4": arr(bulk(b"message"), bulk(CH), bulk(b"quote:z"), bulk(b"x")),
    # a bulk string announcing 2 GiB that never comes
    "huge_bulk": arr(bulk(b"message"), bulk(CH)) + b"$2147483647\r\nabc",
    # an array announcing 2^31 elements
    "huge_array": b"*2147483647\r\n",
    "error": b"-ERR injected\r\n",
}


def parse(buf):
    """One RESP array of bulk strings from BUF: (args, rest) or (None, buf)."""
    if not buf.startswith(b"*"):
        return None, buf
    i = buf.find(b"\r\n")
    if i < 0:
        return None, buf
    n, pos, args = int(buf[1:i]), i + 2, []
    for _ in range(n):
        j = buf.find(b"\r\n", pos)
        if j < 0:
            return None, buf
        ln = int(buf[pos + 1:j])
        if len(buf) < j + 2 + ln + 2:
            return None, buf
        args.append(buf[j + 2:j + 2 + ln])
        pos = j + 2 + ln + 2
    return args, buf[pos:]


def answer(args, subscribed):
    cmd = [a.upper() for a in args[:2]]
    if cmd[0] == b"ROLE":
        return arr(bulk(b"master"), b":0\r\n", b"*0\r\n"), False
    if cmd[0] == b"PING":
        return (arr(bulk(b"pong"), bulk(b"")) if subscribed else b"+PONG\r\n"), False
    if cmd[0] == b"AUTH":
        return b"+OK\r\n", False
    if cmd[:2] == [b"CLIENT", b"ID"]:
        return b":7\r\n", False
    if cmd[:2] == [b"CLIENT", b"TRACKING"]:
        return b"+OK\r\n", False
    if cmd[0] == b"SUBSCRIBE":
        return arr(bulk(b"subscribe"), bulk(args[1]), b":1\r\n"), True
    if cmd[0] in (b"GET",):
        return b"$-1\r\n", False
    if cmd[0] in (b"PTTL",):
        return b":-2\r\n", False
    return b"-ERR unknown\r\n", False


def main():
    path, trigger = sys.argv[1], sys.argv[2]
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(16)
    conns = {}  # socket -> [buffer, subscribed]
    while True:
        r, _, _ = select.select([srv] + list(conns), [], [], 0.02)
        for s in r:
            if s is srv:
                c, _ = srv.accept()
                conns[c] = [b"", False]
                continue
            data = s.recv(65536)
            if not data:
                del conns[s]
                s.close()
                continue
            st = conns[s]
            st[0] += data
            while True:
                args, st[0] = parse(st[0])
                if args is None:
                    break
                out, sub = answer(args, st[1])
                st[1] = st[1] or sub
                s.sendall(out)
        if os.path.exists(trigger):
            with open(trigger) as f:
                name = f.read().strip()
            if name not in FRAMES:
                continue  # being written: read it again next time
            os.unlink(trigger)
            for s, st in list(conns.items()):
                if st[1]:
                    try:
                        s.sendall(FRAMES[name])
                    except OSError:
                        pass


if __name__ == "__main__":
    main()
