// rootcast-client.js — a small client for Centrifugo's client protocol v2 (JSON) over
// WebSocket, written for rootcast's own pages. It has no dependencies and runs in any
// browser with ES modules (and in Node with a WebSocket implementation passed in).
//
//   import { RootcastClient, websocketUrl } from "/static/rootcast-client.js";
//
//   const client = new RootcastClient(websocketUrl());          // anonymous
//   client.addEventListener("connected", (e) => console.log("client id", e.detail.client));
//   const stats = client.subscribe("sys:stats");
//   stats.addEventListener("publication", (e) => render(e.detail.data));
//   client.connect();
//   await client.publish("chat:room", { text: "hi" });
//
// Wire format: every command is one JSON object `{"id":N,"<method>":{…}}`; the reply is
// `{"id":N,"<method>":{…}}` or `{"id":N,"error":{"code":…,"message":…}}`. Several replies
// may share a WebSocket frame, separated by "\n". Asynchronous messages are
// `{"push":{"channel":…,"pub"|"join"|"leave"|"unsubscribe"|…:{…}}}`. The server pings with
// `{}`; when the connect reply says `pong: true` the client answers `{}`. The server ends a
// connection with a WebSocket close code: 3000–3499 and 4000–4499 mean "reconnect",
// 3500–3999 and 4500–4999 mean "do not reconnect".
//
// Client events (`CustomEvent`, payload in `event.detail`):
//   state         {state, previous}             "disconnected" | "connecting" | "connected"
//   connecting    {code, reason}                 a reconnect is scheduled after a loss
//   connected     the connect result            {client, version, ping, pong, data, …}
//   disconnected  {code, reason, reconnect}      terminal: no more reconnects
//   publication   {channel, data, offset, info, tags}   for every channel
//   join / leave  {channel, info}
//   message       {data}                         an async message sent with the server API
//   error         {type, error}                  something failed that has no promise
// Subscription events: state, subscribing {code, reason}, subscribed {recovered,
// wasRecovering, recoverable, epoch, offset, data}, unsubscribed {code, reason},
// publication, join, leave, error.

/** Connection states. */
export const State = Object.freeze({
  DISCONNECTED: "disconnected",
  CONNECTING: "connecting",
  CONNECTED: "connected",
});

/** Subscription states. */
export const SubscriptionState = Object.freeze({
  UNSUBSCRIBED: "unsubscribed",
  SUBSCRIBING: "subscribing",
  SUBSCRIBED: "subscribed",
});

/** Server error codes the client acts on (the full list is in docs/protocol.md). */
export const ErrorCode = Object.freeze({
  INTERNAL: 100,
  UNAUTHORIZED: 101,
  PERMISSION_DENIED: 103,
  TOKEN_EXPIRED: 109,
  TOO_MANY_REQUESTS: 111,
  // Local failures, never sent by a server:
  TIMEOUT: "timeout",
  CONNECTION_CLOSED: "connection closed",
  DISCONNECTED: "disconnected",
});

/** A failed command: `code` is a server error code (number) or one of the local codes. */
export class RootcastError extends Error {
  constructor(code, message, { temporary = false } = {}) {
    super(message ? `${message} (${code})` : String(code));
    this.name = "RootcastError";
    this.code = code;
    this.reason = message ?? "";
    this.temporary = temporary;
  }
}

