"""WebSocket peers for the proxy tests, from the independent `websockets` library.

    websocket_echo.py server          prints its port, then echoes every message ("echo: <text>")
    websocket_echo.py client URL N    sends N messages, prints each reply, closes cleanly
"""
import asyncio
import signal
import sys

import websockets

# Test processes start with SIGTERM blocked (the mask of the runner's thread that spawned
# them): unblocked, so being stopped by PID ends this process at once.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


async def serve() -> None:
    async def echo(connection):
        async for message in connection:
            await connection.send(f"echo: {message}")

    async with websockets.serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print(port, flush=True)
        await asyncio.Future()


async def client(url: str, count: int) -> None:
    async with websockets.connect(url, open_timeout=5, close_timeout=5) as connection:
        for index in range(count):
            await connection.send(f"message {index}")
            reply = await asyncio.wait_for(connection.recv(), timeout=5)
            print(reply, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(serve())
    else:
        asyncio.run(client(sys.argv[2], int(sys.argv[3])))
