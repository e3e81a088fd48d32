// afw-client.js: the browser (and Node) client of afw-gateway. One ES module, no build step,
// no dependencies. It keeps one WebSocket open, reconnects by itself with exponential backoff
// and full jitter, and delivers each subscribed session's events exactly once, in seq order,
// across reconnects, gateway restarts and page reloads:
//
//   import { connect } from '/afw-client.js';
//   const client = connect(location.origin, { token });   // an API key, or a token
//   // or, with tokens that expire: called before each connection and before each expiry
//   const client = connect(location.origin, { getToken: () => fetch('/my-token').then((r) => r.text()) });
//   client.on('state', (state, info) => console.log(state, info.instanceId));
//   const sub = client.subscribe('session-1', (event, { seq, epoch, recovered }) => {
//     console.log(seq, event.type);
//   }, { onChain: (chain) => {}, onCommand: (command) => {} });
//   sub.close();
//
// How exactness is kept: every event carries its session's `seq` (1, 2, 3, ... per stream)
// and `epoch` (which changes when the stream starts again from nothing). The client drops a
// seq it has already delivered; on a gap, or when the gateway answers a resume with
// `recovered:false`, it reads the missing events with `GET /api/events/:id?after=` (paged with
// `nextAfter`) and holds later live events until the gap is filled. Positions are kept in
// `sessionStorage` (or the `storage` option) so that a new page resumes where the last left off.

const SAVE_EVERY_MS = 200;

const DEFAULTS = {
  minDelayMs: 250, // first reconnect waits up to this (full jitter)...
  maxDelayMs: 10_000, // ...doubling per failed attempt up to this cap
  pingEveryMs: 20_000, // an application ping this often...
  deadAfterMs: 50_000, // ...and a connection silent this long is treated as lost
  connectTimeoutMs: 10_000, // an opening handshake that takes longer is abandoned
  pageLimit: 1000, // events per GET when filling a gap
  refreshBeforeMs: 30_000, // with getToken: a fresh token this long before expiry (or at half its life)
};

/** An API answer that was not 2xx: `code` is the gateway's stable error code. */
export class AfwError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.name = 'AfwError';
    this.status = status;
    this.code = (body && body.error) || 'http_error';
    this.details = body && body.details;
    // The whole answer: a 409 names what won (a permission's decision, a lock's holder).
    this.body = body;
  }
}

class Emitter {
  constructor() {
    this._handlers = new Map();
  }
  /** Calls `fn` on every `name`; returns a function that stops it. */
  on(name, fn) {
    if (!this._handlers.has(name)) this._handlers.set(name, new Set());
    this._handlers.get(name).add(fn);
    return () => this._handlers.get(name)?.delete(fn);
  }
  _emit(name, ...args) {
    for (const fn of this._handlers.get(name) ?? []) {
      try {
        fn(...args);
      } catch (e) {
        reportCallbackError(e);
      }
    }
  }
}

function reportCallbackError(e) {
  // A failing callback must not break delivery to the others, nor the client's state.
  setTimeout(() => {
    throw e;
  });
}

/** Opens a client of the gateway at `baseUrl` (default: this page's origin). */
export function connect(baseUrl, options = {}) {
  return new AfwClient(baseUrl, options);
}

export class AfwClient extends Emitter {
  constructor(baseUrl, options = {}) {
    super();
    const origin = baseUrl ?? globalThis.location?.origin;
    if (!origin) throw new TypeError('afw-client: connect(baseUrl) needs a base URL');
    this.baseUrl = String(origin).replace(/\/+$/, '');
    this.token = options.token ?? null;
    // With getToken the credentials travel in an `auth` message (never in the URL), are
    // fetched afresh for each connection, and are renewed before they expire.
    this._getToken = typeof options.getToken === 'function' ? options.getToken : null;
    this.expiresAt = null;
    this.options = { ...DEFAULTS, ...options };
    this._WebSocket = 'WebSocket' in options ? options.WebSocket : globalThis.WebSocket;
    if (typeof this._WebSocket !== 'function') {
      throw new TypeError(
        'afw-client: no WebSocket here; pass one: connect(url, { WebSocket }) ' +
          "(Node 20: run with --experimental-websocket, or import WebSocket from 'ws')",
      );
    }
    this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.storage =
      options.storage !== undefined ? options.storage : (globalThis.sessionStorage ?? null);
    /** `connecting | connected | reconnecting | closed` */
    this.state = 'connecting';
    this.instanceId = null;
    this.clientId = null;
    this.lastClose = null;
    this._subs = new Map();
    this._attempt = 0;
    this._ws = null;
    this._timers = new Set();
    this._closed = false;
    this._lastHeard = 0;
    this._open();
    // A page that goes away writes its positions first, so the next page resumes exactly.
    globalThis.addEventListener?.('pagehide', () => {
      for (const sub of this._subs.values()) sub._flush();
    });
  }

