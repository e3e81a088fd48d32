// The dashboard in headless Chromium against real gateway processes on Redis: it lists what a
// demo agent does, steers it, answers its prompt, and rides out a restart of its gateway with
// every event shown once, in order. Screenshots land in target/browser/.
// Run: node --test tests/web/browser.test.mjs (Chromium at AFW_CHROMIUM or /usr/bin/chromium)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { Gateway, GATEWAY_BIN, Redis, Demo, ROOT, freePort, until, sleep } from './support.mjs';

const SHOTS = path.join(ROOT, 'target', 'browser');
const CHROMIUM = process.env.AFW_CHROMIUM ?? '/usr/bin/chromium';
// As root in a container, without the sandbox; without background networking, which this
// closed network refuses.
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

let browser;
const cleanup = [];
before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
});
after(async () => {
  for (const f of cleanup.reverse()) await f();
  await browser?.close();
});

const pages = [];

/** A test whose failure also prints what each of its pages showed, and saves a screenshot of each. */
function reported(fn) {
  return async (t) => {
    const first = pages.length;
    try {
      await fn(t);
    } catch (e) {
      for (const [i, page] of pages.slice(first).entries()) {
        const shown = await page.evaluate(async () => {
          const text = (q) => document.querySelector(q)?.textContent;
          const all = (q, f) => [...document.querySelectorAll(q)].slice(0, 12).map(f);
          const sid = new URLSearchParams(location.search).get('session');
          const session = sid
            ? await fetch(`/api/sessions/${encodeURIComponent(sid)}`).then((r) => r.json()).catch((err) => String(err))
            : null;
          return {
            url: location.href, conn: document.querySelector('#conn')?.dataset.state, connText: text('#conn-text'),
            stream: text('#stream-state'), promptHidden: document.querySelector('#prompt')?.hidden,
            rows: all('#events li[data-seq]', (r) => r.textContent), commands: all('#command-log li', (r) => `${r.dataset.state}: ${r.textContent}`),
            chains: all('.chain', (c) => `${c.dataset.status}: ${c.textContent}`), session,
          };
        }).catch((err) => String(err));
        console.log(`page ${i} when the test failed: ${JSON.stringify(shown)}`);
        await page.screenshot({ path: path.join(SHOTS, `failed-${i}.png`) }).catch(() => {});
      }
      throw e;
    }
  };
}

async function newPage(width = 1280, height = 800) {
  const context = await browser.newContext({ viewport: { width, height } });
  cleanup.push(() => context.close());
  const page = await context.newPage();
  pages.push(page);
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  // Refused connections while a gateway is down are the browser's own report, not the page's.
  page.on('console', (m) => m.type() === 'error' && !/net::ERR_CONNECTION_REFUSED/.test(m.text()) && problems.push(m.text()));
  return { page, problems };
}

/** The seqs of the event rows, oldest first. */
const rowSeqs = (page) => page.$$eval('#events li[data-seq]', (rows) => rows.map((r) => Number(r.dataset.seq)).reverse());

function consecutive(seqs) {
  return seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1);
}

