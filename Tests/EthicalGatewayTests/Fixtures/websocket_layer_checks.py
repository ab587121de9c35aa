"""Checks of the gateway's WebSocket layer with clients that are not ours.

Each scenario prints one JSON object and exits 0 (a failed expectation is reported in the JSON
and judged by the Swift test):

    websocket_layer_checks.py echo URL            `websockets` (with and without permessage-deflate)
                                                  sends fragmented text and binary to websocket-echo
    websocket_layer_checks.py raw HOST PORT PATH  hand-built frames over plain TCP: a ping between
                                                  fragments, invalid UTF-8 split over fragments,
                                                  an unmasked frame, a fragmented message over the limit
    websocket_layer_checks.py relay URL TOKEN     relay commands as fragmented messages, bad parameter
                                                  types, history since + reverse
    websocket_layer_checks.py extensions URL      offers permessage-deflate; prints what the server answered
"""
import asyncio
import base64
import json
import os
import socket
import ssl
import struct
import sys

import websockets

TIMEOUT = 30


def insecure_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def ssl_for(url):
    return insecure_context() if url.startswith("wss:") else None


async def echo(url):
    result = {}
    for compression in ("deflate", None):
        key = "deflate" if compression else "plain"
        async with websockets.connect(url, compression=compression, ssl=ssl_for(url), open_timeout=TIMEOUT,
                                      max_size=None) as ws:
            result[key + "_extensions"] = ws.response.headers.get("Sec-WebSocket-Extensions")
            await ws.send(["héllo ", "wörld, ", "fragmented"])
            text = await asyncio.wait_for(ws.recv(), TIMEOUT)
            await ws.send([b"\x00\x01", b"", b"\x02\xff"])
            binary = await asyncio.wait_for(ws.recv(), TIMEOUT)
            big = os.urandom(100_000).hex()
            await ws.send([big[:70_000], big[70_000:]])
            echoed_big = await asyncio.wait_for(ws.recv(), TIMEOUT)
            result[key] = {"text": text, "binary": list(binary), "big_ok": echoed_big == big}
    print(json.dumps(result))