  /** Subscribes to a session's events: `onEvent(event, {seq, epoch, recovered, replayed})`.
   * Options: `from` (`'stored'` (default: resume from the remembered position, else the
   * start), `'start'`, `'now'`, or `{seq, epoch}`), and callbacks `onChain(chain)`,
   * `onCommand(command)`, `onStatus(status)`, `onReset({epoch, previousEpoch})`,
   * `onGap({from, to})` (events the gateway no longer has), `onUnsubscribed(reason)`,
   * `onError(error)`. */
  subscribe(sessionId, onEvent, options = {}) {
    if (typeof sessionId !== 'string' || !sessionId) {
      throw new TypeError('afw-client: subscribe(sessionId) needs a session id');
    }
    this._subs.get(sessionId)?.close();
    const sub = new Subscription(this, sessionId, onEvent, options);
    this._subs.set(sessionId, sub);
    if (this.state === 'connected') sub._send();
    return sub;
  }

  /** A fetch of the gateway's HTTP API with the client's credentials. */
  fetch(path, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (init.body !== undefined && typeof init.body !== 'string') {
      headers['content-type'] = 'application/json';
      init = { ...init, body: JSON.stringify(init.body) };
    }
    return this._fetch(this.baseUrl + path, { ...init, headers });
  }

  /** `fetch`, then the JSON answer; throws an `AfwError` on anything but 2xx. */
  async api(path, init = {}) {
    const res = await this.fetch(path, init);
    const text = await res.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = { error: 'bad_response', message: text.slice(0, 200) };
    }
    if (!res.ok) throw new AfwError(res.status, body);
    return body;
  }

  /** Closes the connection for good. */
  close() {
    for (const sub of this._subs.values()) sub._flush();
    this._closed = true;
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    clearInterval(this._pinger);
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      detach(ws);
      try {
        ws.close(1000, 'client closed');
      } catch {}
    }
    this._setState('closed', {});
  }

  _setState(state, info) {
    this.state = state;
    this._emit('state', state, { instanceId: this.instanceId, ...info });
  }

  _later(ms, fn) {
    const t = setTimeout(() => {
      this._timers.delete(t);
      fn();
    }, ms);
    this._timers.add(t);
    return t;
  }

  _wsUrl() {
    const url = new URL(this.baseUrl + '/ws');
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    if (this.token && !this._getToken) url.searchParams.set('token', this.token);
    return url.toString();
  }

  /** A token from `getToken`, or null (reported as an `error` event) when it fails. */
  async _freshToken() {
    try {
      const token = await this._getToken();
      if (typeof token !== 'string' || !token) throw new TypeError('getToken gave no token');
      this.token = token;
      return token;
    } catch (e) {
      this._emit('error', { type: 'error', code: 'get_token_failed', payload: { message: String(e?.message ?? e) } });
      return null;
    }
  }

  _open() {
    if (this._closed) return;
    if (!this._getToken) return this._openSocket();
    this._freshToken().then((token) => {
      if (this._closed) return;
      if (token) this._openSocket();
      else this._lost({ code: 4001, reason: 'no token' });
    });
  }

  /** Renews the connection's credentials before they expire (`auth_ok`'s `expiresAt`). */
  _scheduleRefresh(expiresAt) {
    clearTimeout(this._refresher);
    this._timers.delete(this._refresher);
    this.expiresAt = expiresAt ?? null;
    const at = expiresAt ? Date.parse(expiresAt) : NaN;
    if (!this._getToken || !Number.isFinite(at)) return;
    const left = at - Date.now();
    const wait = Math.max(0, left - Math.min(this.options.refreshBeforeMs, left / 2));
    const ws = this._ws;
    this._refresher = this._later(wait, async () => {
      const token = await this._freshToken();
      if (this._ws !== ws) return;
      if (token) this._send({ type: 'auth', token });
      else this._scheduleRefresh(new Date(Math.max(at, Date.now() + 2000)).toISOString());
    });
  }

  _openSocket() {
    let ws;
    try {
      ws = new this._WebSocket(this._wsUrl());
    } catch (e) {
      this._lost({ code: 1006, reason: String(e?.message ?? e) });
      return;
    }
    this._ws = ws;
    const opening = this._later(this.options.connectTimeoutMs, () => {
      if (this._ws === ws && this.state !== 'connected') this._drop(ws, 4000, 'connect timeout');
    });
    ws.onopen = () => {
      clearTimeout(opening);
      this._timers.delete(opening);
      this._lastHeard = Date.now();
    };
    ws.onmessage = (m) => {
      if (this._ws !== ws) return;
      this._lastHeard = Date.now();
      let msg;
      try {
        msg = JSON.parse(typeof m.data === 'string' ? m.data : String(m.data));
      } catch {
        return;
      }
      this._onMessage(msg);
    };
    ws.onerror = () => {};
    ws.onclose = (e) => {
      if (this._ws !== ws) return;
      this._lost({ code: e.code, reason: e.reason });
    };
  }

  /** Gives up on a connection that is not answering, without waiting for its close. */
  _drop(ws, code, reason) {
    detach(ws);
    try {
      ws.close(code, reason);
    } catch {}
    if (this._ws === ws) this._lost({ code, reason });
  }

  _lost(close) {
    this._ws = null;
    this._authing = false;
    clearInterval(this._pinger);
    clearTimeout(this._refresher);
    this.lastClose = close;
    if (this._closed) return;
    for (const sub of this._subs.values()) sub._disconnected();
    // A gateway going away (1001) asks for an immediate reconnect elsewhere; anything else
    // backs off: a random wait up to min(cap, base * 2^attempt).
    const ceiling = Math.min(
      this.options.maxDelayMs,
      this.options.minDelayMs * 2 ** Math.min(this._attempt, 20),
    );
    const delayMs = Math.round(Math.random() * (close.code === 1001 ? this.options.minDelayMs : ceiling));
    this._attempt += 1;
    this._setState('reconnecting', { ...close, attempt: this._attempt, delayMs });
    this._later(delayMs, () => this._open());
  }

  _send(msg) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  _onMessage(msg) {
    const sub = msg.sessionId !== undefined ? this._subs.get(msg.sessionId) : undefined;
    switch (msg.type) {
      case 'event':
        sub?._frame(msg);
        break;
      case 'subscription_confirmed':
        if (msg.sessionId === undefined) return this._greeted(msg.payload ?? {});
        sub?._confirmed(msg.payload ?? {});
        break;
      case 'auth_ok':
        this._scheduleRefresh(msg.expiresAt);
        if (this._authing) {
          this._authing = false;
          this._ready();
        }
        break;
      case 'chain':
        sub?._call('onChain', msg.payload);
        this._emit('chain', msg.payload, msg.sessionId);
        break;
      case 'command':
        sub?._call('onCommand', msg.payload);
        this._emit('command', msg.payload, msg.sessionId);
        break;
      case 'unsubscribed':
        if (sub && msg.payload?.reason !== 'client' && msg.reason !== 'client') {
          sub._unsubscribed(msg.reason ?? msg.payload?.reason);
        }
        break;
      case 'error':
        if (sub) sub._call('onError', msg);
        this._emit('error', msg);
        break;
      default:
        break;
    }
  }

  _greeted(payload) {
    this.instanceId = payload.instanceId ?? null;
    this.clientId = payload.clientId ?? null;
    if (this._getToken) {
      // Nothing is served before the credentials: subscribe once they are taken.
      this._authing = true;
      this._send({ type: 'auth', token: this.token });
      return;
    }
    this._ready();
  }

  _ready() {
    const resumed = this._attempt > 0;
    this._attempt = 0;
    this._setState('connected', { clientId: this.clientId, resumed });
    clearInterval(this._pinger);
    const ws = this._ws;
    this._pinger = setInterval(() => {
      if (this._ws !== ws) return;
      if (Date.now() - this._lastHeard > this.options.deadAfterMs) {
        this._drop(ws, 4000, 'no answer');
      } else {
        this._send({ type: 'ping' });
      }
    }, this.options.pingEveryMs);
    this._pinger.unref?.();
    for (const sub of this._subs.values()) sub._send();
  }
}

