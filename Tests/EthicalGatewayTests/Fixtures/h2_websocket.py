"""WebSocket over HTTP/2 (RFC 8441 extended CONNECT) from independent parts: the `h2` package
for HTTP/2 and the `websockets` package's frame codec and permessage-deflate for RFC 6455
(client frames masked, server frames read unmasked). No pip package is a ready RFC 8441
client, so this file joins the two; nothing in it comes from the gateway.

Each scenario prints one JSON object on stdout; the Swift tests assert on it.

    h2_websocket.py echo PORT PATH [--deflate]       settings, text, binary, fragments, ping, 200 KB, close
    h2_websocket.py status PORT PATH [NAME=VALUE...]  the answer to one extended CONNECT
    h2_websocket.py malformed PORT ECHO_PATH          bad CONNECTs on one connection, then a good one
    h2_websocket.py many PORT PATH N                  N WebSockets on one connection; one closes, one resets
    h2_websocket.py relay PORT TOKEN API_KEY [--protobuf]  connect, subscribe, publish by the HTTP API, push
    h2_websocket.py proxy PORT PATH                   three messages through an http-proxy route
"""
import json
import select
import socket
import ssl
import sys
import time
import urllib.request

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode

OP_TEXT, OP_BINARY, OP_CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
OP_CLOSE, OP_PING, OP_PONG = Opcode.CLOSE, Opcode.PING, Opcode.PONG
from websockets.headers import build_extension, parse_extension
from websockets.streams import StreamReader

# Generous: the suite runs on two shared cores, where a first token verification can take seconds.
TIMEOUT = 30.0


def insecure_context():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class RecordingExtension:
    """Wraps websockets' permessage-deflate to note, frame by frame, whether RSV1 (compressed) was set."""

    def __init__(self, inner, stream):
        self.inner, self.stream, self.name = inner, stream, inner.name

    def decode(self, frame, *, max_size=None):
        self.stream.rsv1s.append(frame.rsv1)
        return self.inner.decode(frame, max_size=max_size)

    def encode(self, frame):
        return self.inner.encode(frame)


class Stream:
    def __init__(self):
        self.status = None
        self.headers = {}
        self.body = b""
        self.ended = False
        self.reset = None
        self.reader = StreamReader()
        self.parser = None
        self.frames = []
        self.rsv1s = []
        self.extensions = []
        # A plain request's answer: its DATA is the body, not WebSocket frames.
        self.plain = False


