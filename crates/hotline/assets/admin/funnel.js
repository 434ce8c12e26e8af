// The IVR funnel (#funnel, #funnel/flow=main&from=…&to=…&issue_type=…):
// a flow's graph (flowgraph.js, the published version's, from
// POST /api/flows/graph) with GET /api/reports/funnel on it — on every node
// the calls that reached it, hung up there and ended self-served below it,
// on every edge the calls that took it (a muted 0 for none) — and the worst
// drop-off nodes.
// A click on a node shows its numbers and the steps out of it.
import { api, el } from './api.js';
import { drawGraph } from './flowgraph.js';
import { svgEl } from './charts.js';
import { apiQuery, csvLink, localTime, pct, rangeOf } from './reports.js';

const flowPath = (name) => `/api/flows/${encodeURIComponent(name)}`;
const calls = (n) => `${n} call${n === 1 ? '' : 's'}`;
// The node box grows by two lines of figures (flowgraph.js draws 40 px).
const BOX_H = 54;
const GROW = BOX_H - 40;

/// The graph of the flow's published version (else its latest).
async function graphOf(name) {
  const versions = await api('GET', `${flowPath(name)}/versions`);
  const v = versions.find((x) => x.status === 'published') || versions[0];
  if (!v) throw new Error(`the flow ${name} has no version`);
  const text = await api('GET', `${flowPath(name)}/versions/${v.version}`);
  const graph = await api('POST', '/api/flows/graph', { name, yaml: text.yaml });
  return { graph, version: v.version };
}

/// The point halfway along a path `M x0 y0 C x1 y1 x2 y2 x3 y3`.
function midpoint(d) {
  const n = (d.match(/-?[\d.]+/g) || []).map(Number);
  if (n.length < 8) return null;
  return { x: (n[0] + 3 * n[2] + 3 * n[4] + n[6]) / 8, y: (n[1] + 3 * n[3] + 3 * n[5] + n[7]) / 8 };
}

/// The funnel's figures written on the drawn graph.
function annotate(box, byNode, byEdge) {
  const svg = box.querySelector('svg');
  if (!svg) return;
  const h = Number(svg.getAttribute('height')) + GROW;
  const w = Number(svg.getAttribute('width'));
  svg.setAttribute('height', h);
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  for (const g of svg.querySelectorAll('g.node')) {
    const id = g.dataset.node;
    const f = byNode.get(id) || { reached: 0, hung_up: 0, self_served_below: 0, drop_rate: null };
    g.querySelector('rect').setAttribute('height', BOX_H);
    const kind = g.querySelector('text.node-kind');
    kind.replaceChildren(
      svgEl('tspan', { class: 'funnel-reached' }, String(f.reached)), ' reached · ',
      svgEl('tspan', { class: 'funnel-hung-up' }, String(f.hung_up)), ' hung up');
    kind.setAttribute('class', 'node-kind funnel-line');
    const line3 = svgEl('text', { x: 75, y: 46, class: 'node-kind funnel-line', 'text-anchor': 'middle' });
    line3.append(svgEl('tspan', { class: 'funnel-self-served' }, String(f.self_served_below)), ' self-served below');
    g.append(line3);
    g.classList.toggle('unreached', f.reached === 0);
    g.classList.toggle('drop-high', f.hung_up > 0 && (f.drop_rate ?? 0) >= 0.2);
    g.dataset.reached = f.reached;
    g.dataset.hungUp = f.hung_up;
    g.dataset.selfServedBelow = f.self_served_below;
  }
  // Parallel edges (a menu's key and its on_exhausted to the same node)
  // share one label: their names joined, then the pair's count.
  const labels = svg.querySelector('g.labels');
  const names = new Map();
  for (const t of labels.querySelectorAll('text.edge-label')) {
    const key = `${t.dataset.from}\u0000${t.dataset.to}`;
    if (names.has(key)) {
      names.get(key).push(t.textContent);
      t.remove();
    } else {
      names.set(key, [t.textContent]);
    }
  }
  const done = new Set();
  for (const p of svg.querySelectorAll('path.edge')) {
    const key = `${p.dataset.from}\u0000${p.dataset.to}`;
    const n = byEdge.get(key) || 0;
    p.classList.add(n ? 'taken' : 'untaken');
    if (done.has(key)) continue;
    done.add(key);
    const count = svgEl('tspan', { class: `edge-count${n ? '' : ' zero'}`, 'data-from': p.dataset.from,
      'data-to': p.dataset.to, 'data-calls': n }, n ? calls(n) : '0');
    const label = [...labels.querySelectorAll('text.edge-label')]
      .find((t) => t.dataset.from === p.dataset.from && t.dataset.to === p.dataset.to);
    if (label) {
      const joined = [...new Set(names.get(key))].join('/');
      label.replaceChildren(joined.length > 18 ? `${joined.slice(0, 17)}…` : joined, ' · ', count);
    } else {
      const m = midpoint(p.getAttribute('d'));
      if (!m) continue;
      const t = svgEl('text', { x: m.x, y: m.y, class: 'edge-label', 'text-anchor': 'middle',
        'dominant-baseline': 'middle', 'data-from': p.dataset.from, 'data-to': p.dataset.to });
      t.append(count);
      labels.append(t);
    }
  }
}