function detach(ws) {
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
}

/** One session's stream. `status` says how it stands: `subscribing`, `live`, `resumed`
 * (exactly, by the gateway's replay), `reloading` / `reloaded` (read again over HTTP after
 * the gateway could not replay exactly), `disconnected`, `closed`. */
export class Subscription {
  constructor(client, sessionId, onEvent, options) {
    this.client = client;
    this.sessionId = sessionId;
    this.onEvent = onEvent;
    this.options = options;
    this.lastSeq = null;
    this.epoch = null;
    this.headSeq = null;
    this.status = 'subscribing';
    this.delivered = 0;
    this.duplicatesDropped = 0;
    this.reloads = 0;
    this._closed = false;
    this._filling = false;
    this._fillTarget = 0;
    this._fillExact = true;
    this._pending = [];
    this._replayUntil = 0;
    this._key = `afw-client:${client.baseUrl}:${sessionId}`;
    const from = options.from ?? 'stored';
    if (from && typeof from === 'object') {
      this._position(from.seq, from.epoch);
    } else if (from === 'stored') {
      const stored = this._load();
      if (stored) this._position(stored.seq, stored.epoch);
      else this.lastSeq = 0;
    } else if (from === 'start') {
      this.lastSeq = 0;
    }
  }

  /** Stops the stream. The remembered position is kept, so a later page can resume. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._flush();
    this._pending = [];
    this._setStatus('closed');
    if (this.client._subs.get(this.sessionId) === this) {
      this.client._subs.delete(this.sessionId);
      this.client._send({ type: 'unsubscribe', sessionId: this.sessionId });
    }
  }

  _position(seq, epoch) {
    this.lastSeq = Number.isSafeInteger(seq) && seq >= 0 ? seq : 0;
    this.epoch = typeof epoch === 'string' ? epoch : null;
  }

  _load() {
    try {
      const raw = this.client.storage?.getItem(this._key);
      const v = raw ? JSON.parse(raw) : null;
      return v && Number.isSafeInteger(v.seq) ? v : null;
    } catch {
      return null;
    }
  }

  // Written at most every SAVE_EVERY_MS (storage writes are synchronous), and at once when
  // the subscription or the page closes, so a reload resumes exactly.
  _save() {
    if (this._saveTimer) return;
    this._saveTimer = setTimeout(() => this._flush(), SAVE_EVERY_MS);
  }

  _flush() {
    clearTimeout(this._saveTimer);
    this._saveTimer = null;
    if (this.lastSeq === null) return;
    try {
      this.client.storage?.setItem(this._key, JSON.stringify({ seq: this.lastSeq, epoch: this.epoch }));
    } catch {}
  }

  _call(name, ...args) {
    const fn = this.options[name];
    if (typeof fn !== 'function') return;
    try {
      fn(...args);
    } catch (e) {
      reportCallbackError(e);
    }
  }

  _setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this._call('onStatus', status, this);
  }

  _send() {
    if (this._closed) return;
    const msg = { type: 'subscribe', sessionId: this.sessionId };
    if (this.lastSeq !== null) msg.since = this.lastSeq;
    if (this.lastSeq !== null && this.epoch) msg.epoch = this.epoch;
    this._asked = msg;
    this._setStatus('subscribing');
    this.client._send(msg);
  }

  _disconnected() {
    if (!this._closed) this._setStatus('disconnected');
  }

  _unsubscribed(reason) {
    this._closed = true;
    this.client._subs.delete(this.sessionId);
    this._setStatus('closed');
    this._call('onUnsubscribed', reason);
  }

  /** Follows the stream into `epoch`. A new epoch means the stream started again from
   * nothing, so positions start again from 0; `null` (the gateway has no stream for the
   * session yet) becomes whichever epoch comes first, without a reset. */
  _adopt(epoch) {
    epoch = epoch ?? null;
    if (epoch === this.epoch) return;
    const previousEpoch = this.epoch;
    this.epoch = epoch;
    if (previousEpoch === null && this.lastSeq === 0) return;
    this.lastSeq = 0;
    this._save();
    this._call('onReset', { epoch, previousEpoch });
  }

