"""Drives the Fluxer Relay with independent clients: centrifuge-python (the Centrifugal SDK) over
WebSocket and cent (the Centrifugo server API SDK) over HTTP. Prints one JSON object with what
happened; the Swift test decides pass or fail.

    relay_clients.py [--protobuf] roundtrip  WS_URL TOKEN
    relay_clients.py [--protobuf] recovery   WS_URL TOKEN API_URL API_KEY USER
    relay_clients.py [--protobuf] server-side WS_URL TOKEN API_URL API_KEY USER CHANNEL
    relay_clients.py [--protobuf] refresh    WS_URL SHORT_TOKEN LONG_TOKEN SHORT_TTL GRACE
    relay_clients.py server-api API_URL API_KEY
    relay_clients.py [--protobuf] cross-node WS_URL_A WS_URL_B API_URL_A API_URL_B API_KEY TOKEN
    relay_clients.py mixed      WS_URL TOKEN API_URL API_KEY
    relay_clients.py raw-protobuf WS_URL TOKEN
    relay_clients.py burst      WS_URL TOKEN CHANNEL COUNT

--protobuf: the centrifuge-python clients use the Protobuf format (use_protobuf=True: the
centrifuge-protobuf subprotocol, binary frames, payloads as bytes); without it, JSON.
"""

import asyncio
import json
import ssl
import sys
import time

import requests
import urllib3
import websockets
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
    SubscribeRequest,
    UnsubscribeRequest,
)
from cent.exceptions import CentApiResponseError
from centrifuge import (
    Client,
    ClientEventHandler,
    ConnectingContext,
    DisconnectedContext,
    JoinContext,
    PublicationContext,
    ServerPublicationContext,
    ServerSubscribedContext,
    StreamPosition,
    SubscribedContext,
    SubscriptionEventHandler,
)
from centrifuge.exceptions import ReplyError
from centrifuge.protocol import client_pb2

urllib3.disable_warnings()
TIMEOUT = 20
PROTOBUF = False  # set by --protobuf


def new_client(ws_url, token, protobuf=None, **options):
    """A centrifuge-python client in the format the run asked for (or `protobuf` when given)."""
    return Client(
        ws_url, token=token, ssl_context=insecure_context(), proxy=None, timeout=TIMEOUT,
        use_protobuf=PROTOBUF if protobuf is None else protobuf, **options,
    )


def payload(value, protobuf=None):
    """What the SDK takes as `data`: a JSON-serializable value, or its JSON bytes in Protobuf."""
    return json.dumps(value).encode() if (PROTOBUF if protobuf is None else protobuf) else value


def decoded(data):
    """A publication's data: JSON subscribers get it decoded, Protobuf ones get the bytes."""
    return json.loads(data) if isinstance(data, (bytes, bytearray)) else data


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
        self.joins = asyncio.Queue()

    async def on_join(self, ctx: JoinContext) -> None:
        await self.joins.put(ctx.info)

    async def on_publication(self, ctx: PublicationContext) -> None:
        await self.publications.put(ctx.pub)

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        await self.subscribed.put(ctx)


async def roundtrip(ws_url, token):
    client = new_client(ws_url, token)
    events = Collector()
    await client.connect()
    await client.ready(timeout=TIMEOUT)
    sub = client.new_subscription("chat:python", events=events)
    await sub.subscribe()
    await sub.ready(timeout=TIMEOUT)
    await sub.publish(payload({"text": "hello", "big": 12345678901234567890}))
    pub = await asyncio.wait_for(events.publications.get(), TIMEOUT)
    presence = await sub.presence()
    stats = await sub.presence_stats()
    history = await sub.history(limit=10)
    rpc_error = None
    try:
        await client.rpc("anything", payload({}))
    except Exception as error:  # the relay answers "method not found"
        rpc_error = getattr(error, "code", str(error))
    await client.disconnect()
    return {
        "data": decoded(pub.data),
        "offset": pub.offset,
        "presence_users": sorted(info.user for info in presence.clients.values()),
        "num_clients": stats.num_clients,
        "history_offsets": [p.offset for p in history.publications],
        "epoch": history.epoch,
        "rpc_error": rpc_error,
    }


