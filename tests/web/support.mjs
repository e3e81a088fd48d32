// Test support for the JavaScript tests: real redis-server and afw-gateway processes on free
// loopback ports, a TCP proxy that can stall or cut connections, and an in-memory stand-in for
// sessionStorage. Every process started here is ended by pid when the test ends.
import { spawn } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const GATEWAY_BIN = process.env.AFW_GATEWAY_BIN ?? path.join(ROOT, 'target/debug/afw-gateway');
const REDIS_BIN = process.env.AFW_REDIS_SERVER ?? 'redis-server';
export const WAIT_MS = 15_000;

const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
});

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves when `check()` returns something truthy; fails after `ms` with `what`. */
export async function until(what, check, ms = WAIT_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function track(child, name) {
  running.add(child);
  let log = '';
  const keep = (d) => {
    log = (log + d).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise((r) => child.once('exit', (code, signal) => {
    running.delete(child);
    r({ code, signal });
  }));
  return { exited, log: () => `${name} output:\n${log}` };
}

async function stopChild(child, exited) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const done = await Promise.race([exited, sleep(10_000).then(() => null)]);
  if (!done) {
    child.kill('SIGKILL');
    await exited;
  }
}

export class Redis {
  static async start() {
    if (!fs.existsSync(REDIS_BIN) && REDIS_BIN.includes('/')) throw new Error(`no redis-server at ${REDIS_BIN}`);
    const port = await freePort();
    const child = spawn(REDIS_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const r = new Redis(child, port);
    await until('redis to answer PING', () => r.ping());
    return r;
  }
  constructor(child, port) {
    this.child = child;
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    Object.assign(this, track(child, 'redis-server'));
  }
  ping() {
    return new Promise((resolve) => {
      const s = net.connect(this.port, '127.0.0.1');
      s.on('error', () => resolve(false));
      s.on('connect', () => s.write('PING\r\n'));
      s.on('data', (d) => {
        s.destroy();
        resolve(String(d).startsWith('+PONG'));
      });
    });
  }
  async stop() {
    await stopChild(this.child, this.exited);
  }
}

/** One afw-gateway process. `env` adds settings; `port` reuses a port (a restart). */
export class Gateway {
  static async start({ env = {}, port } = {}) {
    port = port ?? (await freePort());
    const child = spawn(GATEWAY_BIN, [], {
      env: { ...process.env, RUST_LOG: 'warn', HOST: '127.0.0.1', PORT: String(port), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const gw = new Gateway(child, port, env);
    await until('the gateway to be ready', async () => {
      if (child.exitCode !== null) throw new Error(`the gateway exited\n${gw.log()}`);
      try {
        return (await fetch(`${gw.url}/ready`)).status === 200;
      } catch {
        return false;
      }
    });
    gw.instanceId = (await (await fetch(`${gw.url}/health`)).json()).instanceId;
    return gw;
  }
  constructor(child, port, env) {
    this.child = child;
    this.port = port;
    this.env = env;
    this.url = `http://127.0.0.1:${port}`;
    Object.assign(this, track(child, 'afw-gateway'));
  }
  /** SIGTERM, and waits for the exit. */
  async stop() {
    await stopChild(this.child, this.exited);
  }
  /** Stops this process and starts another with the same settings on the same port. */
  async restart() {
    await this.stop();
    return Gateway.start({ env: this.env, port: this.port });
  }
  async api(method, p, body, headers = {}) {
    const res = await fetch(this.url + p, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
  /** Posts `n` events to a session in batches; each event carries `i` from `from`. */
  async postEvents(sessionId, n, { from = 0, pad = 0 } = {}) {
    const padding = pad ? 'x'.repeat(pad) : undefined;
    for (let done = 0; done < n; ) {
      const size = Math.min(100, n - done);
      const events = Array.from({ length: size }, (_, k) => ({
        sessionId,
        type: 'test:tick',
        i: from + done + k,
        ...(padding ? { padding } : {}),
      }));
      await this.api('POST', '/api/events/batch', { events });
      done += size;
    }
  }
}

/** A TCP proxy in front of a gateway: `stall()` stops reading from the gateway (so its writes
 * back up), `resume()` goes on, `cut()` drops every connection as a network loss would. */
export class Proxy {
  static async start(targetPort) {
    const p = new Proxy(targetPort);
    await new Promise((r) => p.server.listen(0, '127.0.0.1', r));
    p.port = p.server.address().port;
    p.url = `http://127.0.0.1:${p.port}`;
    return p;
  }
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.pairs = new Set();
    this.stalled = false;
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      const pair = { client, upstream };
      this.pairs.add(pair);
      client.pipe(upstream);
      if (!this.stalled) upstream.pipe(client);
      else upstream.pause();
      const end = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
  }
  stall() {
    this.stalled = true;
    for (const { client, upstream } of this.pairs) {
      upstream.unpipe(client);
      upstream.pause();
    }
  }
  resume() {
    this.stalled = false;
    for (const { client, upstream } of this.pairs) upstream.pipe(client);
  }
  cut() {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }
  async stop() {
    this.cut();
    await new Promise((r) => this.server.close(r));
  }
}

/** sessionStorage's interface over a Map, shared between clients to stand for a page reload. */
export function memoryStorage() {
  const m = new Map();
  return {
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => m.set(k, String(v)),
    removeItem: (k) => m.delete(k),
  };
}

/** `afw-gateway demo` against `target`: simulated agents, until stopped. */
export class Demo {
  static start(target, { agents = 1, speed = 4 } = {}) {
    const child = spawn(GATEWAY_BIN, ['demo', '--target', target, '--agents', String(agents), '--speed', String(speed)], {
      env: { ...process.env, RUST_LOG: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new Demo(child);
  }
  constructor(child) {
    this.child = child;
    Object.assign(this, track(child, 'afw-gateway demo'));
  }
  async stop() {
    await stopChild(this.child, this.exited);
  }
}
