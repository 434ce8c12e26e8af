// The Reports page (#reports, #reports/FILTERS): the historical figures of
// docs/metrics.md from GET /api/reports/{summary,series,agents} — a summary
// table, charts (calls by outcome, service level and ASA, CSAT, agents),
// the series and agent tables, each with a CSV download of the same query.
// The filters live in the hash (`#reports/from=2026-11-27&to=2026-12-03&…`,
// `to` inclusive here; the API's `to` is exclusive), so a report can be
// bookmarked. Dates are days in the report's zone (`tz`, default the
// gateway's --report-tz).
import { api, el } from './api.js';
import { hbars, lines, niceMax, stackedBars } from './charts.js';

// ---------------------------------------------------------------- formats

const DASH = '—';
export const count = (v) => (v == null ? DASH : String(v));
export const pct = (v) => (v == null ? DASH : `${(v * 100).toFixed(1)} %`);
export function secs(v) {
  if (v == null) return DASH;
  const t = Math.round(Number(v));
  const m = Math.floor(t / 60);
  return m ? `${m}:${String(t % 60).padStart(2, '0')}` : `${t} s`;
}
const avg = (v) => (v == null ? DASH : Number(v).toFixed(2));

/// Every figure of docs/metrics.md, in its order: [field, label, format].
export const FIGURES = [
  ['offered', 'Offered', count],
  ['answered_by_gateway', 'Answered by the gateway', count],
  ['self_served', 'Self-served', count],
  ['containment_rate', 'Containment rate', pct],
  ['sent_to_queue', 'Sent to a queue', count],
  ['answered_by_agent', 'Answered by an agent', count],
  ['abandoned_in_queue', 'Abandoned in queue', count],
  ['short_abandons', 'Short abandons', count],
  ['abandoned_in_ivr', 'Abandoned in the IVR', count],
  ['ended_in_ivr', 'Ended in the IVR', count],
  ['voicemail', 'Voicemail', count],
  ['callback_requested', 'Callbacks requested', count],
  ['callback_completed', 'Callbacks completed', count],
  ['callback_failed', 'Callbacks failed', count],
  ['transferred', 'Transferred', count],
  ['failed', 'Failed', count],
  ['answered_within_sl', 'Answered within the service level', count],
  ['service_level', 'Service level', pct],
  ['asa_secs', 'Average speed of answer', secs],
  ['avg_wait_secs', 'Average wait', secs],
  ['max_wait_secs', 'Longest wait', secs],
  ['aht_secs', 'Average handle time', secs],
  ['avg_talk_secs', 'Average talk time', secs],
  ['avg_wrap_up_secs', 'Average wrap-up time', secs],
  ['offers_declined', 'Offers declined', count],
  ['offers_timed_out', 'Offers timed out', count],
  ['resolved', 'Resolved', count],
  ['resolution_rate', 'Resolution rate', pct],
  ['first_contact_resolved', 'First-contact resolved', count],
  ['fcr_rate', 'First-contact resolution rate', pct],
  ['surveys_offered', 'Surveys offered', count],
  ['csat_responses', 'CSAT responses', count],
  ['csat_response_rate', 'CSAT response rate', pct],
  ['csat_avg', 'CSAT average (1–5)', avg],
  ['csat_1', 'CSAT 1s', count],
  ['csat_2', 'CSAT 2s', count],
  ['csat_3', 'CSAT 3s', count],
  ['csat_4', 'CSAT 4s', count],
  ['csat_5', 'CSAT 5s', count],
];
const LABEL = Object.fromEntries(FIGURES.map(([k, l, f]) => [k, [l, f]]));

// The series table's columns (the CSV has every figure).
const SERIES_COLUMNS = ['offered', 'self_served', 'containment_rate', 'sent_to_queue', 'answered_by_agent',
  'abandoned_in_queue', 'abandoned_in_ivr', 'voicemail', 'service_level', 'asa_secs', 'aht_secs',
  'resolution_rate', 'csat_avg'];
const AGENT_COLUMNS = ['answered_by_agent', 'aht_secs', 'avg_talk_secs', 'avg_wrap_up_secs', 'offers_declined',
  'offers_timed_out', 'resolution_rate', 'fcr_rate', 'csat_responses', 'csat_avg'];