async def recovery(ws_url, token, api_url, api_key, user):
    api = cent_client(api_url, api_key)
    client = new_client(ws_url, token, min_reconnect_delay=1.0, max_reconnect_delay=1.5)
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
        received.append(decoded((await asyncio.wait_for(events.publications.get(), TIMEOUT)).data)["n"])
    # The server drops the connection with "force reconnect"; publications made while the
    # client is away must come back through recovery, once each, in order.
    api.disconnect(DisconnectRequest(user=user, disconnect={"code": 3011, "reason": "force reconnect"}))
    for n in range(4, 8):
        api.publish(PublishRequest(channel="chat:recovery", data={"n": n}))
    second = await asyncio.wait_for(events.subscribed.get(), TIMEOUT)
    while len(received) < 7:
        received.append(decoded((await asyncio.wait_for(events.publications.get(), TIMEOUT)).data)["n"])
    api.publish(PublishRequest(channel="chat:recovery", data={"n": 8}))
    received.append(decoded((await asyncio.wait_for(events.publications.get(), TIMEOUT)).data)["n"])
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


class ServerSideCollector(ClientEventHandler):
    """The client-level events of server-side subscriptions (the token's channels claim)."""

    def __init__(self):
        self.publications = asyncio.Queue()
        self.subscribed = asyncio.Queue()

    async def on_subscribed(self, ctx: ServerSubscribedContext) -> None:
        await self.subscribed.put(ctx)

    async def on_publication(self, ctx: ServerPublicationContext) -> None:
        await self.publications.put(ctx)


async def server_side(ws_url, token, api_url, api_key, user, channel):
    """A connection subscribed by the server from its token's channels claim: its publications
    arrive without a subscribe, and after a forced reconnect the SDK sends the connect's `subs`
    with its position and gets what it missed, once each, in order."""
    api = cent_client(api_url, api_key)
    events = ServerSideCollector()
    client = new_client(ws_url, token, events=events, min_reconnect_delay=1.0, max_reconnect_delay=1.5)
    await client.connect()
    await client.ready(timeout=TIMEOUT)
    first = await asyncio.wait_for(events.subscribed.get(), TIMEOUT)
    received = []
    channels = set()
    for n in range(1, 4):
        api.publish(PublishRequest(channel=channel, data={"n": n}))
    for _ in range(3):
        ctx = await asyncio.wait_for(events.publications.get(), TIMEOUT)
        channels.add(ctx.channel)
        received.append(decoded(ctx.pub.data)["n"])
    api.disconnect(DisconnectRequest(user=user, disconnect={"code": 3011, "reason": "force reconnect"}))
    for n in range(4, 7):
        api.publish(PublishRequest(channel=channel, data={"n": n}))
    second = await asyncio.wait_for(events.subscribed.get(), TIMEOUT)
    while len(received) < 6:
        ctx = await asyncio.wait_for(events.publications.get(), TIMEOUT)
        channels.add(ctx.channel)
        received.append(decoded(ctx.pub.data)["n"])
    api.publish(PublishRequest(channel=channel, data={"n": 7}))
    received.append(decoded((await asyncio.wait_for(events.publications.get(), TIMEOUT)).pub.data)["n"])
    await asyncio.sleep(0.3)
    extra = events.publications.qsize()
    # The server API's subscribe adds one more while connected: a subscribe push, then its pushes.
    api.subscribe(SubscribeRequest(user=user, channel="chat:added"))
    added = await asyncio.wait_for(events.subscribed.get(), TIMEOUT)
    api.publish(PublishRequest(channel="chat:added", data={"n": 100}))
    added_pub = await asyncio.wait_for(events.publications.get(), TIMEOUT)
    await client.disconnect()
    return {
        "first_channel": first.channel,
        "first_recoverable": first.recoverable,
        "first_offset": first.stream_position.offset if first.stream_position else None,
        "second_was_recovering": second.was_recovering,
        "second_recovered": second.recovered,
        "received": received,
        "channels": sorted(channels),
        "extra": extra,
        "added_channel": added.channel,
        "added_recoverable": added.recoverable,
        "added_publication": [added_pub.channel, decoded(added_pub.pub.data)["n"]],
    }


