// Drives the admin console's Agents, Queues and Prompts pages in an already
// running headless Chromium over CDP for tests/e2e/admin_pages.rs (see
// tests/src/browser.rs). Each user gets their own browser context.
//
// Usage: node admin.mjs <base-url> <cdp-ws-url>
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
    errors: [...document.querySelectorAll('.error')].map((e) => e.textContent).filter(Boolean),
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
    page.on('response', (r) => { if (r.status() >= 400) tag(`HTTP ${r.status()} ${r.url()}`); });
    // Deleting asks for confirmation: the user says yes.
    page.on('dialog', (d) => d.accept());
    pages.set(name, { ctx, page });
    await page.goto(`${base}/admin${hash}`, { timeout: 15000 });
    await page.fill('#login-id', user);
    await page.fill('#login-password', password);
    await page.click('#login-submit');
    await page.waitForSelector('#shell:not([hidden])');
    return { whoami: await page.textContent('#whoami') };
  },
  async go({ page: name, hash }) {
    await pageOf(name).evaluate((h) => { location.hash = h; }, hash);
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
  async check({ page: name, selector, checked = true }) {
    await pageOf(name).setChecked(selector, checked);
    return {};
  },
  async click({ page: name, selector }) {
    await pageOf(name).click(selector);
    return {};
  },
  // Puts a file into a file input the way DevTools does: DOM.setFileInputFiles.
  async setFile({ page: name, selector, path }) {
    const page = pageOf(name);
    await page.waitForSelector(selector, { state: 'attached' });
    const session = await page.context().newCDPSession(page);
    const { root } = await session.send('DOM.getDocument', { depth: -1 });
    const { nodeId } = await session.send('DOM.querySelector', { nodeId: root.nodeId, selector });
    if (!nodeId) throw new Error(`no ${selector}`);
    await session.send('DOM.setFileInputFiles', { nodeId, files: [path] });
    await session.detach();
    const chosen = await page.$eval(selector, (i) => [...i.files].map((f) => ({ name: f.name, size: f.size })));
    return { files: chosen };
  },
  async waitText({ page: name, selector, text }) {
    await pageOf(name).waitForFunction(
      ([sel, t]) => (document.querySelector(sel)?.textContent ?? '').includes(t),
      [selector, text],
    );
    return { text: await pageOf(name).textContent(selector) };
  },
  async texts({ page: name, selector, attrs = [] }) {
    const items = await pageOf(name).$$eval(selector, (l, attrs) => l.map((x) => {
      const o = { text: x.textContent };
      for (const a of attrs) o[a] = x.getAttribute(a);
      return o;
    }), attrs);
    return { items };
  },
  async isDisabled({ page: name, selector }) {
    return { disabled: await pageOf(name).$eval(selector, (b) => b.disabled) };
  },
  // Loads an <audio>'s metadata: the duration the browser decodes from it.
  async audioDuration({ page: name, selector }) {
    const page = pageOf(name);
    await page.waitForSelector(selector, { state: 'attached' });
    const duration = await page.$eval(selector, (a) => new Promise((resolve, reject) => {
      a.addEventListener('loadedmetadata', () => resolve(a.duration), { once: true });
      a.addEventListener('error', () => reject(new Error(`audio error ${a.error?.code}`)), { once: true });
      a.preload = 'metadata';
      a.load();
    }));
    return { duration };
  },
  async diag({ page: name }) {
    return { diag: await diag(pageOf(name)) };
  },
  // Another page of the console in the same signed-in context (the wallboard).
  async goto({ page: name, path }) {
    await pageOf(name).goto(`${base}${path}`, { timeout: 15000 });
    return {};
  },
};

await serveCommands(ops, {
  pageFor: (cmd) => pages.get(cmd.page)?.page,
  diag: (p) => (p ? diag(p) : undefined),
});
await browser.close().catch(() => {});
process.exit(0);
