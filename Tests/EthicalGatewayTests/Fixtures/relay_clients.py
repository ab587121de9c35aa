"""Drives the Fluxer Relay with independent clients: centrifuge-python (the Centrifugal SDK) over
WebSocket and cent (the Centrifugo server API SDK) over HTTP. Prints one JSON object with what
happened; the Swift test decides pass or fail.

    relay_clients.py roundtrip  WS_URL TOKEN
    relay_clients.py recovery   WS_URL TOKEN API_URL API_KEY USER
    relay_clients.py server-api API_URL API_KEY
    relay_clients.py cross-node WS_URL_A WS_URL_B API_URL_A API_URL_B API_KEY TOKEN
"""

import asyncio
import json
import ssl
import sys

import requests
import urllib3
from cent import (
    BroadcastRequest,
    ChannelsRequest,
    Client as CentClient,
    DisconnectRequest,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    UnsubscribeRequest,
)
from cent.exceptions import CentApiResponseError
from centrifuge import (
    Client,
    ClientEventHandler,
    PublicationContext,
    StreamPosition,
    SubscribedContext,
    SubscriptionEventHandler,
)

urllib3.disable_warnings()
TIMEOUT = 20


def insecure_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def cent_client(api_url, api_key):
    session = requests.Session()
    session.verify = False  # the gateway's development certificate
    session.trust_env = False  # or a CA bundle from the environment would win over verify=False
    return CentClient(api_url, api_key, session=session)


class Collector(SubscriptionEventHandler):
    def __init__(self):
        self.publications = asyncio.Queue()
        self.subscribed = asyncio.Queue()

    async def on_publication(self, ctx: PublicationContext) -> None:
        await self.publications.put(ctx.pub)

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        await self.subscribed.put(ctx)


async def roundtrip(ws_url, token):
    client = Client(ws_url, token=token, ssl_context=insecure_context(), proxy=None, timeout=TIMEOUT)
    events = Collector()
    await client.connect()
    await client.ready(timeout=TIMEOUT)
    sub = client.new_subscription("chat:python", events=events)
    await sub.subscribe()
    await sub.ready(timeout=TIMEOUT)
    await sub.publish({"text": "hello", "big": 12345678901234567890})
    pub = await asyncio.wait_for(events.publications.get(), TIMEOUT)
    presence = await sub.presence()
    stats = await sub.presence_stats()
    history = await sub.history(limit=10)
    rpc_error = None
    try:
        await client.rpc("anything", {})
    except Exception as error:  # the relay answers "method not found"
        rpc_error = getattr(error, "code", str(error))
    await client.disconnect()
    return {
        "data": pub.data,
        "offset": pub.offset,
        "presence_users": sorted(info.user for info in presence.clients.values()),
        "num_clients": stats.num_clients,
        "history_offsets": [p.offset for p in history.publications],
        "epoch": history.epoch,
        "rpc_error": rpc_error,
    }


async def recovery(ws_url, token, api_url, api_key, user):
    api = cent_client(api_url, api_key)
    client = Client(
        ws_url, token=token, ssl_context=insecure_context(), proxy=None,
        min_reconnect_delay=1.0, max_reconnect_delay=1.5, timeout=TIMEOUT,
    )
    events = Collector()
    await client.connect()
    await client.ready(timeout=TIMEOUT)
    sub = client.new_subscription("chat:recovery", events=events)
    await sub.subscribe()
    first = await asyncio.wait_for(events.subscribed.get(), TIMEOUT)
    received = []
    for n in range(1, 4):
        api.publish(PublishRequest(channel="chat:recovery", data={"n": n}))
    for _ in range(3):
        received.append((await asyncio.wait_for(events.publications.get(), TIMEOUT)).data["n"])
    # The server drops the connection with "force reconnect"; publications made while the
    # client is away must come back through recovery, once each, in order.
    api.disconnect(DisconnectRequest(user=user, disconnect={"code": 3011, "reason": "force reconnect"}))
    for n in range(4, 8):
        api.publish(PublishRequest(channel="chat:recovery", data={"n": n}))
    second = await asyncio.wait_for(events.subscribed.get(), TIMEOUT)
    while len(received) < 7:
        received.append((await asyncio.wait_for(events.publications.get(), TIMEOUT)).data["n"])
    api.publish(PublishRequest(channel="chat:recovery", data={"n": 8}))
    received.append((await asyncio.wait_for(events.publications.get(), TIMEOUT)).data["n"])
    await asyncio.sleep(0.3)
    extra = events.publications.qsize()
    await client.disconnect()
    return {
        "received": received,
        "extra": extra,
        "first_recoverable": first.recoverable,
        "second_was_recovering": second.was_recovering,
        "second_recovered": second.recovered,
    }


