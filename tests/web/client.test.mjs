// afw-client.js against real gateway processes: exact delivery across a gateway restart, a
// 4008 close, a trimmed history and more than a page of missed events; tokens that expire,
// renewed by getToken without a reconnect.
// Run: node --experimental-websocket --test tests/web/client.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../web-demo/afw-client.js';
import { execFileSync } from 'node:child_process';
import { Gateway, GATEWAY_BIN, Redis, Proxy, memoryStorage, until } from './support.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});
function owned(x) {
  cleanup.push(() => x.stop?.() ?? x.close?.());
  return x;
}

/** A subscription that records what it is given. */
function watch(client, sessionId, options = {}) {
  const seen = { seqs: [], metas: [], events: [], statuses: [], resets: [], gaps: [] };
  seen.sub = client.subscribe(
    sessionId,
    (event, meta) => {
      seen.seqs.push(meta.seq);
      seen.metas.push(meta);
      seen.events.push(event);
    },
    {
      ...options,
      onStatus: (s) => seen.statuses.push(s),
      onReset: (r) => seen.resets.push(r),
      onGap: (g) => seen.gaps.push(g),
    },
  );
  return seen;
}

function states(client) {
  const seen = [];
  client.on('state', (state, info) => seen.push({ state, ...info }));
  return seen;
}

/** Seqs `from..=to`, each once, in order. */
function range(from, to) {
  return Array.from({ length: to - from + 1 }, (_, k) => from + k);
}

test('delivers live events in seq order and reports the instance', async () => {
  const gw = owned(await Gateway.start());
  const client = owned(connect(gw.url));
  const st = states(client);
  await until('connected', () => client.state === 'connected');
  assert.equal(client.instanceId, gw.instanceId);
  assert.equal(st[0].state, 'connected');
  const seen = watch(client, 'live-1');
  await until('subscribed', () => seen.sub.status === 'live');
  await gw.postEvents('live-1', 50);
  await until('50 events', () => seen.seqs.length === 50);
  assert.deepEqual(seen.seqs, range(1, 50));
  assert.deepEqual(seen.events.map((e) => e.i), range(0, 49));
  assert.ok(seen.metas.every((m) => m.recovered && m.epoch === seen.metas[0].epoch));
  client.close();
  assert.equal(client.state, 'closed');
});

test('events the gateway sends again are dropped, not delivered twice', async () => {
  const gw = owned(await Gateway.start());
  const client = owned(connect(gw.url, { storage: memoryStorage() }));
  const seen = watch(client, 'dup-1');
  await gw.postEvents('dup-1', 20);
  await until('20 events', () => seen.seqs.length === 20);
  // The same subscription asked again from the start: the gateway replays 1..20 on this
  // connection, as it does after any resubscribe that overlaps what was delivered.
  client._send({ type: 'subscribe', sessionId: 'dup-1', since: 0, epoch: seen.sub.epoch });
  await until('the replay to be dropped', () => seen.sub.duplicatesDropped === 20);
  await gw.postEvents('dup-1', 5, { from: 20 });
  await until('25 events', () => seen.seqs.length === 25);
  assert.deepEqual(seen.seqs, range(1, 25));
});

test('resumes exactly across a restart of its gateway while another instance takes events', async () => {
  const redis = owned(await Redis.start());
  const env = { REDIS_URL: redis.url };
  let a = await Gateway.start({ env });
  cleanup.push(() => a.stop());
  const b = owned(await Gateway.start({ env }));
  const client = owned(connect(a.url, { storage: memoryStorage() }));
  const st = states(client);
  const seen = watch(client, 'restart-1');
  await b.postEvents('restart-1', 20);
  await until('the first 20', () => seen.seqs.length === 20);
  const firstInstance = client.instanceId;

  await a.stop();
  await until('reconnecting', () => client.state === 'reconnecting');
  assert.equal(st.find((s) => s.state === 'reconnecting').code, 1001, 'shutdown closes with 1001');
  await b.postEvents('restart-1', 30, { from: 20 });
  a = await a.restart();
  await until('reconnected', () => client.state === 'connected');
  await b.postEvents('restart-1', 10, { from: 50 });
  await until('all 60', () => seen.seqs.length >= 60);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(seen.seqs, range(1, 60), 'every event once, in order');
  assert.deepEqual(seen.events.map((e) => e.i), range(0, 59));
  assert.notEqual(client.instanceId, firstInstance, 'a new process');
  assert.ok(seen.statuses.includes('resumed'), `statuses: ${seen.statuses}`);
  assert.equal(seen.resets.length, 0, 'the same epoch');
  assert.ok(seen.metas.every((m) => m.recovered));
});

