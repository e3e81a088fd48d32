// Claude Code's hook fixtures (tests/fixtures/claude-code/session.json, which the Rust test
// tests/hooks.rs replays through the gateway) checked against Claude Code's own types: every
// hook is a `HookInput` of the Agent SDK (`@anthropic-ai/claude-agent-sdk`'s sdk.d.ts) as the
// TypeScript compiler reads it (no field it lacks, none of the wrong type), every hook event of
// its `HOOK_EVENTS` is in the session, and every answer the gateway gives (answers.json) is a
// `SyncHookJSONOutput`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const fixture = join(here, '..', 'fixtures', 'claude-code', 'session.json');
const answers = join(here, '..', 'fixtures', 'claude-code', 'answers.json');
const sdk = join(here, 'node_modules', '@anthropic-ai', 'claude-agent-sdk', 'sdk.d.ts');
const tsc = join(here, 'node_modules', 'typescript', 'bin', 'tsc');

/** Type-checks `source` (a TypeScript module) with the SDK's types; tsc's status and output. */
function typecheck(source) {
  const dir = mkdtempSync(join(here, '.typecheck-'));
  try {
    const file = join(dir, 'check.ts');
    writeFileSync(file, source);
    const r = spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck',
      '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', file],
    { cwd: here, encoding: 'utf8' });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('every hook event of the SDK is in the recorded session', () => {
  const declared = readFileSync(sdk, 'utf8').match(/export declare const HOOK_EVENTS: readonly \[([^\]]*)\]/);
  assert.ok(declared, 'sdk.d.ts declares HOOK_EVENTS');
  const events = [...declared[1].matchAll(/'([A-Za-z]+)'/g)].map((m) => m[1]);
  assert.ok(events.length >= 30, `HOOK_EVENTS: ${events}`);
  const recorded = new Set(JSON.parse(readFileSync(fixture, 'utf8')).map((h) => h.hook_event_name));
  assert.deepEqual(events.filter((e) => !recorded.has(e)), [], 'hook events missing from the fixture');
});

test('every recorded hook is a HookInput as the SDK types it', () => {
  const hooks = readFileSync(fixture, 'utf8');
  const ok = typecheck("import type { HookInput } from '@anthropic-ai/claude-agent-sdk';\n" +
    `export const hooks: HookInput[] = ${hooks};\n`);
  assert.equal(ok.status, 0, `tsc: ${ok.output}`);
  // The check can fail: a hook with a field the SDK does not have is refused.
  const bad = typecheck("import type { HookInput } from '@anthropic-ai/claude-agent-sdk';\n" +
    "export const hooks: HookInput[] = [{ session_id: 's', transcript_path: 't', cwd: '/', " +
    "hook_event_name: 'Stop', stop_hook_active: false, invented_field: 1 }];\n");
  assert.notEqual(bad.status, 0, 'tsc refuses a field the SDK does not have');
  assert.match(bad.output, /invented_field/);
});

// The gateway's answers (tests/fixtures/claude-code/answers.json, which a unit test of
// src/domain/permissions.rs holds the gateway to) are what Claude Code reads from a hook.
test('every answer the gateway gives a hook is a SyncHookJSONOutput as the SDK types it', () => {
  const given = readFileSync(answers, 'utf8');
  assert.ok(Object.keys(JSON.parse(given)).length >= 9);
  const ok = typecheck("import type { SyncHookJSONOutput } from '@anthropic-ai/claude-agent-sdk';\n" +
    `export const answers: Record<string, SyncHookJSONOutput> = ${given};\n`);
  assert.equal(ok.status, 0, `tsc: ${ok.output}`);
  const bad = typecheck("import type { SyncHookJSONOutput } from '@anthropic-ai/claude-agent-sdk';\n" +
    "export const answers: Record<string, SyncHookJSONOutput> = { a: { hookSpecificOutput: " +
    "{ hookEventName: 'PermissionRequest', decision: { behavior: 'maybe' } } } };\n");
  assert.notEqual(bad.status, 0, 'tsc refuses a decision Claude Code does not read');
});
