// The agent softphone: login, availability, offers, the call, wrap-up.
// Plain ES modules, no build step; all text from the server goes in with
// textContent (never innerHTML).

import { Signalling } from './signalling.js';
import { AgentPeer, getMic, levelMeter, MicError } from './media.js';
import { Ringer, audioContext } from './ring.js';

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
function cell(tag, text) {
  const c = document.createElement(tag);
  c.textContent = text === null || text === undefined ? '' : (typeof text === 'object' ? JSON.stringify(text) : String(text));
  return c;
}
function table(rows) {
  const t = document.createElement('table');
  if (Array.isArray(rows)) {
    const keys = [...new Set(rows.flatMap((r) => (r && typeof r === 'object' ? Object.keys(r) : [])))];
    const head = document.createElement('tr');
    keys.forEach((k) => head.append(cell('th', k)));
    t.append(head);
    for (const r of rows) {
      const tr = document.createElement('tr');
      keys.forEach((k) => tr.append(cell('td', r?.[k])));
      t.append(tr);
    }
  } else {
    for (const [k, v] of Object.entries(rows)) {
      const tr = document.createElement('tr');
      tr.append(cell('th', k), cell('td', v));
      t.append(tr);
    }
  }
  return t;
}
// customer / subscriptions / orders, whatever the lookups found
function renderData(el, data) {
  el.replaceChildren();
  if (!data || typeof data !== 'object') return;
  for (const [section, value] of Object.entries(data)) {
    el.append(cell('h3', section.replace(/_/g, ' ')));
    if (value && typeof value === 'object' && (!Array.isArray(value) || value.every((v) => v && typeof v === 'object'))) {
      el.append(table(value));
    } else {
      el.append(cell('p', value));
    }
  }
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
}

function endCall(text) {
  clearInterval(callTimer);
  ui.peer?.close();
  ui.peer = null;
  ui.call = null;
  show('call', false);
  if (text) notice(text);
}

// ---------- server messages ----------
function onMessage(msg) {
  switch (msg.type) {
    case 'state':
      setState(msg.state, msg.reason);
      if (msg.state !== 'ringing' && ui.offer) clearOffer();
      break;
    case 'offer': {
      ui.offer = msg;
      // A callback request: answering dials the customer back.
      $('offer-kind').textContent = msg.callback ? 'Callback request' : 'Incoming call';
      $('offer-caller').textContent = msg.caller || 'unknown';
      $('offer-issue').textContent = msg.issue_type || '—';
      renderPath($('offer-path'), msg.path);
      renderData($('offer-data'), msg.data);
      show('incoming', true);
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
          const s = Math.floor((Date.now() - start) / 1000);
          $('call-timer').textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
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
    case 'error':
      notice(msg.message);
      break;
    default:
      break;
  }
}

function showWrapUp(call, until) {
  ui.wrapCall = call;
  const sel = $('wrapup-disposition');
  if (sel.options.length === 0) {
    for (const d of ui.dispositions) {
      const o = document.createElement('option');
      o.value = d;
      o.textContent = d.replace(/_/g, ' ');
      sel.append(o);
    }
  }
  $('wrapup-notes').value = '';
  show('wrapup', true);
  clearInterval(wrapTimer);
  wrapTimer = countdown($('wrapup-countdown'), until, () => { clearInterval(wrapTimer); });
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
  $('call-issue').textContent = offer.issue_type || '—';
  renderPath($('call-path'), offer.path);
  renderData($('call-data'), offer.data);
  $('call-status').dataset.status = 'connecting';
  $('call-status').textContent = offer.callback ? 'calling back…' : 'connecting…';
  $('call-timer').textContent = '0:00';
  for (const b of ['mute', 'hold']) $(b).setAttribute('aria-pressed', 'false');
  show('call', true);
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
  $('hold').onclick = () => toggle('hold', 'hold', (on) => ui.peer?.hold(on));
  $('keypad').onclick = (e) => {
    const d = e.target?.dataset?.digit;
    if (d) sig.send({ type: 'dtmf', digit: d });
  };
  $('mic-test').onclick = () => { micCheck(); };
  $('wrapup-form').onsubmit = (e) => {
    e.preventDefault();
    sig.send({ type: 'wrap_up', call: ui.wrapCall, disposition: $('wrapup-disposition').value, notes: $('wrapup-notes').value });
    clearInterval(wrapTimer);
    show('wrapup', false);
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
  sig = new Signalling(`${proto}//${location.host}/agent/ws`);
  sig.addEventListener('message', (e) => onMessage(e.detail));
  sig.addEventListener('status', (e) => {
    $('link').dataset.up = String(e.detail.up);
    if (!e.detail.up) notice('Connection to the gateway lost — reconnecting…');
    else if ($('notice').textContent.startsWith('Connection to the gateway lost')) notice('');
  });
  sig.connect();
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
