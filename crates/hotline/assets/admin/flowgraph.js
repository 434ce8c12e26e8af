// A flow's graph as SVG: nodes as boxes (id and kind), edges with their key
// or branch label, laid out in layers by BFS depth from the entry node.
// The data is `POST /api/flows/graph`: {start, nodes: [{id, kind, line,
// column}], edges: [{from, to, label}]}.

// The SVG namespace: a name, never fetched (spelled in parts: the assets
// test allows no URL with a scheme in the console's files).
const SVG = ['http', '//www.w3.org/2000/svg'].join(':');
const BOX_W = 150;
const BOX_H = 40;
const GAP_X = 30;
const GAP_Y = 56;
const PAD = 16;

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text != null) e.textContent = text;
  return e;
}

/// Layers by BFS depth from `start`; nodes it never reaches go in a last layer.
export function layers(graph) {
  const out = new Map();
  for (const e of graph.edges) {
    if (!out.has(e.from)) out.set(e.from, []);
    out.get(e.from).push(e.to);
  }
  const known = new Set(graph.nodes.map((n) => n.id));
  const depth = new Map();
  const queue = known.has(graph.start) ? [graph.start] : [];
  if (queue.length) depth.set(graph.start, 0);
  while (queue.length) {
    const id = queue.shift();
    for (const to of out.get(id) || []) {
      if (known.has(to) && !depth.has(to)) {
        depth.set(to, depth.get(id) + 1);
        queue.push(to);
      }
    }
  }
  const deepest = Math.max(-1, ...depth.values());
  const rows = [];
  // BFS order within a layer, then the unreachable ones in file order.
  const order = [...depth.keys(), ...graph.nodes.map((n) => n.id).filter((id) => !depth.has(id))];
  for (const id of order) {
    const d = depth.has(id) ? depth.get(id) : deepest + 1;
    (rows[d] ||= []).push(id);
  }
  return rows.filter(Boolean);
}

function clip(s, n) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/// Draws `graph` into `box`; clicking a node calls `onNode(node)`.
export function drawGraph(box, graph, onNode) {
  const rows = layers(graph);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const pos = new Map();
  const widest = Math.max(1, ...rows.map((r) => r.length));
  const width = PAD * 2 + widest * BOX_W + (widest - 1) * GAP_X;
  rows.forEach((row, d) => {
    const rowW = row.length * BOX_W + (row.length - 1) * GAP_X;
    const x0 = (width - rowW) / 2;
    row.forEach((id, i) => pos.set(id, { x: x0 + i * (BOX_W + GAP_X), y: PAD + d * (BOX_H + GAP_Y), d }));
  });
  const height = PAD * 2 + rows.length * BOX_H + Math.max(0, rows.length - 1) * GAP_Y;
  const root = svg('svg', {
    id: 'flow-graph-svg', width, height, viewBox: `0 0 ${width} ${height}`,
    role: 'img', 'aria-label': `graph of ${graph.flow || 'the flow'}`,
  });
  const defs = svg('defs');
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.append(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }));
  defs.append(marker);
  root.append(defs);

  const edges = svg('g', { class: 'edges' });
  const labels = svg('g', { class: 'labels' });
  for (const e of graph.edges) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (!a || !b) continue;
    let d;
    let lx;
    let ly;
    if (b.d > a.d) {
      // Down: bottom centre to top centre.
      const x1 = a.x + BOX_W / 2;
      const y1 = a.y + BOX_H;
      const x2 = b.x + BOX_W / 2;
      const y2 = b.y;
      const my = (y1 + y2) / 2;
      d = `M ${x1} ${y1} C ${x1} ${my} ${x2} ${my} ${x2} ${y2}`;
      lx = (x1 + x2) / 2;
      ly = my;
    } else if (e.from === e.to) {
      // A loop on itself: out of the right side and back.
      const x = a.x + BOX_W;
      const y = a.y + BOX_H / 2;
      d = `M ${x} ${y - 8} C ${x + 36} ${y - 30} ${x + 36} ${y + 30} ${x} ${y + 8}`;
      lx = x + 30;
      ly = y;
    } else {
      // Up or sideways: from the right side, curving out.
      const x1 = a.x + BOX_W;
      const y1 = a.y + BOX_H / 2;
      const x2 = b.x + BOX_W;
      const y2 = b.y + BOX_H / 2;
      const bend = Math.max(x1, x2) + 40 + 10 * Math.abs(a.d - b.d);
      d = `M ${x1} ${y1} C ${bend} ${y1} ${bend} ${y2} ${x2} ${y2}`;
      lx = bend - 10;
      ly = (y1 + y2) / 2;
    }
    edges.append(svg('path', { d, class: 'edge', 'marker-end': 'url(#arrow)',
      'data-from': e.from, 'data-to': e.to }));
    if (e.label) {
      labels.append(svg('text', { x: lx, y: ly, class: 'edge-label', 'text-anchor': 'middle',
        'dominant-baseline': 'middle', 'data-from': e.from, 'data-to': e.to }, clip(e.label, 18)));
    }
  }
  root.append(edges);

  const nodes = svg('g', { class: 'nodes' });
  for (const [id, p] of pos) {
    const n = byId.get(id);
    const g = svg('g', {
      class: `node kind-${n.kind}${id === graph.start ? ' start' : ''}`,
      'data-node': id, 'data-line': n.line, tabindex: 0, role: 'button',
      transform: `translate(${p.x} ${p.y})`,
    });
    g.append(svg('title', {}, `${id} (${n.kind}), line ${n.line}`));
    g.append(svg('rect', { width: BOX_W, height: BOX_H, rx: 6, ry: 6 }));
    g.append(svg('text', { x: BOX_W / 2, y: 16, class: 'node-id', 'text-anchor': 'middle' }, clip(id, 20)));
    g.append(svg('text', { x: BOX_W / 2, y: 31, class: 'node-kind', 'text-anchor': 'middle' }, n.kind));
    const go = () => onNode(n);
    g.addEventListener('click', go);
    g.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        go();
      }
    });
    nodes.append(g);
  }
  root.append(nodes, labels);
  box.replaceChildren(root);
}
