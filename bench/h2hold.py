#!/usr/bin/env python3
"""Hold many HTTP/2 connections, and optionally many streams, open against
one server: the client side of bench/memory (see docs/BENCHMARKS.md).

    h2hold.py HOST PORT CONNS [--tls] [--authority A] [-H 'name: value']...

Opens CONNS connections one after the other (h2c prior knowledge, or TLS
with ALPN h2 and no certificate check), sends the preface and an empty
SETTINGS, acknowledges the server's SETTINGS and answers PINGs; a
connection counts as ready once the server has sent its SETTINGS and
acknowledged ours. Prints "ready N" when all are (or "failed ..." and
exits 1 if one cannot be opened). Then it reads commands on stdin:

    streams PATH N [FIRST COUNT]
                     open N streams on each connection (or on COUNT of them
                     from index FIRST): GET PATH with the -H headers,
                     END_STREAM at once (prints "sent TOTAL")
    status           prints "status ready=.. open=.. responses=.. resets=.. goaways=.."
EOF on stdin closes everything and exits. Standard library only, one thread
(epoll through selectors); never sends anything but what is listed above.
"""
import argparse
import selectors
import socket
import ssl
import struct
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = struct.pack(">I", 0)[1:] + bytes([4, 0]) + struct.pack(">I", 0)
SETTINGS_ACK = struct.pack(">I", 0)[1:] + bytes([4, 1]) + struct.pack(">I", 0)


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(s):
    b = s.encode()
    return hpack_int(len(b), 7) + b


def header_block(scheme, authority, path, headers):
    # :method GET and :scheme from the static table (indexes 2, 6/7); the
    # rest as literals without indexing (name index or new name)
    out = bytearray([0x82, 0x87 if scheme == "https" else 0x86])
    out += hpack_int(1, 4) + hpack_str(authority)  # :authority
    out += hpack_int(4, 4) + hpack_str(path)  # :path
    for name, value in headers:
        out += b"\x00" + hpack_str(name) + hpack_str(value)
    return bytes(out)


class Conn:
    __slots__ = ("sock", "buf", "out", "got_settings", "acked", "next_id", "open", "dead")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.out = bytearray()
        self.got_settings = False
        self.acked = False
        self.next_id = 1
        self.open = 0
        self.dead = False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("conns", type=int)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--authority", default="127.0.0.1")
    ap.add_argument("-H", dest="headers", action="append", default=[])
    a = ap.parse_args()
    headers = []
    for h in a.headers:
        n, _, v = h.partition(":")
        headers.append((n.strip().lower(), v.strip()))

    sel = selectors.DefaultSelector()
    conns = []
    stats = {"responses": 0, "resets": 0, "goaways": 0}
    ctx = None
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])

    def flush(c):
        try:
            while c.out:
                n = c.sock.send(c.out)
                del c.out[:n]
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            pass
        except OSError:
            kill(c)
            return
        sel.modify(c.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0), c)

    def kill(c):
        if c.dead:
            return
        c.dead = True
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    def frames(c):
        while len(c.buf) >= 9:
            ln = int.from_bytes(c.buf[0:3], "big")
            if len(c.buf) < 9 + ln:
                return
            typ, flags = c.buf[3], c.buf[4]
            sid = int.from_bytes(c.buf[5:9], "big") & 0x7FFFFFFF
            payload = bytes(c.buf[9 : 9 + ln])
            del c.buf[: 9 + ln]
            if typ == 4 and not flags & 1:  # SETTINGS
                c.got_settings = True
                c.out += SETTINGS_ACK
            elif typ == 4:
                c.acked = True
            elif typ == 6 and not flags & 1:  # PING
                c.out += struct.pack(">I", 8)[1:] + bytes([6, 1]) + struct.pack(">I", 0) + payload
            elif typ == 1 and sid:  # HEADERS: a response (or its trailers)
                stats["responses"] += 1
                if flags & 1:
                    c.open -= 1
            elif typ == 0 and flags & 1 and sid:
                c.open -= 1
            elif typ == 3:  # RST_STREAM
                stats["resets"] += 1
                c.open -= 1
            elif typ == 7:  # GOAWAY
                stats["goaways"] += 1

    def on_read(c):
        try:
            while True:
                d = c.sock.recv(65536)
                if not d:
                    kill(c)
                    return
                c.buf += d
                if not a.tls and len(d) < 65536:
                    break
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError:
            kill(c)
            return
        frames(c)
        flush(c)

    def pump(timeout):
        for key, ev in sel.select(timeout):
            c = key.data
            if c is None:
                return "stdin"
            if ev & selectors.EVENT_READ:
                on_read(c)
            if not c.dead and ev & selectors.EVENT_WRITE:
                flush(c)
        return None

    for i in range(a.conns):
        try:
            s = socket.create_connection((a.host, a.port), timeout=30)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ctx:
                s = ctx.wrap_socket(s)
                if s.selected_alpn_protocol() != "h2":
                    raise OSError("ALPN: %r" % s.selected_alpn_protocol())
            s.sendall(PREFACE + SETTINGS)
            s.setblocking(False)
        except OSError as e:
            print("failed after %d connections: %s" % (i, e), flush=True)
            return 1
        c = Conn(s)
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
        pump(0)  # acknowledge SETTINGS while connecting (servers time out)
    while True:
        ready = sum(1 for c in conns if c.got_settings and c.acked and not c.dead)
        dead = sum(1 for c in conns if c.dead)
        if ready + dead == len(conns):
            break
        pump(0.05)
    if dead:
        print("failed: %d of %d connections closed by the server" % (dead, len(conns)), flush=True)
        return 1
    print("ready %d" % ready, flush=True)

    stdin = sys.stdin.buffer
    sel.register(stdin.fileno(), selectors.EVENT_READ, None)
    line = bytearray()
    scheme = "https" if a.tls else "http"
    while True:
        if pump(1.0) != "stdin":
            continue
        d = stdin.raw.read(4096) if hasattr(stdin, "raw") else stdin.read1(4096)
        if not d:
            break
        line += d
        while b"\n" in line:
            cmd, _, rest = bytes(line).partition(b"\n")
            line = bytearray(rest)
            words = cmd.decode().split()
            if not words:
                continue
            if words[0] == "streams":
                path, n = words[1], int(words[2])
                first = int(words[3]) if len(words) > 3 else 0
                count = int(words[4]) if len(words) > 4 else len(conns)
                block = header_block(scheme, a.authority, path, headers)
                total = 0
                for c in conns[first : first + count]:
                    if c.dead:
                        continue
                    for _ in range(n):
                        c.out += struct.pack(">I", len(block))[1:] + bytes([1, 0x5])
                        c.out += struct.pack(">I", c.next_id) + block
                        c.next_id += 2
                        c.open += 1
                        total += 1
                    flush(c)
                print("sent %d" % total, flush=True)
            elif words[0] == "status":
                print(
                    "status ready=%d open=%d responses=%d resets=%d goaways=%d"
                    % (
                        sum(1 for c in conns if not c.dead),
                        sum(c.open for c in conns if not c.dead),
                        stats["responses"],
                        stats["resets"],
                        stats["goaways"],
                    ),
                    flush=True,
                )
    for c in conns:
        kill(c)
    return 0


if __name__ == "__main__":
    sys.exit(main())