test('watch, steer and answer a demo agent, and resume exactly across a gateway restart', reported(async () => {
  const redis = await Redis.start();
  cleanup.push(() => redis.stop());
  const env = { REDIS_URL: redis.url };
  let a = await Gateway.start({ env });
  cleanup.push(() => a.stop());
  const b = await Gateway.start({ env });
  cleanup.push(() => b.stop());
  // The agent posts to B; the page watches through A.
  const agent = Demo.start(b.url, { agents: 1, speed: 4 });
  cleanup.push(() => agent.stop());

  const { page, problems } = await newPage();
  await page.goto(a.url);
  await page.waitForSelector('#conn[data-state="connected"]');
  const item = await page.waitForSelector('.session-item', { timeout: 15_000 });
  const sid = await item.getAttribute('data-session');
  await item.click();
  await page.waitForURL(`**/?session=${sid}`);

  // Its events in order, and its chain's progress.
  await until('events on the page', async () => (await rowSeqs(page)).length >= 5);
  let seqs = await rowSeqs(page);
  assert.equal(seqs[0], 1);
  assert.ok(consecutive(seqs), `rows in order: ${seqs}`);
  await page.waitForSelector('.chain .bar[aria-valuenow]');
  assert.match(await page.textContent('.chain'), /steps/);

  // The agent stops to ask; meanwhile it obeys pause and resume, acknowledging each.
  await page.waitForSelector('#prompt:not([hidden])', { timeout: 20_000 });
  assert.match(await page.textContent('#prompt-text'), /Go ahead/);
  assert.equal(await page.locator('#prompt-quick button').count(), 3);
  await page.click('button[data-command="pause"]');
  await page.waitForSelector('#command-log li[data-state="acknowledged"]:has-text("pause")');
  assert.match(await page.textContent('#command-log li[data-state="acknowledged"]'), /paused/);
  await page.waitForSelector('.chain[data-status="paused"]');
  await page.click('button[data-command="resume"]');
  await page.waitForSelector('#command-log li[data-state="acknowledged"]:has-text("resume")');
  await page.waitForSelector('.chain[data-status="in_progress"]');

  // The input box answers the prompt; the agent takes it and says so.
  await page.fill('#prompt-input', 'Only the tests');
  await page.press('#prompt-input', 'Enter');
  await page.waitForSelector('#events li:has(.type:text-is("interaction:input-received")) .what:text-is("Only the tests")');
  await page.waitForSelector('#prompt[hidden]', { state: 'attached' });
  await page.screenshot({ path: path.join(SHOTS, 'session.png') });

  // The page's gateway stops (SIGTERM) and comes back on the same port while B takes events.
  const before = (await rowSeqs(page)).at(-1);
  await a.stop();
  await page.waitForSelector('#conn[data-state="reconnecting"]');
  assert.match(await page.textContent('#conn-text'), /went away/);
  await until('B to take events meanwhile', async () => (await b.api('GET', `/api/events/${sid}?after=${before}`)).count >= 3);
  a = await a.restart();
  await page.waitForSelector('#conn[data-state="connected"]', { timeout: 20_000 });
  await page.waitForSelector('#stream-state[data-status="resumed"]');
  assert.match(await page.textContent('#stream-state'), /resumed exactly/);
  const head = (await b.api('GET', `/api/events/${sid}?after=0&limit=1`)).headSeq;
  await until('the page to catch up', async () => (await rowSeqs(page)).at(-1) >= head + 2);

  // Every event exactly once, in order: what the client delivered and what the rows show.
  const delivered = await page.evaluate(() => window.afwDashboard.seqs.slice());
  assert.ok(consecutive(delivered) && delivered[0] === 1, `delivered once each, in order: ${delivered}`);
  seqs = await rowSeqs(page);
  assert.ok(consecutive(seqs), `rows once each, in order: ${seqs}`);
  const stored = await b.api('GET', `/api/events/${sid}?after=0&limit=1000`);
  const shown = new Set(seqs);
  for (const e of stored.events.filter((e) => e.seq <= seqs.at(-1))) {
    assert.ok(shown.has(e.seq), `event ${e.seq} (${e.type}) is on the page`);
  }
  await page.screenshot({ path: path.join(SHOTS, 'session-after-restart.png') });
  assert.deepEqual(problems, [], 'no script errors');

  // Readable at phone width.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(SHOTS, 'session-phone.png') });
  assert.ok(await page.isVisible('#events'));
}));

test('on the embedded store the demo button starts agents to watch', reported(async () => {
  const gw = await Gateway.start();
  cleanup.push(() => gw.stop());
  const { page, problems } = await newPage();
  await page.goto(gw.url);
  await page.waitForSelector('#sessions-empty:not([hidden])');
  await page.click('#demo-button:text("Start demo agents")');
  await page.waitForSelector('#demo-button:text("Stop demo agents (3)")');
  await until('three sessions', async () => (await page.locator('.session-item').count()) >= 3);
  await page.click('.session-item');
  await page.waitForSelector('#events li[data-seq]');
  await page.click('#demo-button');
  await page.waitForSelector('#demo-button:text("Start demo agents")');
  await page.screenshot({ path: path.join(SHOTS, 'demo.png') });
  assert.deepEqual(problems, []);
}));

