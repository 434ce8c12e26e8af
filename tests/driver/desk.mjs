// Drives one agent page (/agent) in an already running headless Chromium
// over CDP for tests/e2e/agent_desk.rs: the overview, the offer card's
// layout at given viewport sizes, screenshots, and the keyboard (Tab,
// Enter, Space, arrows) as the only way to answer, hang up and wrap up.
//
// Usage: node desk.mjs <base-url> <cdp-ws-url>
// Reads one JSON command a line on stdin ({id, op, ...}) and answers each
// with one `REPLY {id, ok, ...}` line; other lines are diagnostics.
import { chromium } from 'playwright-core';
import { log, serveCommands } from './commands.mjs';

const [base, cdp] = process.argv.slice(2);
const browser = await chromium.connectOverCDP(cdp, { timeout: 15000 });
let ctx = null;
let page = null;

function need() {
  if (!page) throw new Error('no page: open first');
  return page;
}

async function diag() {
  if (!page) return {};
  return page.evaluate(() => ({
    link: document.getElementById('link')?.dataset.up,
    state: document.getElementById('state')?.dataset.state,
    notice: document.getElementById('notice')?.textContent,
    active: document.activeElement?.id || document.activeElement?.tagName,
    incoming: !document.getElementById('incoming')?.hidden,
    call: !document.getElementById('call')?.hidden,
    wrapup: !document.getElementById('wrapup')?.hidden,
    overview: !document.getElementById('overview')?.hidden,
  })).catch((e) => ({ error: String(e) }));
}

// The focused element and how it shows focus (computed style).
function focusInfo() {
  const a = document.activeElement;
  const cs = a ? getComputedStyle(a) : null;
  return {
    id: a?.id ?? '',
    tag: a?.tagName ?? '',
    focusVisible: a ? a.matches(':focus-visible') : false,
    outlineStyle: cs?.outlineStyle ?? '',
    outlineWidth: cs?.outlineWidth ?? '',
    boxShadow: cs?.boxShadow ?? '',
  };
}

