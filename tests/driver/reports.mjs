// Drives the admin console's Reports and IVR funnel pages (/admin#reports,
// /admin#funnel) in an already running headless Chromium over CDP for
// tests/e2e/admin_reports.rs (see tests/src/browser.rs). Each user gets
// their own browser context. Every page error and console error after
// signing in is kept; `errors` returns them.
//
// Usage: node reports.mjs <base-url> <cdp-ws-url>
// Reads one JSON command a line on stdin ({id, op, page, ...}) and answers
// each with one `REPLY {id, ok, ...}` line; other lines are diagnostics.
import { chromium } from 'playwright-core';
import { log, serveCommands } from './commands.mjs';

const [base, cdp] = process.argv.slice(2);
const browser = await chromium.connectOverCDP(cdp, { timeout: 15000 });
const pages = new Map(); // name -> { ctx, page }
const errors = []; // page errors and console errors once signed in

function pageOf(name) {
  const p = pages.get(name);
  if (!p) throw new Error(`no page ${name}`);
  return p.page;
}

async function diag(page) {
  return page.evaluate(() => ({
    hash: location.hash,
    error: document.querySelector('.error:not(:empty)')?.textContent,
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
    // Before signing in, GET /api/me answers 401 (Chromium logs it as a
    // console error): errors count from signing in on.
    let signedIn = false;
    page.on('console', (m) => {
      tag(`CONSOLE ${m.type()} ${m.text()}`);
      if (signedIn && m.type() === 'error') errors.push(`[${name}] console: ${m.text()}`);
    });
    page.on('pageerror', (e) => {
      tag(`PAGEERROR ${e.message}`);
      errors.push(`[${name}] pageerror: ${e.message}`);
    });
    page.on('requestfailed', (r) => tag(`REQFAILED ${r.url()}`));
    page.on('response', (r) => tag(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`));
    pages.set(name, { ctx, page });
    await page.goto(`${base}/admin${hash}`, { timeout: 15000 });
    await page.fill('#login-id', user);
    await page.fill('#login-password', password);
    signedIn = true;
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
  // The number of elements matching `selector`.
  async count({ page: name, selector }) {
    return { count: await pageOf(name).$$eval(selector, (l) => l.length) };
  },
  // GETs the href of the link `selector` as the page would (same origin,
  // the session cookie): status, content type and body.
  async fetchLink({ page: name, selector }) {
    return pageOf(name).$eval(selector, async (a) => {
      const res = await fetch(a.href, { credentials: 'same-origin' });
      return { status: res.status, contentType: res.headers.get('content-type'), body: await res.text(),
        href: a.getAttribute('href'), download: a.getAttribute('download') };
    });
  },
  // Page errors and console errors seen so far.
  async errors() {
    return { errors };
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