/** The hub's WebSocket URL for the page's own origin (`ws:` or `wss:`). */
export function websocketUrl(path = "/connection/websocket", location = globalThis.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/** Whether a WebSocket close code from the server allows a reconnect. */
export function closeCodeAllowsReconnect(code) {
  return !((code >= 3500 && code <= 3999) || (code >= 4500 && code <= 4999));
}

/**
 * Delay before reconnect attempt `attempt` (0, 1, …): `min` doubling up to `max`, with
 * "equal jitter" (a random point in the upper half) so that clients dropped together do
 * not come back together.
 */
export function backoffDelay(attempt, min = 500, max = 10_000, random = Math.random) {
  const ceiling = Math.min(max, min * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}

function emit(target, type, detail) {
  target.dispatchEvent(new CustomEvent(type, { detail }));
}

/** A channel subscription, created by `client.subscribe(channel)`. */
export class Subscription extends EventTarget {
  #client;
  #state = SubscriptionState.UNSUBSCRIBED;
  #options;
  // Stream position, kept across reconnects to ask the server for what was missed.
  #recoverable = false;
  #epoch = undefined;
  #offset = 0;
  #waiters = [];
  #retryAttempt = 0;
  #retryTimer = undefined;

  constructor(client, channel, options) {
    super();
    this.#client = client;
    this.channel = channel;
    this.#options = options;
    if (options.since) {
      this.#recoverable = true;
      this.#epoch = options.since.epoch;
      this.#offset = options.since.offset ?? 0;
    }
  }

  get state() {
    return this.#state;
  }

  /** `{offset, epoch}` of the last publication seen, when the stream is recoverable. */
  get position() {
    return this.#recoverable ? { offset: this.#offset, epoch: this.#epoch } : undefined;
  }

  /** Resolves when subscribed; rejects on timeout or when the subscription ends. */
  ready(timeoutMs = 10_000) {
    if (this.#state === SubscriptionState.SUBSCRIBED) return Promise.resolve(this);
    if (this.#state === SubscriptionState.UNSUBSCRIBED) {
      return Promise.reject(new RootcastError(ErrorCode.DISCONNECTED, "not subscribed"));
    }
    return waitFor(this.#waiters, timeoutMs, "subscribe");
  }

  /** Leaves the channel; the client forgets the subscription. Resolves once the server has
   * answered (at once when not connected). */
  unsubscribe() {
    return this.#client._forget(this);
  }

  publish(data) {
    return this.#client.publish(this.channel, data);
  }

  history(options) {
    return this.#client.history(this.channel, options);
  }

  presence() {
    return this.#client.presence(this.channel);
  }

  presenceStats() {
    return this.#client.presenceStats(this.channel);
  }

  // ---- driven by RootcastClient; not for pages ----

  _subscribeRequest() {
    const request = { channel: this.channel };
    const { token, data, recoverable, positioned, joinLeave } = this.#options;
    if (token) request.token = token;
    if (data !== undefined) request.data = data;
    if (recoverable) request.recoverable = true;
    if (positioned) request.positioned = true;
    if (joinLeave) request.join_leave = true;
    if (this.#recoverable && this.#epoch !== undefined) {
      request.recover = true;
      request.epoch = this.#epoch;
      request.offset = this.#offset;
    }
    return request;
  }

  _setSubscribing(code, reason) {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#state === SubscriptionState.SUBSCRIBING) return;
    this.#setState(SubscriptionState.SUBSCRIBING);
    emit(this, "subscribing", { code, reason });
  }

  _setSubscribed(result) {
    this.#retryAttempt = 0;
    if (result.recoverable) {
      this.#recoverable = true;
      this.#epoch = result.epoch ?? "";
      this.#offset = result.offset ?? 0;
    }
    this.#setState(SubscriptionState.SUBSCRIBED);
    settle(this.#waiters, null, this);
    emit(this, "subscribed", {
      channel: this.channel,
      recovered: result.recovered === true,
      wasRecovering: result.was_recovering === true,
      recoverable: result.recoverable === true,
      positioned: result.positioned === true,
      epoch: result.epoch,
      offset: result.offset ?? 0,
      data: result.data,
    });
  }

  _setUnsubscribed(code, reason) {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#state === SubscriptionState.UNSUBSCRIBED) return;
    this.#setState(SubscriptionState.UNSUBSCRIBED);
    settle(this.#waiters, new RootcastError(code, reason));
    emit(this, "unsubscribed", { code, reason });
  }

  /** Retry a failed subscribe later, with the same backoff as reconnects. */
  _scheduleRetry(resubscribe) {
    clearTimeout(this.#retryTimer);
    const delay = backoffDelay(this.#retryAttempt++, this.#client.minDelay, this.#client.maxDelay);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      resubscribe();
    }, delay);
  }

  _deliver(type, detail) {
    // Offsets only move forward (publications recovered on subscribe are older than the
    // top offset the subscribe result already recorded).
    if (type === "publication" && typeof detail.offset === "number" && detail.offset > this.#offset) {
      this.#offset = detail.offset;
    }
    emit(this, type, detail);
  }

  #setState(state) {
    const previous = this.#state;
    this.#state = state;
    emit(this, "state", { state, previous });
  }
}

/**
 * A connection to the hub that reconnects by itself and resubscribes its subscriptions
 * with recovery.
 *
 * Options: `token` (a connection JWT; without one the connection is anonymous),
 * `getToken` (async function returning a fresh token, called when there is none or it
 * expired), `name` (client name sent on connect), `data` (connect data),
 * `minReconnectDelay` / `maxReconnectDelay` (ms, default 500 / 10000), `timeout` (ms for a
 * command reply, default 10000), `maxServerPingDelay` (ms of slack on the server's ping
 * interval before the connection is deemed dead, default 10000), `WebSocket` (constructor,
 * default the global one).
 */
export class RootcastClient extends EventTarget {
  #url;
  #options;
  #WebSocket;
  #token;
  #state = State.DISCONNECTED;
  #ws = null;
  #nextId = 1;
  #pending = new Map(); // command id -> {method, resolve, reject, timer}
  #subscriptions = new Map(); // channel -> Subscription
  #readyWaiters = [];
  #attempt = 0;
  #reconnectTimer = undefined;
  #pingTimer = undefined;
  #pingIntervalMs = 0;
  #answerPings = false;
  #clientId = "";

  constructor(url, options = {}) {
    super();
    this.#url = url;
    this.#options = { name: "rootcast-web", timeout: 10_000, maxServerPingDelay: 10_000, ...options };
    this.#WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.#token = options.token;
    this.minDelay = options.minReconnectDelay ?? 500;
    this.maxDelay = options.maxReconnectDelay ?? 10_000;
  }

  get state() {
    return this.#state;
  }

  /** The server-assigned client ID of the current connection ("" when not connected). */
  get clientId() {
    return this.#clientId;
  }

  /** Starts connecting (and reconnecting after losses) until `disconnect()`. */
  connect() {
    if (this.#state !== State.DISCONNECTED) return;
    this.#attempt = 0;
    this.#setState(State.CONNECTING);
    this.#open();
  }

  /** Closes the connection and stops reconnecting. Subscriptions are kept for `connect()`. */
  disconnect() {
    if (this.#state === State.DISCONNECTED) return;
    this.#teardown(ErrorCode.DISCONNECTED, "disconnect called");
    this.#setState(State.DISCONNECTED);
    settle(this.#readyWaiters, new RootcastError(ErrorCode.DISCONNECTED, "disconnect called"));
    emit(this, "disconnected", { code: 0, reason: "disconnect called", reconnect: false });
  }

  /** Resolves when connected; rejects on timeout or a terminal disconnect. */
  ready(timeoutMs = this.#options.timeout) {
    if (this.#state === State.CONNECTED) return Promise.resolve(this);
    if (this.#state === State.DISCONNECTED) {
      return Promise.reject(new RootcastError(ErrorCode.DISCONNECTED, "client is disconnected"));
    }
    return waitFor(this.#readyWaiters, timeoutMs, "connect");
  }

  /**
   * Subscribes to `channel` (or returns the existing subscription). Options: `recoverable`,
   * `positioned`, `joinLeave` (ask the server for those stream features), `since`
   * ({offset, epoch} to recover from), `token` (subscription token), `data`.
   */
  subscribe(channel, options = {}) {
    let subscription = this.#subscriptions.get(channel);
    if (subscription) return subscription;
    subscription = new Subscription(this, channel, options);
    this.#subscriptions.set(channel, subscription);
    subscription._setSubscribing(0, "subscribe called");
    if (this.#state === State.CONNECTED) this.#sendSubscribe(subscription);
    return subscription;
  }

  getSubscription(channel) {
    return this.#subscriptions.get(channel);
  }

  /** Publishes `data` to `channel`; resolves with the publish result. */
  publish(channel, data) {
    return this.#call("publish", { channel, data });
  }

  /** Calls the server RPC `method`; resolves with the result's `data`. */
  async rpc(method, data) {
    const result = await this.#call("rpc", { method, data });
    return result.data;
  }

  /** `{presence: {clientId: {user, client, …}}}` for `channel`. */
  presence(channel) {
    return this.#call("presence", { channel });
  }

  /** `{num_clients, num_users}` for `channel` (zeros are omitted on the wire). */
  async presenceStats(channel) {
    const result = await this.#call("presence_stats", { channel });
    return { num_clients: result.num_clients ?? 0, num_users: result.num_users ?? 0 };
  }

  /** `{publications, offset, epoch}`; options `limit`, `since` ({offset, epoch}), `reverse`. */
  async history(channel, { limit, since, reverse } = {}) {
    const request = { channel };
    if (limit !== undefined) request.limit = limit;
    if (since) request.since = since;
    if (reverse) request.reverse = true;
    const result = await this.#call("history", request);
    return { publications: result.publications ?? [], offset: result.offset ?? 0, epoch: result.epoch ?? "" };
  }

  /** Sends an async message to the server (no reply). */
  async send(data) {
    await this.ready();
    this.#ws.send(JSON.stringify({ send: { data } }));
  }

  /** Called by `Subscription.unsubscribe()`. */
  async _forget(subscription) {
    if (this.#subscriptions.get(subscription.channel) !== subscription) return;
    this.#subscriptions.delete(subscription.channel);
    const wasSubscribed = subscription.state === SubscriptionState.SUBSCRIBED;
    subscription._setUnsubscribed(0, "unsubscribe called");
    // Also while a subscribe is in flight: the server handles a connection's commands in
    // order, so this unsubscribe lands after it (an error then just means there was none).
    if (this.#state === State.CONNECTED) {
      await this.#command("unsubscribe", { channel: subscription.channel }).catch((error) => {
        if (wasSubscribed) emit(this, "error", { type: "unsubscribe", error });
      });
    }
  }

  // ---- connection lifecycle ----

  #open() {
    let ws;
    try {
      ws = new this.#WebSocket(this.#url);
    } catch (error) {
      emit(this, "error", { type: "transport", error });
      this.#lost(ErrorCode.CONNECTION_CLOSED, String(error));
      return;
    }
    this.#ws = ws;
    ws.onopen = () => {
      if (ws === this.#ws) this.#handshake(ws);
    };
    ws.onmessage = (event) => {
      if (ws === this.#ws) this.#onFrame(ws, event.data);
    };
    ws.onclose = (event) => {
      if (ws === this.#ws) this.#lost(event.code, event.reason);
    };
    // An error is always followed by a close, which is where it is handled.
    ws.onerror = () => {};
  }

  async #handshake(ws) {
    const request = { name: this.#options.name };
    if (this.#options.version) request.version = this.#options.version;
    if (this.#options.data !== undefined) request.data = this.#options.data;
    try {
      if (this.#token === undefined && this.#options.getToken) {
        this.#token = await this.#options.getToken();
      }
      if (ws !== this.#ws) return;
      if (this.#token) request.token = this.#token;
      const result = await this.#command("connect", request, ws);
      if (ws !== this.#ws) return;
      this.#onConnected(result);
    } catch (error) {
      if (ws !== this.#ws) return;
      this.#onConnectFailed(error);
    }
  }

  #onConnected(result) {
    this.#attempt = 0;
    this.#clientId = result.client ?? "";
    this.#pingIntervalMs = (result.ping ?? 0) * 1000;
    this.#answerPings = result.pong === true;
    this.#armPingTimer();
    // Resubscribe before any handler runs: a `subscribe()` called from a handler below
    // sends its own command, and must not be sent twice.
    for (const subscription of this.#subscriptions.values()) this.#sendSubscribe(subscription);
    this.#setState(State.CONNECTED);
    settle(this.#readyWaiters, null, this);
    emit(this, "connected", result);
  }

  #onConnectFailed(error) {
    const code = error instanceof RootcastError ? error.code : ErrorCode.CONNECTION_CLOSED;
    const reason = error instanceof RootcastError ? error.reason : String(error);
    if (code === ErrorCode.TOKEN_EXPIRED && this.#options.getToken) {
      this.#token = undefined; // fetch a new one on the next attempt
      this.#lost(code, reason);
    } else if (typeof code === "number" && !isTemporary(error)) {
      // The server refused this connection (bad token, not allowed): retrying won't help.
      this.#teardown(code, reason);
      this.#setState(State.DISCONNECTED);
      settle(this.#readyWaiters, new RootcastError(code, reason));
      emit(this, "disconnected", { code, reason, reconnect: false });
    } else {
      this.#lost(code, reason);
    }
  }

  /** The transport is gone: reconnect later unless the close code forbids it. */
  #lost(code, reason) {
    this.#teardown(code, reason);
    if (this.#state === State.DISCONNECTED) return;
    if (typeof code === "number" && !closeCodeAllowsReconnect(code)) {
      this.#setState(State.DISCONNECTED);
      settle(this.#readyWaiters, new RootcastError(code, reason));
      emit(this, "disconnected", { code, reason, reconnect: false });
      return;
    }
    this.#setState(State.CONNECTING);
    emit(this, "connecting", { code, reason });
    const delay = backoffDelay(this.#attempt++, this.minDelay, this.maxDelay);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#state === State.CONNECTING) this.#open();
    }, delay);
  }

  /** Drops the socket, fails pending commands, moves subscriptions back to subscribing. */
  #teardown(code, reason) {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    clearTimeout(this.#pingTimer);
    this.#pingTimer = undefined;
    const ws = this.#ws;
    this.#ws = null;
    this.#clientId = "";
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(1000);
    }
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const command of pending) {
      clearTimeout(command.timer);
      command.reject(new RootcastError(ErrorCode.CONNECTION_CLOSED, `connection closed: ${reason}`));
    }
    for (const subscription of this.#subscriptions.values()) {
      subscription._setSubscribing(code, reason);
    }
  }

  /** Closes a connection whose server went silent for longer than its ping interval. */
  #armPingTimer() {
    clearTimeout(this.#pingTimer);
    if (this.#pingIntervalMs <= 0) return;
    const ws = this.#ws;
    this.#pingTimer = setTimeout(() => {
      if (ws === this.#ws) this.#lost(ErrorCode.TIMEOUT, "no ping from server");
    }, this.#pingIntervalMs + this.#options.maxServerPingDelay);
  }

  #setState(state) {
    if (state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    emit(this, "state", { state, previous });
  }

  // ---- commands and replies ----

  async #call(method, request) {
    await this.ready();
    return this.#command(method, request);
  }

  /** Sends one command on `ws` and resolves with the reply's result. */
  #command(method, request, ws = this.#ws) {
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== 1) {
        reject(new RootcastError(ErrorCode.CONNECTION_CLOSED, "not connected"));
        return;
      }
      const id = this.#nextId++;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new RootcastError(ErrorCode.TIMEOUT, `no reply to ${method} in ${this.#options.timeout} ms`));
      }, this.#options.timeout);
      this.#pending.set(id, { method, resolve, reject, timer });
      ws.send(JSON.stringify({ id, [method]: request }));
    });
  }

  #sendSubscribe(subscription) {
    const ws = this.#ws;
    this.#command("subscribe", subscription._subscribeRequest(), ws).then(
      (result) => {
        if (ws !== this.#ws || this.#subscriptions.get(subscription.channel) !== subscription) return;
        subscription._setSubscribed(result);
        for (const publication of result.publications ?? []) {
          this.#deliver("publication", subscription.channel, publication);
        }
      },
      (error) => {
        if (ws !== this.#ws || this.#subscriptions.get(subscription.channel) !== subscription) return;
        emit(subscription, "error", { type: "subscribe", error });
        if (error.code === ErrorCode.CONNECTION_CLOSED) return; // resubscribed on reconnect
        if (isTemporary(error) || error.code === ErrorCode.TIMEOUT) {
          subscription._scheduleRetry(() => {
            if (ws === this.#ws && this.#subscriptions.get(subscription.channel) === subscription) {
              this.#sendSubscribe(subscription);
            }
          });
        } else {
          this.#subscriptions.delete(subscription.channel);
          subscription._setUnsubscribed(error.code, error.reason);
        }
      },
    );
  }

  #onFrame(ws, data) {
    if (typeof data !== "string") return; // binary frames belong to the Protobuf format
    this.#armPingTimer();
    for (const line of data.split("\n")) {
      if (ws !== this.#ws) return; // a handler closed or replaced the connection
      if (line.trim() === "") continue;
      let message;
      try {
        message = JSON.parse(line);
      } catch (error) {
        emit(this, "error", { type: "decode", error });
        continue;
      }
      if (message.id) this.#onReply(message);
      else if (message.push) this.#onPush(message.push);
      else if (this.#answerPings) ws.send("{}"); // `{}` is the server's ping
    }
  }

  #onReply(reply) {
    const command = this.#pending.get(reply.id);
    if (!command) return; // timed out already
    this.#pending.delete(reply.id);
    clearTimeout(command.timer);
    if (reply.error) {
      const { code, message, temporary } = reply.error;
      command.reject(new RootcastError(code, message, { temporary: temporary === true }));
    } else {
      command.resolve(reply[command.method] ?? {});
    }
  }

  #onPush(push) {
    const channel = push.channel ?? "";
    if (push.pub) this.#deliver("publication", channel, push.pub);
    else if (push.join) this.#deliver("join", channel, push.join);
    else if (push.leave) this.#deliver("leave", channel, push.leave);
    else if (push.message) emit(this, "message", { data: push.message.data });
    else if (push.unsubscribe) this.#onServerUnsubscribe(channel, push.unsubscribe);
    else if (push.disconnect) {
      const { code = 0, reason = "" } = push.disconnect;
      this.#lost(code, reason);
    }
  }

  #deliver(type, channel, payload) {
    const detail =
      type === "publication"
        ? { channel, data: payload.data, offset: payload.offset ?? 0, info: payload.info, tags: payload.tags }
        : { channel, info: payload.info };
    this.#subscriptions.get(channel)?._deliver(type, detail);
    emit(this, type, detail);
  }

  /** Codes below 2500 end the subscription; from 2500 on the client subscribes again. */
  #onServerUnsubscribe(channel, { code = 0, reason = "" }) {
    const subscription = this.#subscriptions.get(channel);
    if (!subscription) return;
    if (code < 2500) {
      this.#subscriptions.delete(channel);
      subscription._setUnsubscribed(code, reason);
    } else {
      subscription._setSubscribing(code, reason);
      this.#sendSubscribe(subscription);
    }
  }
}

function isTemporary(error) {
  return (
    error instanceof RootcastError &&
    (error.temporary || error.code === ErrorCode.INTERNAL || error.code === ErrorCode.TOO_MANY_REQUESTS)
  );
}

/** A promise settled by `settle(waiters, …)` or rejected after `timeoutMs`. */
function waitFor(waiters, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const waiter = { resolve, reject };
    waiter.timer = setTimeout(() => {
      const at = waiters.indexOf(waiter);
      if (at >= 0) waiters.splice(at, 1);
      reject(new RootcastError(ErrorCode.TIMEOUT, `${what} not done in ${timeoutMs} ms`));
    }, timeoutMs);
    waiters.push(waiter);
  });
}

function settle(waiters, error, value) {
  for (const waiter of waiters.splice(0)) {
    clearTimeout(waiter.timer);
    if (error) waiter.reject(error);
    else waiter.resolve(value);
  }
}
