#!/usr/bin/env python3
"""Checks that a relay node with the Redis engine keeps listening to a channel when a client
unsubscribes and subscribes again quickly (what an SDK does after an unsubscribe with code 2500).

Needs two gateway nodes sharing one Redis (node A, node B: e.g. as relay-fanout-redis.sh starts
them, with a namespace "bench" anyone may subscribe and publish to). Each case uses its own
channel; the subscriber is on node B, the publisher on node A, 5 publications per check.

  after-confirm  subscribe, wait for the reply, then unsubscribe + subscribe in one frame
  separate       subscribe, unsubscribe, subscribe as three frames without waiting
  same-frame     the same three commands in one frame
  control        subscribe only

For each case it then subscribes a second, fresh client on node B and checks that it receives.
Exits 1 when any case lost publications. Usage: relay-redis-resubscribe.py PORT_A PORT_B
(needs Python's websockets package).
"""
import asyncio, json, sys, uuid
import websockets

A, B = sys.argv[1], sys.argv[2]
PATH = "/relay/connection/websocket"


async def lines(ws, count):
    got = []
    while len(got) < count:
        got += (await asyncio.wait_for(ws.recv(), 5)).split("\n")
    return got


async def received(ws, seconds=2):
    count = 0
    try:
        while True:
            for line in (await asyncio.wait_for(ws.recv(), seconds)).split("\n"):
                if json.loads(line).get("push", {}).get("pub") is not None:
                    count += 1
    except asyncio.TimeoutError:
        return count


async def publish(pub, channel, n=5):
    for i in range(n):
        await pub.send(json.dumps({"id": 100 + i, "publish": {"channel": channel, "data": {"n": i}}}))
        await pub.recv()


async def case(name):
    channel = f"bench:resubscribe-{name}-{uuid.uuid4().hex[:8]}"
    sub = await websockets.connect(f"ws://127.0.0.1:{B}{PATH}")
    connect = json.dumps({"id": 1, "connect": {}})
    s = lambda i: json.dumps({"id": i, "subscribe": {"channel": channel}})
    u = lambda i: json.dumps({"id": i, "unsubscribe": {"channel": channel}})
    if name == "after-confirm":
        await sub.send(connect + "\n" + s(2)); await lines(sub, 2)
        await sub.send(u(3) + "\n" + s(4)); await lines(sub, 2)
    elif name == "separate":
        for frame in (connect, s(2), u(3), s(4)):
            await sub.send(frame)
        await lines(sub, 4)
    elif name == "same-frame":
        await sub.send("\n".join((connect, s(2), u(3), s(4)))); await lines(sub, 4)
    else:
        await sub.send(connect + "\n" + s(2)); await lines(sub, 2)
    await asyncio.sleep(0.3)
    pub = await websockets.connect(f"ws://127.0.0.1:{A}{PATH}")
    await pub.send(connect); await pub.recv()
    await publish(pub, channel)
    first = await received(sub)
    other = await websockets.connect(f"ws://127.0.0.1:{B}{PATH}")
    await other.send(connect + "\n" + s(2)); await lines(other, 2)
    await asyncio.sleep(0.3)
    await publish(pub, channel)
    second = await received(other)
    for ws in (sub, other, pub):
        await ws.close()
    print(f"{name:14} the client that resubscribed: {first}/5; a fresh subscriber on the same node: {second}/5")
    return first == 5 and second == 5


async def main():
    results = [await case(name) for name in ("control", "after-confirm", "separate", "same-frame")]
    return 0 if all(results) else 1


sys.exit(asyncio.run(main()))
