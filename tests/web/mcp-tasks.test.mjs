// `ask_human` as an MCP task, followed by MCP's own Tasks client: @modelcontextprotocol/ext-tasks
// over @modelcontextprotocol/client, which negotiates the 2026-07-28 protocol with the gateway
// (`server/discover`). The package asks its host for one thing, the function that posts a
// JSON-RPC request (`rawDispatch`): here it posts to two gateway processes on one Redis in
// turn, so every task is created on one instance and followed on the other, and one test stops
// the instance that made the task before it is answered.
// Run: node --test tests/web/mcp-tasks.test.mjs
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createTaskSessionFromClient, resultFromTaskOutcome } from '@modelcontextprotocol/ext-tasks/client';
import { Gateway, Redis } from './support.mjs';

const AGENT = 'agent-key-0123456789';
const OTHER = 'other-agent-key-0123456789';
const PROTOCOL = '2026-07-28';
const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

let redis;
let gateways;
before(async () => {
  redis = await Redis.start();
  cleanup.push(() => redis.stop());
  const env = { REDIS_URL: redis.url, AFW_API_KEYS: `default:${AGENT}:agent,default:${OTHER}:agent` };
  gateways = [await Gateway.start({ env }), await Gateway.start({ env })];
  for (const gw of gateways) cleanup.push(() => gw.stop());
});

/** Posts each request to the next of `targets()` in turn; `served` notes which took which. */
function dispatcher(targets, key, served) {
  let n = 0;
  return async (request) => {
    const list = targets();
    const gw = list[n++ % list.length];
    const { method, params } = request;
    const headers = {
      authorization: `Bearer ${key}`,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
      'mcp-protocol-version': PROTOCOL,
      'mcp-method': method,
    };
    const name = method === 'tools/call' ? params?.name : params?.taskId;
    if (typeof name === 'string') headers['mcp-name'] = name;
    const res = await fetch(`${gw.url}/mcp`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: n, ...request }),
    });
    const text = await res.text();
    assert.equal(res.status, 200, `${method} on ${gw.url}: ${text}`);
    served.push([method, gw.port]);
    // One JSON-RPC answer, as JSON or as one SSE event.
    const json = res.headers.get('content-type')?.includes('text/event-stream')
      ? text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).filter(Boolean).pop()
      : text;
    const msg = JSON.parse(json);
    return msg.error ? { kind: 'error', error: msg.error } : { kind: 'result', result: msg.result };
  };
}

