#!/usr/bin/env python3
"""Opens N HTTP/1.1 keep-alive connections to 127.0.0.1:PORT, sends one GET on each and reads
its whole answer, then holds every connection open, idle, until it is killed.

Prints `ready <open connections>` once all are idle (or `failed ...` and exits 1).
Usage: idle_client.py PORT N [PATH]
"""
import asyncio
import signal
import sys


async def one(port: int, path: str, gate: asyncio.Semaphore, held: list) -> None:
    # Opening a bounded number at a time keeps the servers' accept queues from overflowing.
    async with gate:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            raise RuntimeError(f"unexpected answer {status!r}")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            if name.strip().lower() == b"connection" and b"close" in value.lower():
                raise RuntimeError("the server closes the connection after one request")
        await asyncio.wait_for(reader.readexactly(length), 30)
        held.append(writer)


async def main() -> int:
    port, count = int(sys.argv[1]), int(sys.argv[2])
    path = sys.argv[3] if len(sys.argv) > 3 else "/"
    gate = asyncio.Semaphore(200)
    held: list = []
    results = await asyncio.gather(*(one(port, path, gate, held) for _ in range(count)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        print(f"failed {len(errors)} of {count}: {errors[0]!r}", flush=True)
        return 1
    print(f"ready {len(held)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
