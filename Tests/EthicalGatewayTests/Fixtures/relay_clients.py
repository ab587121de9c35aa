"""Drives the Fluxer Relay with independent clients: centrifuge-python (the Centrifugal SDK) over
WebSocket and cent (the Centrifugo server API SDK) over HTTP. Prints one JSON object with what
happened; the Swift test decides pass or fail.

    relay_clients.py roundtrip  WS_URL TOKEN
    relay_clients.py recovery   WS_URL TOKEN API_URL API_KEY USER
    relay_clients.py server-api API_URL API_KEY
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
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
