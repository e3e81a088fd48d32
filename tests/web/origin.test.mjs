// Another web site against a keyless gateway on this machine, in headless Chromium: a page
// served from another port (another origin) tries to read a session over /ws, queue input,
// take the agent's input, start the demo agents, cancel a workflow and create a session, with
// `no-cors` requests that need no preflight; and a page that reaches the gateway under its
// own name (DNS rebinding, its name mapped to 127.0.0.1) tries the same same-origin. None of
// it may work; an origin the gateway allows (AFW_CORS_ORIGINS) still can.
// Run: node --test tests/web/origin.test.mjs (Chromium at AFW_CHROMIUM or /usr/bin/chromium)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { chromium } from 'playwright-core';
import { Gateway, freePort } from './support.mjs';

const CHROMIUM = process.env.AFW_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
  // The rebinding site: its name resolves to this machine.
  '--host-resolver-rules=MAP attacker.example 127.0.0.1'];
const SECRET = 'sk-the-agents-secret';

let browser;
const cleanup = [];
before(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
});
after(async () => {
  for (const f of cleanup.reverse()) await f();
  await browser?.close();
});

/** What the hostile page runs against the gateway at `gw`: it records what each try got. */
function attack(gw) {
  return `<!doctype html><meta charset="utf-8"><title>a page on another site</title><script>
  const gw = ${JSON.stringify(gw)};
  window.results = { ws: [], done: false };
  const noCors = (path, init = {}) =>
    fetch(gw + path, { mode: 'no-cors', ...init }).then(() => 'sent', (e) => 'failed: ' + e);
  (async () => {
    window.results.ws = await new Promise((resolve) => {
      const seen = [];
      const ws = new WebSocket(gw.replace('http', 'ws') + '/ws');
      ws.onopen = () => ws.send(JSON.stringify({ type: 'subscribe', sessionId: 'victim', since: 0 }));
      ws.onmessage = (m) => seen.push(String(m.data));
      ws.onerror = () => seen.push('error');
      ws.onclose = () => resolve(seen);
      setTimeout(() => { ws.close(); resolve(seen); }, 3000);
    });
    window.results.input = await noCors('/api/sessions/victim/input', { method: 'POST', body: JSON.stringify({ input: 'rm -rf /' }) });
    window.results.take = await noCors('/api/sessions/victim/input?consume=true');
    window.results.demo = await noCors('/api/demo', { method: 'POST' });
    window.results.cancel = await noCors('/api/workflow-state/run-1/cancel', { method: 'POST' });
    window.results.create = await noCors('/api/sessions', { method: 'POST', body: JSON.stringify({ id: 'made-by-a-page' }) });
    window.results.done = true;
  })();
  </script>`;
}

/** The hostile site: a server on its own port serving `attack(target)`. */
async function site(target) {
  const port = await freePort();
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(attack(target));
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${port}`;
}

/** A keyless gateway with a victim session: a secret in its stream, an answer queued for its
 * agent, and a running workflow. */
async function victim(env = {}) {
  const gw = await Gateway.start({ env });
  cleanup.push(() => gw.stop());
  await gw.api('POST', '/api/events', { sessionId: 'victim', type: 'tool:used', token: SECRET });
  await gw.api('POST', '/api/sessions/victim/chains', { id: 'run-1', title: 'deploy', totalSteps: 2 });
  await gw.api('POST', '/api/sessions/victim/input', { input: 'the real answer' });
  return gw;
}

async function run(url) {
  const page = await browser.newPage();
  cleanup.push(() => page.close());
  await page.goto(url);
  await page.waitForFunction(() => window.results?.done, null, { timeout: 20_000 });
  return page.evaluate(() => window.results);
}

/** Nothing the page tried changed the gateway. */
async function unchanged(gw) {
  const input = await gw.api('GET', '/api/sessions/victim/input?consume=false');
  assert.equal(input.count, 1, `only the real answer is queued: ${JSON.stringify(input)}`);
  assert.ok(JSON.stringify(input).includes('the real answer'), JSON.stringify(input));
  const demo = await gw.api('GET', '/api/demo');
  assert.equal(demo.agents, 0, `the demo agents were not started: ${JSON.stringify(demo)}`);
  const commands = await gw.api('GET', '/api/sessions/victim/commands');
  assert.equal(commands.count, 0, `no command was queued: ${JSON.stringify(commands)}`);
  const made = await fetch(`${gw.url}/api/sessions/made-by-a-page`);
  assert.equal(made.status, 404, 'no session was created');
}

test('a page on another origin can neither read a local gateway nor steer it', async () => {
  const gw = await victim();
  const results = await run(await site(gw.url));
  assert.ok(!results.ws.some((m) => m.includes(SECRET)), `the secret was read over /ws: ${results.ws}`);
  assert.ok(!results.ws.some((m) => m.includes('subscription_confirmed')), `a socket was opened: ${results.ws}`);
  await unchanged(gw);
  // What the gateway answers such a request, as a browser sends it.
  const res = await fetch(`${gw.url}/api/demo`, { method: 'POST', headers: { origin: 'http://127.0.0.1:1' } });
  assert.equal(res.status, 403);
  assert.equal((await res.json()).error, 'origin_not_allowed');
});

test('a page that rebinds its own name to this machine is not served', async () => {
  const gw = await victim();
  const page = await browser.newPage();
  cleanup.push(() => page.close());
  const rebound = `http://attacker.example:${gw.port}`;
  const landing = await page.goto(`${rebound}/`);
  assert.equal(landing.status(), 403, 'the dashboard is not served under a foreign name');
  // Same-origin to the page, as the rebinding makes it: every read and write is refused.
  const tried = await page.evaluate(async () => {
    const events = await fetch('/api/events/victim').then(async (r) => [r.status, await r.text()]);
    const post = await fetch('/api/sessions/victim/input', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: 'x' }),
    }).then((r) => r.status);
    const ws = await new Promise((resolve) => {
      const seen = [];
      const s = new WebSocket(`ws://${location.host}/ws`);
      s.onmessage = (m) => seen.push(String(m.data));
      s.onclose = () => resolve(seen);
      setTimeout(() => { s.close(); resolve(seen); }, 3000);
    });
    return { events, post, ws };
  });
  assert.equal(tried.events[0], 403, tried.events[1]);
  assert.ok(!tried.events[1].includes(SECRET));
  assert.equal(JSON.parse(tried.events[1]).error, 'host_not_allowed');
  assert.equal(tried.post, 403);
  assert.deepEqual(tried.ws, [], 'no socket under a foreign name');
  await unchanged(gw);
});

test('an origin the gateway allows can still open a socket and read', async () => {
  const sitePort = await freePort();
  const origin = `http://127.0.0.1:${sitePort}`;
  const gw = await victim({ AFW_CORS_ORIGINS: origin });
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(attack(gw.url));
  });
  await new Promise((r) => server.listen(sitePort, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => server.close(r)));
  const results = await run(origin);
  assert.ok(results.ws.some((m) => m.includes(SECRET)), `an allowed origin reads: ${results.ws}`);
});
