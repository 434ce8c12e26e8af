// The agent softphone: login, availability, offers, the call, wrap-up.
// Plain ES modules, no build step; all text from the server goes in with
// textContent (never innerHTML).

import { Signalling } from './signalling.js';
import { AgentPeer, getMic, levelMeter, MicError } from './media.js';
import { Ringer, audioContext } from './ring.js';
import { issueLabel, dispositionLabel, fieldLabel } from './labels.js';

const $ = (id) => document.getElementById(id);
const DEFAULT_DISPOSITIONS = ['resolved', 'refund', 'follow_up', 'escalated', 'no_action'];

const ui = {
  state: 'offline',
  offer: null,      // the offer message being rung
  call: null,       // { id, caller, issue_type, path, data }
  peer: null,       // AgentPeer of the current call
  unlocked: false,
  dispositions: DEFAULT_DISPOSITIONS,
  withdrawn: new Set(), // calls whose offer was withdrawn (lost races, callers gone)
};
const ringer = new Ringer();
let sig = null;
let offerTimer = null;
let callTimer = null;
let wrapTimer = null;
let stopMeter = null;
let stopCallMeter = null;
let holdTimer = null;
let overviewTicker = null;

// ---------- helpers ----------
function show(id, on) { $(id).hidden = !on; }
function notice(text) {
  $('notice').textContent = text || '';
  show('notice', !!text);
}
function countdown(el, untilMs, onDone) {
  const tick = () => {
    const s = Math.max(0, Math.ceil((untilMs - Date.now()) / 1000));
    el.textContent = `(${s} s)`;
    if (s === 0 && onDone) onDone();
  };
  tick();
  return setInterval(tick, 250);
}
function renderPath(ol, path) {
  ol.replaceChildren(...(path || []).map((p) => {
    const li = document.createElement('li');
    li.textContent = String(p);
    return li;
  }));
}
function clock(s) {
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
// A value as words: never JSON. Nested objects read "Plan: Pro, Status: active".
function words(v) {
  if (v === null || v === undefined || v === '') return '';
  if (typeof v === 'boolean') return v ? 'Yes' : 'No';
  if (Array.isArray(v)) return v.map(words).filter(Boolean).join(', ');
  if (typeof v === 'object') {
    return Object.entries(v).map(([k, x]) => [k, words(x)]).filter(([, x]) => x)
      .map(([k, x]) => `${fieldLabel(k)}: ${x}`).join(', ');
  }
  return String(v);
}
const isRecord = (v) => v && typeof v === 'object' && !Array.isArray(v);
// One section of the data: a heading and its readable fields. Fields
// whose value is already on the card (`shown`) are left out.
function fieldsSection(title, obj, shown) {
  const dl = el('dl', null, 'fields');
  const mine = [];
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'found') continue; // the lookup's own bookkeeping
    const text = words(v);
    if (!text || shown.has(text)) continue;
    mine.push(text);
    dl.append(el('dt', fieldLabel(k)), el('dd', text));
  }
  mine.forEach((t) => shown.add(t));
  if (!dl.children.length) return null;
  const sec = el('section');
  sec.append(el('h3', title), dl);
  return sec;
}
function tableSection(title, rows, shown) {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const t = el('table');
  const head = el('tr');
  keys.forEach((k) => head.append(el('th', fieldLabel(k))));
  t.append(el('thead'), el('tbody'));
  t.tHead.append(head);
  for (const r of rows) {
    const tr = el('tr');
    keys.forEach((k) => { const x = words(r[k]); shown.add(x); tr.append(el('td', x)); });
    t.tBodies[0].append(tr);
  }
  const sec = el('section');
  const wrap = el('div', null, 'scroll');
  wrap.append(t);
  sec.append(el('h3', title), wrap);
  return sec;
}
// What the lookups found, as readable fields. The gateway sends
// `{flow: <the enqueue's data>, vars: <every flow variable>}`: the flow's
// fields come first, then each lookup result among the variables (objects,
// e.g. `subscriber`) with whatever the flow's fields already showed left
// out; plain variables (digits, language, the caller) are not shown.
// Other shapes (`customer: {...}`, `orders: [...]`) render section by section.
function renderData(box, data, caller) {
  box.replaceChildren();
  if (!isRecord(data)) return;
  const shown = new Set([String(caller ?? '')]);
  const sections = [];
  const gateway = 'flow' in data || 'vars' in data;
  if (gateway) {
    if (isRecord(data.flow)) sections.push(fieldsSection('Details', data.flow, shown));
    if (isRecord(data.vars)) {
      for (const [k, v] of Object.entries(data.vars)) {
        if (isRecord(v)) sections.push(fieldsSection(fieldLabel(k), v, shown));
      }
    }
  } else {
    for (const [k, v] of Object.entries(data)) {
      if (Array.isArray(v) && v.length && v.every(isRecord)) sections.push(tableSection(fieldLabel(k), v, shown));
      else if (isRecord(v)) sections.push(fieldsSection(fieldLabel(k), v, shown));
      else if (words(v)) sections.push(fieldsSection('Details', { [k]: v }, shown));
    }
  }
  box.append(...sections.filter(Boolean));
}
function showIssue(dd, code) {
  dd.textContent = issueLabel(code) || '—';
  if (code) dd.dataset.code = code; else delete dd.dataset.code;
}