async def cross_node(ws_a, ws_b, api_a, api_b, api_key, token):
    """Two gateway nodes sharing a Redis engine: publications made through either node reach a
    client on the other in order; a client that moves from A to B mid-stream recovers exactly
    what it missed; presence, presence_stats and idempotency keys agree across nodes."""
    node_a, node_b = cent_client(api_a, api_key), cent_client(api_b, api_key)
    channel = "chat:moving"
    first_client = new_client(ws_a, token)
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
        received.append(decoded(pub.data)["n"])
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

    second_client = new_client(ws_b, token)
    second_events = Collector()
    await second_client.connect()
    await second_client.ready(timeout=TIMEOUT)
    second_sub = second_client.new_subscription(
        channel, events=second_events, positioned=True, recoverable=True, get_state=saved_state
    )
    await second_sub.subscribe()
    moved = await asyncio.wait_for(second_events.subscribed.get(), TIMEOUT)
    while len(received) < 7:
        received.append(decoded((await asyncio.wait_for(second_events.publications.get(), TIMEOUT)).data)["n"])
    node_a.publish(PublishRequest(channel=channel, data={"n": 8}))
    received.append(decoded((await asyncio.wait_for(second_events.publications.get(), TIMEOUT)).data)["n"])
    await asyncio.sleep(0.3)
    extra = second_events.publications.qsize()
    # The same idempotency key through both nodes publishes once.
    once_a = node_a.publish(PublishRequest(channel=channel, data={"n": 9}, idempotency_key="cross-node"))
    once_b = node_b.publish(PublishRequest(channel=channel, data={"n": 9}, idempotency_key="cross-node"))
    received.append(decoded((await asyncio.wait_for(second_events.publications.get(), TIMEOUT)).data)["n"])
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


class Disconnects(ClientEventHandler):
    """Every move to connecting (the first one: 0, connect called) and to disconnected."""

    def __init__(self):
        self.codes = []

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        self.codes.append(ctx.code)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self.codes.append(ctx.code)


async def refresh(ws_url, short_token, long_token, short_ttl, grace):
    """A client whose connection token expires refreshes it in band (get_token) and stays
    connected past the first token's end."""
    refreshed = asyncio.Event()

    async def get_token():
        refreshed.set()
        return long_token

    events = Disconnects()
    client = new_client(ws_url, short_token, get_token=get_token, events=events)
    started = time.monotonic()
    await client.connect()
    await client.ready(timeout=TIMEOUT)
    await asyncio.wait_for(refreshed.wait(), float(short_ttl) + TIMEOUT)
    refreshed_after = time.monotonic() - started
    # Nothing to poll for: the first token's connection would end at its TTL plus the grace.
    await asyncio.sleep(max(0.0, float(short_ttl) + float(grace) + 1.5 - (time.monotonic() - started)))
    sub = client.new_subscription("chat:refresh")
    await sub.subscribe()
    await sub.ready(timeout=TIMEOUT)
    stats = await sub.presence_stats()
    state = client.state.value
    codes = list(events.codes)
    await client.disconnect()
    return {
        "refreshed_after": refreshed_after,
        "state_after_expiry": state,
        "num_clients": stats.num_clients,
        "state_changes": codes,
    }


async def mixed(ws_url, token, api_url, api_key):
    """A Protobuf and a JSON subscriber on one channel: the Protobuf one sees the JSON one join;
    publications over the HTTP API, from the Protobuf client and from the JSON client reach both;
    a Protobuf publication whose bytes are not JSON is refused (107) and reaches neither."""
    api = cent_client(api_url, api_key)
    channel = "chat:mixed"
    clients, subs, events = {}, {}, {}
    for name, protobuf in (("protobuf", True), ("json", False)):
        clients[name] = new_client(ws_url, token, protobuf=protobuf)
        events[name] = Collector()
        await clients[name].connect()
        await clients[name].ready(timeout=TIMEOUT)
        subs[name] = clients[name].new_subscription(channel, events=events[name])
        await subs[name].subscribe()
        await subs[name].ready(timeout=TIMEOUT)
    join = await asyncio.wait_for(events["protobuf"].joins.get(), TIMEOUT)
    api.publish(PublishRequest(channel=channel, data={"n": 1, "from": "api"}))
    await subs["protobuf"].publish(payload({"n": 2, "from": "protobuf"}, protobuf=True))
    await subs["json"].publish(payload({"n": 3, "from": "json"}, protobuf=False))
    refused = None
    try:
        await subs["protobuf"].publish(b"\x00\xffnot json")
    except ReplyError as error:
        refused = error.code
    api.publish(PublishRequest(channel=channel, data={"n": 4, "from": "api"}))
    received, raw = {}, {}
    for name in events:
        received[name], raw[name] = [], []
        while len(received[name]) < 4:
            pub = await asyncio.wait_for(events[name].publications.get(), TIMEOUT)
            raw[name].append(type(pub.data).__name__)
            received[name].append(decoded(pub.data))
    history = await subs["protobuf"].history(limit=10)
    for client in clients.values():
        await client.disconnect()
    return {
        "received": received,
        "types": raw,
        "refused_code": refused,
        "protobuf_saw_join_of": [join.user, bool(join.client)],
        "history": [decoded(p.data)["n"] for p in history.publications],
    }