// How the calls of a bucket ended, for the stacked chart; `other` is the
// rest of the offered calls (callbacks, calls still going, …).
const OUTCOMES = [
  ['self_served', 'Self-served'],
  ['answered_by_agent', 'Agent'],
  ['abandoned_in_queue', 'Abandoned in queue'],
  ['abandoned_in_ivr', 'Abandoned in IVR'],
  ['ended_in_ivr', 'Ended in IVR'],
  ['voicemail', 'Voicemail'],
  ['transferred', 'Transferred'],
  ['failed', 'Failed'],
];

// The agent chart's measures: [field, label, format, from the row].
const AGENT_MEASURES = [
  ['answered_by_agent', 'Calls answered', count],
  ['aht_secs', 'Average handle time', secs],
  ['resolution_rate', 'Resolution rate', pct],
  ['csat_avg', 'CSAT average', avg],
  ['occupancy', 'Occupancy', pct],
];

// ---------------------------------------------------------------- dates

/// `YYYY-MM-DD` of `instant` in zone `tz`.
export function dayIn(tz, instant = new Date()) {
  try {
    return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' })
      .format(instant);
  } catch {
    return instant.toISOString().slice(0, 10);
  }
}

/// A `YYYY-MM-DD` date `n` days later (or earlier).
export function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

/// An instant as local `YYYY-MM-DD HH:MM` in `tz`.
export function localTime(tz, iso) {
  try {
    const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
      timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
      hourCycle: 'h23',
    }).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
  } catch {
    return iso;
  }
}

let serverTz = null;

/// The gateway's report zone (`--report-tz`): the `tz` of an answer over a
/// one-second range, asked once.
export async function defaultTz() {
  if (!serverTz) {
    const now = new Date();
    const q = new URLSearchParams({ from: now.toISOString(), to: new Date(now.getTime() + 1000).toISOString(),
      granularity: 'none' });
    serverTz = (await api('GET', `/api/reports/summary?${q}`)).tz;
  }
  return serverTz;
}

/// The range of the hash's filters, completed: from and to (inclusive)
/// days, default the last 7 days to today in the zone.
export async function rangeOf(params) {
  const tz = params.get('tz') || await defaultTz();
  const to = params.get('to') || dayIn(tz);
  const from = params.get('from') || addDays(to, -6);
  return { tz, from, to };
}

/// The API query of a range and filters (`to` made exclusive).
export function apiQuery(range, filters = {}) {
  const q = new URLSearchParams();
  q.set('from', range.from);
  q.set('to', addDays(range.to, 1));
  q.set('tz', range.tz);
  for (const [k, v] of Object.entries(filters)) {
    if (v) q.set(k, v);
  }
  return q;
}

/// A "CSV" download link of `path` with `q` (the session cookie goes with
/// a plain GET).
export function csvLink(id, path, q, name) {
  const c = new URLSearchParams(q);
  c.set('format', 'csv');
  return el('a', { id, class: 'csv', href: `${path}?${c}`, download: `${name}.csv` }, 'CSV');
}

function bucketLabel(bucket, granularity) {
  const b = String(bucket);
  if (granularity === 'hour') return `${b.slice(5, 10)} ${b.slice(11, 16)}`;
  if (granularity === 'week') return `wk ${b.slice(0, 10)}`;
  if (granularity === 'none') return 'all';
  return b.slice(0, 10);
}

// ---------------------------------------------------------------- page

