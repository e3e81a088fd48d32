// The dashboard under a firehose: 1,000 events/s into one open session for 10 s, in headless
// Chromium. Prints what the page received and rendered, its longest main-thread task, and its
// memory after the run. A benchmark, not a test: run it with scripts/bench-browser.sh.
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Gateway, ROOT, sleep, until } from './support.mjs';

const RATE = Number(process.env.RATE ?? 1000); // events per second
const SECONDS = Number(process.env.SECONDS ?? 10);
const CHROMIUM = process.env.AFW_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--enable-precise-memory-info'];

const gw = await Gateway.start({ env: { MAX_EVENTS_PER_SESSION: String(RATE * SECONDS + 100) } });
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.__longest = 0;
    window.__longTasks = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        window.__longTasks += 1;
        window.__longest = Math.max(window.__longest, e.duration);
      }
    }).observe({ type: 'longtask', buffered: true });
  });
  await gw.api('POST', '/api/events', { sessionId: 'firehose', type: 'bench:start' });
  await page.goto(`${gw.url}/?session=firehose`);
  await page.waitForSelector('#events li[data-seq="1"]');
  await page.evaluate(() => { window.__longest = 0; window.__longTasks = 0; });

  const perTick = RATE / 10;
  const started = Date.now();
  let sent = 0;
  for (let tick = 0; tick < SECONDS * 10; tick++) {
    const events = Array.from({ length: perTick }, (_, k) => ({
      sessionId: 'firehose', type: k % 3 ? 'tool:used' : 'step:started', tool: 'Bash', target: `cargo test #${sent + k}`, stepNumber: 1 + (k % 6),
    }));
    await gw.api('POST', '/api/events/batch', { events });
    sent += perTick;
    const due = started + (tick + 1) * 100;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  const postSeconds = (Date.now() - started) / 1000;
  await until('the page to receive every event', () => page.evaluate((n) => window.afwDashboard.received >= n, sent + 1), 30_000);
  await sleep(500);
  const cdp = await context.newCDPSession(page);
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('Performance.enable');
  const metrics = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  const page_ = await page.evaluate(() => ({
    ...window.afwDashboard, seqs: undefined, ordered: window.afwDashboard.seqs.every((s, i, a) => i === 0 || s === a[i - 1] + 1),
    rows: document.querySelectorAll('#events li').length, longest: window.__longest, longTasks: window.__longTasks,
  }));
  const result = {
    rate: RATE, seconds: SECONDS, sent: sent + 1, postSeconds,
    received: page_.received, rendered: page_.rendered, notRendered: page_.dropped, frames: page_.frames,
    inOrderOnce: page_.ordered, rowsInDom: page_.rows, longestTaskMs: Math.round(page_.longest), longTasks: page_.longTasks,
    jsHeapMiB: +(metrics.JSHeapUsedSize / 2 ** 20).toFixed(1), domNodes: metrics.Nodes,
  };
  console.log(JSON.stringify(result));
  await page.screenshot({ path: path.join(ROOT, 'target', 'browser', 'firehose.png') });
} finally {
  await browser.close();
  await gw.stop();
}
