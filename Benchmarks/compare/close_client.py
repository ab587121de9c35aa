"""Sends N requests, each on a new connection with `Connection: close`, one after another.

Usage: python3 close_client.py PORT N. Exits non-zero unless every answer is a 200.
"""
import socket
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])
request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: close-client\r\nConnection: close\r\n\r\n"
for _ in range(count):
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        if not answer.startswith(b"HTTP/1.1 200 "):
            sys.exit(f"unexpected answer: {answer[:80]!r}")
