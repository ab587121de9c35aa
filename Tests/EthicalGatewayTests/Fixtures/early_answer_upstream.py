#!/usr/bin/env python3
"""An upstream that answers before the request's body has arrived and streams its response
slowly, for the proxy's timeout tests.

    early_answer_upstream.py

Prints its port, then serves one connection (the first that sends `POST /app/x`): on the request head it sends a 200 with
`Content-Length: 6` and the first 2 bytes at once, reads the rest of the request, and sends the
last 4 bytes 1.5 s after the head. Exits after that connection (or after 600 s).
"""
import signal
import socket
import sys
import time

# Test processes start with SIGTERM blocked (the mask of the runner's thread that spawned
# them): unblocked, so being stopped by PID ends this process at once.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
# Long: the test may wait for a live-gateway slot (a full run holds many) before it sends the request.
server.settimeout(600)
print(server.getsockname()[1], flush=True)
# Serves the first connection whose request is the test's (POST /app/x): a port freed by
# another test's stopped server may be handed to this one, and that test's gateway may still
# try it; such a stray connection is closed and the next one taken.
while True:
    connection, _ = server.accept()
    connection.settimeout(30)
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(4096)
        if not chunk:
            break
        received += chunk
    if received.startswith(b"POST /app/x "):
        break
    connection.close()
started = time.monotonic()
connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab")
try:
    while time.monotonic() - started < 1.5:
        connection.settimeout(max(0.05, 1.5 - (time.monotonic() - started)))
        try:
            if not connection.recv(4096):
                break
        except socket.timeout:
            pass
    connection.sendall(b"cdef")
    time.sleep(0.5)
finally:
    connection.close()