/// Scrolls the graph's box so that the start node is in view.
function showStart(box) {
  const start = box.querySelector('g.node.start');
  const m = /translate\(([-\d.]+)/.exec(start?.getAttribute('transform') || '');
  if (m) box.scrollLeft = Math.max(0, Number(m[1]) + 75 - box.clientWidth / 2);
}

export async function render(main) {
  const rest = (location.hash || '#funnel').slice(1).split('/').slice(1).join('/');
  const params = new URLSearchParams(rest);
  const [range, flows] = await Promise.all([rangeOf(params), api('GET', '/api/flows')]);
  const flowName = params.get('flow') || (flows.find((f) => f.name === 'main') || flows[0] || {}).name || '';

  const input = (id, attrs, value) => {
    const i = el('input', { id, ...attrs });
    i.value = value;
    return i;
  };
  const flow = el('select', { id: 'funnel-flow' }, ...flows.map((f) => el('option', { value: f.name }, f.name)));
  flow.value = flowName;
  const from = input('funnel-from', { type: 'date', required: '' }, range.from);
  const to = input('funnel-to', { type: 'date', required: '' }, range.to);
  const issue = input('funnel-issue-type', { type: 'text', placeholder: 'e.g. purchase' },
    params.get('issue_type') || '');
  const tz = input('funnel-tz', { type: 'text', placeholder: 'IANA zone' }, range.tz);
  const form = el('form', { class: 'search', id: 'funnel-form' },
    el('label', {}, 'Flow', flow),
    el('label', {}, 'From', from),
    el('label', {}, 'To (inclusive)', to),
    el('label', {}, 'Issue type', issue),
    el('label', {}, 'Time zone', tz),
    el('button', { type: 'submit', id: 'funnel-submit' }, 'Show'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    const set = (k, v) => { if (v.trim()) q.set(k, v.trim()); };
    set('flow', flow.value);
    set('from', from.value);
    set('to', to.value);
    set('issue_type', issue.value);
    set('tz', tz.value);
    const hash = `#funnel/${q}`;
    if (location.hash === hash) {
      render(main).catch((e) => main.replaceChildren(el('p', { class: 'error', role: 'alert' }, e.message)));
    } else {
      location.hash = hash; // the shell renders the page again
    }
  });
  const error = el('p', { class: 'error', role: 'alert', id: 'funnel-error' });
  const shown = el('p', { class: 'muted', id: 'funnel-range' });
  const back = new URLSearchParams({ from: range.from, to: range.to, tz: range.tz });
  main.replaceChildren(
    el('p', {}, el('a', { href: `#reports/${back}` }, '← Reports')),
    el('h2', {}, 'IVR funnel'),
    form, error, shown);
  if (!flowName) {
    shown.textContent = 'No flows yet.';
    return;
  }

  const q = apiQuery(range, { flow: flowName, issue_type: params.get('issue_type') || '' });
  let funnel;
  let graph;
  let version;
  try {
    [funnel, { graph, version }] = await Promise.all([api('GET', `/api/reports/funnel?${q}`), graphOf(flowName)]);
  } catch (e) {
    error.textContent = e.message;
    return;
  }
  shown.textContent = `${calls(funnel.calls)} through ${flowName} from ${localTime(funnel.tz, funnel.from)} to `
    + `${localTime(funnel.tz, funnel.to)} (${funnel.tz}); drawn on version ${version}.`;
  shown.dataset.calls = funnel.calls;

  const byNode = new Map(funnel.nodes.map((n) => [n.node, n]));
  const byEdge = new Map(funnel.edges.map((e) => [`${e.from}\u0000${e.to}`, e.calls]));
  const detail = el('div', { id: 'funnel-node', class: 'funnel-node call-head' },
    el('p', { class: 'muted' }, 'Click a node for its numbers.'));
  const showNode = (node) => {
    const f = byNode.get(node.id) || { reached: 0, hung_up: 0, self_served_below: 0, drop_rate: null };
    const out = funnel.edges.filter((e) => e.from === node.id);
    detail.replaceChildren(
      el('h3', {}, `${node.id} (${node.kind})`),
      el('dl', { 'data-node': node.id },
        el('dt', {}, 'Reached'), el('dd', { class: 'reached' }, calls(f.reached)),
        el('dt', {}, 'Hung up here'), el('dd', { class: 'hung-up' }, `${calls(f.hung_up)} (${pct(f.drop_rate)})`),
        el('dt', {}, 'Self-served below'), el('dd', { class: 'self-served' }, calls(f.self_served_below)),
        el('dt', {}, 'Went on to'),
        el('dd', {}, out.length ? out.map((e) => `${e.to}: ${e.calls}`).join(', ') : '—')));
  };
  const graphBox = el('div', { id: 'funnel-graph', class: 'graph funnel-graph' });
  main.append(
    el('div', { class: 'funnel-side' },
      el('section', {}, el('h3', {}, 'Worst drop-off'),
        funnel.worst.length
          ? el('ol', { id: 'funnel-worst' }, ...funnel.worst.map((n) => el('li', { 'data-node': n.node },
            el('strong', {}, n.node), `: ${n.hung_up} of ${n.reached} hung up here (${pct(n.drop_rate)})`)))
          : el('p', { class: 'muted', id: 'funnel-worst-none' }, 'Nobody hung up in this flow.')),
      detail),
    graphBox);
  drawGraph(graphBox, graph, showNode);
  annotate(graphBox, byNode, byEdge);
  showStart(graphBox);

  // Nodes the calls reached that the drawn version no longer has.
  const known = new Set(graph.nodes.map((n) => n.id));
  const gone = funnel.nodes.filter((n) => !known.has(n.node));
  const table = el('table', { id: 'funnel-nodes' },
    el('thead', {}, el('tr', {}, ...['Node', 'Reached', 'Hung up here', 'Drop rate', 'Self-served below']
      .map((h) => el('th', {}, h)))),
    el('tbody', {}, ...funnel.nodes.map((n) => el('tr', { 'data-node': n.node, class: known.has(n.node) ? '' : 'gone' },
      el('td', {}, n.node), el('td', { class: 'reached' }, String(n.reached)),
      el('td', { class: 'hung-up' }, String(n.hung_up)), el('td', {}, pct(n.drop_rate)),
      el('td', { class: 'self-served' }, String(n.self_served_below))))));
  const edgesQ = new URLSearchParams(q);
  edgesQ.set('table', 'edges');
  main.append(
    el('h3', {}, 'Nodes ', csvLink('funnel-nodes-csv', '/api/reports/funnel', q, `funnel_${flowName}_nodes`),
      ' ', (() => {
        const a = csvLink('funnel-edges-csv', '/api/reports/funnel', edgesQ, `funnel_${flowName}_edges`);
        a.textContent = 'Edges CSV';
        return a;
      })()),
    gone.length ? el('p', { class: 'muted' }, `Not in version ${version}: ${gone.map((n) => n.node).join(', ')}.`) : '',
    funnel.nodes.length ? table : el('p', { class: 'muted' }, 'No call went through this flow in this range.'));
}
