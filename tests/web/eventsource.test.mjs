// A session's stream in headless Chromium's own EventSource, credentials in ?token= (a browser
// cannot send a header there): its gateway is restarted while events keep coming through
// another instance on the same Redis, and the browser reconnects by itself with Last-Event-ID;
// every event arrives once, in order, both as the gateway's messages and as AG-UI events.
// Run: node --test tests/web/eventsource.test.mjs (Chromium at AFW_CHROMIUM or /usr/bin/chromium)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { Gateway, Redis, until } from './support.mjs';

const CHROMIUM = process.env.AFW_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const AGENT = 'agent-key-0123456789';
const VIEWER = 'viewer-key-0123456789';
const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

test('EventSource in Chromium resumes across a restart of its gateway with every event once', async () => {
  const redis = await Redis.start();
  cleanup.push(() => redis.stop());
  const env = { REDIS_URL: redis.url, AFW_API_KEYS: `default:${AGENT}:agent,default:${VIEWER}:viewer` };
  let watched = await Gateway.start({ env });
  const other = await Gateway.start({ env });
  cleanup.push(() => watched.stop(), () => other.stop());
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  cleanup.push(() => browser.close());
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(`${watched.url}/health`);

  const sid = 'es-restart';
  const post = (gw, from, n) =>
    gw.api('POST', '/api/events/batch', {
      events: Array.from({ length: n }, (_, i) => ({ sessionId: sid, type: 'test:tick', i: from + i })),
    }, { authorization: `Bearer ${AGENT}` });
  await post(other, 1, 3);

  await page.evaluate(([sid, token]) => {
    window.plain = [];
    window.agui = [];
    window.opened = 0;
    const base = `/api/sessions/${sid}/stream?since=0&token=${token}`;
    const plain = new EventSource(base);
    plain.onopen = () => window.opened++;
    plain.onmessage = (m) => window.plain.push({ id: m.lastEventId, data: JSON.parse(m.data) });
    const agui = new EventSource(`${base}&format=ag-ui`);
    agui.onmessage = (m) => window.agui.push({ id: m.lastEventId, data: JSON.parse(m.data) });
  }, [sid, VIEWER]);
  const ticks = (list) => list.filter((m) => m.data.type === 'event').map((m) => m.data.payload.i);
  const aguiTicks = (list) => list.filter((m) => m.data.name === 'test:tick').map((m) => m.data.value.i);
  const both = async (n) => {
    await until(`${n} events in the page`, async () => {
      const [p, a] = await page.evaluate(() => [window.plain, window.agui]);
      return ticks(p).length >= n && aguiTicks(a).length >= n;
    });
  };
  await both(3);

  // The page's gateway goes away (its streams end with going_away) while the agent goes on
  // through the other instance; it comes back on the same port and the browser reconnects.
  watched.child.kill('SIGTERM');
  await watched.exited;
  await post(other, 4, 4);
  watched = await watched.restart();
  await post(other, 8, 3);
  await both(10);

  const [plain, agui, opened] = await page.evaluate(() => [window.plain, window.agui, window.opened]);
  const all = Array.from({ length: 10 }, (_, i) => i + 1);
  assert.deepEqual(ticks(plain), all, 'every event once, in order');
  assert.deepEqual(aguiTicks(agui), all, 'every AG-UI event once, in order');
  assert.ok(opened >= 2, 'the browser reconnected by itself');
  const codes = plain.filter((m) => m.data.type === 'error').map((m) => m.data.code);
  assert.deepEqual(codes, ['going_away']);
  const runErrors = agui.filter((m) => m.data.type === 'RUN_ERROR').map((m) => m.data.code);
  assert.deepEqual(runErrors, ['going_away']);
  const resumed = plain.filter((m) => m.data.type === 'subscription_confirmed').map((m) => m.data.payload.recovered);
  assert.deepEqual(resumed, [true, true], 'the second stream resumed from Last-Event-ID');
  assert.equal(plain.at(-1).id.split(':').pop(), '10');
  assert.deepEqual(problems, []);
});
