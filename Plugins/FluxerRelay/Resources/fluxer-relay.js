// fluxer-relay.js: a dependency-free browser client for the Fluxer Relay (Centrifugal client
// protocol v2, JSON format). Reconnects with exponential backoff and jitter, answers server
// pings, refreshes its token before it expires, and recovers missed publications on every
// subscription after a reconnect (offset + epoch), so no message is lost or repeated.
//
//   const relay = new FluxerRelay("wss://host/relay/connection/websocket", { token: "…" });
//   const sub = relay.subscribe("news", { onPublication: (data, pub) => console.log(data) });
//   relay.connect();
//
// Options: token (string) or getToken (async () => string), minReconnectDelay (ms, 500),
// maxReconnectDelay (ms, 20000), timeout (ms per command, 10000), onState(state, detail),
// onError(error). Subscription options: onPublication(data, pub), onJoin(info), onLeave(info),
// onSubscribed(result), onUnsubscribed(detail).
(function (root) {
  "use strict";

  var DISCONNECTED = "disconnected", CONNECTING = "connecting", CONNECTED = "connected";

  function FluxerRelay(url, options) {
    this.url = url;
    this.options = options || {};
    this.state = DISCONNECTED;
    this.clientId = null;
    this.subscriptions = {};
    this._ws = null;
    this._nextId = 1;
    this._pending = {};
    this._attempts = 0;
    this._reconnectTimer = null;
    this._refreshTimer = null;
    this._pingTimer = null;
    this._wantConnected = false;
    this._token = this.options.token || null;
  }

  FluxerRelay.prototype._setState = function (state, detail) {
    if (this.state === state) return;
    this.state = state;
    if (this.options.onState) this.options.onState(state, detail || {});
  };

  FluxerRelay.prototype._error = function (error) {
    if (this.options.onError) this.options.onError(error);
  };

  FluxerRelay.prototype.connect = function () {
    this._wantConnected = true;
    if (this.state !== DISCONNECTED) return;
    this._open();
  };

  FluxerRelay.prototype.disconnect = function () {
    this._wantConnected = false;
    clearTimeout(this._reconnectTimer);
    this._teardown({ code: 0, reason: "disconnect called" });
    this._setState(DISCONNECTED, { code: 0, reason: "disconnect called" });
  };

  FluxerRelay.prototype._open = function () {
    var self = this;
    this._setState(CONNECTING);
    var tokenReady = (this._token === null && this.options.getToken)
      ? Promise.resolve(this.options.getToken()).then(function (token) { self._token = token; })
      : Promise.resolve();
    tokenReady.then(function () {
      if (!self._wantConnected) return;
      var ws = new WebSocket(self.url, "centrifuge-json");
      self._ws = ws;
      ws.onopen = function () { self._sendConnect(); };
      ws.onmessage = function (event) { self._receive(event.data); };
      ws.onclose = function (event) { if (self._ws === ws) self._closed(event.code, event.reason); };
      ws.onerror = function () { self._error({ type: "transport", message: "WebSocket error" }); };
    }, function (error) {
      self._error({ type: "token", message: String(error) });
      self._scheduleReconnect();
    });
  };

  FluxerRelay.prototype._sendConnect = function () {
    var self = this;
    var params = { name: "fluxer-relay.js" };
    if (this._token) params.token = this._token;
    this._call("connect", params).then(function (result) {
      self.clientId = result.client;
      self._attempts = 0;
      self._setState(CONNECTED, result);
      self._watchPings(result.ping);
      if (result.expires) self._scheduleRefresh(result.ttl);
      for (var channel in self.subscriptions) self.subscriptions[channel]._subscribe();
    }, function (error) {
      if (error.code === 109 && self.options.getToken) self._token = null; // expired: fetch a new one
      self._error({ type: "connect", code: error.code, message: error.message });
    });
  };

  FluxerRelay.prototype._watchPings = function (seconds) {
    var self = this;
    clearTimeout(this._pingTimer);
    if (!seconds) return;
    this._pingInterval = seconds;
    this._pingTimer = setTimeout(function () {
      self._ws && self._ws.close(4000, "no ping");
    }, (seconds + 10) * 1000);
  };

  FluxerRelay.prototype._scheduleRefresh = function (ttl) {
    var self = this;
    clearTimeout(this._refreshTimer);
    if (!this.options.getToken) return;
    // Refresh a little before expiry; the server allows a short grace after it.
    this._refreshTimer = setTimeout(function () {
      Promise.resolve(self.options.getToken()).then(function (token) {
        self._token = token;
        return self._call("refresh", { token: token });
      }).then(function (result) {
        if (result.expires) self._scheduleRefresh(result.ttl);
      }, function (error) {
        self._error({ type: "refresh", code: error.code, message: error.message });
      });
    }, Math.max(1, ttl * 0.9) * 1000);
  };

  FluxerRelay.prototype._call = function (method, params) {
    var self = this;
    return new Promise(function (resolve, reject) {
      if (!self._ws || self._ws.readyState !== 1) { reject({ code: 0, message: "not connected" }); return; }
      var id = self._nextId++;
      var command = { id: id };
      command[method] = params;
      var timer = setTimeout(function () {
        delete self._pending[id];
        reject({ code: 1, message: "timeout" });
        self._ws && self._ws.close(4001, "command timeout");
      }, self.options.timeout || 10000);
      self._pending[id] = { method: method, resolve: resolve, reject: reject, timer: timer };
      self._ws.send(JSON.stringify(command));
    });
  };

  FluxerRelay.prototype._receive = function (text) {
    var lines = String(text).split("\n");
    for (var i = 0; i < lines.length; i++) {
      if (!lines[i]) continue;
      var message;
      try { message = JSON.parse(lines[i]); } catch (e) { this._error({ type: "protocol", message: "bad JSON" }); continue; }
      this._dispatch(message);
    }
  };

  FluxerRelay.prototype._dispatch = function (message) {
    if (message.id) {
      var pending = this._pending[message.id];
      if (!pending) return;
      delete this._pending[message.id];
      clearTimeout(pending.timer);
      if (message.error) pending.reject(message.error); else pending.resolve(message[pending.method] || {});
      return;
    }
    if (message.push) { this._push(message.push); return; }
    // An empty message is a ping: answer with a pong and expect the next ping.
    if (this._ws && this._ws.readyState === 1) this._ws.send("{}");
    this._watchPings(this._pingInterval);
  };

  FluxerRelay.prototype._push = function (push) {
    var sub = this.subscriptions[push.channel];
    if (push.disconnect) { this._closed(push.disconnect.code, push.disconnect.reason); return; }
    if (!sub) return;
    if (push.pub) sub._publication(push.pub);
    else if (push.join && sub.options.onJoin) sub.options.onJoin(push.join.info);
    else if (push.leave && sub.options.onLeave) sub.options.onLeave(push.leave.info);
    else if (push.unsubscribe) sub._serverUnsubscribe(push.unsubscribe);
  };

  FluxerRelay.prototype._teardown = function (detail) {
    clearTimeout(this._pingTimer);
    clearTimeout(this._refreshTimer);
    for (var id in this._pending) {
      clearTimeout(this._pending[id].timer);
      this._pending[id].reject({ code: 2, message: "connection closed" });
    }
    this._pending = {};
    for (var channel in this.subscriptions) this.subscriptions[channel]._connectionLost();
    if (this._ws) {
      var ws = this._ws;
      this._ws = null;
      try { ws.close(1000); } catch (e) { /* already closed */ }
    }
  };

  FluxerRelay.prototype._closed = function (code, reason) {
    this._teardown({ code: code, reason: reason });
    // 3500-3999 and 4500-4999 mean "do not reconnect"; 3005 (expired) means "get a new token".
    var terminal = (code >= 3500 && code < 4000) || (code >= 4500 && code < 5000);
    if (code === 3005 || code === 3500) this._token = this.options.getToken ? null : this._token;
    this._setState(DISCONNECTED, { code: code, reason: reason, reconnect: !terminal });
    if (!terminal && this._wantConnected) this._scheduleReconnect();
  };

  FluxerRelay.prototype._scheduleReconnect = function () {
    var self = this;
    var min = this.options.minReconnectDelay || 500, max = this.options.maxReconnectDelay || 20000;
    var delay = Math.min(max, min * Math.pow(2, this._attempts++));
    delay = delay / 2 + Math.random() * delay / 2; // jitter: clients do not come back in step
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(function () { if (self._wantConnected) self._open(); }, delay);
  };

  FluxerRelay.prototype.subscribe = function (channel, options) {
    var sub = this.subscriptions[channel] || new Subscription(this, channel, options || {});
    this.subscriptions[channel] = sub;
    if (this.state === CONNECTED) sub._subscribe();
    return sub;
  };

  FluxerRelay.prototype.publish = function (channel, data) { return this._call("publish", { channel: channel, data: data }); };
  FluxerRelay.prototype.presence = function (channel) { return this._call("presence", { channel: channel }); };
  FluxerRelay.prototype.history = function (channel, options) {
    var params = { channel: channel, limit: (options && options.limit) || 0 };
    if (options && options.since) params.since = options.since;
    return this._call("history", params);
  };

  function Subscription(client, channel, options) {
    this.client = client;
    this.channel = channel;
    this.options = options;
    this.state = "unsubscribed";
    this.offset = null;
    this.epoch = null;
  }

  Subscription.prototype._subscribe = function () {
    var self = this;
    if (this.state === "subscribing" || this.state === "subscribed") return;
    this.state = "subscribing";
    var params = { channel: this.channel };
    if (this.offset !== null) { params.recover = true; params.offset = this.offset; params.epoch = this.epoch; }
    this.client._call("subscribe", params).then(function (result) {
      self.state = "subscribed";
      if (result.recoverable || result.positioned) {
        var pubs = result.publications || [];
        for (var i = 0; i < pubs.length; i++) self._publication(pubs[i]);
        self.epoch = result.epoch;
        if (self.offset === null || !result.recovered) self.offset = Number(result.offset || 0);
      }
      if (self.options.onSubscribed) self.options.onSubscribed(result);
    }, function (error) {
      self.state = "unsubscribed";
      if (self.options.onUnsubscribed) self.options.onUnsubscribed({ code: error.code, reason: error.message });
    });
  };

  Subscription.prototype._publication = function (pub) {
    if (pub.offset) {
      var offset = Number(pub.offset);
      if (this.offset !== null && offset <= this.offset) return; // already seen
      this.offset = offset;
    }
    if (this.options.onPublication) this.options.onPublication(pub.data, pub);
  };

  Subscription.prototype._serverUnsubscribe = function (detail) {
    this.state = "unsubscribed";
    if (detail.code >= 2500) { this._subscribe(); return; } // insufficient state: resubscribe and recover
    delete this.client.subscriptions[this.channel];
    if (this.options.onUnsubscribed) this.options.onUnsubscribed(detail);
  };

  Subscription.prototype._connectionLost = function () {
    if (this.state !== "unsubscribed") this.state = "unsubscribed";
  };

  Subscription.prototype.unsubscribe = function () {
    delete this.client.subscriptions[this.channel];
    this.state = "unsubscribed";
    if (this.client.state === CONNECTED) return this.client._call("unsubscribe", { channel: this.channel });
    return Promise.resolve({});
  };

  Subscription.prototype.publish = function (data) { return this.client.publish(this.channel, data); };

  root.FluxerRelay = FluxerRelay;
  if (typeof module !== "undefined" && module.exports) module.exports = FluxerRelay;
})(typeof window !== "undefined" ? window : this);
