// The Operations page: GET /api/ops/summary every two seconds, drawn as tables and plain SVG
// charts (no library, nothing fetched from elsewhere). The gateway serves each instance's
// counters since its start; rates come from one summary to the next, and the fan-out
// latency's quantiles from the difference of its histogram buckets, summed over the instances,
// as Prometheus's histogram_quantile does.

const POLL_MS = 2000;
const KEEP = 150; // points per chart: five minutes at one per poll
const SVG = 'http://www.w3.org/2000/svg';

/** The charts: id, title, unit, and each series' name, colour and value from a step. */
const CHARTS = [
  { id: 'rate', title: 'Events per second', unit: '/s', series: [
    { name: 'in', color: 'var(--accent)', value: (d) => d.eventsIn },
    { name: 'delivered', color: 'var(--ok)', value: (d) => d.deliveries },
  ] },
  { id: 'latency', title: 'Fan-out latency', unit: 'ms', series: [
    { name: 'p50', color: 'var(--ok)', value: (d) => d.p50 },
    { name: 'p99', color: 'var(--warn)', value: (d) => d.p99 },
  ] },
  { id: 'closes', title: 'Closes and errors per minute', unit: '/min', series: [
    { name: '4008', color: 'var(--warn)', value: (d) => d.closes4008 },
    { name: '1011', color: 'var(--paused)', value: (d) => d.closes1011 },
    { name: '5xx', color: 'var(--bad)', value: (d) => d.http5xx },
  ] },
  { id: 'redis-latency', title: 'Redis latency', unit: 'ms', series: [
    { name: 'PING', color: 'var(--accent)', value: (d) => d.redisLatency },
  ] },
  { id: 'redis-memory', title: 'Redis memory', unit: 'MB', series: [
    { name: 'used', color: 'var(--accent)', value: (d) => d.redisUsed },
    { name: 'maxmemory', color: 'var(--bad)', value: (d) => d.redisMax },
  ] },
];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') node.textContent = v;
    else if (k === 'class') node.className = v;
    else node.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const fixed = (v, digits = 1) => (v === null || v === undefined ? '–' : Number(v).toFixed(digits));
function duration(secs) {
  const s = Math.floor(secs);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** The `q` quantile (0-1) of observations in buckets `counts` (each bucket's own, +Inf last)
 *  with upper bounds `bounds`, interpolated within its bucket; null with no observation. */
export function quantile(q, bounds, counts) {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i += 1) {
    if (seen + counts[i] >= rank && counts[i] > 0) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const lower = i === 0 ? 0 : bounds[i - 1];
      return lower + ((bounds[i] - lower) * (rank - seen)) / counts[i];
    }
    seen += counts[i];
  }
  return bounds[bounds.length - 1];
}

/** What changed from one summary to the next: rates per second or minute, the interval's
 *  latency quantiles, and Redis's figures. An instance new since the last summary (or
 *  restarted: its counters went down) counts from zero. */
export function step(prev, now) {
  const dt = Math.max((now.generatedAtMs - prev.generatedAtMs) / 1000, 0.001);
  const before = new Map(prev.instances.map((i) => [i.id, i]));
  const sum = { eventsIn: 0, deliveries: 0, c4008: 0, c1011: 0, http5xx: 0 };
  const buckets = now.fanoutLatencyBucketsMs.map(() => 0).concat([0]);
  for (const inst of now.instances) {
    let was = before.get(inst.id);
    if (was && was.startedAtMs !== inst.startedAtMs) was = undefined;
    const d = (f) => Math.max((f(inst) ?? 0) - (was ? f(was) ?? 0 : 0), 0);
    sum.eventsIn += d((i) => i.eventsIn);
    sum.deliveries += d((i) => i.deliveries);
    sum.c4008 += d((i) => i.closes?.['4008']);
    sum.c1011 += d((i) => i.closes?.['1011']);
    sum.http5xx += d((i) => i.http5xx);
    (inst.fanoutLatency ?? []).forEach((n, k) => {
      buckets[k] += Math.max(n - (was?.fanoutLatency?.[k] ?? 0), 0);
    });
  }
  const r = now.redis ?? {};
  const mb = (n) => (n === null || n === undefined ? null : n / 1048576);
  return {
    at: now.generatedAtMs,
    eventsIn: sum.eventsIn / dt,
    deliveries: sum.deliveries / dt,
    closes4008: (sum.c4008 * 60) / dt,
    closes1011: (sum.c1011 * 60) / dt,
    http5xx: (sum.http5xx * 60) / dt,
    p50: quantile(0.5, now.fanoutLatencyBucketsMs, buckets),
    p99: quantile(0.99, now.fanoutLatencyBucketsMs, buckets),
    redisLatency: r.status === 'up' ? r.latencyMs : null,
    redisUsed: r.status === 'up' ? mb(r.usedMemory) : null,
    redisMax: r.status === 'up' && r.maxMemory ? mb(r.maxMemory) : null,
  };
}

