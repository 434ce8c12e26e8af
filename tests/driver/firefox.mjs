// Drives the admin console (/admin) in headless Debian Firefox ESR for
// tests/e2e/admin_firefox.rs: puppeteer-core launches /usr/bin/firefox-esr
// itself and speaks WebDriver BiDi to it (never a downloaded browser). Each
// user gets their own browser context (their own session cookie).
//
// Usage: node firefox.mjs <base-url> <firefox-executable>
// Reads one JSON command a line on stdin ({id, op, page, ...}) and answers
// each with one `REPLY {id, ok, ...}` line; other lines are diagnostics.
// Every page error and console error is kept; `errors` returns them.
import puppeteer from 'puppeteer-core';
import { log, serveCommands } from './commands.mjs';

const [base, executablePath] = process.argv.slice(2);
const browser = await puppeteer.launch({
  browser: 'firefox',
  protocol: 'webDriverBiDi',
  executablePath,
  headless: true,
  timeout: 60000,
});
log(`BROWSER ${await browser.version()}`);
const pages = new Map(); // name -> { ctx, page }
const errors = []; // page errors and console errors, every page

function pageOf(name) {
  const p = pages.get(name);
  if (!p) throw new Error(`no page ${name}`);
  return p.page;
}

async function diag(page) {
  return page.evaluate(() => ({
    hash: location.hash,
    error: document.querySelector('.error:not(:empty)')?.textContent,
    validity: document.getElementById('flow-validity')?.textContent,
    page: document.getElementById('page')?.textContent?.slice(0, 400),
  })).catch((e) => ({ error: String(e) }));
}

const ops = {
  // A new context and page signed in on /admin as `user`, then at `hash`.
  async open({ page: name, user, password, hash = '' }) {
    const ctx = await browser.createBrowserContext();
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    const tag = (s) => log(`[${name}] ${s}`);
    page.on('console', (m) => {
      tag(`CONSOLE ${m.type()} ${m.text()}`);
      if (m.type() === 'error') errors.push(`[${name}] console: ${m.text()}`);
    });
    page.on('pageerror', (e) => {
      tag(`PAGEERROR ${e.message ?? e}`);
      errors.push(`[${name}] pageerror: ${e.message ?? e}`);
    });
    page.on('requestfailed', (r) => tag(`REQFAILED ${r.url()}`));
    page.on('response', (r) => { if (r.status() >= 400) tag(`HTTP ${r.status()} ${r.url()}`); });
    pages.set(name, { ctx, page });
    await page.goto(`${base}/admin${hash}`, { timeout: 15000 });
    await page.locator('#login-id').fill(user);
    await page.locator('#login-password').fill(password);
    await page.click('#login-submit');
    await page.waitForSelector('#shell:not([hidden])');
    return { whoami: await page.$eval('#whoami', (e) => e.textContent) };
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
    await pageOf(name).locator(selector).fill(value);
    return {};
  },
  async click({ page: name, selector }) {
    await pageOf(name).click(selector);
    return {};
  },
  async waitSelector({ page: name, selector }) {
    await pageOf(name).waitForSelector(selector, { visible: true });
    return {};
  },
  async waitText({ page: name, selector, text }) {
    const page = pageOf(name);
    await page.waitForFunction(
      (sel, t) => (document.querySelector(sel)?.textContent ?? '').includes(t),
      {},
      selector,
      text,
    );
    return { text: await page.$eval(selector, (e) => e.textContent) };
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
  // The SVG element `selector`: how many shapes it draws and its size.
  async svg({ page: name, selector }) {
    return pageOf(name).$eval(selector, (s) => {
      const r = s.getBoundingClientRect();
      return { shapes: s.querySelectorAll('rect, circle, ellipse, path, line, polygon').length,
        width: r.width, height: r.height };
    });
  },
  // The audio element's decoded length (its metadata loaded afresh).
  async audioDuration({ page: name, selector }) {
    const page = pageOf(name);
    await page.waitForSelector(selector);
    const duration = await page.$eval(selector, (a) => new Promise((resolve, reject) => {
      if (a.readyState >= 1 && Number.isFinite(a.duration)) { resolve(a.duration); return; }
      a.addEventListener('loadedmetadata', () => resolve(a.duration), { once: true });
      a.addEventListener('error', () => reject(new Error(`audio error ${a.error?.code}`)), { once: true });
      a.preload = 'metadata';
      a.load();
    }));
    return { duration };
  },
  async location({ page: name }) {
    return { hash: await pageOf(name).evaluate(() => location.hash) };
  },
  // Page errors and console errors seen so far.
  async errors() {
    return { errors };
  },
  async screenshot({ page: name, path }) {
    await pageOf(name).screenshot({ path, fullPage: true });
    return {};
  },
  async diag({ page: name }) {
    return { diag: await diag(pageOf(name)) };
  },
};

await serveCommands(ops, {
  pageFor: (cmd) => pages.get(cmd.page)?.page,
  diag: (p) => (p ? diag(p) : undefined),
});
await browser.close().catch(() => {});
process.exit(0);
