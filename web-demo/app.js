// The afw-gateway dashboard: the session list, one session's live view, and the controls
// that steer its agent. Plain DOM, no framework; everything the gateway sends is written with
// textContent, never as HTML. Rendering happens once per animation frame, and the event list
// keeps at most MAX_ROWS rows, so a firehose of events does not freeze the tab.
import { connect, AfwError } from '/afw-client.js';
import { OpsView } from '/ops.js';

const MAX_ROWS = 200;
const SESSION_POLL_MS = 2000;
const KEY_STORAGE = 'afw-dashboard:key';

const $ = (id) => document.getElementById(id);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
const short = (id) => (id ? String(id).slice(-8) : '?');
// By hand: toLocaleTimeString costs more than the rest of a row together under a firehose.
const pad = (n, w = 2) => String(n).padStart(w, '0');
function clock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
function ago(iso) {
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (!Number.isFinite(s)) return '';
  if (s < 60) return `${Math.max(s, 0)}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return new Date(iso).toLocaleString();
}

/** What the page has done, for people and for the browser tests. */
const stats = (window.afwDashboard = {
  received: 0, // events delivered by the client to this page
  rendered: 0, // event rows written to the DOM
  dropped: 0, // events not written because newer ones came within the same frame
  frames: 0,
  seqs: [], // the seqs of the open session, in delivery order (the last 20,000)
  subscription: null,
  connection: null,
});

let client = null;
let token = sessionStorage.getItem(KEY_STORAGE);

// ---- start-up: credentials, then the client ----

async function start() {
  const config = await fetch('/config.json').then((r) => r.json()).catch(() => ({}));
  if (config.tokenUrl) {
    // The application signs the tokens (its endpoint sees the browser's cookies); the client
    // asks again before each connection and before each expiry. No key sits in the page.
    const getToken = () => fetchToken(config.tokenUrl);
    let first = null;
    while (!first) {
      first = await getToken().catch((e) => {
        showConnection('reconnecting', { reason: `no token from ${config.tokenUrl}: ${e.message}` });
        return new Promise((r) => setTimeout(() => r(null), 2000));
      });
    }
    client = connect(location.origin, { token: first, getToken });
  } else {
    for (;;) {
      try {
        const probe = await fetch('/api/sessions?limit=1', {
          headers: token ? { authorization: `Bearer ${token}` } : {},
        });
        if (probe.status !== 401) break;
        token = await askForKey(token ? 'That key was not accepted.' : '');
      } catch {
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    $('key-button').hidden = !token;
    client = connect(location.origin, { token });
  }
  client.on('state', showConnection);
  client.on('error', (msg) => console.warn('afw-gateway error', msg));
  // What the credentials may do decides what the page offers; the gateway enforces it anyway.
  const me = await client.api('/api/whoami').catch(() => ({ role: 'viewer' }));
  stats.role = me.role;
  document.body.dataset.role = me.role;
  sessions.start();
  if (me.role === 'admin') demo.check();
  $('ops-link').hidden = me.role !== 'admin';
  route();
}

/** A token from the application's endpoint: text, or JSON `{token}`. */
async function fetchToken(url) {
  const res = await fetch(url, { credentials: 'include', cache: 'no-store' });
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const text = (await res.text()).trim();
  if (text.startsWith('{')) return JSON.parse(text).token;
  return text;
}

function askForKey(error) {
  return new Promise((resolve) => {
    const dialog = $('key-dialog');
    $('key-error').textContent = error;
    $('key-input').value = '';
    $('key-form').onsubmit = () => {
      const key = $('key-input').value.trim();
      sessionStorage.setItem(KEY_STORAGE, key);
      resolve(key);
    };
    dialog.showModal();
  });
}

$('key-button').addEventListener('click', () => {
  sessionStorage.removeItem(KEY_STORAGE);
  location.reload();
});

// ---- the connection ----

let lostWith = null;

function showConnection(state, info) {
  stats.connection = { state, ...info };
  const box = $('conn');
  box.dataset.state = state;
  let text;
  // Why the connection was lost is the first close of the episode; the failed attempts to
  // reconnect that follow (1006 while the gateway is down) do not replace it.
  if (state === 'connected') lostWith = null;
  else if (state === 'reconnecting' && lostWith === null) lostWith = info.code ?? null;
  if (state === 'connected') text = `connected to instance ${short(info.instanceId)}${info.resumed ? ' (reconnected)' : ''}`;
  else if (state === 'reconnecting') {
    const code = lostWith ?? info.code;
    const why = code === 1001 ? 'the gateway went away' : code === 4008 ? 'fell behind (4008)' : `connection lost (${code ?? '?'})`;
    text = `${why}; reconnecting in ${(info.delayMs / 1000).toFixed(1)} s (attempt ${info.attempt})`;
  } else if (state === 'closed') text = 'disconnected';
  else text = 'connecting…';
  $('conn-text').textContent = text;
  box.title = info.instanceId ? `instance ${info.instanceId}` : '';
  view?.showStream();
}

// ---- the session list ----

const sessions = {
  items: new Map(), // id -> session
  cursor: null,
  first: true,
  timer: null,
  start() {
    $('filters').addEventListener('input', () => this.reload());
    $('filters').addEventListener('submit', (e) => e.preventDefault());
    $('sessions-more').addEventListener('click', () => this.more());
    this.reload();
  },
  query(cursor) {
    const q = new URLSearchParams({ limit: '50' });
    const status = $('filter-status').value;
    const user = $('filter-user').value.trim();
    if (status) q.set('status', status);
    if (user) q.set('userId', user);
    if (cursor) q.set('cursor', cursor);
    return `/api/sessions?${q}`;
  },
  async reload() {
    clearTimeout(this.timer);
    this.items.clear();
    $('session-list').replaceChildren();
    this.first = true;
    await this.poll();
  },
  // The newest page, merged in: new sessions appear at the top, changed ones update.
  async poll() {
    clearTimeout(this.timer);
    try {
      const page = await client.api(this.query());
      const fresh = !this.first;
      for (const s of page.sessions.slice().reverse()) this.put(s, fresh);
      if (this.first) {
        this.cursor = page.nextCursor;
        $('sessions-more').hidden = !page.nextCursor;
      }
      this.first = false;
      $('sessions-empty').hidden = this.items.size > 0;
      $('welcome-demo').hidden = this.items.size > 0 || !demo.available;
      $('sessions-count').textContent = `${this.items.size}${this.cursor ? '+' : ''}`;
    } catch (e) {
      console.warn('session list', e);
    }
    approvals.poll();
    this.timer = setTimeout(() => this.poll(), SESSION_POLL_MS);
  },
  async more() {
    if (!this.cursor) return;
    const page = await client.api(this.query(this.cursor));
    for (const s of page.sessions) this.put(s, false, true);
    this.cursor = page.nextCursor;
    $('sessions-more').hidden = !page.nextCursor;
  },
  put(s, fresh, atEnd = false) {
    const known = this.items.get(s.id);
    this.items.set(s.id, s);
    const item = el(
      'li',
      {},
      el(
        'button',
        {
          type: 'button',
          class: `session-item${fresh && !known ? ' fresh' : ''}`,
          'data-session': s.id,
          'aria-current': view?.id === s.id ? 'true' : 'false',
          onclick: () => open(s.id),
        },
        el('div', { class: 'row' }, el('span', { class: 'badge', 'data-status': s.status, text: s.status }),
          el('span', { class: 'id', text: s.id })),
        el(
          'div',
          { class: 'meta' },
          s.userId ? el('span', { text: s.userId }) : null,
          s.cwd ? el('span', { text: s.cwd }) : null,
          el('span', { text: ago(s.startedAt) }),
          el('span', { text: `${s.chainsCount ?? 0} chain${s.chainsCount === 1 ? '' : 's'}` }),
        ),
      ),
    );
    const list = $('session-list');
    const old = list.querySelector(`[data-session="${CSS.escape(s.id)}"]`)?.parentElement;
    if (old) old.replaceWith(item);
    else if (atEnd) list.append(item);
    else list.prepend(item);
  },
  mark(id) {
    for (const b of document.querySelectorAll('.session-item')) {
      b.setAttribute('aria-current', b.dataset.session === id ? 'true' : 'false');
    }
  },
};

// ---- permission requests waiting, in every session ----

const approvals = {
  async poll() {
    let page;
    try {
      page = await client.api('/api/permissions?status=pending');
    } catch {
      return;
    }
    const items = page.permissions.map((p) =>
      el('li', {}, el('button', {
        type: 'button', class: 'approval-item', 'data-permission': p.id, onclick: () => open(p.sessionId),
      }, el('strong', { text: p.tool }), el('span', { class: 'muted', text: ` ${text(subject(p.input))} · ${p.sessionId}` }))));
    $('approval-list').replaceChildren(...items);
    $('approvals').hidden = items.length === 0;
    view?.syncPermissions(page.permissions);
  },
};

/** What a tool call acts on, as the rules read it. */
function subject(input) {
  for (const f of ['command', 'file_path', 'notebook_path', 'path', 'pattern', 'url', 'query']) {
    if (typeof input?.[f] === 'string') return input[f];
  }
  return input;
}

// ---- the demo button ----

const demo = {
  available: false,
  agents: 0,
  async check() {
    try {
      const s = await client.api('/api/demo');
      this.available = s.available;
      this.agents = s.agents;
    } catch {
      this.available = false;
    }
    const b = $('demo-button');
    b.hidden = !this.available;
    b.textContent = this.agents ? `Stop demo agents (${this.agents})` : 'Start demo agents';
    $('welcome-demo').hidden = sessions.items.size > 0 || !this.available;
  },
};
$('demo-button').addEventListener('click', async () => {
  const b = $('demo-button');
  b.disabled = true;
  try {
    if (demo.agents) await client.api('/api/demo', { method: 'DELETE' });
    else await client.api('/api/demo', { method: 'POST', body: { agents: 3 } });
    await demo.check();
    sessions.poll();
  } finally {
    b.disabled = false;
  }
});

// ---- routing: /?session=<id> ----

let view = null;

let ops = null;

function route() {
  const params = new URLSearchParams(location.search);
  const id = params.get('session');
  const opsWanted = params.get('view') === 'ops' && stats.role === 'admin';
  if (!opsWanted) closeOps();
  if (opsWanted) {
    view?.close();
    view = null;
    $('session').hidden = true;
    $('welcome').hidden = true;
    sessions.mark(null);
    $('ops').hidden = false;
    ops ??= new OpsView((p) => client.api(p), $('ops'));
  } else if (id) show(id);
  else {
    view?.close();
    view = null;
    $('session').hidden = true;
    $('welcome').hidden = false;
    document.body.classList.remove('has-session');
    sessions.mark(null);
  }
}

function open(id) {
  if (view?.id === id) return;
  history.pushState(null, '', `/?session=${encodeURIComponent(id)}`);
  show(id);
}

function closeOps() {
  ops?.close();
  ops = null;
  $('ops').hidden = true;
}

function show(id) {
  closeOps();
  view?.close();
  view = new SessionView(id);
  sessions.mark(id);
  document.body.classList.add('has-session');
  $('main').focus({ preventScroll: true });
}

window.addEventListener('popstate', route);
$('home-link').addEventListener('click', (e) => {
  e.preventDefault();
  history.pushState(null, '', '/');
  route();
});
$('ops-link').addEventListener('click', (e) => {
  e.preventDefault();
  history.pushState(null, '', '/?view=ops');
  route();
});

// ---- one session ----

class SessionView {
  constructor(id) {
    this.id = id;
    this.session = null;
    this.chains = new Map();
    this.commands = new Map(); // commandId -> {type, state, detail, node}
    this.queue = []; // events waiting for the next frame
    this.rows = 0;
    this.total = 0;
    this.frame = 0;
    this.dirtyChains = false;
    this.prompt = null;
    this.promptEvents = 0;
    this.permissions = new Map(); // id -> card
    $('permission-list').replaceChildren();
    $('permissions').hidden = true;
    stats.seqs = [];
    stats.received = stats.rendered = stats.dropped = 0;
    $('welcome').hidden = true;
    $('session').hidden = false;
    $('session-title').textContent = id;
    $('events').replaceChildren();
    $('chains').replaceChildren();
    $('command-log').replaceChildren();
    $('prompt').hidden = true;
    $('events-count').textContent = '';
    this.loadSession();
    approvals.poll();
    this.sub = client.subscribe(id, (event, meta) => this.onEvent(event, meta), {
      from: 'start',
      onStatus: (status) => this.onStatus(status),
      onChain: (chain) => this.putChain(chain),
      onCommand: (record) => this.putCommand(record),
      onReset: () => this.onReset(),
      onGap: (gap) => this.onGap(gap),
      onUnsubscribed: (reason) => {
        this.streamNote = `the session was ${reason}`;
        this.showStream();
      },
    });
    this.showStream();
  }

  close() {
    this.sub.close();
    cancelAnimationFrame(this.frame);
    this.closed = true;
  }

  async loadSession() {
    try {
      this.session = await client.api(`/api/sessions/${encodeURIComponent(this.id)}`);
      if (this.closed) return;
      this.showSession();
      // The prompt follows the events (awaiting-input, input-received) once the stream has
      // shown one: a read answered meanwhile can be older than the last of them (the agent
      // marks the session idle only after it took the input). The read stands in only while
      // the stream has shown none (a history trimmed past the prompt).
      if (this.promptEvents > 0) return;
      if (this.session.conversationState === 'awaiting_input' && this.session.lastPrompt) {
        this.showPrompt(this.session.lastPrompt);
      } else this.showPrompt(null);
    } catch (e) {
      if (e instanceof AfwError && e.status === 404) {
        $('session-status').textContent = 'not found';
        $('session-facts').replaceChildren(el('div', {}, el('dt', { text: 'This session does not exist (yet).' })));
      }
    }
  }

  async loadChains() {
    try {
      const page = await client.api(`/api/sessions/${encodeURIComponent(this.id)}/chains`);
      if (this.closed) return;
      for (const c of page.chains ?? []) this.putChain(c);
    } catch {}
  }

  showSession() {
    const s = this.session;
    const badge = $('session-status');
    badge.textContent = s.status;
    badge.dataset.status = s.status;
    const facts = [
      ['user', s.userId ?? s.user], ['cwd', s.cwd], ['host', s.hostname], ['started', s.startedAt && new Date(s.startedAt).toLocaleString()],
      ['ended', s.endedAt && new Date(s.endedAt).toLocaleString()], ['summary', s.summary], ['end reason', s.endReason],
    ].filter(([, v]) => v);
    $('session-facts').replaceChildren(...facts.map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', { text: v }))));
  }

  // -- the stream --

  onStatus(status) {
    if (['live', 'resumed', 'reloaded'].includes(status)) {
      // Whatever changed while the page was not connected: chains and the session itself.
      this.loadChains();
      if (status !== 'live') this.loadSession();
    }
    if (status === 'resumed') this.resumes = (this.resumes ?? 0) + 1;
    if (status === 'reloaded') this.reloads = (this.reloads ?? 0) + 1;
    this.showStream();
  }

  onReset() {
    this.addNote('The stream started again (new epoch): the session was deleted and made again, or the store lost it.');
  }

  onGap({ from, to }) {
    this.addNote(`Events ${from}–${to} are no longer kept by the gateway (trimmed or expired).`);
  }

  addNote(text) {
    this.queue.push({ note: text });
    this.schedule();
  }

  showStream() {
    if (!this.sub) return;
    const s = this.sub;
    const words = {
      subscribing: 'subscribing…', live: 'live', resumed: 'resumed exactly: nothing lost, nothing twice',
      reloading: 'the gateway could not replay exactly; reading the history again…',
      reloaded: 'reloaded after recovered:false', disconnected: 'disconnected; will resume from the last seq', closed: 'closed',
    };
    const conn = client.state === 'connected' ? '' : ' · waiting for the connection';
    const kind = s.status === 'resumed' || s.status === 'live' ? 'ok' : 'warn';
    const box = $('stream-state');
    box.dataset.kind = kind;
    box.dataset.status = s.status;
    box.textContent =
      `Stream ${words[s.status] ?? s.status}${conn} · last seq ${s.lastSeq ?? '–'} · epoch ${s.epoch ? short(s.epoch) : '–'}` +
      (this.resumes ? ` · resumed ${this.resumes}×` : '') +
      (this.reloads ? ` · reloaded ${this.reloads}×` : '') +
      (this.streamNote ? ` · ${this.streamNote}` : '');
    stats.subscription = { status: s.status, lastSeq: s.lastSeq, epoch: s.epoch, resumes: this.resumes ?? 0, reloads: this.reloads ?? 0 };
  }

  onEvent(event, meta) {
    stats.received += 1;
    this.total += 1;
    if (stats.seqs.length >= 20_000) stats.seqs.splice(0, 10_000);
    stats.seqs.push(meta.seq);
    this.queue.push({ event, meta });
    this.react(event);
    this.schedule();
  }

  // What events say about the rest of the view.
  react(e) {
    const t = e.type;
    if (t === 'interaction:awaiting-input' || t === 'interaction:input-received') {
      this.promptEvents += 1;
      this.showPrompt(t === 'interaction:input-received' ? null : e);
    } else if (t === 'command:acknowledged') this.ackCommand(e);
    else if (t === 'permission:requested') this.putPermission({ ...e, id: e.permissionId, status: 'pending' });
    else if (t === 'permission:decided') this.settlePermission(e.permissionId, e);
    if (t === 'session:ended' || t === 'interaction:input-received' || t === 'session:started') {
      clearTimeout(this.sessionTimer);
      this.sessionTimer = setTimeout(() => this.loadSession(), 300);
    }
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  render() {
    this.frame = 0;
    if (this.closed) return;
    stats.frames += 1;
    let batch = this.queue;
    this.queue = [];
    if (batch.length > MAX_ROWS) {
      stats.dropped += batch.length - MAX_ROWS;
      batch = batch.slice(-MAX_ROWS);
    }
    const list = $('events');
    const fragment = document.createDocumentFragment();
    for (let i = batch.length - 1; i >= 0; i--) fragment.append(this.row(batch[i]));
    list.prepend(fragment);
    this.rows += batch.length;
    stats.rendered += batch.length;
    while (this.rows > MAX_ROWS) {
      list.lastElementChild?.remove();
      this.rows -= 1;
    }
    const hidden = this.total - Math.min(this.total, MAX_ROWS);
    $('events-count').textContent = `${this.total} received${hidden > 0 ? ` · newest ${MAX_ROWS} shown` : ''}`;
    if (this.dirtyChains) this.renderChains();
    this.showStream();
  }

  row(item) {
    if (item.note) return el('li', { class: 'gap', role: 'note', text: item.note });
    const { event: e, meta } = item;
    const details = el('details', {},
      el('summary', {},
        el('span', { class: 'seq', text: meta.seq }),
        el('span', { class: 'time', text: clock(e.timestamp) }),
        el('span', { class: 'type', text: e.type }),
        el('span', { class: 'what', text: describe(e) }),
      ),
    );
    details.addEventListener('toggle', () => {
      if (details.open && !details.querySelector('pre')) details.append(el('pre', { text: JSON.stringify(e, null, 2) }));
    }, { once: false });
    return el('li', { 'data-seq': meta.seq, class: meta.recovered ? null : 'reloaded' }, details);
  }

  // -- chains --

  putChain(chain) {
    if (!chain?.id) return;
    const known = this.chains.get(chain.id);
    if (known && known.updatedAt > chain.updatedAt) return;
    this.chains.set(chain.id, chain);
    this.dirtyChains = true;
    this.schedule();
  }

  renderChains() {
    this.dirtyChains = false;
    const all = [...this.chains.values()].sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''));
    $('chains-empty').hidden = all.length > 0;
    $('chains').replaceChildren(...all.map(chainCard));
    const current = all.find((c) => ['in_progress', 'paused', 'pending'].includes(c.status));
    if (current?.currentStep) $('step-number').value = current.currentStep;
  }

  // -- commands --

  async command(type) {
    const body = { type };
    if (type === 'retry' || type === 'skip') body.stepNumber = Number($('step-number').value);
    if (type === 'abort') body.reason = $('abort-reason').value.trim() || 'aborted from the dashboard';
    try {
      const answer = await client.api(`/api/sessions/${encodeURIComponent(this.id)}/commands`, { method: 'POST', body });
      this.putCommand(answer.command);
    } catch (e) {
      this.logCommand(`local-${Date.now()}`, body, 'refused', e.message);
    }
  }

  putCommand(record) {
    if (!record?.commandId || this.commands.has(record.commandId)) return;
    this.logCommand(record.commandId, record.command ?? {}, 'pending', 'sent; waiting for the agent');
  }

  logCommand(id, command, state, detail) {
    const label = [command.type, command.stepNumber ? `step ${command.stepNumber}` : null, command.reason ? `“${command.reason}”` : null]
      .filter(Boolean).join(' ');
    const node = el('li', { 'data-command-id': id, 'data-state': state },
      el('span', { class: 'time muted', text: new Date().toLocaleTimeString([], { hour12: false }) }),
      el('strong', { text: label }),
      el('span', { class: 'state', text: detail }));
    const entry = { command, state, node };
    this.commands.set(id, entry);
    $('command-log').prepend(node);
    while ($('command-log').children.length > 30) $('command-log').lastElementChild.remove();
  }

  ackCommand(e) {
    const entry = this.commands.get(e.commandId);
    if (!entry) {
      // Acknowledged before (or without) the page seeing it issued: log it as it stands.
      this.logCommand(e.commandId, { type: e.commandType }, 'pending', '');
      return this.ackCommand(e);
    }
    const ok = e.success !== false && !e.error;
    entry.state = ok ? 'acknowledged' : 'failed';
    entry.node.dataset.state = entry.state;
    const said = e.result ?? e.error;
    entry.node.querySelector('.state').textContent =
      `${ok ? 'acknowledged' : 'refused by the agent'}${said ? `: ${typeof said === 'string' ? said : JSON.stringify(said)}` : ''}`;
  }

  // -- permission requests --

  /** The pending requests of every session (a listing): this session's get a card. */
  syncPermissions(all) {
    for (const p of all) if (p.sessionId === this.id) this.putPermission(p);
  }

  putPermission(p) {
    if (!p.id || this.permissions.has(p.id) || p.status !== 'pending') return;
    if (p.expiresAt && Date.parse(p.expiresAt) <= Date.now()) return;
    const input = el('textarea', { class: 'permission-input', rows: 3, 'aria-label': 'The tool input to allow (edit to change it)' });
    input.value = JSON.stringify(p.input ?? {}, null, 2);
    const message = el('input', { class: 'permission-message', placeholder: 'why (sent to Claude with a deny)', maxlength: 2000, 'aria-label': 'Message' });
    const note = el('p', { class: 'muted permission-note' });
    const card = el('article', { class: 'permission', 'data-permission': p.id, 'data-status': 'pending' },
      el('div', { class: 'row' }, el('strong', { text: p.tool }), el('code', { text: text(subject(p.input)) })),
      input,
      el('div', { class: 'row' },
        el('button', { type: 'button', class: 'allow', onclick: () => this.decide(p, 'allow', input, message, note), text: 'Allow' }),
        el('button', { type: 'button', class: 'danger deny', onclick: () => this.decide(p, 'deny', input, message, note), text: 'Deny' }),
        message),
      note);
    this.permissions.set(p.id, card);
    $('permission-list').prepend(card);
    $('permissions').hidden = false;
  }

  async decide(p, behavior, input, message, note) {
    const body = { behavior };
    if (message.value.trim()) body.message = message.value.trim();
    if (behavior === 'allow') {
      let edited;
      try {
        edited = JSON.parse(input.value);
      } catch {
        note.textContent = 'the input is not JSON; fix it or put it back';
        return;
      }
      if (JSON.stringify(edited) !== JSON.stringify(p.input)) body.updatedInput = edited;
    }
    note.textContent = 'sending…';
    try {
      const settled = await client.api(`/api/permissions/${encodeURIComponent(p.id)}/decision`, { method: 'POST', body });
      this.settlePermission(p.id, settled);
    } catch (e) {
      if (e instanceof AfwError && e.status === 409 && e.body?.permission) this.settlePermission(p.id, e.body.permission);
      else note.textContent = `not sent: ${e.message}`;
    }
  }

  settlePermission(id, settled) {
    const card = this.permissions.get(id);
    if (!card || card.dataset.status !== 'pending') return;
    const d = settled.decision ?? {};
    const words = {
      allowed: `allowed by ${d.decidedBy}`, denied: `denied by ${d.decidedBy}${d.message ? `: “${d.message}”` : ''}`,
      expired: 'nobody answered in time: Claude Code asks in its terminal',
      abandoned: 'abandoned: the agent stopped waiting',
    };
    card.dataset.status = settled.status;
    for (const b of card.querySelectorAll('button, textarea, input')) b.disabled = true;
    card.querySelector('.permission-note').textContent = words[settled.status] ?? settled.status;
  }

  // -- the prompt --

  showPrompt(p) {
    this.prompt = p;
    const box = $('prompt');
    if (!p || !p.promptText) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    $('prompt-text').textContent = p.promptText;
    $('prompt-note').textContent = '';
    const quick = (Array.isArray(p.quickResponses) ? p.quickResponses : []).map((q) =>
      el('button', { type: 'button', text: String(q), onclick: () => this.answer(String(q)) }));
    $('prompt-quick').replaceChildren(...quick);
  }

  async answer(text) {
    if (!text) return;
    $('prompt-note').textContent = 'sending…';
    try {
      await client.api(`/api/sessions/${encodeURIComponent(this.id)}/input`, {
        method: 'POST',
        body: { input: text, prompt: this.prompt?.promptText },
      });
      $('prompt-note').textContent = `sent “${text}”; waiting for the agent to take it`;
      $('prompt-input').value = '';
    } catch (e) {
      $('prompt-note').textContent = `not sent: ${e.message}`;
    }
  }
}

function chainCard(c) {
  const progress = Math.max(0, Math.min(100, Number(c.progress) || 0));
  const eta = c.estimatedCompletion && ['in_progress', 'paused'].includes(c.status)
    ? `ETA ${new Date(c.estimatedCompletion).toLocaleTimeString([], { hour12: false })}` : '';
  const steps = (c.steps ?? []).map((s) =>
    el('li', { 'data-status': s.status, 'data-current': s.stepNumber === c.currentStep ? 'true' : 'false' },
      el('span', { text: `${s.stepNumber}. ${s.title ?? s.action ?? 'step'}` }),
      s.status !== 'pending' ? el('span', { class: 'muted', text: s.status }) : null));
  return el('article', { class: 'chain', 'data-chain': c.id, 'data-status': c.status },
    el('div', { class: 'chain-head' },
      el('span', { class: 'chain-title', text: c.title }),
      el('span', { class: 'badge', 'data-status': c.status, text: c.status }),
      el('span', { class: 'muted', text: `${c.completedSteps}/${c.totalSteps} steps${c.currentStep ? ` · step ${c.currentStep}` : ''}` }),
      el('span', { class: 'chain-eta', text: eta })),
    el('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': progress, 'aria-label': `${c.title} progress` },
      barFill(progress)),
    steps.length ? el('ol', { class: 'steps' }, ...steps) : null);
}

// Set through the CSSOM: the page's CSP allows no inline style attributes.
function barFill(progress) {
  const fill = el('span');
  fill.style.width = `${progress}%`;
  return fill;
}

/** One line about an event, from the fields agents usually send. */
function describe(e) {
  switch (true) {
    case e.type?.startsWith('step:'):
      return [`step ${e.stepNumber ?? e.step ?? '?'}`, e.title, e.error && `error: ${text(e.error)}`].filter(Boolean).join(' · ');
    case e.type === 'tool:used':
      return `${e.tool ?? ''} ${e.target ?? ''}`;
    case e.type === 'command:acknowledged':
      return `${e.commandType} → ${text(e.result ?? e.error ?? (e.success ? 'ok' : 'failed'))}`;
    case e.type === 'interaction:awaiting-input':
      return e.promptText ?? '';
    case e.type === 'interaction:input-received':
      return text(e.input);
    case e.type?.startsWith('claude:'):
      return [e.tool, e.target ?? (e.claude?.prompt && text(e.claude.prompt)) ?? e.claude?.message].filter(Boolean).join(' ') || e.hook;
    case e.type === 'permission:requested':
      return `${e.tool} ${text(subject(e.input))}`;
    case e.type === 'permission:decided':
      return `${e.tool} ${e.status}${e.decision?.decidedBy ? ` by ${e.decision.decidedBy}` : ''}`;
    case e.type?.startsWith('chain:'):
      return [e.title, e.status].filter(Boolean).join(' · ');
    default: {
      const skip = new Set(['sessionId', 'type', 'eventId', 'timestamp', 'receivedAt', 'seq']);
      return Object.entries(e).filter(([k]) => !skip.has(k)).slice(0, 3).map(([k, v]) => `${k}: ${text(v)}`).join(' · ');
    }
  }
}
function text(v) {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s && s.length > 120 ? `${s.slice(0, 120)}…` : (s ?? '');
}

$('commands').addEventListener('click', (e) => {
  const b = e.target.closest('button[data-command]');
  if (b && view) view.command(b.dataset.command);
});
$('prompt-form').addEventListener('submit', (e) => {
  e.preventDefault();
  view?.answer($('prompt-input').value.trim());
});

start();
