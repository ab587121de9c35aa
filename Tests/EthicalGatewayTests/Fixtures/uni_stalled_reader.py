#!/usr/bin/env python3
"""A uni-directional relay client that stops reading: for the slow-consumer test of
RelayUniTests.swift. Opens a TLS connection with a 4 KB receive buffer, POSTs the connect
request (HTTP/1.1), reads until the connect push, prints "ready", then reads nothing more until
it is stopped (by its PID).

usage: uni_stalled_reader.py PORT PATH CONNECT_JSON
"""

import socket
import ssl
import sys
import time


def main():
    port, path, body = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(20)
    raw.connect(("127.0.0.1", port))
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    tls = context.wrap_socket(raw, server_hostname="localhost")
    tls.sendall(
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    received = b""
    while b'{"connect":' not in received or not received.rstrip(b"\r\n").endswith(b"}"):
        chunk = tls.recv(4096)
        if not chunk:
            raise SystemExit(f"the stream ended before the connect push: {received[-500:]!r}")
        received += chunk
    print("ready", flush=True)
    time.sleep(120)  # Stalled on purpose: the test stops this process when it has seen enough.


if __name__ == "__main__":
    main()
