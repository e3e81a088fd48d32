// Claude Code's permission prompts on the dashboard, in headless Chromium: two gateway
// processes on one Redis, a PermissionRequest hook held on one, two people watching its session
// on the other. The request shows at once (and in the list of what waits); Allow with the input
// edited and Deny with a message reach the held hook as Claude Code reads them; the other page
// sees the decision land and can no longer answer; a request nobody answers says it expired.
// Run: node --test tests/web/permissions.test.mjs (Chromium at AFW_CHROMIUM or /usr/bin/chromium)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Gateway, Redis, ROOT } from './support.mjs';

const SHOTS = path.join(ROOT, 'target', 'browser');
const CHROMIUM = process.env.AFW_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const AGENT = 'agent-key-0123456789';
const PEOPLE = ['ana-key-0123456789', 'bo-key-0123456789'];

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

/** A Claude Code PermissionRequest hook for a Bash command, held until answered. */
function ask(gw, sessionId, command) {
  const hook = {
    session_id: sessionId, transcript_path: '/t.jsonl', cwd: '/w', hook_event_name: 'PermissionRequest',
    permission_mode: 'default', tool_name: 'Bash', tool_input: { command },
  };
  return gw.api('POST', '/api/hooks/claude-code', hook, { authorization: `Bearer ${AGENT}` });
}

/** A page signed in with `key`, watching `sessionId`. */
async function watch(gw, key, sessionId) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  cleanup.push(() => context.close());
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  // The page's first probe, before the key, is a 401; a late answer is a 409: both its own reports.
  page.on('console', (m) => m.type() === 'error' && !/status of (401|409)/.test(m.text()) && problems.push(m.text()));
  await page.goto(`${gw.url}/?session=${encodeURIComponent(sessionId)}`);
  await page.waitForSelector('#key-dialog[open]');
  await page.fill('#key-input', key);
  await page.press('#key-input', 'Enter');
  await page.waitForSelector('#conn[data-state="connected"]');
  return { page, problems };
}

test('Allow and Deny from the dashboard answer a hook held on another instance', async () => {
  const redis = await Redis.start();
  cleanup.push(() => redis.stop());
  const env = {
    REDIS_URL: redis.url, AFW_API_KEYS: [AGENT, ...PEOPLE].map((k) => `default:${k}:agent`).join(','),
    PERMISSION_TIMEOUT_SECS: '60',
  };
  const held = await Gateway.start({ env });
  const watched = await Gateway.start({ env });
  cleanup.push(() => held.stop(), () => watched.stop());

  // The first prompt: Ana edits the command and allows it; Bo's page sees it decided.
  const first = ask(held, 'cc-web', 'npm publish');
  const ana = await watch(watched, PEOPLE[0], 'cc-web');
  const bo = await watch(watched, PEOPLE[1], 'cc-web');
  for (const { page } of [ana, bo]) {
    await page.waitForSelector('.permission[data-status="pending"] strong:text("Bash")');
    await page.waitForSelector('.approval-item:has-text("npm publish")');
  }
  await ana.page.screenshot({ path: path.join(SHOTS, 'permission-pending.png') });
  await ana.page.fill('.permission[data-status="pending"] .permission-input', JSON.stringify({ command: 'npm publish --dry-run' }));
  await ana.page.click('.permission[data-status="pending"] button.allow');
  const allowed = await first;
  assert.deepEqual(allowed, {
    hookSpecificOutput: { hookEventName: 'PermissionRequest', decision: { behavior: 'allow', updatedInput: { command: 'npm publish --dry-run' } } },
  });
  await ana.page.waitForSelector('.permission[data-status="allowed"] .permission-note:text("allowed by key#2")');
  await bo.page.waitForSelector('.permission[data-status="allowed"] .permission-note:text("allowed by key#2")');
  assert.equal(await bo.page.isDisabled('.permission[data-status="allowed"] button.deny'), true);

  // The second: Bo denies it with a reason; Ana, clicking a moment late, is told who won.
  const second = ask(held, 'cc-web', 'rm -rf build');
  await bo.page.waitForSelector('.permission[data-status="pending"] code:text("rm -rf build")');
  await ana.page.waitForSelector('.permission[data-status="pending"] code:text("rm -rf build")');
  await bo.page.fill('.permission[data-status="pending"] .permission-message', 'use make clean');
  await bo.page.click('.permission[data-status="pending"] button.deny');
  const denied = await second;
  assert.deepEqual(denied.hookSpecificOutput.decision, { behavior: 'deny', message: 'use make clean' });
  await ana.page.waitForSelector('.permission[data-status="denied"] .permission-note:text("denied by key#3: “use make clean”")');
  await bo.page.screenshot({ path: path.join(SHOTS, 'permission-denied.png') });
  const late = await ana.page.evaluate(async (key) => {
    const list = await fetch('/api/permissions?status=denied', { headers: { authorization: `Bearer ${key}` } }).then((r) => r.json());
    const r = await fetch(`/api/permissions/${list.permissions[0].id}/decision`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ behavior: 'allow' }),
    });
    return [r.status, (await r.json()).permission.decision.decidedBy];
  }, PEOPLE[0]);
  assert.deepEqual(late, [409, 'key#3']);

  // The audit trail is the stream: both decisions, each with its decider.
  const events = await watched.api('GET', '/api/events/cc-web', undefined, { authorization: `Bearer ${AGENT}` });
  const decided = events.events.filter((e) => e.type === 'permission:decided').map((e) => [e.status, e.decision.decidedBy]);
  assert.deepEqual(decided, [['allowed', 'key#2'], ['denied', 'key#3']]);
  assert.deepEqual([...ana.problems, ...bo.problems], []);
});

test('a request nobody answers says so on the dashboard', async () => {
  const gw = await Gateway.start({ env: { AFW_API_KEYS: [AGENT, ...PEOPLE].join(','), PERMISSION_TIMEOUT_SECS: '2' } });
  cleanup.push(() => gw.stop());
  const asked = ask(gw, 'cc-late', 'make deploy');
  const { page, problems } = await watch(gw, PEOPLE[0], 'cc-late');
  await page.waitForSelector('.permission[data-status="pending"]');
  assert.deepEqual(await asked, {}, 'Claude Code asks in its terminal');
  await page.waitForSelector('.permission[data-status="expired"] .permission-note:text("nobody answered in time")');
  assert.deepEqual(problems, []);
});
