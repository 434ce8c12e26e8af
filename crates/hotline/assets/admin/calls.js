// The Calls page (#calls, #calls/FILTERS) and a call's page (#calls/ID).
// Search filters live in the hash (`#calls/caller=…&outcome=…`), so a search
// can be bookmarked; pages follow the API's keyset cursor, with a stack of
// the cursors seen for Back. Times are entered and shown in the browser's
// zone and sent as ISO 8601 with the zone's offset.
import { api, el } from './api.js';
import { waveforms } from './waveform.js';

const FILTERS = [
  ['caller', 'Caller number', 'text'],
  ['issue_type', 'Issue type', 'text'],
  ['outcome', 'Outcome', 'select'],
  ['queue', 'Queue', 'text'],
  ['agent', 'Agent', 'text'],
  ['disposition', 'Disposition', 'text'],
  ['flow', 'Flow', 'text'],
  ['flow_version', 'Flow version', 'text'],
];
const OUTCOMES = ['', 'self_served', 'queued', 'abandoned', 'answered', 'voicemail', 'callback',
  'transferred', 'failed'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const pad = (n) => String(n).padStart(2, '0');
const when = (t) => (t ? new Date(t).toLocaleString() : '');
const clock = (t) => {
  if (!t) return '';
  const d = new Date(t);
  return `${d.toLocaleTimeString()}.${String(d.getMilliseconds()).padStart(3, '0')}`;
};

// Seconds as m:ss (or h:mm:ss).
export function duration(s) {
  if (s == null) return '';
  const t = Math.round(Number(s));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  return h ? `${h}:${pad(m)}:${pad(t % 60)}` : `${m}:${pad(t % 60)}`;
}

// A `datetime-local` value (the browser's zone) as ISO 8601 with its offset.
function isoWithOffset(local) {
  const d = new Date(local);
  if (Number.isNaN(d.getTime())) return '';
  const off = -d.getTimezoneOffset();
  const a = Math.abs(off);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:`
    + `${pad(d.getMinutes())}:${pad(d.getSeconds())}${off >= 0 ? '+' : '-'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

// An ISO time as a `datetime-local` value in the browser's zone.
function localInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// `vN` versions are the console's flow versions: a link to the flow's page.
export function flowLink(flow, version) {
  if (!flow) return '';
  const m = /^v(\d+)$/.exec(version || '');
  const text = version ? `${flow} ${version}` : flow;
  if (!m) return text;
  return el('a', { href: `#flows/${encodeURIComponent(flow)}/v${m[1]}`, class: 'flow-version' }, text);
}

export async function render(main) {
  const rest = (location.hash || '#calls').slice(1).split('/').slice(1).join('/');
  if (UUID.test(rest)) {
    await renderCall(main, rest.toLowerCase());
  } else {
    await renderSearch(main, new URLSearchParams(rest));
  }
}

// ---------------------------------------------------------------- search

async function renderSearch(main, params) {
  const inputs = {};
  const field = (name, label, type) => {
    let input;
    if (type === 'select') {
      input = el('select', { name, id: `calls-${name}` },
        ...OUTCOMES.map((o) => el('option', { value: o }, o || 'any')));
    } else {
      input = el('input', { name, id: `calls-${name}`, type });
    }
    input.value = params.get(name) || '';
    inputs[name] = input;
    return el('label', {}, label, input);
  };
  const from = el('input', { type: 'datetime-local', id: 'calls-from', name: 'from' });
  const to = el('input', { type: 'datetime-local', id: 'calls-to', name: 'to' });
  from.value = params.get('from') ? localInput(params.get('from')) : '';
  to.value = params.get('to') ? localInput(params.get('to')) : '';
  const form = el('form', { class: 'search', id: 'calls-search' },
    el('label', {}, 'From', from),
    el('label', {}, 'To', to),
    ...FILTERS.map(([n, l, t]) => field(n, l, t)),
    el('button', { type: 'submit', id: 'calls-submit' }, 'Search'));
  const body = el('tbody');
  const status = el('p', { class: 'muted', id: 'calls-status' });
  const back = el('button', { type: 'button', id: 'calls-back', hidden: '' }, 'Back');
  const next = el('button', { type: 'button', id: 'calls-next', hidden: '' }, 'Next page');
  const error = el('p', { class: 'error', role: 'alert', id: 'calls-error' });
  main.replaceChildren(
    el('h2', {}, 'Calls'),
    form, error,
    el('table', { id: 'calls-results' },
      el('thead', {}, el('tr', {}, ...['Started', 'Caller', 'Issue type', 'Outcome', 'Queue', 'Agent',
        'Talk time', 'Flow'].map((h) => el('th', {}, h)))),
      body),
    status,
    el('p', { class: 'pager' }, back, ' ', next));

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    if (from.value) q.set('from', isoWithOffset(from.value));
    if (to.value) q.set('to', isoWithOffset(to.value));
    for (const [name] of FILTERS) {
      const v = inputs[name].value.trim();
      if (v) q.set(name, v);
    }
    const hash = `#calls/${q.toString()}`;
    if (location.hash === hash) {
      stack = [null];
      show();
    } else {
      location.hash = hash; // the shell renders the page again
    }
  });

  // The cursors of the pages seen: the last one is the page shown.
  let stack = [null];
  async function show() {
    error.textContent = '';
    const q = new URLSearchParams(params);
    const after = stack[stack.length - 1];
    if (after) q.set('after', after);
    let res;
    try {
      res = await api('GET', `/api/calls?${q.toString()}`);
    } catch (e) {
      error.textContent = e.message;
      return;
    }
    body.replaceChildren(...res.calls.map((c) => el('tr', { 'data-call': c.id },
      el('td', {}, el('a', { href: `#calls/${c.id}` }, when(c.started_at))),
      el('td', { class: 'caller' }, c.caller || ''),
      el('td', {}, c.issue_type || ''),
      el('td', { class: 'outcome' }, c.outcome || (c.complete ? '' : 'in progress')),
      el('td', {}, c.queue || ''),
      el('td', {}, c.agent || ''),
      el('td', {}, duration(c.talk_seconds)),
      el('td', {}, flowLink(c.flow, c.flow_version)))));
    status.textContent = res.calls.length ? `Page ${stack.length}` : 'No calls match.';
    back.hidden = stack.length < 2;
    next.hidden = !res.next;
    next.onclick = () => { stack.push(res.next); show(); };
  }
  back.addEventListener('click', () => { if (stack.length > 1) { stack.pop(); show(); } });
  await show();
}

// ---------------------------------------------------------------- a call

function dl(pairs) {
  const d = el('dl');
  for (const [k, v, id] of pairs) {
    if (v === '' || v == null) continue;
    d.append(el('dt', {}, k), el('dd', id ? { id } : {}, v));
  }
  return d;
}

// The event data worth a glance, as `key: value` text.
function keyData(data) {
  if (!data || typeof data !== 'object') return '';
  return Object.entries(data)
    .filter(([, v]) => v !== null && v !== '' && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join('\n');
}

async function renderCall(main, id) {
  const c = await api('GET', `/api/calls/${id}`);
  const a = c.agent_part || {};
  const ended = [c.ended_by && `by ${c.ended_by}`, c.hangup_cause].filter(Boolean).join(', ');
  const head = el('section', { class: 'call-head', id: 'call-header' },
    dl([
      ['Caller', [c.caller, c.caller_name].filter(Boolean).join(' — ') + (c.masked ? ' (masked)' : ''), 'call-caller'],
      ['Dialled', c.callee],
      ['Started', when(c.started_at)],
      ['Answered', when(c.answered_at)],
      ['Ended', [when(c.ended_at), ended].filter(Boolean).join(' — ')],
      ['Outcome', c.outcome || (c.complete ? '' : 'in progress'), 'call-outcome'],
      ['Issue type', c.issue_type],
      ['Flow', flowLink(c.flow, c.flow_version)],
      ['Language', c.language],
      ['Disposition', a.disposition, 'call-disposition'],
      ['Notes', a.notes, 'call-notes'],
    ]));
  const path = el('ol', { class: 'ivr-path', id: 'call-ivr-path' },
    ...(c.ivr_path || []).map((n) => el('li', {}, n)));
  const agentPart = a.queue || a.agent
    ? dl([
      ['Queue', a.queue],
      ['Queued at', when(a.queued_at)],
      ['Waited', a.waited_seconds == null ? '' : duration(a.waited_seconds)],
      ['Agent', [a.agent, a.agent_name].filter(Boolean).join(' — ')],
      ['Answered at', when(a.agent_answered_at)],
      ['Talk time', duration(a.talk_seconds)],
      ['Wrap-up', a.wrap_up_seconds == null ? '' : duration(a.wrap_up_seconds)],
    ])
    : el('p', { class: 'muted' }, 'The call did not reach a queue.');
  const timeline = el('table', { id: 'call-timeline' },
    el('thead', {}, el('tr', {}, ...['Time', 'Event', 'Node', 'Data'].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...(c.timeline || []).map((e) => el('tr', { 'data-kind': e.kind, 'data-seq': String(e.seq) },
      el('td', { title: e.at }, clock(e.at)),
      el('td', { class: 'kind' }, e.kind),
      el('td', {}, e.node || ''),
      el('td', { class: 'data' }, keyData(e.data))))));
  main.replaceChildren(
    el('p', {}, el('a', { href: '#calls' }, '← Calls')),
    el('h2', {}, `Call from ${c.caller || 'unknown'}`),
    head,
    el('h3', {}, 'IVR path'),
    c.ivr_path && c.ivr_path.length ? path : el('p', { class: 'muted' }, 'No IVR nodes.'),
    el('h3', {}, 'Queue and agent'),
    el('section', { class: 'call-head', id: 'call-agent-part' }, agentPart),
    el('h3', {}, 'Recording'),
    await recording(c),
    el('h3', {}, 'Timeline'),
    timeline);
}

async function recording(c) {
  const r = c.recording;
  if (!r) return el('p', { class: 'muted', id: 'call-recording' }, 'Not recorded.');
  if (!r.url) {
    return el('p', { class: 'muted', id: 'call-recording' },
      `Deleted (${r.deleted_reason || 'deleted'}) ${when(r.deleted_at)}.`);
  }
  const audio = el('audio', { controls: '', preload: 'metadata', id: 'call-audio', src: r.url });
  const box = el('section', { class: 'recording', id: 'call-recording', 'data-duration-ms': String(r.duration_ms) },
    el('p', {}, `${(r.duration_ms / 1000).toFixed(1)} s, ${r.channels === 2 ? 'stereo' : `${r.channels} channel(s)`}, `
      + `${r.sample_rate} Hz — `, el('a', { href: `${r.url}?download=1`, id: 'call-download', download: '' }, 'Download')),
    audio);
  try {
    const peaks = await api('GET', `/api/calls/${c.id}/recording/peaks?n=800`);
    box.append(waveforms(peaks, audio));
  } catch (e) {
    box.append(el('p', { class: 'error' }, `Waveform: ${e.message}`));
  }
  return box;
}
