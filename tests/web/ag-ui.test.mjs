// The AG-UI profile of a session's stream (GET /api/sessions/:id/stream?format=ag-ui) followed by
// AG-UI's own client, @ag-ui/client: an AbstractAgent whose connect() is the package's
// runHttpRequest and transformHttpEventStream, run by connectAgent(), so every event passes the
// client's enforcement, its verifier and its reducer. Two gateway processes on one Redis: one
// client joins mid-run on one instance, leaves mid-run, and a second resumes with Last-Event-ID
// on the other; between them every stored event is sent once, in order, and the client raises
// and warns nothing. A third joins while a permission request waits and sees it as an interrupt.
// Run: node --test tests/web/ag-ui.test.mjs
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { AbstractAgent, runHttpRequest, transformHttpEventStream } from '@ag-ui/client';
import { Gateway, Redis, until } from './support.mjs';

const AGENT = 'agent-key-0123456789';
const VIEWER = 'viewer-key-0123456789';
const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

/** Whatever the AG-UI client says on the console (it warns instead of failing on some faults). */
const said = [];
for (const level of ['warn', 'error']) {
  const original = console[level];
  console[level] = (...args) => {
    said.push(`${level}: ${args.map(String).join(' ')}`);
    original(...args);
  };
}

/** A session's AG-UI stream as an AG-UI agent; `ids` are the stream's `id:` lines as they came. */
class SessionAgent extends AbstractAgent {
  constructor(gw, sessionId, { lastEventId } = {}) {
    super({ threadId: sessionId });
    this.url = `${gw.url}/api/sessions/${encodeURIComponent(sessionId)}/stream?format=ag-ui`;
    this.lastEventId = lastEventId;
    this.ids = [];
    this.seen = [];
    this.abort = new AbortController();
  }

  connect() {
    const headers = { authorization: `Bearer ${VIEWER}`, accept: 'text/event-stream' };
    if (this.lastEventId) headers['last-event-id'] = this.lastEventId;
    return transformHttpEventStream(
      runHttpRequest(async () => {
        const res = await fetch(this.url, { headers, signal: this.abort.signal });
        const body = res.body.pipeThrough(idLines(this.ids));
        return new Response(body, { status: res.status, headers: res.headers });
      }),
    );
  }

  run() {
    return this.connect();
  }

  /** Follows the stream until `done(event)`; then leaves it (as a closed tab would). */
  async follow(done) {
    let resolveDone;
    const reached = new Promise((r) => (resolveDone = r));
    const running = this.connectAgent({}, {
      onEvent: ({ event }) => {
        this.seen.push(event);
        if (done(event)) resolveDone();
      },
    });
    const failed = running.then(() => {
      throw new Error('the stream ended before the awaited event');
    });
    await Promise.race([reached, failed, timeout('the awaited AG-UI event')]);
    await this.detachActiveRun();
    this.abort.abort();
    await running;
  }
}

/** Passes the bytes on, noting each `id:` line. */
function idLines(ids) {
  const decoder = new TextDecoder();
  let rest = '';
  return new TransformStream({
    transform(chunk, controller) {
      rest += decoder.decode(chunk, { stream: true });
      const lines = rest.split('\n');
      rest = lines.pop();
      for (const line of lines) if (line.startsWith('id: ')) ids.push(line.slice(4));
      controller.enqueue(chunk);
    },
  });
}

const timeout = (what) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 15_000).unref());

/** An event as a short line: its type and what names it. */
function brief(e) {
  const name = e.stepName ?? e.name ?? e.messageId ?? e.toolCallId ?? e.outcome?.type ?? '';
  return name ? `${e.type} ${name}` : e.type;
}

const seqOf = (id) => Number(id.split(':').pop());