def frame(opcode, payload, fin=True, mask=True, rsv=0):
    first = (0x80 if fin else 0) | rsv | opcode
    length = len(payload)
    if length < 126:
        header = bytes([first, (0x80 if mask else 0) | length])
    elif length < 65536:
        header = bytes([first, (0x80 if mask else 0) | 126]) + struct.pack("!H", length)
    else:
        header = bytes([first, (0x80 if mask else 0) | 127]) + struct.pack("!Q", length)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Raw:
    """A WebSocket client built by hand, frame by frame."""

    def __init__(self, host, port, path):
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("closed during the handshake")
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ")[1])

    def read_exact(self, count):
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def next_frame(self):
        """(opcode, payload), or ("eof", b"") when the server closed the socket."""
        try:
            first, second = self.read_exact(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self.read_exact(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self.read_exact(8))[0]
            return first & 0x0F, self.read_exact(length)
        except (EOFError, ConnectionResetError):
            return "eof", b""

    def close_code(self):
        """The code of the server's close frame (skipping other frames), or None."""
        for _ in range(10):
            opcode, payload = self.next_frame()
            if opcode == 8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            if opcode == "eof":
                return None
        return None


def raw(host, port, path):
    result = {}
    client = Raw(host, port, path)
    result["status"] = client.status
    client.sock.sendall(frame(0x1, b"Hel", fin=False) + frame(0x9, b"are you there") + frame(0x0, "lo ✓".encode()))
    result["ping_between_fragments"] = [client.next_frame(), client.next_frame()]
    result["ping_between_fragments"] = [[op, payload.decode()] for op, payload in result["ping_between_fragments"]]
    # Invalid UTF-8 (an overlong "/") in a fragment that is not the last: closed without waiting for the end.
    client = Raw(host, port, path)
    client.sock.sendall(frame(0x1, b"fine so far", fin=False) + frame(0x0, b"\xc0\xaf", fin=False))
    result["invalid_utf8_fragment"] = client.close_code()
    # A multi-byte character split across fragments is fine.
    client = Raw(host, port, path)
    euro = "€".encode()
    client.sock.sendall(frame(0x1, euro[:1], fin=False) + frame(0x0, euro[1:2], fin=False) + frame(0x0, euro[2:]))
    opcode, payload = client.next_frame()
    result["split_character"] = [opcode, payload.decode()]
    client = Raw(host, port, path)
    client.sock.sendall(frame(0x1, b"not masked", mask=False))
    result["unmasked"] = client.close_code()
    client = Raw(host, port, path)
    client.sock.sendall(frame(0x2, b"x" * 600, fin=False) + frame(0x0, b"y" * 600))
    result["over_limit"] = client.close_code()
    client = Raw(host, port, path)
    client.sock.sendall(frame(0x0, b"continuation of nothing"))
    result["orphan_continuation"] = client.close_code()
    client = Raw(host, port, path)
    client.sock.sendall(frame(0x8, struct.pack("!H", 1005)))
    result["bad_close_code"] = client.close_code()
    client = Raw(host, port, path)
    client.sock.sendall(frame(0x8, struct.pack("!H", 4001) + b"bye"))
    result["clean_close"] = client.close_code()
    print(json.dumps(result))


async def relay(url, token):
    result = {}
    for compression in ("deflate", None):
        key = "deflate" if compression else "plain"
        async with websockets.connect(url, compression=compression, ssl=ssl_for(url), open_timeout=TIMEOUT,
                                      subprotocols=["centrifuge-json"]) as ws:
            result[key + "_extensions"] = ws.response.headers.get("Sec-WebSocket-Extensions")
            await ws.send(['{"id":1,', '"connect":{"token":', json.dumps(token), '}}'])
            connect = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            # Two commands in one message, the message in three fragments.
            commands = '{"id":2,"subscribe":{"channel":"chat:frag"}}\n{"id":3,"ping":{}}'
            await ws.send([commands[:10], commands[10:40], commands[40:]])
            replies = {}
            pushes = []

            async def read_until(done):
                while not done():
                    message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                    if "id" in message:
                        replies[message["id"]] = message
                    elif "pub" in message.get("push", {}):
                        pushes.append(message["push"])

            await read_until(lambda: 2 in replies and 3 in replies)
            publish = '{"id":4,"publish":{"channel":"chat:frag","data":{"n":1}}}'
            await ws.send([publish[:5], publish[5:]])
            await read_until(lambda: 4 in replies and pushes)
            result[key] = {
                "connected": "connect" in connect,
                "subscribed": "subscribe" in replies[2],
                "ping": "ping" in replies[3],
                "published": "publish" in replies[4],
                "push_data": pushes[0].get("pub", {}).get("data"),
            }
    async with websockets.connect(url, ssl=ssl_for(url), open_timeout=TIMEOUT) as ws:
        async def call(command):
            await ws.send(json.dumps(command))
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                if message.get("id") == command["id"]:
                    return message

        await call({"id": 1, "connect": {"token": token}})
        errors = {}
        errors["history_limit"] = (await call({"id": 2, "history": {"channel": "chat:h", "limit": "ten"}}))["error"]
        errors["subscribe_offset"] = (await call(
            {"id": 3, "subscribe": {"channel": "chat:h", "recover": True, "offset": "abc", "epoch": "x"}}))["error"]
        errors["subscribe_recover"] = (await call({"id": 4, "subscribe": {"channel": "chat:h", "recover": "yes"}}))["error"]
        errors["history_since_offset"] = (await call(
            {"id": 5, "history": {"channel": "chat:h", "since": {"offset": -1, "epoch": "e"}}}))["error"]
        result["errors"] = errors
        subscribed = await call({"id": 6, "subscribe": {"channel": "chat:h"}})
        result["subscribe_after_errors"] = "subscribe" in subscribed
        for n in range(1, 6):
            await call({"id": 10 + n, "publish": {"channel": "chat:h", "data": {"n": n}}})
        everything = (await call({"id": 20, "history": {"channel": "chat:h", "limit": -1}}))["history"]
        epoch = everything["epoch"]
        before_four = (await call({"id": 21, "history": {"channel": "chat:h", "limit": 10, "reverse": True,
                                                         "since": {"offset": 4, "epoch": epoch}}}))["history"]
        two_before_four = (await call({"id": 22, "history": {"channel": "chat:h", "limit": 2, "reverse": True,
                                                             "since": {"offset": 4, "epoch": epoch}}}))["history"]
        after_two = (await call({"id": 23, "history": {"channel": "chat:h", "limit": 10,
                                                       "since": {"offset": 2, "epoch": epoch}}}))["history"]
        newest = (await call({"id": 24, "history": {"channel": "chat:h", "limit": 2, "reverse": True}}))["history"]
        wrong_epoch = await call({"id": 25, "history": {"channel": "chat:h", "limit": 2, "reverse": True,
                                                        "since": {"offset": 4, "epoch": "other"}}})

        def offsets(page):
            return [publication["offset"] for publication in page.get("publications", [])]

        result["history"] = {
            "reverse_before_4": offsets(before_four),
            "reverse_before_4_limit_2": offsets(two_before_four),
            "after_2": offsets(after_two),
            "newest_2": offsets(newest),
            "reverse_wrong_epoch": wrong_epoch.get("error", {}).get("code"),
        }
    print(json.dumps(result))


async def extensions(url):
    async with websockets.connect(url, compression="deflate", ssl=ssl_for(url), open_timeout=TIMEOUT) as ws:
        answered = ws.response.headers.get("Sec-WebSocket-Extensions")
        await ws.send(["still ", "echoed"])
        reply = await asyncio.wait_for(ws.recv(), TIMEOUT) if "/echo" in url or "/small" in url else None
    print(json.dumps({"extensions": answered, "reply": reply}))


def main():
    scenario, args = sys.argv[1], sys.argv[2:]
    if scenario == "echo":
        asyncio.run(echo(*args))
    elif scenario == "raw":
        raw(*args)
    elif scenario == "relay":
        asyncio.run(relay(*args))
    elif scenario == "extensions":
        asyncio.run(extensions(*args))
    else:
        raise SystemExit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main()