  _confirmed(p) {
    if (this._closed) return;
    this.headSeq = p.headSeq ?? 0;
    if (this.lastSeq === null) {
      this._wasConfirmed = true;
      // Asked for live events only: they continue from the head.
      this.epoch = p.epoch ?? null;
      this.lastSeq = this.headSeq;
      this._save();
      this._setStatus('live');
      return;
    }
    this._adopt(p.epoch);
    // Resumed: a stream taken up again, after a reconnect or from a remembered position.
    const resumed = this._wasConfirmed || this._asked?.since > 0;
    this._wasConfirmed = true;
    if (p.recovered) {
      // The gateway replays every event after `since`, then goes on live.
      this._replayUntil = this.headSeq;
      this._setStatus(resumed ? 'resumed' : 'live');
      return;
    }
    // The gateway cannot replay exactly (trimmed, expired, another epoch): read what it has.
    this.reloads += 1;
    this._fillExact = false;
    this._fill(this.headSeq);
  }

  _frame(msg) {
    if (this._closed) return;
    if (this._filling) {
      this._pending.push(msg);
      return;
    }
    // A new epoch: the stream started again (deleted and made again, or the store lost it).
    this._adopt(msg.epoch);
    const seq = msg.seq;
    if (seq <= this.lastSeq) {
      this.duplicatesDropped += 1;
      return;
    }
    if (seq === this.lastSeq + 1) {
      this._deliver(msg.payload, seq, true);
      return;
    }
    // A gap: hold this event and everything after it until the missing ones are read.
    this._pending.push(msg);
    this._fillExact = true;
    this._fill(seq - 1);
  }