def delimited(*commands):
    """Commands, each prefixed with its length as a varint (the Protobuf format's framing)."""
    out = b""
    for command in commands:
        body = command.SerializeToString()
        length = len(body)
        while length >= 0x80:
            out += bytes([(length & 0x7F) | 0x80])
            length >>= 7
        out += bytes([length]) + body
    return out


def replies_of(frame):
    replies, position = [], 0
    while position < len(frame):
        length, shift = 0, 0
        while True:
            byte = frame[position]
            position += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        reply = client_pb2.Reply()
        reply.ParseFromString(frame[position:position + length])
        position += length
        replies.append(reply)
    return replies


async def raw_protobuf(ws_url, token):
    """The Protobuf format by hand (websockets and the protocol's generated Python messages):
    several length-delimited commands in one binary frame, `?format=protobuf` instead of the
    subprotocol, and a frame that does not split into messages."""
    result = {}

    async def exchange(ws, frame, ids):
        await ws.send(frame)
        got, pushes = {}, []
        deadline = time.monotonic() + TIMEOUT
        while set(ids) - set(got) and time.monotonic() < deadline:
            message = await asyncio.wait_for(ws.recv(), TIMEOUT)
            if isinstance(message, str):
                raise SystemExit(f"a text frame on a Protobuf connection: {message!r}")
            for reply in replies_of(message):
                if reply.id:
                    got[reply.id] = reply
                elif reply.HasField("push"):
                    pushes.append(reply)
        return got, pushes

    async with websockets.connect(
        ws_url, ssl=insecure_context(), subprotocols=["centrifuge-protobuf"], proxy=None
    ) as ws:
        result["subprotocol"] = ws.subprotocol
        connect = client_pb2.Command(id=1, connect=client_pb2.ConnectRequest(token=token))
        subscribe = client_pb2.Command(id=2, subscribe=client_pb2.SubscribeRequest(channel="chat:raw"))
        got, _ = await exchange(ws, delimited(connect, subscribe), [1, 2])
        result["connect_client"] = bool(got[1].connect.client)
        result["connect_ping"] = got[1].connect.ping
        result["subscribe_epoch"] = bool(got[2].subscribe.epoch)
        publish = client_pb2.Command(id=3, publish=client_pb2.PublishRequest(channel="chat:raw", data=b'{"x":1}'))
        stats = client_pb2.Command(id=4, presence_stats=client_pb2.PresenceStatsRequest(channel="chat:raw"))
        history = client_pb2.Command(id=5, history=client_pb2.HistoryRequest(channel="chat:raw", limit=5))
        bad = client_pb2.Command(id=6, subscribe=client_pb2.SubscribeRequest(channel="nowhere:x"))
        got, pushes = await exchange(ws, delimited(publish, stats, history, bad), [3, 4, 5, 6])
        while not any(p.push.HasField("pub") for p in pushes):
            pushes += replies_of(await asyncio.wait_for(ws.recv(), TIMEOUT))
        result["published"] = got[3].HasField("publish")
        result["num_clients"] = got[4].presence_stats.num_clients
        result["history"] = [bytes(p.data).decode() for p in got[5].history.publications]
        result["error_code"] = got[6].error.code
        result["push"] = [bytes(p.push.pub.data).decode() for p in pushes if p.push.HasField("pub")]
        # A length prefix that runs past the frame: closed with 3501, bad request.
        await ws.send(bytes([0x05, 0x08]))
        try:
            while True:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        except websockets.ConnectionClosed as closed:
            result["malformed_close"] = [closed.rcvd.code if closed.rcvd else None, closed.rcvd.reason if closed.rcvd else ""]

    query_url = ws_url + ("&" if "?" in ws_url else "?") + "format=protobuf"
    async with websockets.connect(query_url, ssl=insecure_context(), proxy=None) as ws:
        result["query_subprotocol"] = ws.subprotocol
        connect = client_pb2.Command(id=1, connect=client_pb2.ConnectRequest(token=token))
        ping = client_pb2.Command(id=2, ping=client_pb2.PingRequest())
        got, _ = await exchange(ws, delimited(connect, ping), [1, 2])
        result["query_connect"] = bool(got[1].connect.client)
        result["query_ping"] = got[2].HasField("ping")
    return result


def burst_pad(n):
    """The padding of publication n of a burst: frame headers of 7 and 16 bits, one large one."""
    return "x" * (8000 if n == 60 else (5, 150, 60)[n % 3])