test('a 4008 close (slow consumer) is followed by an exact resume', async () => {
  const gw = owned(
    await Gateway.start({
      env: { WS_OUTBOUND_LIMIT_BYTES: '65536', MAX_EVENT_BYTES: '65536', MAX_BATCH_BYTES: '1048576', WS_WRITE_TIMEOUT_SECS: '1' },
    }),
  );
  const proxy = owned(await Proxy.start(gw.port));
  const client = owned(connect(proxy.url, { storage: memoryStorage() }));
  const st = states(client);
  const seen = watch(client, 'slow-1');
  await until('subscribed', () => seen.sub.status === 'live');
  proxy.stall();
  // 16 MB: more than the kernel's socket buffers and the outbound limit together.
  await gw.postEvents('slow-1', 2000, { pad: 8000 });
  proxy.resume();
  await until('a 4008 close', () => st.some((s) => s.state === 'reconnecting' && s.code === 4008), 30_000);
  await until('all 2000', () => seen.seqs.length >= 2000, 30_000);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(seen.seqs, range(1, 2000));
  assert.ok(seen.statuses.includes('resumed'), `statuses: ${seen.statuses}`);
});

test('a trimmed history answers recovered:false; a reloaded page reads what is kept and says what was lost', async () => {
  const gw = owned(await Gateway.start({ env: { MAX_EVENTS_PER_SESSION: '100' } }));
  const storage = memoryStorage();
  const first = connect(gw.url, { storage });
  const one = watch(first, 'trim-1');
  await gw.postEvents('trim-1', 10);
  await until('the first 10', () => one.seqs.length === 10);
  first.close();

  await gw.postEvents('trim-1', 300, { from: 10 });
  // The same storage is what a reload of the page finds.
  const second = owned(connect(gw.url, { storage }));
  const two = watch(second, 'trim-1');
  await until('the kept 100', () => two.seqs.length === 100);
  assert.deepEqual(two.seqs, range(211, 310));
  assert.deepEqual(two.gaps, [{ from: 11, to: 210 }]);
  assert.ok(two.metas.every((m) => m.recovered === false));
  await until('reloaded', () => two.sub.status === 'reloaded');
  await gw.postEvents('trim-1', 1, { from: 310 });
  await until('live again', () => two.seqs.length === 101);
  assert.equal(two.seqs.at(-1), 311);
  assert.equal(two.metas.at(-1).recovered, true);
});

test('more than 1,000 missed events: replayed exactly over the socket, or read in pages', async () => {
  const gw = owned(await Gateway.start({ env: { MAX_EVENTS_PER_SESSION: '2500' } }));
  const proxy = owned(await Proxy.start(gw.port));
  let reads = 0;
  const countingFetch = (url, init) => {
    if (String(url).includes('/api/events/')) reads += 1;
    return fetch(url, init);
  };
  const client = owned(connect(proxy.url, { storage: memoryStorage(), fetch: countingFetch }));
  const seen = watch(client, 'many-1');
  await gw.postEvents('many-1', 10);
  await until('the first 10', () => seen.seqs.length === 10);

  // Cut off while 1,500 are posted: the gateway still has them all and replays them.
  proxy.server.close();
  proxy.cut();
  await until('reconnecting', () => client.state === 'reconnecting');
  await gw.postEvents('many-1', 1500, { from: 10 });
  proxy.server.listen(proxy.port, '127.0.0.1');
  await until('1,510', () => seen.seqs.length === 1510);
  assert.deepEqual(seen.seqs, range(1, 1510));
  assert.equal(reads, 0, 'an exact replay needs no HTTP read');

  // Cut off while 2,600 are posted: the oldest are trimmed, so the client reads what is left
  // (2,500 events) over HTTP, 1,000 at a time.
  proxy.server.close();
  proxy.cut();
  await until('reconnecting', () => client.state === 'reconnecting');
  await gw.postEvents('many-1', 2600, { from: 1510 });
  proxy.server.listen(proxy.port, '127.0.0.1');
  await until('the kept 2,500', () => seen.seqs.length === 1510 + 2500, 30_000);
  assert.deepEqual(seen.seqs.slice(1510), range(1611, 4110));
  assert.deepEqual(seen.gaps, [{ from: 1511, to: 1610 }]);
  assert.ok(reads >= 3, `${reads} pages`);
});

