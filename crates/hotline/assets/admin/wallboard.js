// The wallboard (/admin/wallboard): the live feed (GET /api/live, Server-
// Sent Events, one JSON a second; docs/metrics.md, "Live") as big numbers
// coloured against thresholds, the queues, the agents and the live calls.
// Signed-in admins and supervisors only (the session cookie of /admin).
import { el } from './api.js';

const $ = (id) => document.getElementById(id);
let last = null;

function clock(s) {
  if (s === null || s === undefined) return '—';
  s = Math.max(0, Math.round(s));
  const m = Math.floor(s / 60);
  if (m >= 60) return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  return `${m}:${String(s % 60).padStart(2, '0')}`;
}
const pct = (x) => (x === null || x === undefined ? '—' : `${Math.round(x * 100)}%`);

// ok / warn / bad: higher is better when `up`, else lower is better.
function level(value, good, fair, up = true) {
  if (value === null || value === undefined) return '';
  if (up) return value >= good ? 'ok' : value >= fair ? 'warn' : 'bad';
  return value <= good ? 'ok' : value <= fair ? 'warn' : 'bad';
}

function tile(id, text, cls) {
  const t = $(id);
  t.querySelector('.n').textContent = text;
  t.classList.remove('ok', 'warn', 'bad');
  if (cls) t.classList.add(cls);
  t.dataset.value = text;
}

const PHASES = {
  ivr: 'IVR', queue: 'Queue', ringing: 'Ringing', agent: 'Agent', survey: 'Survey',
  voicemail: 'Voicemail', callback: 'Callback',
};

function draw(f) {
  last = f;
  const target = f.service_level_target ?? 0.8;
  const thresholds = (f.queues || []).map((q) => q.service_level_secs ?? 20);
  const sl = thresholds.length ? Math.min(...thresholds) : 20;
  const longest = Math.max(0, ...(f.queues || []).map((q) => q.longest_wait_s));
  const available = f.agent_states?.available ?? 0;
  tile('t-ivr', String(f.in_ivr), '');
  tile('t-waiting', String(f.waiting), f.waiting > 0 && available === 0 ? 'bad' : f.waiting > 0 ? 'warn' : 'ok');
  tile('t-longest', clock(longest), level(longest, sl / 2, sl, false));
  tile('t-talking', String(f.with_agent), '');
  tile('t-available', String(available), available > 0 ? 'ok' : f.waiting > 0 ? 'bad' : 'warn');
  const t = f.today?.figures;
  if (t) {
    tile('t-sl', pct(t.service_level), level(t.service_level, target, target - 0.1));
    tile('t-asa', clock(t.asa_secs), level(t.asa_secs, sl, 2 * sl, false));
    const rate = t.sent_to_queue > 0 ? t.abandoned_in_queue / t.sent_to_queue : null;
    tile('t-abandoned', String(t.abandoned_in_queue), level(rate, 0.05, 0.1, false));
    tile('t-answered', String(t.answered_by_agent), '');
    tile('t-csat', t.csat_avg === null ? '—' : `${t.csat_avg.toFixed(1)}`, level(t.csat_avg, 4, 3));
  }
  $('wb-queues').tBodies[0].replaceChildren(...(f.queues || []).map((q) => {
    const limit = q.service_level_secs ?? 20;
    const cls = q.waiting > 0 && q.agents_available === 0 ? 'bad' : level(q.longest_wait_s, limit / 2, limit, false);
    return el('tr', { class: q.waiting ? cls : '', 'data-queue': q.queue },
      el('td', {}, q.queue), el('td', {}, String(q.waiting)),
      el('td', {}, q.waiting ? clock(q.longest_wait_s) : '—'), el('td', {}, String(q.agents_available)));
  }));
  $('wb-agents').tBodies[0].replaceChildren(...(f.agents || []).filter((a) => a.state !== 'offline').map((a) =>
    el('tr', { 'data-agent': a.agent, 'data-state': a.state },
      el('td', {}, a.name || a.agent),
      el('td', { class: `state-${a.state}` }, a.state.replace('_', ' ') + (a.reason ? ` (${a.reason})` : '')),
      el('td', {}, clock(a.for_s)))));
  $('wb-calls').tBodies[0].replaceChildren(...(f.calls || []).map((c) => {
    const where = c.phase === 'ivr' ? `IVR: ${c.node || '…'}`
      : c.phase === 'queue' || c.phase === 'ringing' ? `${PHASES[c.phase]}: ${c.queue || ''} (${clock(c.phase_s)})`
        : PHASES[c.phase] || c.phase;
    return el('tr', { 'data-call': c.call, 'data-phase': c.phase },
      el('td', {}, c.caller || 'unknown'), el('td', {}, where),
      el('td', {}, c.agent || '—'), el('td', {}, clock(c.duration_s)));
  }));
  $('wb-status').textContent = `Live · ${new Date(f.at).toLocaleTimeString()}`;
  $('wb-status').classList.remove('down');
}

// For tests and the console: the last feed drawn.
window.hotlineWallboard = { last: () => last };

function tick() { $('wb-clock').textContent = new Date().toLocaleTimeString(); }

async function start() {
  tick();
  setInterval(tick, 1000);
  const me = await fetch('/api/me', { credentials: 'same-origin' });
  if (me.status === 401 || me.status === 403) {
    $('wb-signin').hidden = false;
    $('wb-status').textContent = 'Not signed in';
    return;
  }
  $('wb').hidden = false;
  const src = new EventSource('/api/live');
  src.onmessage = (ev) => {
    try { draw(JSON.parse(ev.data)); } catch (e) { console.warn('wallboard: bad feed', e); }
  };
  // EventSource reconnects by itself; say so meanwhile.
  src.onerror = () => {
    $('wb-status').textContent = 'Reconnecting…';
    $('wb-status').classList.add('down');
  };
}

start();
