// Drives agent pages (/agent) in an already running headless Chromium over
// CDP for tests/e2e/agents.rs (see tests/src/browser.rs). Each agent gets
// its own browser context (its own session cookie).
//
// Usage: node agents.mjs <base-url> <cdp-ws-url>
// Reads one JSON command a line on stdin ({id, op, page, ...}) and answers
// each with one `REPLY {id, ok, ...}` line; other lines are diagnostics.
// Commands run one after the other; stdin's end closes the connection.
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
    link: document.getElementById('link')?.dataset.up,
    state: document.getElementById('state')?.dataset.state,
    notice: document.getElementById('notice')?.textContent,
    incoming: !document.getElementById('incoming')?.hidden,
    call: !document.getElementById('call')?.hidden,
    callStatus: document.getElementById('call-status')?.dataset.status,
    wrapup: !document.getElementById('wrapup')?.hidden,
  })).catch((e) => ({ error: String(e) }));
}

const ops = {
  // A new context and page, logged in as `agent`.
  // `raw` (default true) opens `/agent?raw-audio`; `raw: false` the page
  // as agents get it, with the browser's audio processing on.
  async open({ page: name, agent, password, raw = true }) {
    // ignoreHTTPSErrors: the HTTPS tests (e2e/tls.rs) use a self-signed certificate.
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    const tag = (s) => log(`[${name}] ${s}`);
    page.on('console', (m) => tag(`CONSOLE ${m.type()} ${m.text()}`));
    page.on('pageerror', (e) => tag(`PAGEERROR ${e.message}`));
    page.on('requestfailed', (r) => tag(`REQFAILED ${r.url()}`));
    page.on('response', (r) => { if (r.status() >= 400) tag(`HTTP ${r.status()} ${r.url()}`); });
    page.on('websocket', (ws) => {
      tag(`WS open ${ws.url()}`);
      ws.on('framereceived', (f) => tag(`WS <- ${f.payload}`));
      ws.on('framesent', (f) => { if (!String(f.payload).includes('"ping"')) tag(`WS -> ${f.payload}`); });
      ws.on('close', () => tag('WS closed'));
    });
    pages.set(name, { ctx, page });
    // ?raw-audio: no echo cancellation, noise suppression or gain control
    // on the microphone (the test tone arrives as it is).
    await page.goto(`${base}/agent${raw ? '?raw-audio' : ''}`, { timeout: 15000 });
    await page.fill('#login-agent', agent);
    await page.fill('#login-password', password);
    await page.click('#login-submit'); // also the first click: unlocks audio
    await page.waitForSelector('#agent-view:not([hidden])');
    await page.waitForSelector('#link[data-up="true"]');
    return {};
  },
  // Click "Go available" (unless it already is) and wait for the state.
  async available({ page: name }) {
    const page = pageOf(name);
    if ((await page.getAttribute('#available', 'aria-pressed')) !== 'true') {
      await page.click('#available');
    }
    // Staffed: available, or already ringing when a call was waiting.
    await page.waitForFunction(() => !['offline', 'away'].includes(document.getElementById('state').dataset.state));
    return { state: await page.getAttribute('#state', 'data-state') };
  },
  async waitOffer({ page: name }) {
    const page = pageOf(name);
    await page.waitForSelector('#incoming:not([hidden])');
    return {
      at: Date.now(),
      kind: await page.textContent('#offer-kind'),
      caller: await page.textContent('#offer-caller'),
      issue: await page.textContent('#offer-issue'),
      path: await page.$$eval('#offer-path li', (l) => l.map((x) => x.textContent)),
      dataSections: await page.$$eval('#offer-data h3', (l) => l.map((x) => x.textContent)),
      state: await page.getAttribute('#state', 'data-state'),
    };
  },
  // Click Answer; wait until the page says the audio is connected.
  async answer({ page: name }) {
    const page = pageOf(name);
    const t0 = Date.now();
    await page.click('#answer');
    await page.waitForSelector('#call-status[data-status="connected"]');
    return { clickedAt: t0, connectedAt: Date.now(), answerToConnectedMs: Date.now() - t0 };
  },
  // Every page in `pages` clicks Answer at the same moment (both ringing).
  async answerTogether({ pages: names }) {
    const ps = names.map(pageOf);
    await Promise.all(ps.map((p) => p.waitForSelector('#incoming:not([hidden])')));
    const at = Date.now();
    // A DOM click, at once: Playwright's click would wait (and retry every
    // 500 ms) while the loser's card is hidden by the withdrawal, then
    // land on the NEXT offer it is shown — answering a call nobody meant to.
    await Promise.all(ps.map((p) => p.$eval('#answer', (b) => b.click())));
    return { clickedAt: at };
  },
  async stats({ page: name }) {
    const page = pageOf(name);
    const stats = await page.evaluate(() => window.hotline.stats());
    const playing = await page.$eval('#remote-audio', (a) => !a.paused && !!a.srcObject);
    return { stats, remoteAudioPlaying: playing };
  },
  // What the agent hears: `ms` of the stream #remote-audio plays, taken
  // through WebAudio at 8 kHz (the call's own rate), as 16-bit samples.
  // Fails unless the element is playing it audibly. `audio`: another
  // element's id (the supervisor page's `monitor-audio`).
  async hear({ page: name, ms = 2000, audio = 'remote-audio' }) {
    const page = pageOf(name);
    return page.evaluate(async ([ms, audio]) => {
      const el = document.getElementById(audio);
      const stream = el.srcObject;
      if (!stream || el.paused || el.muted || el.volume === 0) {
        throw new Error(`#${audio} is not playing: srcObject ${!!stream}, paused ${el.paused}, muted ${el.muted}, volume ${el.volume}`);
      }
      const ac = new AudioContext({ sampleRate: 8000 });
      await ac.resume();
      const src = ac.createMediaStreamSource(stream);
      const proc = ac.createScriptProcessor(1024, 1, 1);
      // A script processor only runs when it reaches the destination: through silence.
      const mute = ac.createGain();
      mute.gain.value = 0;
      const want = Math.round(ms * ac.sampleRate / 1000);
      const out = new Int16Array(want);
      let n = 0;
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`only ${n} of ${want} samples in ${ms + 3000} ms (AudioContext ${ac.state})`)), ms + 3000);
        proc.onaudioprocess = (e) => {
          const d = e.inputBuffer.getChannelData(0);
          for (let i = 0; i < d.length && n < want; i++) {
            out[n++] = Math.max(-32768, Math.min(32767, Math.round(d[i] * 32767)));
          }
          if (n >= want) { clearTimeout(t); resolve(); }
        };
        src.connect(proc);
        proc.connect(mute);
        mute.connect(ac.destination);
      });
      src.disconnect();
      proc.disconnect();
      await ac.close();
      return { rate: 8000, samples: Array.from(out) };
    }, [ms, audio]);
  },
  // A supervisor (or admin) signs in to the admin console in a new context
  // and opens its Supervisor page (`/admin?raw-audio#supervisor`).
  async openSupervisor({ page: name, user, password }) {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    page.setDefaultTimeout(15000);
    const tag = (s) => log(`[${name}] ${s}`);
    page.on('console', (m) => tag(`CONSOLE ${m.type()} ${m.text()}`));
    page.on('pageerror', (e) => tag(`PAGEERROR ${e.message}`));
    page.on('response', (r) => { if (r.status() >= 400) tag(`HTTP ${r.status()} ${r.url()}`); });
    page.on('websocket', (ws) => {
      tag(`WS open ${ws.url()}`);
      ws.on('framereceived', (f) => tag(`WS <- ${String(f.payload).slice(0, 200)}`));
      ws.on('framesent', (f) => { if (!String(f.payload).includes('"ping"')) tag(`WS -> ${String(f.payload).slice(0, 200)}`); });
    });
    pages.set(name, { ctx, page });
    await page.goto(`${base}/admin?raw-audio#supervisor`, { timeout: 15000 });
    await page.fill('#login-id', user);
    await page.fill('#login-password', password);
    await page.click('#login-submit'); // also the first click: unlocks audio
    await page.waitForSelector('#live-calls');
    return {};
  },
  // Waits for `call` in the Supervisor page's list and clicks its `mode`
  // button (listen, whisper, barge); then waits until the page says that
  // mode is in force (the gateway confirmed it).
  async monitor({ page: name, call, mode }) {
    const page = pageOf(name);
    const button = `#live-calls tr[data-call="${call}"] button[data-mode="${mode}"]`;
    await page.waitForSelector(button);
    await page.click(button);
    await page.waitForSelector(`#monitor-status[data-state="${mode}"][data-call="${call}"]`);
    return { status: await page.textContent('#monitor-status') };
  },
  // Waits until the Supervisor page's monitor is in `state` (idle, listen,
  // whisper, barge); its status line.
  async waitMonitor({ page: name, state }) {
    const page = pageOf(name);
    await page.waitForSelector(`#monitor-status[data-state="${state}"]`);
    return { status: await page.textContent('#monitor-status') };
  },
  // Clicks the Supervisor page's Stop; waits until it is idle.
  async monitorStop({ page: name }) {
    const page = pageOf(name);
    await page.click('#monitor-stop');
    await page.waitForSelector('#monitor-status[data-state="idle"]');
    return { status: await page.textContent('#monitor-status') };
  },
  // The Supervisor page's RTP counters (its peer connection).
  async monitorStats({ page: name }) {
    const page = pageOf(name);
    const stats = await page.evaluate(() => window.hotlineMonitor.stats());
    const playing = await page.$eval('#monitor-audio', (a) => !a.paused && !!a.srcObject);
    return { stats, remoteAudioPlaying: playing };
  },
  // A network blip: the page's socket drops (close 4000) and reconnects.
  // The link indicator must be seen going down and then up again.
  async dropSignalling({ page: name }) {
    const page = pageOf(name);
    await page.evaluate(() => {
      const link = document.getElementById('link');
      // Every change of #link's data-up, so a short outage is not missed.
      window.__linkChanges = [];
      new MutationObserver((ms) => {
        for (const m of ms) window.__linkChanges.push(m.oldValue);
        window.__linkChanges.push(link.dataset.up);
      }).observe(link, { attributes: true, attributeFilter: ['data-up'], attributeOldValue: true });
      window.hotline.dropSignalling();
    });
    const dropped = Date.now();
    await page.waitForFunction(() => {
      const c = window.__linkChanges;
      const down = c.indexOf('false');
      return down >= 0 && c.indexOf('true', down) > down
        && document.getElementById('link').dataset.up === 'true';
    });
    return { dropped, back: Date.now(), changes: await page.evaluate(() => window.__linkChanges) };
  },
  async hangup({ page: name }) {
    await pageOf(name).click('#hangup');
    return {};
  },
  // Wait for the wrap-up form, fill it in, save it.
  async wrapUp({ page: name, disposition, notes }) {
    const page = pageOf(name);
    await page.waitForSelector('#wrapup:not([hidden])');
    await page.selectOption('#wrapup-disposition', disposition);
    await page.fill('#wrapup-notes', notes ?? '');
    await page.click('#wrapup-submit');
    return {};
  },
  // The offer card went away (withdrawn, timed out, taken).
  async waitNoOffer({ page: name }) {
    await pageOf(name).waitForSelector('#incoming', { state: 'hidden' });
    return {};
  },
  // Clicks `selector` (a button of the call card, e.g. #pause-recording).
  async click({ page: name, selector }) {
    await pageOf(name).click(selector);
    return {};
  },
  async waitText({ page: name, selector, text }) {
    await pageOf(name).waitForFunction(
      ([sel, t]) => (document.querySelector(sel)?.textContent ?? '').includes(t),
      [selector, text],
    );
    return {};
  },
  async waitState({ page: name, state }) {
    await pageOf(name).waitForSelector(`#state[data-state="${state}"]`);
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
  async sleep({ ms }) {
    await new Promise((r) => setTimeout(r, ms));
    return {};
  },
};

await serveCommands(ops, {
  pageFor: (cmd) => pages.get(cmd.page)?.page,
  diag: (p) => (p ? diag(p) : undefined),
});
await browser.close().catch(() => {});
process.exit(0);