  _deliver(event, seq, recovered) {
    this.lastSeq = seq;
    this.delivered += 1;
    this._save();
    if (typeof this.onEvent === 'function') {
      try {
        this.onEvent(event, { seq, epoch: this.epoch, recovered, replayed: seq <= this._replayUntil });
      } catch (e) {
        reportCallbackError(e);
      }
    }
  }

  async _fill(target) {
    this._fillTarget = Math.max(this._fillTarget, target);
    if (this._filling) return;
    this._filling = true;
    if (!this._fillExact) this._setStatus('reloading');
    let failures = 0;
    while (!this._closed && this.lastSeq < this._fillTarget) {
      let page;
      try {
        const q = `after=${this.lastSeq}&limit=${this.client.options.pageLimit}`;
        page = await this.client.api(`/api/events/${encodeURIComponent(this.sessionId)}?${q}`);
      } catch (e) {
        if (this._closed || this.client._closed) break;
        if (e instanceof AfwError && e.status === 404) break;
        failures += 1;
        const wait = Math.random() * Math.min(this.client.options.maxDelayMs, 250 * 2 ** failures);
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      failures = 0;
      if (this._closed) break;
      if ((page.epoch ?? null) !== this.epoch) {
        this._adopt(page.epoch);
        this._fillTarget = page.headSeq ?? 0;
        continue;
      }
      const before = this.lastSeq;
      for (const e of page.events ?? []) {
        if (e.seq <= this.lastSeq) continue;
        if (e.seq > this.lastSeq + 1) {
          // Older than what the gateway still keeps: these are gone for good.
          this._fillExact = false;
          this._call('onGap', { from: this.lastSeq + 1, to: e.seq - 1 });
        }
        this._deliver(e, e.seq, this._fillExact);
      }
      // Nothing newer is stored: whatever was asked for beyond this was never kept.
      if (this.lastSeq === before && page.nextAfter == null) break;
    }
    this._filling = false;
    this._fillTarget = 0;
    if (this._closed) return;
    this._setStatus(this._fillExact ? 'resumed' : 'reloaded');
    this._fillExact = true;
    const held = this._pending;
    this._pending = [];
    for (const msg of held) this._frame(msg);
  }
}