export async function render(main) {
  const rest = (location.hash || '#reports').slice(1).split('/').slice(1).join('/');
  const params = new URLSearchParams(rest);
  const [range, queues, agents] = await Promise.all([
    rangeOf(params), api('GET', '/api/queues'), api('GET', '/api/agents')]);
  const granularity = params.get('granularity') || 'day';
  const filters = {
    granularity,
    queue: params.get('queue') || '',
    issue_type: params.get('issue_type') || '',
    agent: params.get('agent') || '',
  };

  // ---- the filters
  const input = (id, attrs, value) => {
    const i = el('input', { id, ...attrs });
    i.value = value;
    return i;
  };
  const select = (id, options, value) => {
    const s = el('select', { id }, ...options.map(([v, l]) => el('option', { value: v }, l)));
    s.value = value;
    return s;
  };
  const from = input('reports-from', { type: 'date', required: '' }, range.from);
  const to = input('reports-to', { type: 'date', required: '' }, range.to);
  const gran = select('reports-granularity',
    [['hour', 'Hour'], ['day', 'Day'], ['week', 'Week'], ['none', 'Whole range']], granularity);
  const queue = select('reports-queue', [['', 'any'], ...queues.map((q) => [q.name, q.name])], filters.queue);
  const agent = select('reports-agent',
    [['', 'any'], ...agents.map((a) => [a.id, a.name ? `${a.id} — ${a.name}` : a.id])], filters.agent);
  const issue = input('reports-issue-type', { type: 'text', placeholder: 'e.g. subscription' }, filters.issue_type);
  const tz = input('reports-tz', { type: 'text', placeholder: 'IANA zone' }, range.tz);
  const form = el('form', { class: 'search', id: 'reports-form' },
    el('label', {}, 'From', from),
    el('label', {}, 'To (inclusive)', to),
    el('label', {}, 'By', gran),
    el('label', {}, 'Queue', queue),
    el('label', {}, 'Issue type', issue),
    el('label', {}, 'Agent', agent),
    el('label', {}, 'Time zone', tz),
    el('button', { type: 'submit', id: 'reports-submit' }, 'Show'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    const set = (k, v) => { if (v.trim()) q.set(k, v.trim()); };
    set('from', from.value);
    set('to', to.value);
    set('granularity', gran.value);
    set('queue', queue.value);
    set('issue_type', issue.value);
    set('agent', agent.value);
    set('tz', tz.value);
    const hash = `#reports/${q}`;
    if (location.hash === hash) {
      render(main).catch((e) => main.replaceChildren(el('p', { class: 'error', role: 'alert' }, e.message)));
    } else {
      location.hash = hash; // the shell renders the page again
    }
  });

  const error = el('p', { class: 'error', role: 'alert', id: 'reports-error' });
  const shown = el('p', { class: 'muted', id: 'reports-range' }, 'Loading…');
  const funnelQ = new URLSearchParams({ from: range.from, to: range.to, tz: range.tz });
  if (filters.issue_type) funnelQ.set('issue_type', filters.issue_type);
  main.replaceChildren(
    el('h2', {}, 'Reports'),
    form, error, shown,
    el('p', {}, el('a', { href: `#funnel/${funnelQ}`, id: 'reports-funnel-link' }, 'IVR funnel for this range →')));

  const q = apiQuery(range, filters);
  const agentQ = apiQuery(range, { ...filters, granularity: '' });
  let summary;
  let series;
  let agentRows;
  try {
    [summary, series, agentRows] = await Promise.all([
      api('GET', `/api/reports/summary?${q}`),
      api('GET', `/api/reports/series?${q}`),
      api('GET', `/api/reports/agents?${agentQ}`),
    ]);
  } catch (e) {
    shown.textContent = '';
    error.textContent = e.message;
    return;
  }
  shown.textContent = `Calls that started from ${localTime(summary.tz, summary.from)} to `
    + `${localTime(summary.tz, summary.to)}, times in ${summary.tz}.`;
  shown.dataset.tz = summary.tz;
  const name = `${range.from}_${range.to}`;

  // ---- summary
  const f = summary.figures;
  const summaryTable = el('table', { id: 'reports-summary', class: 'figures' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Figure'), el('th', {}, 'Value'))),
    el('tbody', {}, ...FIGURES.map(([k, label, fmt]) => el('tr', { 'data-figure': k },
      el('th', { scope: 'row' }, label), el('td', { class: 'value', 'data-value': f[k] ?? '' }, fmt(f[k]))))));

  // ---- series
  const labels = series.points.map((p) => bucketLabel(p.bucket, series.granularity));
  const outcomeChart = stackedBars({
    id: 'chart-outcomes', label: 'calls per bucket by outcome', labels,
    series: [
      ...OUTCOMES.map(([k, l]) => ({ key: k, label: l, values: series.points.map((p) => p[k]) })),
      { key: 'other', label: 'Other',
        values: series.points.map((p) => Math.max(0, p.offered - OUTCOMES.reduce((s, [k]) => s + p[k], 0))) },
    ],
  });
  const maxAsa = Math.max(0, ...series.points.map((p) => p.asa_secs || 0));
  const slChart = lines({
    id: 'chart-service', label: 'service level and average speed of answer', labels,
    series: [
      { key: 'service_level', label: 'Service level (%, left)', values: series.points.map((p) => p.service_level),
        axis: 'left' },
      { key: 'asa_secs', label: 'ASA (s, right)', values: series.points.map((p) => p.asa_secs), axis: 'right' },
    ],
    axes: {
      left: { max: 1, format: (v) => `${Math.round(v * 100)}%` },
      right: { max: niceMax(Math.max(maxAsa, 10)), format: (v) => `${Math.round(v)}s` },
    },
  });
  const csatChart = lines({
    id: 'chart-csat', label: 'CSAT average', labels,
    series: [
      { key: 'csat_avg', label: 'CSAT average (1–5)', values: series.points.map((p) => p.csat_avg), axis: 'left' },
      { key: 'csat_response_rate', label: 'Response rate (%, right)',
        values: series.points.map((p) => p.csat_response_rate), axis: 'right' },
    ],
    axes: {
      left: { max: 5, format: (v) => v.toFixed(1) },
      right: { max: 1, format: (v) => `${Math.round(v * 100)}%` },
    },
  });
  const seriesTable = el('table', { id: 'reports-series' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Bucket'), ...SERIES_COLUMNS.map((k) => el('th', {}, LABEL[k][0])))),
    el('tbody', {}, ...series.points.map((p, i) => el('tr', { 'data-bucket': p.bucket },
      el('td', {}, labels[i]),
      ...SERIES_COLUMNS.map((k) => el('td', { 'data-figure': k }, LABEL[k][1](p[k])))))));

  // ---- agents
  const measure = select('chart-agents-measure', AGENT_MEASURES.map(([k, l]) => [k, l]), 'answered_by_agent');
  const agentChartBox = el('div', { class: 'chart-box' });
  const drawAgents = () => {
    const [k, l, fmt] = AGENT_MEASURES.find(([m]) => m === measure.value);
    agentChartBox.replaceChildren(hbars({
      id: 'chart-agents', label: `agents by ${l}`, format: fmt,
      items: agentRows.agents.map((a) => ({ label: a.agent, value: a[k] })),
    }));
  };
  measure.addEventListener('change', drawAgents);
  drawAgents();
  const agentTable = el('table', { id: 'reports-agents' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Agent'), ...AGENT_COLUMNS.map((k) => el('th', {}, LABEL[k][0])),
      el('th', {}, 'Occupancy'))),
    el('tbody', {}, ...agentRows.agents.map((a) => el('tr', { 'data-agent': a.agent },
      el('td', {}, a.agent),
      ...AGENT_COLUMNS.map((k) => el('td', { 'data-figure': k }, LABEL[k][1](a[k]))),
      el('td', { 'data-figure': 'occupancy' }, pct(a.occupancy))))));

  const section = (title, csv, ...body) => el('section', { class: 'report-part' },
    el('h3', {}, title, csv ? ' ' : '', csv || ''), ...body);
  const figure = (title, svg) => el('figure', { class: 'chart-box' }, el('figcaption', {}, title), svg);
  main.append(
    section('Summary', csvLink('reports-summary-csv', '/api/reports/summary', q, `summary_${name}`), summaryTable),
    el('div', { class: 'charts' },
      figure('Calls by outcome', outcomeChart),
      figure('Service level and average speed of answer', slChart),
      figure('Customer satisfaction', csatChart),
      el('figure', { class: 'chart-box' }, el('figcaption', {}, 'Agents by ', measure), agentChartBox)),
    section('Over time', csvLink('reports-series-csv', '/api/reports/series', q, `series_${name}`),
      series.points.length ? el('div', { class: 'table-scroll' }, seriesTable) : el('p', { class: 'muted' }, 'No buckets.')),
    section('Agents', csvLink('reports-agents-csv', '/api/reports/agents', agentQ, `agents_${name}`),
      agentRows.agents.length ? el('div', { class: 'table-scroll' }, agentTable)
        : el('p', { class: 'muted', id: 'reports-agents-none' }, 'No agent answered a call in this range.')));
}
