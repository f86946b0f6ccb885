#!/usr/bin/env python3
"""Test peer for interception scenarios: a listener that reports where a connection landed, and a client.

serve: listen on TCP ports (IPv4 and IPv6, wildcard, transparent so TPROXY can deliver) and UDP ports; every
  TCP connection gets one line "port=<listener> orig=<original destination> peer=<source>" and is closed; every
  UDP datagram gets the same line back. Prints "ready" once bound. Exits after --seconds.
connect: dial HOST PORT (TCP or --udp), print the line the server sent, exit 0; print "error: <reason>", exit 1.
"""
import argparse
import selectors
import socket
import struct
import sys
import time

SO_ORIGINAL_DST = 80
IP_TRANSPARENT = 19
IPV6_TRANSPARENT = 75


def original_destination(conn, family):
    try:
        if family == socket.AF_INET:
            raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port, = struct.unpack("!H", raw[2:4])
            return "%s:%d" % (socket.inet_ntop(socket.AF_INET, raw[4:8]), port)
        raw = conn.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
        port, = struct.unpack("!H", raw[2:4])
        return "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, raw[8:24]), port)
    except OSError:
        # TPROXY keeps the original destination as the socket's own address.
        return fmt(conn.getsockname(), family)


def fmt(addr, family):
    return ("%s:%d" if family == socket.AF_INET else "[%s]:%d") % (addr[0], addr[1])


def serve(args):
    sel = selectors.DefaultSelector()
    tcp_ports = [int(p) for p in args.tcp.split(",") if p]
    udp_ports = [int(p) for p in args.udp.split(",") if p]
    for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        if family == socket.AF_INET6 and args.no_ipv6:
            continue
        for port in tcp_ports:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_TRANSPARENT, 1)
            else:
                s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
            s.bind((host, port))
            s.listen(64)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, ("tcp", family, port))
        for port in udp_ports:
            s = socket.socket(family, socket.SOCK_DGRAM)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((host, port))
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, ("udp", family, port))
    print("ready", flush=True)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            kind, family, port = key.data
            sock = key.fileobj
            try:
                if kind == "tcp":
                    conn, peer = sock.accept()
                    line = "port=%d orig=%s peer=%s\n" % (port, original_destination(conn, family), fmt(peer, family))
                    conn.setblocking(True)
                    conn.sendall(line.encode())
                    conn.close()
                else:
                    _, peer = sock.recvfrom(2048)
                    line = "port=%d orig=udp peer=%s\n" % (port, fmt(peer, family))
                    sock.sendto(line.encode(), peer)
            except OSError:
                pass


def connect(args):
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    try:
        if args.udp:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.settimeout(args.timeout)
            s.sendto(b"q", (args.host, args.port))
            data, _ = s.recvfrom(2048)
        else:
            s = socket.create_connection((args.host, args.port), timeout=args.timeout)
            s.settimeout(args.timeout)
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(1024)
                if not chunk:
                    break
                data += chunk
        print(data.decode().strip())
        return 0
    except OSError as e:
        print("error: %s" % (e.strerror or type(e).__name__))
        return 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--tcp", default="")
    s.add_argument("--udp", default="")
    s.add_argument("--seconds", type=float, default=60)
    s.add_argument("--no-ipv6", action="store_true")
    c = sub.add_parser("connect")
    c.add_argument("host")
    c.add_argument("port", type=int)
    c.add_argument("--udp", action="store_true")
    c.add_argument("--timeout", type=float, default=3)
    args = p.parse_args()
    sys.exit(serve(args) if args.cmd == "serve" else connect(args))


if __name__ == "__main__":
    main()