/** Draws `points` (each `{at, …}`) of `chart`'s series into its SVG, scaled to the largest
 *  value; a null value breaks its line. */
function draw(box, chart, points) {
  const W = 320, H = 120, L = 34, B = 16;
  const plot = box.querySelector('svg');
  plot.replaceChildren();
  const values = points.flatMap((p) => chart.series.map((s) => s.value(p))).filter((v) => v !== null && Number.isFinite(v));
  const top = Math.max(...values, 0) * 1.1 || 1;
  const t0 = points[0]?.at ?? 0;
  const span = Math.max((points.at(-1)?.at ?? 0) - t0, POLL_MS);
  const x = (at) => L + ((at - t0) / span) * (W - L - 4);
  const y = (v) => H - B - (v / top) * (H - B - 6);
  plot.append(
    svg('line', { x1: L, y1: H - B, x2: W, y2: H - B, class: 'axis' }),
    svg('line', { x1: L, y1: 4, x2: L, y2: H - B, class: 'axis' }),
    svg('text', { x: L - 4, y: 12, 'text-anchor': 'end', class: 'tick' }, fixed(top, top < 10 ? 1 : 0)),
    svg('text', { x: L - 4, y: H - B, 'text-anchor': 'end', class: 'tick' }, '0'),
    svg('text', { x: W - 2, y: H - 3, 'text-anchor': 'end', class: 'tick' }, `${Math.round(span / 1000)}s`),
  );
  for (const s of chart.series) {
    let d = '';
    let pen = 'M';
    for (const p of points) {
      const v = s.value(p);
      if (v === null || !Number.isFinite(v)) { pen = 'M'; continue; }
      d += `${pen}${x(p.at).toFixed(1)},${y(v).toFixed(1)} `;
      pen = 'L';
    }
    if (d) plot.append(svg('path', { d, stroke: s.color, class: 'series', 'data-series': s.name }));
  }
  plot.dataset.points = String(points.length);
  const last = points.at(-1);
  box.querySelector('.now').textContent = last
    ? chart.series.map((s) => {
      const v = s.value(last);
      return `${s.name} ${v === null || v === undefined ? '–' : fixed(v) + chart.unit}`;
    }).join(' · ')
    : 'waiting for a second summary…';
}

export class OpsView {
  constructor(api, root) {
    this.api = api;
    this.root = root;
    this.prev = null;
    this.points = [];
    this.stopped = false;
    this.build();
    this.poll();
  }

  build() {
    this.charts = new Map();
    const grid = this.root.querySelector('#ops-charts');
    grid.replaceChildren();
    for (const c of CHARTS) {
      const box = el('figure', { class: 'chart', id: `chart-${c.id}` },
        el('figcaption', {}, el('strong', { text: c.title }), el('span', { class: 'now muted' })));
      const plot = svg('svg', { viewBox: '0 0 320 120', role: 'img', 'aria-label': c.title, 'data-points': '0' });
      // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
      const keys = c.series.map((s) => {
        const key = el('span', { class: 'key', text: s.name });
        key.style.setProperty('--c', s.color);
        return key;
      });
      box.append(plot, el('div', { class: 'legend' }, ...keys));
      grid.append(box);
      this.charts.set(c.id, box);
      draw(box, c, []);
    }
  }