test('a gateway that lost its store starts a new epoch: the stream restarts from seq 1', async () => {
  let gw = await Gateway.start();
  cleanup.push(() => gw.stop());
  const client = owned(connect(gw.url, { storage: memoryStorage() }));
  const seen = watch(client, 'epoch-1');
  await gw.postEvents('epoch-1', 5);
  await until('5', () => seen.seqs.length === 5);
  const oldEpoch = seen.metas[0].epoch;
  gw = await gw.restart(); // the embedded store starts empty
  await until('reconnected', () => client.state === 'connected');
  await gw.postEvents('epoch-1', 3);
  await until('3 more', () => seen.seqs.length === 8);
  assert.deepEqual(seen.seqs, [1, 2, 3, 4, 5, 1, 2, 3]);
  assert.equal(seen.resets.length, 1);
  assert.equal(seen.resets[0].previousEpoch, oldEpoch);
  assert.notEqual(seen.metas.at(-1).epoch, oldEpoch);
});

test('without a WebSocket implementation it says how to pass one', () => {
  assert.throws(
    () => connect('http://127.0.0.1:1', { WebSocket: null, storage: null }),
    /pass one/,
  );
});

test('with getToken, tokens that expire are renewed in band: one connection, every event once', async () => {
  const secret = 'a-test-secret-of-at-least-32-bytes!';
  const gw = owned(
    await Gateway.start({ env: { AFW_JWT_SECRET: secret, WS_AUTH_GRACE_SECS: '1', AFW_JWT_LEEWAY_SECS: '0' } }),
  );
  let asked = 0;
  // Tokens of 3 s, signed by the gateway's own command as an application's backend would.
  const getToken = async () => {
    asked += 1;
    return execFileSync(GATEWAY_BIN, ['token', '--sub', 'ada', '--role', 'agent', '--ttl', '3'], {
      env: { ...process.env, AFW_JWT_SECRET: secret },
    })
      .toString()
      .trim();
  };
  const client = owned(connect(gw.url, { getToken, storage: memoryStorage() }));
  const st = states(client);
  const seen = watch(client, 'renewed');
  await until('subscribed', () => seen.sub.status === 'live');
  const sent = [];
  for (let i = 0; i < 14; i += 1) {
    await client.api('/api/events', { method: 'POST', body: { sessionId: 'renewed', type: 't', i } });
    sent.push(i);
    await new Promise((r) => setTimeout(r, 500));
  }
  await until('14 events', () => seen.seqs.length === 14);
  assert.deepEqual(seen.seqs, range(1, 14));
  assert.ok(asked >= 3, `getToken was asked ${asked} times in 7 s of 3 s tokens`);
  assert.deepEqual(
    st.map((s) => s.state),
    ['connected'],
    'one connection throughout: no 1008, no reconnect',
  );
  assert.ok(Date.parse(client.expiresAt) > Date.now(), client.expiresAt);
  client.close();
});

test('a token that is refused is asked for again on the next connection', async () => {
  const secret = 'a-test-secret-of-at-least-32-bytes!';
  const gw = owned(await Gateway.start({ env: { AFW_JWT_SECRET: secret } }));
  const tokens = ['not-a-token', null];
  let asked = 0;
  const getToken = async () => {
    asked += 1;
    if (tokens.length && tokens[0] !== null) return tokens.shift();
    return execFileSync(GATEWAY_BIN, ['token', '--sub', 'ada', '--ttl', '1h'], {
      env: { ...process.env, AFW_JWT_SECRET: secret },
    })
      .toString()
      .trim();
  };
  const client = owned(connect(gw.url, { getToken, storage: null, minDelayMs: 10 }));
  const errors = [];
  client.on('error', (e) => errors.push(e.code));
  await until('connected with the second token', () => client.state === 'connected');
  assert.equal(asked, 2);
  assert.deepEqual(errors, ['invalid_token']);
  client.close();
});
