// Drives the admin console's Calls pages (/admin#calls) in an already running
// headless Chromium over CDP for tests/e2e/admin_calls.rs (see
// tests/src/browser.rs). Each user gets their own browser context.
//
// Usage: node calls.mjs <base-url> <cdp-ws-url>
// Reads one JSON command a line on stdin ({id, op, page, ...}) and answers
// each with one `REPLY {id, ok, ...}` line; other lines are diagnostics.
import { chromium } from 'playwright-core';
import { log, serveCommands } from './commands.mjs';

const [base, cdp] = process.argv.slice(2);
const browser = await chromium.connectOverCDP(cdp, { timeout: 15000 });
const pages = new Map(); // name -> { ctx, page }

function pageOf(name) {
  const p = pages.get(name);
  if (!p) throw new Error(`no page ${name}`);
  return p.page;
}

async function diag(page) {
  return page.evaluate(() => ({
    hash: location.hash,
    error: document.querySelector('.error')?.textContent,
    page: document.getElementById('page')?.textContent?.slice(0, 400),
  })).catch((e) => ({ error: String(e) }));
}

const ops = {
  // A new context and page signed in on /admin as `user`, then at `hash`.
  async open({ page: name, user, password, hash = '' }) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    const tag = (s) => log(`[${name}] ${s}`);
    page.on('console', (m) => tag(`CONSOLE ${m.type()} ${m.text()}`));
    page.on('pageerror', (e) => tag(`PAGEERROR ${e.message}`));
    page.on('requestfailed', (r) => tag(`REQFAILED ${r.url()}`));
    page.on('response', (r) => tag(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`));
    pages.set(name, { ctx, page });
    await page.goto(`${base}/admin${hash}`, { timeout: 15000 });
    await page.fill('#login-id', user);
    await page.fill('#login-password', password);
    await page.click('#login-submit');
    await page.waitForSelector('#shell:not([hidden])');
    return { whoami: await page.textContent('#whoami') };
  },
  // Follows a link of the page (`selector`) or sets the hash.
  async go({ page: name, hash, selector }) {
    const page = pageOf(name);
    if (selector) await page.click(selector);
    else await page.evaluate((h) => { location.hash = h; }, hash);
    return {};
  },
  async fill({ page: name, selector, value }) {
    await pageOf(name).fill(selector, value);
    return {};
  },
  async select({ page: name, selector, value }) {
    await pageOf(name).selectOption(selector, value);
    return {};
  },
  // Now plus `minutes` as a `datetime-local` value in the browser's zone.
  async localTime({ page: name, minutes }) {
    const value = await pageOf(name).evaluate((m) => {
      const d = new Date(Date.now() + m * 60000);
      const p = (n) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
    }, minutes);
    return { value };
  },
  async click({ page: name, selector }) {
    await pageOf(name).click(selector);
    return {};
  },
  async waitSelector({ page: name, selector, state = 'visible' }) {
    await pageOf(name).waitForSelector(selector, { state });
    return {};
  },
  async waitText({ page: name, selector, text }) {
    await pageOf(name).waitForFunction(
      ([sel, t]) => (document.querySelector(sel)?.textContent ?? '').includes(t),
      [selector, text],
    );
    return { text: await pageOf(name).textContent(selector) };
  },
  // Every element's text (and chosen attributes) for `selector`.
  async texts({ page: name, selector, attrs = [] }) {
    const items = await pageOf(name).$$eval(selector, (l, attrs) => l.map((x) => {
      const o = { text: x.textContent };
      for (const a of attrs) o[a] = x.getAttribute(a);
      return o;
    }), attrs);
    return { items };
  },
  async location({ page: name }) {
    return { hash: await pageOf(name).evaluate(() => location.hash) };
  },
  // Starts the audio element `selector` (the play button's action).
  async play({ page: name, selector }) {
    await pageOf(name).$eval(selector, (a) => a.play());
    return {};
  },
  // What the audio element reports.
  async audio({ page: name, selector }) {
    return pageOf(name).$eval(selector, (a) => ({
      paused: a.paused,
      currentTime: a.currentTime,
      duration: Number.isFinite(a.duration) ? a.duration : null,
      readyState: a.readyState,
      error: a.error ? a.error.code : null,
      src: a.currentSrc,
    }));
  },
  // Per canvas matching `selector`: its channel, and how many pixels are
  // drawn in a colour other than the background (the waveform and playhead).
  async canvases({ page: name, selector }) {
    const items = await pageOf(name).$$eval(selector, (l) => l.map((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let drawn = 0;
      let playhead = 0;
      for (let i = 0; i < d.length; i += 4) {
        const bg = d[i] === 0xfa && d[i + 1] === 0xfb && d[i + 2] === 0xfc;
        if (d[i + 3] > 0 && !bg) drawn += 1;
        if (d[i] > 0xb0 && d[i + 1] < 0x60 && d[i + 2] < 0x60) playhead += 1;
      }
      return { channel: c.dataset.channel, peaks: Number(c.dataset.peaks), drawn, playhead,
        width: c.width, height: c.height };
    }));
    return { items };
  },
  // A full-page PNG of the page at `path` (for looking at a failure).
  async screenshot({ page: name, path }) {
    await pageOf(name).screenshot({ path, fullPage: true });
    return {};
  },
  async diag({ page: name }) {
    return { diag: await diag(pageOf(name)) };
  },
  async close({ page: name }) {
    const p = pages.get(name);
    pages.delete(name);
    await p?.ctx.close();
    return {};
  },
};

await serveCommands(ops, {
  pageFor: (cmd) => pages.get(cmd.page)?.page,
  diag: (p) => (p ? diag(p) : undefined),
});
await browser.close().catch(() => {});
process.exit(0);