const ops = {
  async open({ agent, password, width, height }) {
    ctx = await browser.newContext({ viewport: { width, height } });
    page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    page.on('console', (m) => log(`CONSOLE ${m.type()} ${m.text()}`));
    page.on('pageerror', (e) => log(`PAGEERROR ${e.message}`));
    page.on('requestfailed', (r) => log(`REQFAILED ${r.url()}`));
    page.on('response', (r) => { if (r.status() >= 400) log(`HTTP ${r.status()} ${r.url()}`); });
    page.on('websocket', (ws) => {
      log(`WS open ${ws.url()}`);
      ws.on('framereceived', (f) => log(`WS <- ${f.payload}`));
      ws.on('framesent', (f) => { if (!String(f.payload).includes('"ping"')) log(`WS -> ${f.payload}`); });
    });
    await page.goto(`${base}/agent?raw-audio`);
    await page.fill('#login-agent', agent);
    await page.fill('#login-password', password);
    await page.click('#login-submit'); // also the first click: unlocks audio
    await page.waitForSelector('#agent-view:not([hidden])');
    await page.waitForSelector('#link[data-up="true"]');
    return {};
  },
  async viewport({ width, height }) {
    await need().setViewportSize({ width, height });
    // Layout settles in a frame; nothing scrolls the page.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    return {};
  },
  async screenshot({ path }) {
    await need().screenshot({ path, fullPage: false });
    return {};
  },
  // The overview as the page shows it.
  async overview() {
    return need().evaluate(() => ({
      visible: !document.getElementById('overview').hidden,
      queues: [...document.querySelectorAll('#ov-queues tbody tr')].map((tr) => ({
        name: tr.dataset.queue,
        waiting: Number(tr.dataset.waiting),
        longestS: Number(tr.dataset.longest),
        text: tr.innerText,
      })),
      calls: [...document.querySelectorAll('#ov-calls tbody tr')].map((tr) => ({
        call: tr.dataset.call,
        disposition: tr.dataset.disposition,
        outcome: tr.querySelector('.outcome')?.textContent,
        text: tr.innerText,
      })),
      callbacks: document.querySelectorAll('#ov-callbacks tbody tr').length,
    }));
  },
  // Until `queue` shows `waiting` callers waiting longer than `longestOver` s.
  async waitQueue({ queue, waiting, longestOver }) {
    await need().waitForFunction(([q, w, l]) => {
      const tr = document.querySelector(`#ov-queues tbody tr[data-queue="${q}"]`);
      return tr && !document.getElementById('overview').hidden
        && Number(tr.dataset.waiting) === w && Number(tr.dataset.longest) > l;
    }, [queue, waiting, longestOver]);
    return ops.overview();
  },
  async waitCallListed({ disposition }) {
    await need().waitForFunction((d) => !document.getElementById('overview').hidden
      && [...document.querySelectorAll('#ov-calls tbody tr')].some((tr) => tr.dataset.disposition === d), disposition);
    return ops.overview();
  },
  async available() {
    await need().click('#available');
    await page.waitForFunction(() => !['offline', 'away'].includes(document.getElementById('state').dataset.state));
    return {};
  },
  // Waits for the offer card; what it shows, and what had focus.
  async waitOffer() {
    await need().waitForSelector('#incoming:not([hidden])');
    return page.evaluate(() => {
      const card = document.getElementById('incoming');
      return {
        issue: document.getElementById('offer-issue').textContent,
        issueCode: document.getElementById('offer-issue').dataset.code ?? null,
        caller: document.getElementById('offer-caller').textContent,
        text: card.innerText,
        headings: [...card.querySelectorAll('h3')].map((h) => h.textContent),
        fields: [...card.querySelectorAll('#offer-data dt')].map((d) => [d.textContent, d.nextElementSibling?.textContent]),
        preformatted: card.querySelectorAll('pre, code').length,
        focused: document.activeElement?.id ?? '',
      };
    });
  },
  // Where #target is, in the viewport as it is (the page is not scrolled).
  async box({ target }) {
    return need().evaluate((id) => {
      const r = document.getElementById(id).getBoundingClientRect();
      return {
        top: r.top, left: r.left, bottom: r.bottom, right: r.right,
        vw: window.innerWidth, vh: window.innerHeight, scrollY: window.scrollY,
        visible: r.width > 0 && r.height > 0,
      };
    }, target);
  },
  // Keyboard: focus moves with Tab from the start of the page (nothing
  // focused) until #target has it; how many presses and how focus shows.
  async tabTo({ target: id, fromStart = true, max = 40 }) {
    const p = need();
    if (fromStart) await p.evaluate(() => document.activeElement?.blur());
    for (let n = 0; n <= max; n++) {
      if (await p.evaluate((id) => document.activeElement?.id === id, id)) {
        return { presses: n, focus: await p.evaluate(focusInfo) };
      }
      await p.keyboard.press('Tab');
    }
    throw new Error(`Tab did not reach #${id} in ${max} presses; focus: ${JSON.stringify(await p.evaluate(focusInfo))}`);
  },
  async focus() {
    return { focus: await need().evaluate(focusInfo) };
  },
  async press({ key }) {
    await need().keyboard.press(key);
    return {};
  },
  async type({ text }) {
    await need().keyboard.type(text);
    return {};
  },
  // With a <select> focused: ArrowDown until its value is `value`.
  async arrowTo({ value, max = 10 }) {
    const p = need();
    for (let n = 0; n <= max; n++) {
      const v = await p.evaluate(() => document.activeElement?.value);
      if (v === value) return { presses: n };
      await p.keyboard.press('ArrowDown');
    }
    throw new Error(`ArrowDown did not reach ${value}`);
  },
  async waitSelector({ selector, state = 'visible' }) {
    await need().waitForSelector(selector, { state });
    return {};
  },
  // Until `expr` (a JS expression in the page) is truthy; then its value.
  // (Polled with evaluate: the page's CSP forbids the eval that
  // waitForFunction uses for a string.)
  async waitFor({ expr, timeout = 15000 }) {
    const p = need();
    const until = Date.now() + timeout;
    for (;;) {
      const value = await p.evaluate(expr);
      if (value) return { value };
      if (Date.now() > until) throw new Error(`not true within ${timeout} ms: ${expr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  },
  async evaluate({ expr }) {
    return { value: await need().evaluate(expr) };
  },
  async diag() {
    return { diag: await diag() };
  },
};

await serveCommands(ops, { pageFor: () => page, diag: () => diag() });
await ctx?.close().catch(() => {});
await browser.close().catch(() => {});
process.exit(0);