/** A Tasks session of the official client with `key`, its requests spread over `targets()`. */
async function tasksSession(key, { targets = () => gateways, onInputRequest } = {}) {
  const client = new Client({ name: 'afw-tasks-test', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
  const transport = new StreamableHTTPClientTransport(new URL(`${gateways[0].url}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  assert.equal(client.getProtocolEra(), 'modern');
  assert.deepEqual(client.getServerCapabilities().extensions?.['io.modelcontextprotocol/tasks'], {});
  const served = [];
  const session = createTaskSessionFromClient(client, {
    endpointId: 'afw-gateway',
    rawDispatch: dispatcher(targets, key, served),
    v2RequestFraming: {
      protocolVersion: PROTOCOL,
      clientInfo: { name: 'afw-tasks-test', version: '1.0.0' },
      clientCapabilities: { elicitation: { form: {} } },
    },
    ...(onInputRequest ? { onInputRequest } : {}),
  });
  cleanup.push(() => session.close().catch(() => {}));
  return { session, served };
}

const answerOf = (result) => result.structuredContent;

test('ask_human is a task that the dashboard answers on another instance', async () => {
  const [a, b] = gateways;
  const { session, served } = await tasksSession(AGENT);
  const execution = await session.callTool('ask_human', {
    sessionId: 'task-1', question: 'Deploy to production?', choices: ['yes', 'no'], timeoutSecs: 600,
  });
  assert.equal(execution.kind, 'task');
  // The question is the session's on every instance, as the dashboard shows it.
  const s = await b.api('GET', '/api/sessions/task-1', undefined, { authorization: `Bearer ${AGENT}` });
  assert.equal(s.conversationState, 'awaiting_input');
  const prompt = typeof s.lastPrompt === 'string' ? JSON.parse(s.lastPrompt) : s.lastPrompt;
  assert.equal(prompt.promptText, 'Deploy to production?');
  // The client has no one to ask (its elicitation is cancelled), so the task waits on.
  const first = await session.task(execution.handle.taskId).snapshot();
  assert.equal(first.status, 'input_required');
  await b.api('POST', '/api/sessions/task-1/input', { input: 'yes' }, { authorization: `Bearer ${AGENT}` });
  const { outcome } = await execution.settle();
  assert.equal(outcome.status, 'completed');
  const answer = answerOf(resultFromTaskOutcome(outcome));
  assert.equal(answer.answered, true);
  assert.equal(answer.sessionId, 'task-1');
  assert.match(JSON.stringify(answer.input), /"yes"/);
  // Created on one instance, followed on both.
  const gets = new Set(served.filter(([m]) => m === 'tasks/get').map(([, port]) => port));
  assert.deepEqual([...gets].sort(), [a.port, b.port].sort(), JSON.stringify(served));
  // Settled, it reads the same on any instance, and takes no more input.
  const again = await session.task(execution.handle.taskId).result();
  assert.deepEqual(answerOf(resultFromTaskOutcome(again)), answer);
  await assert.rejects(
    session.task(execution.handle.taskId).update({ answer: { action: 'accept', content: { answer: 'no' } } }),
    /settled/,
  );
});

test("the client's own elicitation answers, and the dashboard sees the answer", async () => {
  const asked = [];
  const { session } = await tasksSession(AGENT, {
    onInputRequest: async (request) => {
      asked.push(request);
      return { action: 'accept', content: { answer: 'blue' } };
    },
  });
  const execution = await session.callTool('ask_human', { sessionId: 'task-2', question: 'Which colour?', choices: ['red', 'blue'] });
  const { outcome } = await execution.settle();
  const answer = answerOf(resultFromTaskOutcome(outcome));
  assert.equal(answer.answered, true);
  assert.match(JSON.stringify(answer.input), /"blue"/);
  assert.equal(asked.length, 1);
  assert.equal(asked[0].kind, 'elicitation');
  assert.equal(asked[0].params.message, 'Which colour?');
  assert.deepEqual(asked[0].params.requestedSchema.properties.answer.enum, ['red', 'blue']);
  const events = await gateways[1].api('GET', '/api/events/task-2', undefined, { authorization: `Bearer ${AGENT}` });
  assert.match(JSON.stringify(events), /"blue"/, 'the answer is in the session as any input is');
});

test('a declined question settles unanswered and leaves the dashboard; a cancelled task is cancelled', async () => {
  const { session } = await tasksSession(AGENT, { onInputRequest: async () => ({ action: 'decline' }) });
  const execution = await session.callTool('ask_human', { sessionId: 'task-3', question: 'Proceed?' });
  const { outcome } = await execution.settle();
  assert.deepEqual(answerOf(resultFromTaskOutcome(outcome)), { answered: false, declined: true, sessionId: 'task-3' });
  const s = await gateways[0].api('GET', '/api/sessions/task-3', undefined, { authorization: `Bearer ${AGENT}` });
  assert.notEqual(s.conversationState, 'awaiting_input');

  const waiting = await tasksSession(AGENT);
  const second = await waiting.session.callTool('ask_human', { sessionId: 'task-3', question: 'Really?' });
  await second.cancel();
  const view = await waiting.session.task(second.handle.taskId).snapshot();
  assert.equal(view.status, 'cancelled');
  await assert.rejects(waiting.session.task(second.handle.taskId).cancel(), /settled/);
});

test('a task outlives the instance that made it, and its time runs out on any instance', async () => {
  const [a] = gateways;
  let alive = gateways;
  const { session } = await tasksSession(AGENT, { targets: () => alive });
  const execution = await session.callTool('ask_human', { sessionId: 'task-4', question: 'Still there?', timeoutSecs: 600 });
  const reference = execution.serializeReference();
  await execution.detach();
  await a.stop();
  alive = [gateways[1]];
  await gateways[1].api('POST', '/api/sessions/task-4/input', { input: 'here' }, { authorization: `Bearer ${AGENT}` });
  const resumed = await session.resumeTask(reference);
  const { outcome } = await resumed.settle();
  assert.match(JSON.stringify(answerOf(resultFromTaskOutcome(outcome)).input), /"here"/);

  const short = await session.callTool('ask_human', { sessionId: 'task-5', question: 'Quick?', timeoutSecs: 1 });
  const timedOut = await short.settle();
  assert.deepEqual(answerOf(resultFromTaskOutcome(timedOut.outcome)), { answered: false, sessionId: 'task-5' });
  gateways[0] = await a.restart();
  cleanup.push(() => gateways[0].stop());
});

test("another credential cannot read or answer a caller's task; an unknown task is an error", async () => {
  const { session } = await tasksSession(AGENT);
  const execution = await session.callTool('ask_human', { sessionId: 'task-6', question: 'Mine?' });
  const other = await tasksSession(OTHER);
  await assert.rejects(other.session.task(execution.handle.taskId).snapshot(), /no task/);
  await assert.rejects(
    other.session.task(execution.handle.taskId).update({ answer: { action: 'decline' } }),
    /no task/,
  );
  await assert.rejects(other.session.task('no-such-task').snapshot(), /no task/);
  await assert.rejects(
    session.task(execution.handle.taskId).update({ other: { action: 'decline' } }),
    /no input request "other"/,
  );
  assert.equal((await session.task(execution.handle.taskId).snapshot()).status, 'input_required');
  await execution.cancel();
});
