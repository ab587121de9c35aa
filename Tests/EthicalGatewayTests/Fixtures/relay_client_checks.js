// Checks of fluxer-relay.js against a scripted server: a fake WebSocket stands in for the network,
// so the cases a live server rarely produces can be forced (several messages in one frame, a
// connect refused with 109, an unsubscribe push, a command that never gets a reply).
// RelayBrowserTests evaluates fluxer-relay.js and then this file in headless Chromium; the
// expression's value is "ok" or what failed.
(async () => {
  const sockets = [];
  class FakeWebSocket {
    constructor(url, protocol) { this.url = url; this.protocol = protocol; this.readyState = 0; this.sent = []; sockets.push(this); }
    send(text) { this.sent.push(JSON.parse(text)); }
    close(code) { this.readyState = 3; this.closedWith = code; }
    open() { this.readyState = 1; this.onopen(); }
    receive(...messages) { this.onmessage({ data: messages.map((m) => JSON.stringify(m)).join("\n") }); }
    serverClose(code, reason) { this.readyState = 3; this.onclose({ code: code, reason: reason }); }
    last() { return this.sent[this.sent.length - 1]; }
  }
  window.WebSocket = FakeWebSocket;
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const check = (condition, what) => { if (!condition) throw new Error(what); };
  const until = async (condition, what) => {
    const deadline = Date.now() + 3000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error("timed out: " + what);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  // Recovery: a batched subscribe reply and live publication, a duplicate, a 2500 unsubscribe.
  const seen = [], results = [];
  let tokens = 0;
  const relay = new FluxerRelay("wss://relay.test/connection/websocket", {
    getToken: async () => "token-" + (++tokens), minReconnectDelay: 10, maxReconnectDelay: 20,
  });
  relay.subscribe("demo:news", { onPublication: (data, pub) => seen.push(pub.offset), onSubscribed: (r) => results.push(r) });
  relay.connect();
  await until(() => sockets.length === 1, "first socket");
  let ws = sockets[0];
  ws.open();
  check(same(ws.sent[0], { id: 1, connect: { name: "fluxer-relay.js", token: "token-1" } }), "connect: " + JSON.stringify(ws.sent[0]));
  ws.receive({ id: 1, connect: { client: "c1", ping: 25, pong: true } }, {});
  check(same(ws.sent[1], { id: 2, subscribe: { channel: "demo:news" } }), "subscribe: " + JSON.stringify(ws.sent[1]));
  check(same(ws.sent[2], {}), "a ping batched with the connect reply is answered");
  ws.receive({ id: 2, subscribe: { recoverable: true, positioned: true, epoch: "E", offset: 3 } });
  ws.receive({ push: { channel: "demo:news", pub: { data: 1, offset: 4 } } }, { push: { channel: "demo:news", pub: { data: 2, offset: 5 } } });
  check(same(seen, [4, 5]), "live: " + seen);

  ws.serverClose(1006, "");
  check(relay.state === "connecting", "connecting while waiting to reconnect");
  await until(() => sockets.length === 2, "reconnect");
  ws = sockets[1];
  ws.open();
  ws.receive({ id: 3, connect: { client: "c2", ping: 25, pong: true } });
  check(same(ws.last(), { id: 4, subscribe: { channel: "demo:news", recover: true, offset: 5, epoch: "E" } }), "recover: " + JSON.stringify(ws.last()));
  ws.receive(
    { id: 4, subscribe: { recoverable: true, positioned: true, epoch: "E", offset: 7, was_recovering: true, recovered: true,
      publications: [{ data: 6, offset: 6 }, { data: 7, offset: 7 }] } },
    { push: { channel: "demo:news", pub: { data: 7, offset: 7 } } },
    { push: { channel: "demo:news", pub: { data: 8, offset: 8 } } });
  check(same(seen, [4, 5, 6, 7, 8]), "recovered in order, none twice: " + seen);

  ws.receive({ push: { channel: "demo:news", unsubscribe: { code: 2500, reason: "insufficient state" } } });
  await until(() => ws.last().id === 5, "resubscribe after 2500");
  check(same(ws.last(), { id: 5, subscribe: { channel: "demo:news", recover: true, offset: 8, epoch: "E" } }), "resubscribe: " + JSON.stringify(ws.last()));
  // History lost (new epoch): continue from the new position.
  ws.receive({ id: 5, subscribe: { recoverable: true, positioned: true, epoch: "F", offset: 2, was_recovering: true, recovered: false } });
  ws.receive({ push: { channel: "demo:news", pub: { data: 3, offset: 3 } } });
  check(same(seen, [4, 5, 6, 7, 8, 3]), "after an epoch change: " + seen);
  check(results[results.length - 1].recovered === false, "onSubscribed hears recovered: false");

  // Expiry: a new token; a connect refused with 109 fetches another and reconnects.
  ws.serverClose(3005, "connection expired");
  await until(() => sockets.length === 3, "reconnect after 3005");
  ws = sockets[2];
  ws.open();
  check(ws.sent[0].connect.token === "token-2", "a new token after 3005");
  ws.receive({ id: ws.sent[0].id, error: { code: 109, message: "token expired" } });
  check(ws.closedWith === 1000, "the refused socket is closed");
  await until(() => sockets.length === 4, "reconnect after 109");
  ws = sockets[3];
  ws.open();
  check(ws.sent[0].connect.token === "token-3", "a new token after 109");
  ws.receive({ id: ws.sent[0].id, error: { code: 101, message: "unauthorized" } });
  check(relay.state === "disconnected", "a refused token is final");

  // Unsubscribing while the subscribe is in flight: no wait for a reply that never comes.
  const other = new FluxerRelay("wss://relay.test/connection/websocket", { timeout: 50, minReconnectDelay: 10 });
  other.connect();
  await until(() => sockets.length === 5, "second client");
  ws = sockets[4];
  ws.open();
  ws.receive({ id: 1, connect: { client: "c5" } });
  const unsubscribed = other.subscribe("demo:news", {}).unsubscribe();
  ws.receive({ id: 3, unsubscribe: {} });
  await unsubscribed;
  const published = other.publish("demo:news", 1).catch((error) => error);
  ws.receive({ id: 4, publish: {} });
  await published;
  await new Promise((resolve) => setTimeout(resolve, 100)); // past the 50 ms command timeout
  check(other.state === "connected" && sockets.length === 5, "still on the first connection");

  // A command without a reply: the connection is dropped and reopened at once.
  other.publish("demo:news", 2).catch(() => {});
  await until(() => sockets.length === 6, "reconnect after a command timeout");
  check(ws.closedWith === 1000, "the stuck socket is closed");
  other.disconnect();
  return "ok";
})().catch((error) => String(error && error.stack || error))