test('with AFW_API_KEYS the page asks for a key once and keeps it for the tab', reported(async () => {
  const gw = await Gateway.start({ env: { AFW_API_KEYS: 'key-one-0123456789' } });
  cleanup.push(() => gw.stop());
  await gw.api('POST', '/api/events', { sessionId: 'keyed-1', type: 'hello' }, { authorization: 'Bearer key-one-0123456789' });
  const { page } = await newPage();
  await page.goto(gw.url);
  await page.waitForSelector('#key-dialog[open]');
  assert.equal(await page.isVisible('#demo-button'), false);
  await page.fill('#key-input', 'wrong');
  await page.press('#key-input', 'Enter');
  await page.waitForSelector('#key-error:text("not accepted")');
  await page.fill('#key-input', 'key-one-0123456789');
  await page.press('#key-input', 'Enter');
  await page.waitForSelector('.session-item[data-session="keyed-1"]');
  await page.waitForSelector('#conn[data-state="connected"]');
  await page.reload();
  await page.waitForSelector('.session-item[data-session="keyed-1"]');
  assert.equal(await page.isVisible('#key-dialog'), false, 'not asked again');
  await sleep(10);
}));

test('a viewer sees sessions but no command, input or demo controls, and the gateway refuses them anyway', reported(async () => {
  const viewer = 'viewer-key-012345678';
  const gw = await Gateway.start({ env: { AFW_API_KEYS: `admin-key-0123456789,default:${viewer}:viewer` } });
  cleanup.push(() => gw.stop());
  const admin = { authorization: 'Bearer admin-key-0123456789' };
  await gw.api('POST', '/api/events', { sessionId: 'seen-1', type: 'interaction:awaiting-input', prompt: 'Deploy?' }, admin);
  await gw.api('POST', '/api/sessions/seen-1/awaiting', { prompt: 'Deploy?' }, admin).catch(() => {});
  const look = async (key) => {
    const { page } = await newPage();
    await page.goto(`${gw.url}/?session=seen-1`);
    await page.waitForSelector('#key-dialog[open]');
    await page.fill('#key-input', key);
    await page.press('#key-input', 'Enter');
    await page.waitForSelector('#conn[data-state="connected"]');
    await page.waitForSelector('#events li[data-seq]');
    return page;
  };
  const asViewer = await look(viewer);
  assert.equal(await asViewer.evaluate(() => window.afwDashboard.role), 'viewer');
  assert.equal(await asViewer.isVisible('button[data-command="pause"]'), false);
  assert.equal(await asViewer.isVisible('#demo-button'), false);
  const refused = await asViewer.evaluate(async (key) => {
    const r = await fetch('/api/sessions/seen-1/commands', {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ command: 'pause' }),
    });
    return [r.status, (await r.json()).error];
  }, viewer);
  assert.deepEqual(refused, [403, 'forbidden']);
  const asAdmin = await look('admin-key-0123456789');
  assert.equal(await asAdmin.evaluate(() => window.afwDashboard.role), 'admin');
  assert.equal(await asAdmin.isVisible('button[data-command="pause"]'), true);
  await asViewer.screenshot({ path: path.join(SHOTS, 'viewer.png') });
}));

test('with AFW_TOKEN_URL the page gets its tokens from the application, with its cookies, and renews them in band', reported(async () => {
  const secret = 'a-test-secret-of-at-least-32-bytes!';
  const port = await freePort();
  let asked = 0;
  let withCookie = 0;
  let gwOrigin = '';
  // The application's token endpoint: a token of 3 s for a browser that has its session cookie.
  const app = http.createServer((req, res) => {
    asked += 1;
    res.setHeader('access-control-allow-origin', gwOrigin);
    res.setHeader('access-control-allow-credentials', 'true');
    if (!/(^|; )app-session=ok/.test(req.headers.cookie ?? '')) {
      res.writeHead(401).end();
      return;
    }
    withCookie += 1;
    const token = execFileSync(GATEWAY_BIN, ['token', '--sub', 'ada', '--role', 'agent', '--ttl', '3'], {
      env: { ...process.env, AFW_JWT_SECRET: secret },
    }).toString().trim();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
  });
  await new Promise((r) => app.listen(port, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => app.close(r)));
  const gw = await Gateway.start({
    env: { AFW_JWT_SECRET: secret, AFW_TOKEN_URL: `http://127.0.0.1:${port}/token`, WS_AUTH_GRACE_SECS: '1', AFW_JWT_LEEWAY_SECS: '0' },
  });
  cleanup.push(() => gw.stop());
  gwOrigin = gw.url;
  const token = execFileSync(GATEWAY_BIN, ['token', '--sub', 'bot', '--role', 'agent', '--ttl', '1h'], {
    env: { ...process.env, AFW_JWT_SECRET: secret },
  }).toString().trim();
  await gw.api('POST', '/api/events', { sessionId: 'tok-1', type: 'tick', i: 0 }, { authorization: `Bearer ${token}` });
  const { page, problems } = await newPage();
  await page.context().addCookies([{ name: 'app-session', value: 'ok', url: `http://127.0.0.1:${port}` }]);
  await page.goto(`${gw.url}/?session=tok-1`);
  await page.waitForSelector('#conn[data-state="connected"]');
  assert.equal(await page.isVisible('#key-dialog'), false, 'no key asked for');
  for (let i = 1; i < 12; i += 1) {
    await gw.api('POST', '/api/events', { sessionId: 'tok-1', type: 'tick', i }, { authorization: `Bearer ${token}` });
    await sleep(500);
  }
  await until('12 rows', async () => (await rowSeqs(page)).length === 12);
  assert.deepEqual(await rowSeqs(page), Array.from({ length: 12 }, (_, k) => k + 1));
  const conn = await page.evaluate(() => window.afwDashboard.connection);
  assert.equal(conn.state, 'connected');
  assert.equal(conn.resumed, false, 'one connection throughout: renewed in band, never closed');
  assert.ok(withCookie >= 3, `the endpoint gave ${withCookie} tokens (asked ${asked} times)`);
  assert.equal(withCookie, asked, 'every request carried the cookie');
  assert.deepEqual(problems, []);
}));