async def burst(ws_url, token, channel, count):
    """A burst as one WebSocket client library that is not ours sees it (websockets, raw
    frames): a JSON and a Protobuf subscriber of CHANNEL, and a publisher sending COUNT publish
    commands in one frame, so the relay delivers them in one event-loop tick and writes each
    subscriber's share in one go. Records, message by message, what each subscriber got."""
    count = int(count)
    result = {}
    async with websockets.connect(ws_url, ssl=insecure_context(), proxy=None) as text_ws, websockets.connect(
        ws_url, ssl=insecure_context(), subprotocols=["centrifuge-protobuf"], proxy=None
    ) as binary_ws, websockets.connect(ws_url, ssl=insecure_context(), proxy=None) as publisher:

        async def replies(ws, ids):
            got = {}
            while set(ids) - set(got):
                for line in (await asyncio.wait_for(ws.recv(), TIMEOUT)).splitlines():
                    reply = json.loads(line)
                    if reply.get("id"):
                        got[reply["id"]] = reply
            return got

        await text_ws.send(json.dumps({"id": 1, "connect": {"token": token}}) + "\n"
                           + json.dumps({"id": 2, "subscribe": {"channel": channel}}))
        text_setup = await replies(text_ws, [1, 2])
        result["text_subscribed"] = "subscribe" in text_setup[2]
        connect = client_pb2.Command(id=1, connect=client_pb2.ConnectRequest(token=token))
        subscribe = client_pb2.Command(id=2, subscribe=client_pb2.SubscribeRequest(channel=channel))
        await binary_ws.send(delimited(connect, subscribe))
        got = {}
        while {1, 2} - set(got):
            for reply in replies_of(await asyncio.wait_for(binary_ws.recv(), TIMEOUT)):
                got[reply.id] = reply
        result["binary_subscribed"] = got[2].HasField("subscribe")
        await publisher.send(json.dumps({"id": 1, "connect": {"token": token}}))
        await replies(publisher, [1])
        commands = [
            json.dumps({"id": n + 2, "publish": {"channel": channel, "data": {"n": n, "pad": burst_pad(n)}}})
            for n in range(count)
        ]
        await publisher.send("\n".join(commands))
        published = await replies(publisher, [n + 2 for n in range(count)])
        result["published"] = sum(1 for reply in published.values() if "publish" in reply)

        text = {"messages": 0, "pushes_per_message": set(), "offsets": [], "n": [], "pads_ok": True}
        while len(text["offsets"]) < count:
            message = await asyncio.wait_for(text_ws.recv(), TIMEOUT)
            text["messages"] += 1
            lines = message.splitlines()
            text["pushes_per_message"].add(len(lines))
            for line in lines:
                pub = json.loads(line)["push"]["pub"]
                text["offsets"].append(pub["offset"])
                text["n"].append(pub["data"]["n"])
                text["pads_ok"] &= pub["data"]["pad"] == burst_pad(pub["data"]["n"])
        text["pushes_per_message"] = sorted(text["pushes_per_message"])
        result["text"] = text

        binary = {"messages": 0, "pushes_per_message": set(), "offsets": [], "n": [], "pads_ok": True}
        while len(binary["offsets"]) < count:
            message = await asyncio.wait_for(binary_ws.recv(), TIMEOUT)
            if isinstance(message, str):
                raise SystemExit(f"a text frame on a Protobuf connection: {message!r}")
            binary["messages"] += 1
            pushes = replies_of(message)
            binary["pushes_per_message"].add(len(pushes))
            for reply in pushes:
                data = json.loads(bytes(reply.push.pub.data))
                binary["offsets"].append(reply.push.pub.offset)
                binary["n"].append(data["n"])
                binary["pads_ok"] &= data["pad"] == burst_pad(data["n"])
        binary["pushes_per_message"] = sorted(binary["pushes_per_message"])
        result["binary"] = binary
    return result


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
    global PROTOBUF
    argv = sys.argv[1:]
    if argv and argv[0] == "--protobuf":
        PROTOBUF = True
        argv = argv[1:]
    scenario, args = argv[0], argv[1:]
    if scenario == "roundtrip":
        result = asyncio.run(roundtrip(*args))
    elif scenario == "recovery":
        result = asyncio.run(recovery(*args))
    elif scenario == "server-side":
        result = asyncio.run(server_side(*args))
    elif scenario == "refresh":
        result = asyncio.run(refresh(*args))
    elif scenario == "mixed":
        result = asyncio.run(mixed(*args))
    elif scenario == "raw-protobuf":
        result = asyncio.run(raw_protobuf(*args))
    elif scenario == "burst":
        result = asyncio.run(burst(*args))
    elif scenario == "server-api":
        result = server_api(*args)
    elif scenario == "cross-node":
        result = asyncio.run(cross_node(*args))
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
