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
// onError(error). States: "connecting" (also while waiting to reconnect; detail has the close
// code and reason), "connected" (detail is the connect result), "disconnected" (after
// disconnect() or a close that says not to reconnect). Subscription options: onPublication(data,
// pub), onJoin(info), onLeave(info), onSubscribed(result) (result.recovered === false after a
// resubscribe means history could not fill the gap: reload state), onUnsubscribed(detail).
(function (root) {
  "use strict";

  var DISCONNECTED = "disconnected", CONNECTING = "connecting", CONNECTED = "connected";
  var MAX_TIMER = 0x7fffffff; // setTimeout fires at once for longer delays

  function backoff(attempt, min, max) {
    var delay = Math.min(max, min * Math.pow(2, Math.min(attempt, 30)));
    return delay / 2 + Math.random() * delay / 2; // jitter: clients do not come back in step
  }

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

  FluxerRelay.prototype._delay = function (attempt) {
    return backoff(attempt, this.options.minReconnectDelay || 500, this.options.maxReconnectDelay || 20000);
  };

  FluxerRelay.prototype.connect = function () {
    this._wantConnected = true;
    if (this.state !== DISCONNECTED) return;
    this._open();
  };

  FluxerRelay.prototype.disconnect = function () {
    this._wantConnected = false;
    this._teardown();
    this._setState(DISCONNECTED, { code: 0, reason: "disconnect called" });
  };

  FluxerRelay.prototype._open = function () {
    var self = this;
    clearTimeout(this._reconnectTimer);
    this._setState(CONNECTING);
    // A newer _open or a teardown makes this attempt stale: it then opens nothing.
    var attempt = this._openAttempt = {};
    var tokenReady = (this._token === null && this.options.getToken)
      ? this._fetchToken().then(function (token) { self._token = token; })
      : Promise.resolve();
    tokenReady.then(function () {
      if (!self._wantConnected || self._openAttempt !== attempt) return;
      var ws = new WebSocket(self.url, "centrifuge-json");
      self._ws = ws;
      ws.onopen = function () { if (self._ws === ws) self._sendConnect(); };
      ws.onmessage = function (event) { if (self._ws === ws) self._receive(event.data); };
      ws.onclose = function (event) { if (self._ws === ws) self._closed(event.code, event.reason); };
      ws.onerror = function () { if (self._ws === ws) self._error({ type: "transport", message: "WebSocket error" }); };
    }).catch(function (error) {
      if (self._openAttempt !== attempt) return;
      self._error({ type: "token", message: String(error && error.message || error) });
      self._closed(0, "could not open: " + String(error && error.message || error));
    });
  };

  FluxerRelay.prototype._fetchToken = function () {
    var getToken = this.options.getToken;
    return new Promise(function (resolve) { resolve(getToken()); }); // a throw becomes a rejection
  };

  FluxerRelay.prototype._sendConnect = function () {
    var self = this;
    var params = { name: "fluxer-relay.js" };
    if (this._token) params.token = this._token;
    this._send("connect", params, function (error, result) {
      if (error) { self._connectFailed(error); return; }
      self.clientId = result.client;
      self._attempts = 0;
      self._pong = result.pong === true;
      self._setState(CONNECTED, result);
      self._watchPings(result.ping);
      if (result.expires) self._scheduleRefresh(result.ttl, 0);
      for (var channel in self.subscriptions) self.subscriptions[channel]._subscribe();
    });
  };

  FluxerRelay.prototype._connectFailed = function (error) {
    if (error.code <= 2) return; // the connection is already gone (closed, timed out)
    this._error({ type: "connect", code: error.code, message: error.message });
    // 109: the token expired (the server keeps the socket open for another connect); with
    // getToken fetch a new one and reconnect. Temporary errors reconnect too. Anything else (a
    // refused token, say) is final.
    var expired = error.code === 109 && !!this.options.getToken;
    if (expired) this._token = null;
    this._closed(error.code, error.message, expired || !!error.temporary);
  };

  FluxerRelay.prototype._watchPings = function (seconds) {
    var self = this;
    clearTimeout(this._pingTimer);
    if (!seconds) return;
    this._pingInterval = seconds;
    // Not waiting for the closing handshake: on a dead network it takes a minute.
    this._pingTimer = setTimeout(function () { self._closed(4000, "no ping"); }, (seconds + 10) * 1000);
  };

  FluxerRelay.prototype._scheduleRefresh = function (ttl, failures) {
    var self = this;
    clearTimeout(this._refreshTimer);
    if (!this.options.getToken) return; // the server disconnects with 3005 at expiry
    // Refresh a little before expiry; the server allows a short grace after it. After a failed
    // refresh, try again with backoff while the connection lasts.
    var delay = failures ? this._delay(failures) : Math.max(1, ttl * 0.9) * 1000;
    this._refreshTimer = setTimeout(function () {
      self._fetchToken().then(function (token) {
        self._token = token;
        return self._call("refresh", { token: token });
      }).then(function (result) {
        if (result.expires) self._scheduleRefresh(result.ttl, 0);
      }, function (error) {
        if (self.state !== CONNECTED) return; // the next connect sends the token we have
        error = error || {};
        self._error({ type: "refresh", code: error.code, message: error.message || String(error) });
        self._scheduleRefresh(ttl, failures + 1);
      });
    }, Math.min(delay, MAX_TIMER));
  };

  // Sends a command; done(error, result) runs as soon as its reply is read, before the next
  // message in the same frame (a promise would run it after them: a publication following a
  // subscribe reply would overtake the recovered ones). Errors with code 0-2 are local: not
  // connected, timed out (the connection is then closed), connection closed.
  FluxerRelay.prototype._send = function (method, params, done) {
    var self = this;
    if (!this._ws || this._ws.readyState !== 1) { done({ code: 0, message: "not connected" }); return 0; }
    var id = this._nextId++;
    var command = { id: id };
    command[method] = params;
    var timer = setTimeout(function () {
      delete self._pending[id];
      self._closed(4001, "command timeout");
      done({ code: 1, message: "timeout" });
    }, this.options.timeout || 10000);
    this._pending[id] = { method: method, done: done, timer: timer };
    this._ws.send(JSON.stringify(command));
    return id;
  };

  // Stops waiting for a reply (a subscribe that was cancelled may never get one).
  FluxerRelay.prototype._forget = function (id) {
    var pending = this._pending[id];
    if (!pending) return;
    clearTimeout(pending.timer);
    delete this._pending[id];
  };

  FluxerRelay.prototype._call = function (method, params) {
    var self = this;
    return new Promise(function (resolve, reject) {
      self._send(method, params, function (error, result) { if (error) reject(error); else resolve(result); });
    });
  };

  FluxerRelay.prototype._receive = function (text) {
    var lines = String(text).split("\n");
    for (var i = 0; i < lines.length; i++) {
      if (!lines[i]) continue;
      var message;
      try { message = JSON.parse(lines[i]); } catch (e) { this._error({ type: "protocol", message: "bad JSON" }); continue; }
      this._dispatch(message);
      if (!this._ws) return; // the message closed the connection: drop the rest of the frame
    }
  };

  FluxerRelay.prototype._dispatch = function (message) {
    if (message.id) {
      var pending = this._pending[message.id];
      if (!pending) return;
      delete this._pending[message.id];
      clearTimeout(pending.timer);
      if (message.error) pending.done(message.error); else pending.done(null, message[pending.method] || {});
      return;
    }
    if (message.push) { this._push(message.push); return; }
    // An empty message is a ping: answer with a pong when the server asked for them.
    if (this._pong && this._ws && this._ws.readyState === 1) this._ws.send("{}");
    this._watchPings(this._pingInterval);
  };

  FluxerRelay.prototype._push = function (push) {
    if (push.disconnect) { this._closed(push.disconnect.code, push.disconnect.reason); return; }
    var sub = this.subscriptions[push.channel];
    if (!sub || sub.state !== "subscribed") return;
    if (push.pub) sub._publication(push.pub);
    else if (push.join && sub.options.onJoin) sub.options.onJoin(push.join.info);
    else if (push.leave && sub.options.onLeave) sub.options.onLeave(push.leave.info);
    else if (push.unsubscribe) sub._serverUnsubscribe(push.unsubscribe);
  };

  // Forgets the connection (timers, pending commands, the socket); subscriptions stay wanted.
  FluxerRelay.prototype._teardown = function () {
    clearTimeout(this._reconnectTimer);
    clearTimeout(this._pingTimer);
    clearTimeout(this._refreshTimer);
    this._openAttempt = null;
    var pending = this._pending;
    this._pending = {};
    for (var id in pending) {
      clearTimeout(pending[id].timer);
      pending[id].done({ code: 2, message: "connection closed" });
    }
    for (var channel in this.subscriptions) this.subscriptions[channel]._connectionLost();
    if (this._ws) {
      var ws = this._ws;
      this._ws = null;
      try { ws.close(1000); } catch (e) { /* already closed */ }
    }
  };

  // The connection ended: reconnect with backoff unless the code (or `reconnect`) says not to.
  FluxerRelay.prototype._closed = function (code, reason, reconnect) {
    this._teardown();
    // 3500-3999 and 4500-4999 mean "do not reconnect"; 3005 (expired) means "get a new token".
    if (reconnect === undefined) reconnect = !((code >= 3500 && code < 4000) || (code >= 4500 && code < 5000));
    if (code === 3005 && this.options.getToken) this._token = null;
    if (!reconnect || !this._wantConnected) {
      this._wantConnected = false;
      this._setState(DISCONNECTED, { code: code, reason: reason, reconnect: false });
      return;
    }
    var self = this;
    var delay = this._delay(this._attempts++);
    // Reported on every close, also one while still connecting.
    this.state = CONNECTING;
    if (this.options.onState) this.options.onState(CONNECTING, { code: code, reason: reason, reconnect: true, delay: delay });
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
    this._attempts = 0;
    this._retryTimer = null;
  }

  Subscription.prototype._subscribe = function () {
    var self = this;
    clearTimeout(this._retryTimer);
    if (this.state === "subscribing" || this.state === "subscribed") return;
    if (this.client.subscriptions[this.channel] !== this || this.client.state !== CONNECTED) return;
    this.state = "subscribing";
    var params = { channel: this.channel };
    if (this.offset !== null) { params.recover = true; params.offset = this.offset; params.epoch = this.epoch || ""; }
    this._pendingId = this.client._send("subscribe", params, function (error, result) {
      if (self.state !== "subscribing") return; // unsubscribed meanwhile
      if (error) { self._subscribeFailed(error); return; }
      self.state = "subscribed";
      self._attempts = 0;
      if (result.recoverable || result.positioned) {
        var top = Number(result.offset || 0);
        if (result.was_recovering && result.recovered) {
          var pubs = result.publications || [];
          for (var i = 0; i < pubs.length; i++) self._publication(pubs[i]);
          if (self.offset < top) self.offset = top;
        } else {
          // A new position (first subscribe, or history could not fill the gap): continue from here.
          self.offset = top;
        }
        self.epoch = result.epoch || "";
      }
      if (self.options.onSubscribed) self.options.onSubscribed(result);
    });
  };

  Subscription.prototype._subscribeFailed = function (error) {
    this.state = "unsubscribed";
    if (error.code <= 2) return; // the connection is gone: subscribed again after the reconnect
    if (error.temporary) this._retry();
    else this._end({ code: error.code, reason: error.message });
  };

  Subscription.prototype._retry = function () {
    var self = this;
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(function () { self._subscribe(); }, this.client._delay(this._attempts++));
  };

  Subscription.prototype._end = function (detail) {
    clearTimeout(this._retryTimer);
    this.state = "unsubscribed";
    if (this.client.subscriptions[this.channel] === this) delete this.client.subscriptions[this.channel];
    if (this.options.onUnsubscribed) this.options.onUnsubscribed(detail);
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
    // 2500 and up (insufficient state, expired): subscribe again, recovering from our offset.
    if (detail.code >= 2500) this._retry();
    else this._end(detail);
  };

  Subscription.prototype._connectionLost = function () {
    clearTimeout(this._retryTimer);
    this.state = "unsubscribed";
  };

  Subscription.prototype.unsubscribe = function () {
    var subscribed = this.state !== "unsubscribed";
    if (this.state === "subscribing") this.client._forget(this._pendingId);
    clearTimeout(this._retryTimer);
    this.state = "unsubscribed";
    if (this.client.subscriptions[this.channel] === this) delete this.client.subscriptions[this.channel];
    if (subscribed && this.client.state === CONNECTED) return this.client._call("unsubscribe", { channel: this.channel });
    return Promise.resolve({});
  };

  Subscription.prototype.publish = function (data) { return this.client.publish(this.channel, data); };

  root.FluxerRelay = FluxerRelay;
  if (typeof module !== "undefined" && module.exports) module.exports = FluxerRelay;
})(typeof window !== "undefined" ? window : this);