  async poll() {
    while (!this.stopped) {
      try {
        const s = await this.api('/api/ops/summary');
        if (this.stopped) return;
        this.render(s);
      } catch (e) {
        this.root.querySelector('#ops-state').textContent = `The summary did not come: ${e.message}`;
      }
      await new Promise((r) => { this.timer = setTimeout(r, POLL_MS); });
    }
  }

  render(s) {
    if (this.prev) {
      this.points.push(step(this.prev, s));
      if (this.points.length > KEEP) this.points.shift();
    }
    this.prev = s;
    for (const c of CHARTS) draw(this.charts.get(c.id), c, this.points);
    const when = new Date(s.generatedAtMs).toLocaleTimeString();
    this.root.querySelector('#ops-state').textContent =
      `${s.instances.length} instance${s.instances.length === 1 ? '' : 's'} · served by …${s.servedBy.slice(-8)} at ${when}` +
      (s.errors.length ? ` · ${s.errors.join('; ')}` : '');
    this.instances(s);
    this.redis(s.redis);
    this.queues(s.jobQueues);
    const held = s.locks?.held;
    this.root.querySelector('#ops-locks').textContent = held === null || held === undefined
      ? 'Locks held: not counted on a Redis Cluster (each lock lives in a slot of its own)'
      : `Locks held: ${held}`;
  }

  instances(s) {
    const rows = s.instances.map((i) => el('tr', { 'data-instance': i.id },
      el('td', { class: 'mono', title: i.id, text: `…${i.id.slice(-8)}` }),
      el('td', { text: i.address ?? '' }),
      el('td', { text: i.version }),
      el('td', { text: i.store }),
      el('td', { text: duration(i.uptimeSecs) }),
      el('td', { class: 'n', text: i.connections }),
      el('td', { class: 'n', text: i.subscriptions }),
      el('td', { class: 'n', text: i.sessionsWatched }),
      el('td', { class: 'n', text: i.eventsIn }),
      el('td', { class: 'n', text: i.deliveries }),
      el('td', { class: 'muted', text: `${Math.max(0, Math.round((s.generatedAtMs - i.reportedAtMs) / 1000))}s ago` })));
    this.root.querySelector('#ops-instances tbody').replaceChildren(...rows);
  }

  redis(r) {
    const facts = this.root.querySelector('#ops-redis');
    const fact = (k, v) => [el('div', {}, el('dt', { text: k }), el('dd', { text: String(v) }))];
    facts.dataset.status = r.status;
    if (r.status === 'disabled') {
      facts.replaceChildren(...fact('Store', 'embedded (no Redis)'));
      return;
    }
    facts.replaceChildren(
      ...fact('Status', r.status),
      ...fact('Latency', r.latencyMs === null || r.latencyMs === undefined ? '–' : `${fixed(r.latencyMs, 2)} ms`),
      ...fact('Memory', `${bytes(r.usedMemory)} of ${r.maxMemory ? bytes(r.maxMemory) : 'no limit'}`),
      ...fact('Keys', r.keys ?? '–'),
      ...fact('Policy', r.evictionPolicy ?? '–'),
      ...fact('Mode', r.mode ?? '–'),
      ...(r.error ? fact('Error', r.error) : []),
      ...(r.warnings ?? []).flatMap((w) => fact('Warning', w)),
    );
  }

  queues(qs) {
    const section = this.root.querySelector('#ops-queues');
    section.hidden = qs.length === 0;
    const rows = qs.map((q) => el('tr', { 'data-queue': q.queue },
      el('td', { text: q.queue }),
      ...['waiting', 'active', 'delayed', 'failed', 'dead', 'completed'].map((k) => el('td', { class: 'n', text: q[k] }))));
    section.querySelector('tbody').replaceChildren(...rows);
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
