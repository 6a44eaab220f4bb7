// Renders what orchestrator wrote in a real browser (Debian's Chromium, driven by playwright-core
// from .ci/browser) and prints what a person would see, as JSON, for the integration tests
// (tests/integration/timeline.rs) to check:
//
//   node check.mjs report FILE.html   the HTML report: console errors, blocked requests, and the
//                                     size of every timeline bar and track
//   node check.mjs mermaid FILE.md    each ```mermaid block of a Markdown file drawn by Mermaid
//                                     (what GitHub uses): errors, and the bars it drew
//
// Nothing is fetched from the network: the page is a local file or set as content, and Chromium
// starts with its background networking off (and a fresh profile that playwright makes).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.env.BROWSER_MODULES;
const require = createRequire(join(modules, 'noop.js'));
const { chromium } = require('playwright-core');

const [mode, file] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
const result = { errors: [], requests: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') result.errors.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => result.errors.push(`pageerror: ${e.message}`));
  page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:') && !r.url().startsWith('about:')) result.requests.push(r.url()); });
  if (mode === 'report') {
    await page.goto(pathToFileURL(resolve(file)).href, { waitUntil: 'load' });
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
    Object.assign(result, await page.evaluate(() => {
      const box = (e) => { const r = e.getBoundingClientRect(); return { w: r.width, h: r.height }; };
      return {
        title: document.title,
        bars: [...document.querySelectorAll('#timeline .row rect.bar')].map((e) => ({ class: e.getAttribute('class'), ...box(e) })),
        gates: [...document.querySelectorAll('#timeline .row rect.gate')].map(box),
        tracks: [...document.querySelectorAll('#timeline svg.track')].map(box),
        agents: document.querySelectorAll('#agents details.agent').length,
        gateRows: document.querySelectorAll('#gates table tr').length - 1,
        scripts: document.scripts.length,
        text: document.body.textContent,
      };
    }));
  } else if (mode === 'mermaid') {
    const md = readFileSync(file, 'utf8');
    const charts = [...md.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1]);
    await page.setContent('<!DOCTYPE html><html><body><div id="out"></div></body></html>');
    await page.addScriptTag({ path: join(modules, 'mermaid/dist/mermaid.min.js') });
    result.charts = await page.evaluate(async (charts) => {
      window.mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });
      const out = [];
      for (const [i, text] of charts.entries()) {
        try {
          const { svg } = await window.mermaid.render(`chart${i}`, text);
          const holder = document.createElement('div');
          holder.innerHTML = svg;
          document.getElementById('out').appendChild(holder);
          const tasks = [...holder.querySelectorAll('rect.task')];
          out.push({
            ok: true,
            tasks: tasks.length,
            sized: tasks.filter((t) => t.getBoundingClientRect().height > 0).length,
            labels: [...holder.querySelectorAll('text.taskText, text.taskTextOutsideRight, text.taskTextOutsideLeft')].map((t) => t.textContent),
            sections: [...holder.querySelectorAll('text.sectionTitle')].map((t) => t.textContent),
            links: holder.querySelectorAll('a').length,
          });
        } catch (e) {
          out.push({ ok: false, error: String(e && e.message || e) });
        }
      }
      return out;
    }, charts);
    if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