async function gateways() {
  const redis = await Redis.start();
  cleanup.push(() => redis.stop());
  const env = {
    REDIS_URL: redis.url,
    AFW_API_KEYS: `default:${AGENT}:agent,default:${VIEWER}:viewer`,
    PERMISSION_TIMEOUT_SECS: '60',
  };
  const one = await Gateway.start({ env });
  const two = await Gateway.start({ env });
  cleanup.push(() => one.stop(), () => two.stop());
  return [one, two];
}

const auth = { authorization: `Bearer ${AGENT}` };
const post = (gw, events) => gw.api('POST', '/api/events/batch', { events }, auth);
const hook = (gw, session_id, fields) =>
  gw.api('POST', '/api/hooks/claude-code', { session_id, transcript_path: '/t.jsonl', cwd: '/w', ...fields }, auth);

test('@ag-ui/client joins a run on one instance and resumes it with Last-Event-ID on another', async () => {
  said.length = 0;
  const [one, two] = await gateways();
  const sid = 'agui-run';
  const ev = (type, fields = {}) => ({ sessionId: sid, type, ...fields });

  // Before anyone watches: a chain and its first step, a prompt, a tool call, a message begun.
  await post(one, [ev('chain:started', { chainId: 'c1', title: 'Fix tests' }), ev('step:started', { chainId: 'c1', stepNumber: 1 })]);
  await hook(one, sid, { hook_event_name: 'UserPromptSubmit', prompt: 'fix the failing test' });
  const bash = { tool_name: 'Bash', tool_input: { command: 'npm test' }, tool_use_id: 'toolu_1' };
  await hook(one, sid, { hook_event_name: 'PreToolUse', ...bash });
  await hook(one, sid, { hook_event_name: 'PostToolUse', ...bash, tool_response: { stdout: '1 failing' } });
  await post(one, [ev('TEXT_MESSAGE_START', { messageId: 'm1', role: 'assistant' }), ev('TEXT_MESSAGE_CONTENT', { messageId: 'm1', delta: 'Looking' })]);

  // The first client joins mid-run on the other instance, sees the message end and step 1
  // finish, and leaves.
  const first = new SessionAgent(two, sid);
  const firstDone = first.follow((e) => e.type === 'STEP_FINISHED' && e.stepName === 'step 1');
  await until('the first client to join', () => first.ids.length > 0);
  await post(one, [
    ev('TEXT_MESSAGE_CONTENT', { messageId: 'm1', delta: ' at the test' }),
    ev('TEXT_MESSAGE_END', { messageId: 'm1' }),
    ev('step:completed', { chainId: 'c1', stepNumber: 1 }),
  ]);
  await firstDone;
  assert.deepEqual(first.seen.map(brief), [
    'RUN_STARTED', 'STATE_SNAPSHOT', 'STEP_STARTED chain Fix tests', 'STEP_STARTED step 1', 'TEXT_MESSAGE_START m1',
    'TEXT_MESSAGE_CONTENT m1', 'TEXT_MESSAGE_END m1', 'STEP_FINISHED step 1',
  ]);
  assert.equal(first.seen[1].snapshot.id, sid, 'the snapshot is the session');
  assert.deepEqual(first.messages.map((m) => [m.id, m.content]), [['m1', ' at the test']]);

  // While nobody watches: step 2, a question, and the agent stops to wait for an answer.
  await post(one, [ev('step:started', { chainId: 'c1', stepNumber: 2 }), ev('message', { role: 'assistant', content: 'Which branch should I push to?' })]);
  await one.api('POST', `/api/sessions/${sid}/awaiting`, { promptText: 'Which branch?', quickResponses: ['main', 'dev'] }, auth);

  // The second client resumes where the first left, on the first instance.
  const last = first.ids.at(-1);
  const second = new SessionAgent(one, sid, { lastEventId: last });
  let interrupted;
  const secondDone = second.follow((e) => {
    if (e.type === 'RUN_FINISHED' && e.outcome?.type === 'interrupt') interrupted = e.outcome.interrupts;
    return e.type === 'RUN_FINISHED' && interrupted && e.outcome === undefined;
  });
  await until('the interrupt to reach the second client', () => interrupted);
  await one.api('POST', `/api/sessions/${sid}/input`, { input: 'main' }, auth);
  await post(two, [ev('interaction:input-received', { input: 'main' }), ev('step:completed', { chainId: 'c1', stepNumber: 2 }), ev('chain:completed', { chainId: 'c1' })]);
  await hook(two, sid, { hook_event_name: 'Stop', stop_hook_active: false, last_assistant_message: 'Pushed to main.' });
  await secondDone;

  const text = (e) => e.type.startsWith('TEXT_MESSAGE') ? e.type : brief(e);
  assert.deepEqual(second.seen.map(text), [
    'RUN_STARTED', 'STATE_SNAPSHOT', 'STEP_STARTED chain Fix tests',
    'STEP_STARTED step 2',
    'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT', 'TEXT_MESSAGE_END',
    'STEP_FINISHED step 2', 'STEP_FINISHED chain Fix tests', 'RUN_FINISHED interrupt',
    'RUN_STARTED', 'STEP_STARTED chain Fix tests', 'STEP_STARTED step 2', 'CUSTOM interaction:input-received',
    'STEP_FINISHED step 2',
    'STEP_FINISHED chain Fix tests',
    'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT', 'TEXT_MESSAGE_END', 'RUN_FINISHED',
  ]);
  assert.deepEqual(interrupted.map((i) => [i.reason, i.message, i.responseSchema.enum]), [['input_required', 'Which branch?', ['main', 'dev']]]);
  assert.deepEqual(second.messages.map((m) => [m.role, m.content]), [['assistant', 'Which branch should I push to?'], ['assistant', 'Pushed to main.']]);

  // Between them, every stored event once and in order: the first from where it joined, the
  // second from the first's Last-Event-ID.
  const [joined, ...firstSeqs] = first.ids.map(seqOf);
  const [resumed, ...secondSeqs] = second.ids.map(seqOf);
  assert.equal(resumed, seqOf(last));
  const all = [...firstSeqs, ...secondSeqs];
  const head = (await one.api('GET', `/api/events/${sid}?limit=1000`, undefined, auth)).events.at(-1).seq;
  assert.deepEqual(all, Array.from({ length: head - joined }, (_, i) => joined + 1 + i));
  assert.deepEqual(said, [], 'the AG-UI client warned or complained');
});