// ---------- overview (docs/agent-protocol.md, `overview`) ----------
function emptyNote(id, empty) { show(id, empty); }
function renderOverview(msg) {
  ui.overview = { msg, at: Date.now() };
  const qb = $('ov-queues').tBodies[0];
  qb.replaceChildren(...(msg.queues || []).map((q) => {
    const tr = el('tr');
    tr.dataset.queue = q.name;
    tr.dataset.waiting = String(q.waiting);
    tr.dataset.longest = String(q.longest_wait_s);
    const waiting = el('td', q.waiting, 'waiting');
    if (q.callbacks) waiting.append(el('span', ` + ${q.callbacks} callback${q.callbacks === 1 ? '' : 's'}`, 'hint'));
    tr.append(el('th', q.name), waiting, el('td', '', 'longest'), el('td', q.agents_available, 'available'));
    if (q.waiting > 0) tr.className = 'busy';
    return tr;
  }));
  emptyNote('ov-queues-empty', !(msg.queues || []).length);
  const cb = $('ov-callbacks').tBodies[0];
  cb.replaceChildren(...(msg.callbacks || []).map((c) => {
    const tr = el('tr');
    tr.dataset.call = c.call;
    tr.dataset.waited = String(c.waited_s);
    tr.append(el('td', c.caller || 'unknown'), el('td', c.queue), el('td', issueLabel(c.issue_type) || '—'),
      el('td', '', 'waited'), el('td', c.attempts));
    return tr;
  }));
  emptyNote('ov-callbacks-empty', !(msg.callbacks || []).length);
  const calls = $('ov-calls').tBodies[0];
  calls.replaceChildren(...(msg.calls_today || []).map((c) => {
    const tr = el('tr');
    tr.dataset.call = c.call;
    tr.dataset.disposition = c.disposition || '';
    const at = c.at ? new Date(c.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
    tr.append(el('td', at), el('td', c.caller || 'unknown'), el('td', c.queue || '—'),
      el('td', issueLabel(c.issue_type) || '—'),
      el('td', c.talk_seconds === undefined || c.talk_seconds === null ? '—' : clock(c.talk_seconds)),
      el('td', c.disposition ? dispositionLabel(c.disposition) : '—', 'outcome'));
    return tr;
  }));
  emptyNote('ov-calls-empty', !(msg.calls_today || []).length);
  // The agent's own figures today (the reports' per-agent figures).
  const t = msg.today;
  $('ov-today-calls').textContent = t ? String(t.calls_handled) : '—';
  $('ov-today-aht').textContent = t && t.aht_secs !== null && t.aht_secs !== undefined ? clock(Math.round(t.aht_secs)) : '—';
  $('ov-today-csat').textContent = t && t.csat_avg !== null && t.csat_avg !== undefined
    ? `${t.csat_avg.toFixed(1)} / 5 (${t.csat_responses})` : '—';
  tickOverview();
}
// Waits move by the second between the server's updates.
function tickOverview() {
  const o = ui.overview;
  if (!o) return;
  const extra = (Date.now() - o.at) / 1000;
  for (const tr of $('ov-queues').tBodies[0].rows) {
    const waiting = Number(tr.dataset.waiting);
    tr.querySelector('.longest').textContent = waiting > 0 ? clock(Number(tr.dataset.longest) + extra) : '—';
  }
  for (const tr of $('ov-callbacks').tBodies[0].rows) {
    tr.querySelector('.waited').textContent = clock(Number(tr.dataset.waited) + extra);
  }
}
// The overview is for the idle agent: a live card takes its place.
function syncIdle() {
  const busy = !$('incoming').hidden || !$('call').hidden || !$('wrapup').hidden;
  show('overview', !busy);
}

// ---------- audio unlock (autoplay rules) ----------
function unlock() {
  if (ui.unlocked) return;
  ui.unlocked = true;
  audioContext().resume().catch(() => {});
  $('remote-audio').play().catch(() => {});
  show('unlock', false);
}
document.addEventListener('pointerdown', unlock, { capture: true });
document.addEventListener('keydown', unlock, { capture: true });

// ---------- state ----------
function setState(state, reason) {
  ui.state = state;
  const badge = $('state');
  badge.dataset.state = state;
  badge.textContent = reason ? `${state.replace('_', ' ')} (${reason})` : state.replace('_', ' ');
  const avail = $('available');
  const on = state !== 'offline' && state !== 'away';
  avail.setAttribute('aria-pressed', String(on));
  avail.textContent = on ? 'Go away' : 'Go available';
}

function clearOffer() {
  ringer.stop();
  clearInterval(offerTimer);
  ui.offer = null;
  show('incoming', false);
  syncIdle();
}

function setHold(on) {
  $('hold').setAttribute('aria-pressed', String(on));
  $('hold').textContent = on ? 'Resume' : 'Hold';
  $('call').classList.toggle('held', on);
  clearInterval(holdTimer);
  show('hold-state', on);
  if (on) {
    const start = Date.now();
    const tick = () => { $('hold-timer').textContent = clock((Date.now() - start) / 1000); };
    tick();
    holdTimer = setInterval(tick, 500);
  }
}

// The recording-pause button shows what the gateway confirmed (`recording`).
function setRecordingPaused(paused) {
  $('pause-recording').setAttribute('aria-pressed', String(paused));
  $('pause-recording').textContent = paused ? 'Resume recording' : 'Pause recording';
  show('recording-state', paused);
}

function endCall(text) {
  clearInterval(callTimer);
  setHold(false);
  setRecordingPaused(false);
  stopCallMeter?.();
  stopCallMeter = null;
  $('call-mic-level').value = 0;
  ui.peer?.close();
  ui.peer = null;
  if (ui.call) ui.lastCall = { ...ui.call, talked: $('call-timer').textContent };
  ui.call = null;
  show('call', false);
  syncIdle();
  if (text) notice(text);
}

// ---------- server messages ----------
function onMessage(msg) {
  switch (msg.type) {
    case 'state':
      setState(msg.state, msg.reason);
      if (msg.state !== 'ringing' && ui.offer) clearOffer();
      // Wrap-up time ran out before the form was saved.
      if (msg.state !== 'wrap_up' && !$('wrapup').hidden) {
        clearInterval(wrapTimer);
        show('wrapup', false);
        syncIdle();
        notice('Wrap-up time ran out: the call was saved without an outcome.');
      }
      break;
    case 'offer': {
      ui.offer = msg;
      // A callback request: answering dials the customer back.
      $('offer-kind').textContent = msg.callback ? 'Callback request' : 'Incoming call';
      $('offer-caller').textContent = msg.caller || 'unknown';
      showIssue($('offer-issue'), msg.issue_type);
      renderPath($('offer-path'), msg.path);
      renderData($('offer-data'), msg.data, msg.caller);
      show('incoming', true);
      syncIdle();
      // Enter answers, unless the agent is typing somewhere.
      if (!document.activeElement || !document.activeElement.matches('input, textarea, select')) {
        $('answer').focus();
      }
      notice('');
      ringer.start();
      clearInterval(offerTimer);
      offerTimer = countdown($('offer-countdown'), Date.now() + (msg.expires_in_ms || 15000));
      break;
    }
    case 'offer_withdrawn':
      ui.withdrawn.add(msg.call);
      if (ui.offer?.call === msg.call) clearOffer();
      // Lost a ring-all race (or the caller left) between Answer and audio.
      if (ui.call?.id === msg.call && $('call-status').dataset.status !== 'connected') {
        endCall('The call was taken by another agent or ended.');
      }
      break;
    case 'sdp_answer':
      if (ui.peer && ui.call?.id === msg.call) {
        ui.peer.answer(msg.sdp).catch((e) => notice(`Audio setup failed: ${e.message}`));
      }
      break;
    case 'connected':
      if (ui.call?.id === msg.call) {
        $('call-status').dataset.status = 'connected';
        $('call-status').textContent = 'connected';
        const start = Date.now();
        clearInterval(callTimer);
        callTimer = setInterval(() => {
          $('call-timer').textContent = clock((Date.now() - start) / 1000);
        }, 500);
      }
      break;
    case 'ended':
      if (ui.offer?.call === msg.call) clearOffer();
      if (ui.call?.id === msg.call) {
        endCall(msg.by === 'caller' ? 'The caller hung up.'
          : msg.by === 'agent' ? ''
          : msg.by === 'no_answer' ? 'No answer: the callback keeps its place in the queue.'
          : 'The call ended.');
      }
      break;
    case 'wrap_up':
      showWrapUp(msg.call, msg.until);
      break;
    case 'recording':
      setRecordingPaused(msg.paused);
      break;
    case 'error':
      notice(msg.message);
      break;
    case 'overview':
      renderOverview(msg);
      break;
    default:
      break;
  }
}

function showWrapUp(call, until) {
  ui.wrapCall = call;
  const sel = $('wrapup-disposition');
  // The placeholder stays first: no outcome is chosen for the agent.
  if (sel.options.length <= 1) {
    for (const d of ui.dispositions) {
      const o = document.createElement('option');
      o.value = d;
      o.textContent = dispositionLabel(d);
      sel.append(o);
    }
  }
  sel.selectedIndex = 0;
  syncWrapUp();
  const last = ui.lastCall?.id === call ? ui.lastCall : null;
  $('wrapup-summary').textContent = last
    ? [`Call with ${last.caller || 'unknown'}`, issueLabel(last.issue_type), last.talked ? `talked ${last.talked}` : '']
      .filter(Boolean).join(' · ')
    : '';
  $('wrapup-notes').value = '';
  show('wrapup', true);
  syncIdle();
  // The outcome is the first thing to do (a keyboard user starts there).
  if (!document.activeElement || !document.activeElement.matches('input, textarea')) sel.focus();
  clearInterval(wrapTimer);
  wrapTimer = countdown($('wrapup-countdown'), until, () => { clearInterval(wrapTimer); });
}

function syncWrapUp() {
  const chosen = $('wrapup-disposition').value !== '';
  $('wrapup-submit').disabled = !chosen;
  show('wrapup-hint', !chosen);
}

// ---------- actions ----------
async function answer() {
  const offer = ui.offer;
  if (!offer) return;
  clearOffer();
  let mic;
  try {
    mic = await getMic();
  } catch (e) {
    notice(e instanceof MicError ? e.message : String(e));
    sig.send({ type: 'decline', call: offer.call });
    return;
  }
  // Withdrawn (another agent won, the caller left) while the microphone
  // was being opened: nothing to answer any more.
  if (ui.withdrawn.has(offer.call)) return;
  sig.send({ type: 'answer', call: offer.call });
  ui.call = { id: offer.call, ...offer };
  $('call-caller').textContent = offer.caller || 'unknown';
  showIssue($('call-issue'), offer.issue_type);
  renderPath($('call-path'), offer.path);
  renderData($('call-data'), offer.data, offer.caller);
  $('call-status').dataset.status = 'connecting';
  $('call-status').textContent = offer.callback ? 'calling back…' : 'connecting…';
  $('call-timer').textContent = '0:00';
  $('mute').setAttribute('aria-pressed', 'false');
  setHold(false);
  setRecordingPaused(false);
  show('call', true);
  syncIdle();
  // Keyboard focus moves into the card (Tab reaches Mute, Hold, Hang up).
  $('call-title').focus();
  // What the agent's microphone sends, live (silent while muted or held).
  stopCallMeter?.();
  stopCallMeter = levelMeter(mic, (v) => { $('call-mic-level').value = v; });
  ui.peer?.close();
  ui.peer = new AgentPeer(mic, $('remote-audio'));
  const peer = ui.peer;
  ui.peer.addEventListener('state', (e) => {
    if (e.detail === 'failed') notice('Call audio failed: check your network.');
  });
  const sdp = await peer.offer();
  // Withdrawn while the offer was being made: do not ask for audio.
  if (ui.peer !== peer || ui.call?.id !== offer.call) {
    peer.close();
    return;
  }
  sig.send({ type: 'sdp_offer', call: offer.call, sdp });
}

function toggle(id, type, apply) {
  const on = $(id).getAttribute('aria-pressed') !== 'true';
  $(id).setAttribute('aria-pressed', String(on));
  apply?.(on);
  sig.send({ type, on });
}

async function micCheck() {
  $('mic-status').textContent = 'asking…';
  try {
    const mic = await getMic();
    notice('');
    $('mic-status').textContent = 'microphone OK — speak and watch the meter';
    stopMeter?.();
    stopMeter = levelMeter(mic, (v) => { $('mic-level').value = v; });
    setTimeout(() => { stopMeter?.(); stopMeter = null; $('mic-level').value = 0; }, 10000);
  } catch (e) {
    $('mic-status').textContent = 'not available';
    notice(e.message);
  }
}

function wire() {
  $('available').onclick = () => {
    const goingOn = $('available').getAttribute('aria-pressed') !== 'true';
    sig.send(goingOn ? { type: 'available', on: true } : { type: 'available', on: false, reason: $('away-reason').value });
  };
  $('answer').onclick = () => { answer().catch((e) => notice(String(e))); };
  $('decline').onclick = () => { if (ui.offer) { sig.send({ type: 'decline', call: ui.offer.call }); clearOffer(); } };
  $('hangup').onclick = () => {
    if (ui.call) { sig.send({ type: 'hangup', call: ui.call.id }); endCall(''); }
  };
  $('mute').onclick = () => toggle('mute', 'mute', (on) => ui.peer?.mute(on));
  $('hold').onclick = () => toggle('hold', 'hold', (on) => { ui.peer?.hold(on); setHold(on); });
  // The state changes when the gateway answers `recording` (or `error`).
  $('pause-recording').onclick = () => {
    sig.send({ type: 'pause_recording', on: $('pause-recording').getAttribute('aria-pressed') !== 'true' });
  };
  $('keypad').onclick = (e) => {
    const d = e.target?.dataset?.digit;
    if (d) sig.send({ type: 'dtmf', digit: d });
  };
  $('mic-test').onclick = () => { micCheck(); };
  $('wrapup-disposition').addEventListener('change', syncWrapUp);
  $('wrapup-disposition').addEventListener('input', syncWrapUp);
  $('wrapup-form').onsubmit = (e) => {
    e.preventDefault();
    if (!$('wrapup-disposition').value) { syncWrapUp(); return; }
    sig.send({ type: 'wrap_up', call: ui.wrapCall, disposition: $('wrapup-disposition').value, notes: $('wrapup-notes').value });
    clearInterval(wrapTimer);
    show('wrapup', false);
    syncIdle();
  };
  $('logout').onclick = async () => {
    sig?.close();
    await fetch('/agent/logout', { method: 'POST' }).catch(() => {});
    location.reload();
  };
  $('login-form').onsubmit = async (e) => {
    e.preventDefault();
    $('login-error').textContent = '';
    const body = JSON.stringify({ agent: $('login-agent').value, password: $('login-password').value });
    const r = await fetch('/agent/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body }).catch(() => null);
    if (!r || !r.ok) {
      $('login-error').textContent = r?.status === 401 ? 'Wrong agent or password.' : 'Cannot reach the gateway; try again.';
      return;
    }
    start(await r.json());
  };
}

function start(me) {
  ui.dispositions = me.dispositions?.length ? me.dispositions : DEFAULT_DISPOSITIONS;
  $('who').textContent = me.name ? `${me.name} (${me.agent})` : me.agent;
  show('login-view', false);
  show('agent-view', true);
  show('logout', true);
  show('unlock', !ui.unlocked);
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  // The page's time zone tells the gateway where "today" starts.
  sig = new Signalling(`${proto}//${location.host}/agent/ws?utc_offset_min=${-new Date().getTimezoneOffset()}`);
  sig.addEventListener('message', (e) => onMessage(e.detail));
  sig.addEventListener('status', (e) => {
    $('link').dataset.up = String(e.detail.up);
    if (!e.detail.up) notice('Connection to the gateway lost — reconnecting…');
    else if ($('notice').textContent.startsWith('Connection to the gateway lost')) notice('');
  });
  sig.connect();
  clearInterval(overviewTicker);
  overviewTicker = setInterval(tickOverview, 1000);
  syncIdle();
  if (!window.isSecureContext) notice('This page is not secure (http://): the browser will not give it a microphone. Use https://.');
}

async function boot() {
  wire();
  const r = await fetch('/agent/me').catch(() => null);
  if (r && r.ok) start(await r.json());
  else show('login-view', true);
}

// For the tests and for debugging from the console.
window.hotline = {
  stats: () => (ui.peer ? ui.peer.stats() : null),
  dropSignalling: () => sig.drop(),
  get state() { return ui.state; },
};

boot();