async def cross_node(ws_a, ws_b, api_a, api_b, api_key, token):
    """Two gateway nodes sharing a Redis engine: publications made through either node reach a
    client on the other in order; a client that moves from A to B mid-stream recovers exactly
    what it missed; presence, presence_stats and idempotency keys agree across nodes."""
    node_a, node_b = cent_client(api_a, api_key), cent_client(api_b, api_key)
    channel = "chat:moving"
    first_client = Client(ws_a, token=token, ssl_context=insecure_context(), proxy=None, timeout=TIMEOUT)
    first_events = Collector()
    await first_client.connect()
    await first_client.ready(timeout=TIMEOUT)
    first_sub = first_client.new_subscription(channel, events=first_events)
    await first_sub.subscribe()
    await asyncio.wait_for(first_events.subscribed.get(), TIMEOUT)
    received = []
    position = None
    for n in range(1, 4):
        node_b.publish(PublishRequest(channel=channel, data={"n": n}))
    for _ in range(3):
        pub = await asyncio.wait_for(first_events.publications.get(), TIMEOUT)
        received.append(pub.data["n"])
        position = pub.offset
    history_a = node_a.history(HistoryRequest(channel=channel, limit=1))
    epoch = history_a.epoch
    # Presence of the first client, seen from both nodes.
    presence_a = node_a.presence(PresenceRequest(channel=channel))
    presence_b = node_b.presence(PresenceRequest(channel=channel))
    stats_a = node_a.presence_stats(PresenceStatsRequest(channel=channel))
    stats_b = node_b.presence_stats(PresenceStatsRequest(channel=channel))
    await first_client.disconnect()
    for n in range(4, 8):
        node_a.publish(PublishRequest(channel=channel, data={"n": n}))

    # The client comes back through node B with the position it had on node A.
    async def saved_state(_channel):
        return StreamPosition(offset=position, epoch=epoch)

    second_client = Client(ws_b, token=token, ssl_context=insecure_context(), proxy=None, timeout=TIMEOUT)
    second_events = Collector()
    await second_client.connect()
    await second_client.ready(timeout=TIMEOUT)
    second_sub = second_client.new_subscription(
        channel, events=second_events, positioned=True, recoverable=True, get_state=saved_state
    )
    await second_sub.subscribe()
    moved = await asyncio.wait_for(second_events.subscribed.get(), TIMEOUT)
    while len(received) < 7:
        received.append((await asyncio.wait_for(second_events.publications.get(), TIMEOUT)).data["n"])
    node_a.publish(PublishRequest(channel=channel, data={"n": 8}))
    received.append((await asyncio.wait_for(second_events.publications.get(), TIMEOUT)).data["n"])
    await asyncio.sleep(0.3)
    extra = second_events.publications.qsize()
    # The same idempotency key through both nodes publishes once.
    once_a = node_a.publish(PublishRequest(channel=channel, data={"n": 9}, idempotency_key="cross-node"))
    once_b = node_b.publish(PublishRequest(channel=channel, data={"n": 9}, idempotency_key="cross-node"))
    received.append((await asyncio.wait_for(second_events.publications.get(), TIMEOUT)).data["n"])
    await asyncio.sleep(0.3)
    extra += second_events.publications.qsize()
    await second_client.disconnect()
    return {
        "received": received,
        "extra": extra,
        "was_recovering": moved.was_recovering,
        "recovered": moved.recovered,
        "presence_a": sorted(info.user for info in presence_a.presence.values()),
        "presence_b": sorted(info.user for info in presence_b.presence.values()),
        "stats_a": [stats_a.num_clients, stats_a.num_users],
        "stats_b": [stats_b.num_clients, stats_b.num_users],
        "idempotent": [[once_a.offset, once_a.epoch], [once_b.offset, once_b.epoch]],
    }


def server_api(api_url, api_key):
    api = cent_client(api_url, api_key)
    first = api.publish(PublishRequest(channel="chat:api", data={"n": 1}, idempotency_key="once"))
    again = api.publish(PublishRequest(channel="chat:api", data={"n": 1}, idempotency_key="once"))
    other = api.publish(PublishRequest(channel="chat:api", data={"n": 2}))
    broadcast = api.broadcast(BroadcastRequest(channels=["chat:api", "chat:api2", "nowhere:x"], data={"b": 1}))
    history = api.history(HistoryRequest(channel="chat:api", limit=10))
    api.history_remove(HistoryRemoveRequest(channel="chat:api2"))
    emptied = api.history(HistoryRequest(channel="chat:api2", limit=10))
    presence = api.presence(PresenceRequest(channel="chat:api"))
    stats = api.presence_stats(PresenceStatsRequest(channel="chat:api"))
    channels = api.channels(ChannelsRequest(pattern="chat:*"))
    info = api.info(InfoRequest())
    api.unsubscribe(UnsubscribeRequest(user="nobody", channel="chat:api"))
    api.disconnect(DisconnectRequest(user="nobody"))
    unknown = None
    try:
        api.publish(PublishRequest(channel="nowhere:x", data={}))
    except CentApiResponseError as error:
        unknown = error.code
    wrong_key = None
    try:
        cent_client(api_url, "wrong-key-0123456789").info(InfoRequest())
    except Exception as error:
        wrong_key = type(error).__name__
    return {
        "first": [first.offset, first.epoch],
        "again": [again.offset, again.epoch],
        "other_offset": other.offset,
        "broadcast": [
            (r.error.code if r.error else None, r.result.offset if r.result else None) for r in broadcast.responses
        ],
        "history": [p.data for p in history.publications],
        "emptied": len(emptied.publications),
        "presence": len(presence.presence),
        "num_clients": stats.num_clients,
        "channels": sorted(channels.channels.keys()),
        "nodes": len(info.nodes),
        "unknown_namespace_code": unknown,
        "wrong_key": wrong_key,
    }


def main():
    scenario, args = sys.argv[1], sys.argv[2:]
    if scenario == "roundtrip":
        result = asyncio.run(roundtrip(*args))
    elif scenario == "recovery":
        result = asyncio.run(recovery(*args))
    elif scenario == "server-api":
        result = server_api(*args)
    elif scenario == "cross-node":
        result = asyncio.run(cross_node(*args))
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