test('@ag-ui/client joining while a permission request waits sees it as an interrupt, then the decision', async () => {
  said.length = 0;
  const [one, two] = await gateways();
  const sid = 'agui-permission';
  const held = hook(one, sid, { hook_event_name: 'PermissionRequest', tool_name: 'Bash', tool_input: { command: 'npm publish' } });
  const pending = await until('the request', async () => (await two.api('GET', '/api/permissions?status=pending', undefined, auth)).permissions[0]);

  const client = new SessionAgent(two, sid);
  let asked;
  const done = client.follow((e) => {
    if (e.type === 'RUN_FINISHED' && e.outcome?.type === 'interrupt') asked = e.outcome.interrupts;
    return e.type === 'CUSTOM' && e.name === 'permission:decided';
  });
  await until('the interrupt', () => asked);
  assert.deepEqual(asked.map((i) => [i.id, i.reason, i.metadata.tool, i.metadata.input]), [[pending.id, 'tool_approval', 'Bash', { command: 'npm publish' }]]);
  assert.deepEqual(client.pendingInterrupts.map((i) => i.id), [pending.id]);
  await one.api('POST', `/api/permissions/${pending.id}/decision`, { behavior: 'allow' }, auth);
  await done;
  assert.equal((await held).hookSpecificOutput.decision.behavior, 'allow');
  assert.deepEqual(client.seen.map(brief).slice(-2), ['RUN_STARTED', 'CUSTOM permission:decided']);
  assert.deepEqual(said, [], 'the AG-UI client warned or complained');
});