test('the Operations page charts both instances, Redis and a job queue from either', reported(async () => {
  const redis = await Redis.start();
  cleanup.push(() => redis.stop());
  const env = { REDIS_URL: redis.url, OPS_REPORT_SECS: '1', METRICS_JOB_QUEUES: 'builds' };
  const a = await Gateway.start({ env });
  cleanup.push(() => a.stop());
  const b = await Gateway.start({ env });
  cleanup.push(() => b.stop());
  await a.api('POST', '/api/queues/builds/jobs', { type: 'compile' });
  await b.api('POST', '/api/locks/release-train', { owner: 'ci', ttlMs: 600000 });

  const { page, problems } = await newPage(1280, 1000);
  await page.goto(a.url);
  await page.waitForSelector('#conn[data-state="connected"]');
  await page.click('#ops-link');
  await page.waitForURL('**/?view=ops');
  // The page watches a session through A while events go in on B, for a few summaries.
  await page.evaluate(() => fetch('/api/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":"ops-watch"}' }));
  const watcher = await page.evaluate(async () => {
    const { connect } = await import('/afw-client.js');
    window.opsSeen = 0;
    connect(location.origin).subscribe('ops-watch', () => { window.opsSeen += 1; });
    return true;
  });
  assert.ok(watcher);
  const rows = () => page.$$eval('#ops-instances tbody tr', (trs) => trs.map((tr) => tr.dataset.instance));
  await until('both instances in the table', async () => (await rows()).length === 2);
  assert.deepEqual((await rows()).sort(), [a.instanceId, b.instanceId].sort());
  let posted = 0;
  await until('the events chart to show what went in', async () => {
    await b.postEvents('ops-watch', 50, { from: posted });
    posted += 50;
    const points = Number(await page.getAttribute('#chart-rate svg', 'data-points'));
    const now = await page.textContent('#chart-rate .now');
    return points >= 3 && /in [1-9]/.test(now);
  });
  await until('the page to see every event', async () => (await page.evaluate(() => window.opsSeen)) === posted);
  await until('a fan-out latency for the interval', async () => /p99 \d/.test(await page.textContent('#chart-latency .now')));
  assert.equal(await page.$$eval('#chart-rate path.series', (ps) => ps.length), 2, 'in and delivered drawn');
  assert.match(await page.textContent('#ops-redis'), /Status\s*up/);
  assert.match(await page.textContent('#ops-redis'), /Keys\s*\d+/);
  assert.equal(await page.textContent('#ops-locks'), 'Locks held: 1');
  const queue = await page.$$eval('#ops-queues tbody tr[data-queue="builds"] td', (tds) => tds.map((t) => t.textContent));
  assert.deepEqual(queue.slice(0, 2), ['builds', '1'], 'one waiting job');
  const shot = path.join(SHOTS, 'operations.png');
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`the Operations page: ${shot}`);
  // B stops: it leaves the table within three reports; home hides the page again.
  await b.stop();
  await until('B to leave the table', async () => (await rows()).length === 1, 20_000);
  await page.click('#home-link');
  assert.equal(await page.isVisible('#ops'), false);
  assert.deepEqual(problems, []);
}));
