// Drives the admin console (/admin) in an already running headless Chromium
// over CDP for tests/e2e/admin_flows.rs (see tests/src/browser.rs). Each
// user gets their own browser context (their own session cookie).
//
// Usage: node flows.mjs <base-url> <cdp-ws-url>
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
    validity: document.getElementById('flow-validity')?.textContent,
    errors: [...document.querySelectorAll('#flow-errors li')].map((l) => l.textContent),
    status: document.getElementById('flow-status')?.textContent,
    loaded: document.getElementById('flow-loaded')?.textContent,
    page: document.getElementById('page')?.textContent?.slice(0, 300),
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
    page.on('response', (r) => { if (r.status() >= 400) tag(`HTTP ${r.status()} ${r.url()}`); });
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
  // The user types `value` into the field (everything it held replaced).
  async fill({ page: name, selector, value }) {
    await pageOf(name).fill(selector, value);
    return {};
  },
  async select({ page: name, selector, value }) {
    await pageOf(name).selectOption(selector, value);
    return {};
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
  // Where the editor's cursor is: line and column from 1, and whether the
  // line is within the textarea's visible part.
  async cursor({ page: name }) {
    return pageOf(name).evaluate(() => {
      const ta = document.getElementById('flow-yaml');
      const before = ta.value.slice(0, ta.selectionStart).split('\n');
      const h = parseFloat(getComputedStyle(ta).lineHeight);
      const line = before.length;
      const top = (line - 1) * h;
      const gutter = document.getElementById('flow-gutter');
      return {
        line,
        column: before[before.length - 1].length + 1,
        focused: document.activeElement === ta,
        visible: top >= ta.scrollTop - 1 && top + h <= ta.scrollTop + ta.clientHeight + 1,
        scrollTop: ta.scrollTop,
        gutterScrollTop: gutter.scrollTop,
      };
    });
  },
  // Clicks an SVG node of the graph (Playwright's click needs a box; a
  // DOM event is what the user's click delivers).
  async clickNode({ page: name, node }) {
    const page = pageOf(name);
    const sel = `#flow-graph [data-node="${node}"]`;
    await page.waitForSelector(sel);
    await page.click(sel);
    return {};
  },
  // Removes `disabled` from a button and clicks it: a user forcing it.
  async force({ page: name, selector }) {
    const page = pageOf(name);
    await page.$eval(selector, (b) => { b.disabled = false; b.removeAttribute('disabled'); });
    await page.click(selector);
    return {};
  },
  async isDisabled({ page: name, selector }) {
    return { disabled: await pageOf(name).$eval(selector, (b) => b.disabled) };
  },
  // A PNG of the whole page (for looking at it after a failure).
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
