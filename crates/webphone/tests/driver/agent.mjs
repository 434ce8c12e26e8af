// Drives the /agent page in an already running headless Chromium (started
// by tests/chromium.rs under its own process group) over CDP.
// Usage: node agent.mjs <base-url> <cdp-ws-url>
// Prints STEP lines as it goes and one final `RESULT {json}` line.
import { chromium } from 'playwright-core';

const [base, cdp] = process.argv.slice(2);
const step = (s) => console.log(`STEP ${Date.now()} ${s}`);
const T = { timeout: 15000 };

const browser = await chromium.connectOverCDP(cdp, { timeout: 15000 });
const ctx = browser.contexts()[0] ?? (await browser.newContext());
const page = await ctx.newPage();
page.on('console', (m) => console.log(`CONSOLE ${m.type()} ${m.text()}`));
page.on('requestfailed', (r) => console.log(`REQFAILED ${r.url()}`));
page.on('response', (r) => { if (r.status() >= 400) console.log(`HTTP ${r.status()} ${r.url()}`); });
page.on('pageerror', (e) => console.log(`PAGEERROR ${e.message}`));
const result = {};
try {
  await page.goto(`${base}/agent?raw-audio`, T);
  step('login');
  await page.fill('#login-agent', 'a1', T);
  await page.fill('#login-password', 'secret', T);
  await page.click('#login-submit', T); // also the first click: unlocks audio
  await page.waitForSelector('#agent-view:not([hidden])', T);

  step('mic check');
  await page.click('#mic-test', T);
  await page.waitForFunction(() => document.getElementById('mic-status').textContent.includes('OK'), null, T);
  await page.waitForFunction(() => document.getElementById('mic-level').value > 0.01, null, T);
  result.micLevel = await page.$eval('#mic-level', (m) => m.value);

  step('available');
  await page.click('#available', T);
  // The test gateway offers a call at once: available, then ringing.
  step('wait for offer');
  await page.waitForSelector('#incoming:not([hidden])', T);
  result.offerCaller = await page.textContent('#offer-caller');
  result.offerIssue = await page.textContent('#offer-issue');
  result.offerPathItems = await page.$$eval('#offer-path li', (l) => l.length);
  // One section per thing the lookups found (fields or a table).
  result.offerDataTables = await page.$$eval('#offer-data section', (t) => t.length);

  step('answer');
  const t0 = Date.now();
  await page.click('#answer', T);
  await page.waitForSelector('#call-status[data-status="connected"]', T);
  result.answerToConnectedMs = Date.now() - t0;

  step('media');
  await page.waitForTimeout(3500);
  result.stats = await page.evaluate(() => window.hotline.stats());
  result.remoteAudioPlaying = await page.$eval('#remote-audio', (a) => !a.paused && !!a.srcObject);

  step('dtmf 5, hang up');
  await page.click('#keypad button[data-digit="5"]', T);
  await page.click('#hangup', T);

  step('wrap-up');
  await page.waitForSelector('#wrapup:not([hidden])', T);
  await page.selectOption('#wrapup-disposition', 'refund', T);
  await page.fill('#wrapup-notes', 'refunded the May renewal', T);
  await page.click('#wrapup-submit', T);
  await page.waitForSelector('#state[data-state="available"]', T);
  result.ok = true;
} catch (e) {
  result.ok = false;
  result.error = String(e?.message ?? e);
  result.page = await page.evaluate(() => ({
    link: document.getElementById('link').dataset.up,
    state: document.getElementById('state').textContent,
    notice: document.getElementById('notice').textContent,
  })).catch(() => null);
}
console.log(`RESULT ${JSON.stringify(result)}`);
await browser.close().catch(() => {});
process.exit(0);
