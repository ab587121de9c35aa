#!/usr/bin/env python3
"""Drives a page in headless Chromium through the Chrome DevTools Protocol, for the relay's
browser test (RelayBrowserTests.swift), with the independent `websockets` library.

Chromium runs with --remote-debugging-port=0 and --user-data-dir=PROFILE; it writes the port it
picked to PROFILE/DevToolsActivePort. The script finds the first page target and evaluates a
JavaScript expression in it (promises awaited), printing the value as JSON on stdout.

usage: cdp_fixture.py PROFILE evaluate EXPRESSION
       cdp_fixture.py PROFILE screenshot PNG_PATH
           saves a PNG of the page (Page.captureScreenshot) and prints its size in bytes
       cdp_fixture.py PROFILE wait-for EXPRESSION SECONDS
           evaluates EXPRESSION every 100 ms until it is truthy (exceptions count as false);
           exits 3 when SECONDS pass first, saying what the last evaluation gave
"""

import asyncio
import base64
import json
import os
import sys
import time
import urllib.request

import websockets
from websockets.exceptions import WebSocketException


class Failure(Exception):
    pass


def devtools_port(profile, deadline):
    path = os.path.join(profile, "DevToolsActivePort")
    while time.monotonic() < deadline:
        try:
            with open(path) as file:
                first = file.readline().strip()
            if first:
                return int(first)
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise Failure(f"no {path}: Chromium did not start its DevTools server")


def page_target(port, deadline):
    seen = []
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                seen = json.load(response)
            pages = [target for target in seen if target.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        except OSError:
            pass
        time.sleep(0.05)
    raise Failure(f"no page target on DevTools port {port}: {seen}")


async def evaluate(socket, command_id, expression):
    """Returns (ok, value): ok is False when the expression threw."""
    params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
    await socket.send(json.dumps({"id": command_id, "method": "Runtime.evaluate", "params": params}))
    while True:
        message = json.loads(await socket.recv())
        if message.get("id") == command_id:
            break
    if "error" in message:
        raise Failure(f"Runtime.evaluate failed: {message['error']}")
    result = message["result"]
    if "exceptionDetails" in result:
        details = result["exceptionDetails"]
        return False, details.get("exception", {}).get("description") or details.get("text")
    return True, result["result"].get("value")


async def screenshot(socket, path):
    await socket.send(json.dumps({"id": 1, "method": "Page.captureScreenshot", "params": {"format": "png"}}))
    while True:
        message = json.loads(await socket.recv())
        if message.get("id") == 1:
            break
    if "error" in message:
        raise Failure(f"Page.captureScreenshot failed: {message['error']}")
    data = base64.b64decode(message["result"]["data"])
    with open(path, "wb") as file:
        file.write(data)
    return len(data)


async def main(profile, mode, expression, seconds):
    deadline = time.monotonic() + seconds
    port = devtools_port(profile, deadline)
    url = page_target(port, deadline)
    async with websockets.connect(url, max_size=None, open_timeout=10) as socket:
        if mode == "screenshot":
            return await asyncio.wait_for(screenshot(socket, expression), timeout=max(1, deadline - time.monotonic()))
        command_id = 0
        while True:
            command_id += 1
            ok, value = await asyncio.wait_for(
                evaluate(socket, command_id, expression), timeout=max(1, deadline - time.monotonic())
            )
            if mode == "evaluate":
                if not ok:
                    raise Failure(f"the expression threw: {value}")
                return value
            if ok and value:
                return value
            if time.monotonic() >= deadline:
                what = f"threw {value}" if not ok else f"gave {json.dumps(value)}"
                print(f"wait-for: not true within {seconds}s; the last evaluation {what}", file=sys.stderr)
                sys.exit(3)
            await asyncio.sleep(0.1)


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[2] not in ("evaluate", "wait-for", "screenshot"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    seconds = float(sys.argv[4]) if sys.argv[2] == "wait-for" and len(sys.argv) > 4 else 15
    try:
        value = asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], seconds))
    except (Failure, OSError, asyncio.TimeoutError, WebSocketException) as error:
        print(f"cdp_fixture: {error}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(value))