class H2Client:
    """One TLS connection with ALPN h2 to the gateway on 127.0.0.1."""

    def __init__(self, port, validate=True):
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        context = insecure_context()
        context.set_alpn_protocols(["h2"])
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        if self.sock.selected_alpn_protocol() != "h2":
            raise SystemExit(f"ALPN chose {self.sock.selected_alpn_protocol()!r}, not h2")
        self.authority = f"localhost:{port}"
        config = h2.config.H2Configuration(
            client_side=True, header_encoding=None, validate_outbound_headers=validate,
            normalize_outbound_headers=validate,
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.flush()
        self.streams = {}
        self.terminated = None
        self.settings_seen = False
        self.last_rsv1 = False
        self.pump_until(lambda: self.settings_seen, "the server's SETTINGS")

    @property
    def enable_connect_protocol(self):
        return self.conn.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL, 0)

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, timeout):
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready and not self.sock.pending():
            return
        data = self.sock.recv(65536)
        if not data:
            self.terminated = self.terminated or "eof"
            return
        for event in self.conn.receive_data(data):
            self.handle(event)
        self.flush()

    def pump_until(self, condition, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not condition():
            if self.terminated:
                raise SystemExit(f"connection ended ({self.terminated}) waiting for {what}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit(f"timed out waiting for {what}")
            self.pump(min(left, 0.5))

    def handle(self, event):
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings_seen = True
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self.streams[event.stream_id]
            headers = {k.decode(): v.decode() for k, v in event.headers}
            stream.status = int(headers.pop(":status"))
            stream.headers = headers
        elif isinstance(event, h2.events.DataReceived):
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            stream = self.streams[event.stream_id]
            if stream.status == 200 and not stream.plain:
                stream.reader.feed_data(event.data)
                self.parse(stream)
            else:
                stream.body += event.data
        elif isinstance(event, h2.events.StreamEnded):
            self.streams[event.stream_id].ended = True
        elif isinstance(event, h2.events.StreamReset):
            self.streams[event.stream_id].reset = h2.errors.ErrorCodes(event.error_code).name
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = f"goaway:{h2.errors.ErrorCodes(event.error_code).name}"

    def parse(self, stream):
        while True:
            if stream.parser is None:
                stream.parser = Frame.parse(
                    stream.reader.read_exact, mask=False, max_size=None, extensions=stream.extensions
                )
            try:
                next(stream.parser)
                return
            except StopIteration as done:
                stream.frames.append(done.value)
                stream.parser = None

    def request(self, headers, end_stream=False):
        stream_id = self.conn.get_next_available_stream_id()
        self.streams[stream_id] = Stream()
        encoded = [(k.encode(), v.encode()) for k, v in headers]
        self.conn.send_headers(stream_id, encoded, end_stream=end_stream)
        self.flush()
        return stream_id

    def open_websocket(self, path, subprotocols=(), deflate=False, extra=()):
        headers = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                   (":path", path), (":authority", self.authority), ("sec-websocket-version", "13")]
        if subprotocols:
            headers.append(("sec-websocket-protocol", ", ".join(subprotocols)))
        factory = None
        if deflate:
            factory = ClientPerMessageDeflateFactory(client_max_window_bits=True)
            headers.append(("sec-websocket-extensions", build_extension([(factory.name, factory.get_request_params())])))
        headers += list(extra)
        stream_id = self.request(headers)
        self.pump_until(lambda: self.answered(stream_id), f"the answer to CONNECT {path}")
        stream = self.streams[stream_id]
        if factory and stream.status == 200 and "sec-websocket-extensions" in stream.headers:
            for name, params in parse_extension(stream.headers["sec-websocket-extensions"]):
                if name == factory.name:
                    stream.extensions = [RecordingExtension(factory.process_response_params(params, []), stream)]
        return stream_id

    def answered(self, stream_id):
        stream = self.streams[stream_id]
        return stream.reset is not None or (stream.status is not None and (stream.status == 200 or stream.ended))

    def send(self, stream_id, frame, end_stream=False):
        data = frame.serialize(mask=True, extensions=self.streams[stream_id].extensions)
        self.send_raw(stream_id, data, end_stream)

    def send_raw(self, stream_id, data, end_stream=False):
        view = memoryview(data)
        while True:
            window = self.conn.local_flow_control_window(stream_id)
            chunk = min(len(view), window, self.conn.max_outbound_frame_size)
            if chunk > 0 or len(view) == 0:
                self.conn.send_data(stream_id, bytes(view[:chunk]), end_stream=end_stream and chunk == len(view))
                self.flush()
                view = view[chunk:]
                if len(view) == 0:
                    return
            else:
                self.pump(0.5)

    def next_frame(self, stream_id, skip_pongs=True):
        stream = self.streams[stream_id]
        while True:
            self.pump_until(lambda: stream.frames or stream.reset or stream.ended, "a frame")
            if not stream.frames:
                raise SystemExit(f"stream {stream_id} ended (reset: {stream.reset}) before a frame")
            frame = stream.frames.pop(0)
            self.last_rsv1 = stream.rsv1s.pop(0) if stream.rsv1s else False
            if skip_pongs and frame.opcode == OP_PONG:
                continue
            return frame

    def next_message(self, stream_id):
        """A whole message: (opcode, payload, first frame was compressed)."""
        stream = self.streams[stream_id]
        parts, opcode, compressed = [], None, None
        while True:
            frame = self.next_frame(stream_id)
            if frame.opcode == OP_PING:
                continue
            if compressed is None:
                compressed = bool(self.last_rsv1)
            if opcode is None:
                opcode = frame.opcode
            parts.append(frame.data)
            if frame.fin:
                return opcode, b"".join(parts), compressed

    def close_websocket(self, stream_id, code=1000, reason="bye"):
        """Close handshake, then the stream ends both ways (RFC 8441 section 5)."""
        self.send(stream_id, Frame(OP_CLOSE, Close(code, reason).serialize()))
        frame = self.next_frame(stream_id)
        echoed = Close.parse(frame.data) if frame.opcode == OP_CLOSE else None
        stream = self.streams[stream_id]
        self.pump_until(lambda: stream.ended or stream.reset, "the server's END_STREAM")
        server_ended = stream.ended
        if stream.reset is None:
            self.send_raw(stream_id, b"", end_stream=True)
        return {"code": echoed.code if echoed else None, "reason": echoed.reason if echoed else None,
                "server_ended_stream": server_ended, "reset": stream.reset}


def echo(port, path, deflate):
    client = H2Client(port)
    result = {"enable_connect_protocol": client.enable_connect_protocol}
    sid = client.open_websocket(path, deflate=deflate)
    stream = client.streams[sid]
    result["status"] = stream.status
    result["accept_header"] = "sec-websocket-accept" in stream.headers
    result["extensions"] = stream.headers.get("sec-websocket-extensions")
    client.send(sid, Frame(OP_TEXT, "hello over h2".encode()))
    opcode, data, compressed = client.next_message(sid)
    result["text"] = data.decode() if opcode == OP_TEXT else None
    result["text_compressed"] = compressed
    payload = bytes(range(256)) * 4
    client.send(sid, Frame(OP_BINARY, payload))
    opcode, data, _ = client.next_message(sid)
    result["binary_ok"] = opcode == OP_BINARY and data == payload
    client.send(sid, Frame(OP_TEXT, b"frag", fin=False))
    client.send(sid, Frame(OP_PING, b"between"))
    client.send(sid, Frame(OP_CONT, b"mented", fin=True))
    pong = client.next_frame(sid, skip_pongs=False)
    result["pong"] = pong.data.decode() if pong.opcode == OP_PONG else None
    opcode, data, _ = client.next_message(sid)
    result["fragmented"] = data.decode() if opcode == OP_TEXT else None
    # Larger than the stream's 64 KiB flow-control window, both ways.
    large = bytes((i * 7) % 251 for i in range(200_000))
    client.send(sid, Frame(OP_BINARY, large))
    opcode, data, _ = client.next_message(sid)
    result["large_ok"] = data == large
    result["close"] = client.close_websocket(sid, 1000, "bye")
    return result


def status(port, path, extra):
    client = H2Client(port)
    sid = client.open_websocket(path, extra=[tuple(item.split("=", 1)) for item in extra])
    stream = client.streams[sid]
    client.pump_until(lambda: stream.status == 200 or stream.ended or stream.reset, "the end of the answer")
    body = {}
    if stream.body:
        try:
            body = json.loads(stream.body)
        except ValueError:
            body = {"raw": stream.body.decode(errors="replace")}
    return {"status": stream.status, "reset": stream.reset, "headers": stream.headers, "body": body}


def malformed(port, echo_path):
    client = H2Client(port, validate=False)
    authority = client.authority
    cases = {
        "unknown_protocol": [(":method", "CONNECT"), (":protocol", "chat"), (":scheme", "https"),
                             (":path", echo_path), (":authority", authority), ("sec-websocket-version", "13")],
        "missing_path": [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
                         (":authority", authority), ("sec-websocket-version", "13")],
        "missing_scheme": [(":method", "CONNECT"), (":protocol", "websocket"), (":path", echo_path),
                           (":authority", authority), ("sec-websocket-version", "13")],
        "plain_connect": [(":method", "CONNECT"), (":authority", "example.com:443")],
        "protocol_on_get": [(":method", "GET"), (":protocol", "websocket"), (":scheme", "https"),
                            (":path", echo_path), (":authority", authority)],
        "get_to_websocket": [(":method", "GET"), (":scheme", "https"), (":path", echo_path), (":authority", authority)],
    }
    result = {}
    for name, headers in cases.items():
        sid = client.request(headers, end_stream=name in ("get_to_websocket", "plain_connect"))
        stream = client.streams[sid]
        client.pump_until(lambda: stream.reset or stream.ended, f"the end of {name}")
        outcome = {"status": stream.status, "reset": stream.reset}
        if stream.body:
            outcome["detail"] = json.loads(stream.body).get("detail")
        result[name] = outcome
    # The connection still serves a WebSocket.
    sid = client.open_websocket(echo_path)
    client.send(sid, Frame(OP_TEXT, b"still here"))
    _, data, _ = client.next_message(sid)
    result["after"] = {"status": client.streams[sid].status, "echo": data.decode(), "terminated": client.terminated}
    return result


def many(port, path, count):
    client = H2Client(port)
    sids = [client.open_websocket(path) for _ in range(count)]
    result = {"statuses": [client.streams[sid].status for sid in sids]}
    for sid in sids:
        client.send(sid, Frame(OP_TEXT, f"first on {sid}".encode()))
    result["first_round"] = sum(client.next_message(sid)[1] == f"first on {sid}".encode() for sid in sids)
    result["closed"] = client.close_websocket(sids[0], 1001, "going")
    # The second is abandoned abruptly: RST_STREAM(CANCEL), RFC 8441's abortive close.
    client.conn.reset_stream(sids[1], h2.errors.ErrorCodes.CANCEL)
    client.flush()
    for sid in sids[2:]:
        client.send(sid, Frame(OP_TEXT, f"second on {sid}".encode()))
    result["second_round"] = sum(client.next_message(sid)[1] == f"second on {sid}".encode() for sid in sids[2:])
    for sid in sids[2:]:
        client.close_websocket(sid)
    result["terminated"] = client.terminated
    return result


def relay(port, token, api_key, protobuf):
    client = H2Client(port)
    subprotocol = "centrifuge-protobuf" if protobuf else "centrifuge-json"
    sid = client.open_websocket("/relay/connection/websocket", subprotocols=[subprotocol])
    stream = client.streams[sid]
    result = {"status": stream.status, "subprotocol": stream.headers.get("sec-websocket-protocol")}
    if protobuf:
        from centrifuge.protocol import client_pb2
        from relay_clients import delimited, replies_of  # the Protobuf framing, shared

        def call(command):
            client.send(sid, Frame(OP_BINARY, delimited(command)))

        def replies():
            opcode, frame, _ = client.next_message(sid)
            if opcode != OP_BINARY:
                raise SystemExit(f"a non-binary frame on a Protobuf connection: {frame!r}")
            return replies_of(frame)

        def until(predicate):
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                for reply in replies():
                    if predicate(reply):
                        return reply
            raise SystemExit("timed out waiting for a reply")

        call(client_pb2.Command(id=1, connect=client_pb2.ConnectRequest(token=token)))
        result["connected"] = bool(until(lambda r: r.id == 1).connect.client)
        call(client_pb2.Command(id=2, subscribe=client_pb2.SubscribeRequest(channel="chat:h2")))
        result["subscribed"] = until(lambda r: r.id == 2).HasField("subscribe")
        publish(port, api_key)
        push = until(lambda r: r.HasField("push") and r.push.HasField("pub"))
        result["channel"] = push.push.channel
        result["data"] = json.loads(bytes(push.push.pub.data))
    else:
        def call(command):
            client.send(sid, Frame(OP_TEXT, json.dumps(command).encode()))

        def until(predicate):
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                opcode, frame, _ = client.next_message(sid)
                if opcode != OP_TEXT:
                    raise SystemExit(f"a non-text frame on a JSON connection: {frame!r}")
                for line in frame.decode().splitlines():
                    reply = json.loads(line)
                    if predicate(reply):
                        return reply
            raise SystemExit("timed out waiting for a reply")

        call({"id": 1, "connect": {"token": token}})
        result["connected"] = "client" in until(lambda r: r.get("id") == 1).get("connect", {})
        call({"id": 2, "subscribe": {"channel": "chat:h2"}})
        result["subscribed"] = "subscribe" in until(lambda r: r.get("id") == 2)
        publish(port, api_key)
        push = until(lambda r: "pub" in r.get("push", {}))["push"]
        result["channel"] = push["channel"]
        result["data"] = push["pub"]["data"]
    result["close"] = client.close_websocket(sid, 1000, "done")
    return result


def publish(port, api_key):
    """The server API, over HTTPS as a service would call it."""
    body = json.dumps({"channel": "chat:h2", "data": {"text": "pushed over h2"}}).encode()
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/relay/api/publish", data=body, method="POST",
        headers={"X-API-Key": api_key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=insecure_context(), timeout=TIMEOUT) as response:
        if response.status != 200:
            raise SystemExit(f"publish answered {response.status}")


def proxy(port, path):
    client = H2Client(port)
    sid = client.open_websocket(path)
    stream = client.streams[sid]
    result = {"status": stream.status, "accept_header": "sec-websocket-accept" in stream.headers, "replies": []}
    for index in range(3):
        client.send(sid, Frame(OP_TEXT, f"message {index}".encode()))
        result["replies"].append(client.next_message(sid)[1].decode())
    result["close"] = client.close_websocket(sid, 1000, "done")
    return result


def hpack(port, path, count):
    """`count` GETs of `path` one after another on one connection; what the client's HPACK
    decoder holds after them (the fields the gateway asked it to index)."""
    client = H2Client(port)
    request_ids, statuses = [], []
    for _ in range(count):
        sid = client.request([(":method", "GET"), (":scheme", "https"), (":path", path),
                              (":authority", client.authority)], end_stream=True)
        stream = client.streams[sid]
        client.pump_until(lambda: stream.ended or stream.reset, f"the answer to GET {path}")
        statuses.append(stream.status)
        request_ids.append(stream.headers.get("x-request-id"))
    table = client.conn.decoder.header_table
    dynamic = [[name.decode(), value.decode()] for name, value in table.dynamic_entries]
    return {"statuses": statuses, "requestIds": request_ids, "dynamic": dynamic}


def cookies(port, path, count):
    """A GET of `path` with its cookies as `count` crumbs (separate `cookie` fields, as RFC 9113
    8.2.3 allows); the answer's status."""
    client = H2Client(port)
    headers = [(":method", "GET"), (":scheme", "https"), (":path", path), (":authority", client.authority)]
    headers += [("cookie", f"c{i}=v{i}") for i in range(count)]
    sid = client.request(headers, end_stream=True)
    stream = client.streams[sid]
    client.pump_until(lambda: stream.ended or stream.reset, f"the answer to GET {path}")
    return {"status": stream.status, "reset": stream.reset}


def with_body(port, method, path, body):
    """A `method` request of `path` whose HEADERS frame has no content-length and does not end
    the stream, then `body` in one DATA frame that does; the answer's status and body."""
    client = H2Client(port)
    headers = [(":method", method), (":scheme", "https"), (":path", path), (":authority", client.authority)]
    sid = client.request(headers, end_stream=False)
    stream = client.streams[sid]
    stream.plain = True
    client.send_raw(sid, body.encode(), end_stream=True)
    client.pump_until(lambda: stream.ended or stream.reset, f"the answer to {method} {path}")
    return {"status": stream.status, "reset": stream.reset, "body": stream.body.decode(errors="replace")}


def plain_request(port, method, path, authority):
    """One request with these pseudo-header values (no checks of the client's own), no body;
    the answer's status and body, or the stream's reset."""
    client = H2Client(port, validate=False)
    headers = [(":method", method), (":scheme", "https"), (":path", path),
               (":authority", authority or client.authority)]
    sid = client.request(headers, end_stream=True)
    stream = client.streams[sid]
    stream.plain = True
    client.pump_until(lambda: stream.ended or stream.reset, f"the answer to {method} {path}")
    return {"status": stream.status, "reset": stream.reset, "body": stream.body.decode(errors="replace")}


def main(argv):
    scenario, port = argv[1], int(argv[2])
    if scenario == "echo":
        result = echo(port, argv[3], "--deflate" in argv[4:])
    elif scenario == "status":
        result = status(port, argv[3], argv[4:])
    elif scenario == "malformed":
        result = malformed(port, argv[3])
    elif scenario == "many":
        result = many(port, argv[3], int(argv[4]))
    elif scenario == "relay":
        result = relay(port, argv[3], argv[4], "--protobuf" in argv[5:])
    elif scenario == "cookies":
        result = cookies(port, argv[3], int(argv[4]))
    elif scenario == "hpack":
        result = hpack(port, argv[3], int(argv[4]))
    elif scenario == "request":
        result = plain_request(port, argv[3], argv[4], argv[5] if len(argv) > 5 else None)
    elif scenario == "body":
        result = with_body(port, argv[3], argv[4], argv[5])
    elif scenario == "proxy":
        result = proxy(port, argv[3])
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv)
