// The Flows pages: `#flows` lists every flow; `#flows/NAME` (or
// `#flows/NAME/vN` for one version) is the editor: the YAML with line
// numbers, validation as you type (the server's validator, every error at
// its line and column), save draft, publish, version history, diff,
// rollback, the flow's graph (flowgraph.js) and the simulator.
import { api, ApiError, el } from './api.js';
import { drawGraph } from './flowgraph.js';

const VALIDATE_DELAY_MS = 300;

/// A request whose error answers the page reads whole (409 with `latest`
/// and `diff`, 422 with `errors`): `{status, data}`, never throwing on 4xx.
async function request(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: text }; }
  }
  if (res.status === 401) throw new ApiError(401, (data && data.error) || 'sign in again');
  return { status: res.status, data: data || {} };
}

async function textOf(path) {
  const res = await fetch(path, { credentials: 'same-origin' });
  const text = await res.text();
  if (!res.ok) {
    let msg = text;
    try { msg = JSON.parse(text).error || text; } catch { /* plain text */ }
    throw new ApiError(res.status, msg);
  }
  return text;
}

const when = (t) => (t ? new Date(t).toLocaleString() : '');
const flowPath = (name) => `/api/flows/${encodeURIComponent(name)}`;

export async function render(main) {
  const parts = (location.hash || '#flows').slice(1).split('/');
  if (parts.length > 1 && parts[1]) {
    const m = /^v(\d+)$/.exec(parts[2] || '');
    await renderEditor(main, decodeURIComponent(parts[1]), m ? Number(m[1]) : null);
  } else {
    await renderList(main);
  }
}

// ---------------------------------------------------------------- list

async function renderList(main) {
  const flows = await api('GET', '/api/flows');
  const rows = flows.map((f) => el('tr', { 'data-flow': f.name },
    el('td', {}, el('a', { href: `#flows/${encodeURIComponent(f.name)}` }, f.name)),
    el('td', { class: 'published' }, f.published == null ? 'none' : `v${f.published}`),
    el('td', {}, `v${f.latest}`),
    el('td', {}, f.last_editor),
    el('td', {}, when(f.last_change)),
    el('td', { class: 'drafts' }, String(f.drafts)),
    el('td', { class: 'notice' }, f.notice || '')));
  main.replaceChildren(
    el('h2', {}, 'Flows'),
    el('table', { id: 'flows' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Flow'), el('th', {}, 'Published'),
        el('th', {}, 'Latest'), el('th', {}, 'Last editor'), el('th', {}, 'Last change'),
        el('th', {}, 'Drafts'), el('th', {}, 'Notice'))),
      el('tbody', {}, ...rows)),
    rows.length ? '' : el('p', { class: 'muted' }, 'No flows yet.'));
}

// ---------------------------------------------------------------- editor

async function renderEditor(main, name, wantVersion) {
  const [me, versions] = await Promise.all([api('GET', '/api/me'), api('GET', `${flowPath(name)}/versions`)]);
  const isAdmin = me.role === 'admin';
  const published = versions.find((v) => v.status === 'published');
  const loadNo = wantVersion ?? (published ? published.version : versions[0].version);
  const loaded = await api('GET', `${flowPath(name)}/versions/${loadNo}`);

  const state = { name, base: loaded.version, savedText: loaded.yaml, seq: 0, timer: null };

  // The editor: a gutter of line numbers beside the textarea.
  const gutter = el('div', { id: 'flow-gutter', class: 'gutter', 'aria-hidden': 'true' });
  const ta = el('textarea', {
    id: 'flow-yaml', class: 'code', spellcheck: 'false', wrap: 'off',
    autocapitalize: 'off', autocomplete: 'off', 'aria-label': `${name}.yaml`,
  });
  ta.value = loaded.yaml;
  const errorsList = el('ul', { id: 'flow-errors', class: 'errors' });
  const validity = el('p', { id: 'flow-validity', class: 'validity' });
  const comment = el('input', { id: 'flow-comment', type: 'text', placeholder: 'What changed and why' });
  const saveBtn = el('button', { id: 'flow-save', type: 'button' }, 'Save draft');
  const publishBtn = el('button', { id: 'flow-publish', type: 'button' }, 'Publish');
  if (!isAdmin) {
    publishBtn.disabled = true;
    publishBtn.title = 'Only admins publish flows';
  }
  const status = el('p', { id: 'flow-status', role: 'status' });
  const conflict = el('div', { id: 'flow-conflict', class: 'conflict', hidden: '' });
  const graphBox = el('div', { id: 'flow-graph', class: 'graph' });
  const header = el('p', { id: 'flow-loaded', class: 'muted' });
  const historyBody = el('tbody');
  const diffFrom = el('select', { id: 'diff-from', 'aria-label': 'Diff from' });
  const diffTo = el('select', { id: 'diff-to', 'aria-label': 'Diff to' });
  const diffBtn = el('button', { id: 'diff-show', type: 'button' }, 'Diff');
  const diffOut = el('div', { id: 'flow-diff-box' });

  function showHeader() {
    const dirty = ta.value !== state.savedText;
    header.textContent = `Editing ${name} from v${state.base}${dirty ? ' (unsaved changes)' : ''}`;
  }

  // ---- line numbers, error marks, cursor
  function lineHeight() {
    return parseFloat(getComputedStyle(ta).lineHeight) || 18;
  }
  function drawGutter(bad = new Map()) {
    const n = ta.value.split('\n').length;
    const lines = [];
    for (let i = 1; i <= n; i++) {
      const attrs = { 'data-line': String(i) };
      if (bad.has(i)) {
        attrs.class = 'bad';
        attrs.title = bad.get(i);
      }
      lines.push(el('div', attrs, String(i)));
    }
    gutter.replaceChildren(...lines, el('div', { class: 'pad' }, ' '));
    gutter.scrollTop = ta.scrollTop;
  }
  function jumpTo(line, column = 1) {
    const lines = ta.value.split('\n');
    const l = Math.max(1, Math.min(line, lines.length));
    let offset = 0;
    for (let i = 0; i < l - 1; i++) offset += lines[i].length + 1;
    offset += Math.max(0, Math.min((column || 1) - 1, lines[l - 1].length));
    ta.focus();
    ta.setSelectionRange(offset, offset);
    const h = lineHeight();
    const top = (l - 1) * h;
    if (top < ta.scrollTop || top + h > ta.scrollTop + ta.clientHeight) {
      ta.scrollTop = Math.max(0, top - ta.clientHeight / 3);
    }
    gutter.scrollTop = ta.scrollTop;
  }

  function showErrors(errors, list = errorsList) {
    const bad = new Map();
    const items = errors.map((e) => {
      const where = e.line ? `${e.line}:${e.column ?? 1}` : '';
      const ours = !e.flow || e.flow === name;
      if (ours && e.line) bad.set(e.line, e.message);
      const label = `${ours ? '' : `${e.flow}.yaml `}${where ? `${where} ` : ''}${e.message}`;
      const item = el('li', { 'data-line': String(e.line ?? ''), 'data-column': String(e.column ?? '') });
      if (ours && e.line) {
        const a = el('a', { href: '#', class: 'goto' }, label);
        a.addEventListener('click', (ev) => { ev.preventDefault(); jumpTo(e.line, e.column); });
        item.append(a);
      } else {
        item.append(label);
      }
      return item;
    });
    list.replaceChildren(...items);
    if (list === errorsList) drawGutter(bad);
  }

  // ---- validation as you type, then the graph
  async function validate() {
    const seq = ++state.seq;
    const yaml = ta.value;
    let res;
    try {
      res = await api('POST', '/api/flows/validate', { name, yaml });
    } catch (e) {
      if (seq === state.seq) validity.textContent = `Could not validate: ${e.message}`;
      return;
    }
    if (seq !== state.seq) return; // a newer edit is being checked
    showErrors(res.errors);
    graphBox.classList.toggle('stale', !res.ok);
    validity.className = `validity ${res.ok ? 'ok' : 'bad'}`;
    validity.textContent = res.ok ? 'Valid' : `${res.errors.length} error(s)`;
    validity.dataset.state = res.ok ? 'ok' : 'bad';
    if (res.ok) await redraw(seq, yaml);
  }
  async function redraw(seq, yaml) {
    const { status: code, data } = await request('POST', '/api/flows/graph', { name, yaml });
    if (seq !== state.seq || code !== 200) return;
    drawGraph(graphBox, data, (node) => jumpTo(node.line, node.column));
  }
  ta.addEventListener('input', () => {
    showHeader();
    drawGutter();
    validity.textContent = 'Checking…';
    validity.dataset.state = 'checking';
    clearTimeout(state.timer);
    state.timer = setTimeout(validate, VALIDATE_DELAY_MS);
  });
  ta.addEventListener('scroll', () => { gutter.scrollTop = ta.scrollTop; });
  ta.addEventListener('keydown', (ev) => {
    // Tab indents (two spaces) instead of leaving the editor; Escape then Tab leaves.
    if (ev.key === 'Tab' && !ev.shiftKey && !ta.dataset.escaped) {
      ev.preventDefault();
      ta.setRangeText('  ', ta.selectionStart, ta.selectionEnd, 'end');
      ta.dispatchEvent(new Event('input'));
    }
    ta.dataset.escaped = ev.key === 'Escape' ? '1' : '';
  });

  // ---- save, conflict, publish
  function say(text, kind = '') {
    status.className = kind;
    status.textContent = text;
  }
  async function save() {
    conflict.hidden = true;
    const body = { yaml: ta.value, comment: comment.value, based_on: state.base };
    const { status: code, data } = await request('POST', `${flowPath(name)}/versions`, body);
    if (code === 201) {
      state.base = data.version;
      state.savedText = body.yaml;
      comment.value = '';
      publishErrors.replaceChildren();
      window.history.replaceState(null, '', `#flows/${encodeURIComponent(name)}/v${data.version}`);
      const errs = data.errors || [];
      say(`Saved draft v${data.version}${errs.length ? ` with ${errs.length} error(s): it cannot be published yet` : ''}`, 'ok');
      showHeader();
      await loadHistory();
      return data;
    }
    if (code === 409) {
      showConflict(data);
      say(data.error, 'error');
      return null;
    }
    if (data.errors) showErrors(data.errors);
    say(data.error || `Save failed (${code})`, 'error');
    return null;
  }
  function showConflict(data) {
    const l = data.latest;
    const load = el('button', { id: 'conflict-load', type: 'button' }, `Load v${l.version}`);
    load.addEventListener('click', async () => {
      const v = await api('GET', `${flowPath(name)}/versions/${l.version}`);
      ta.value = v.yaml;
      state.base = v.version;
      state.savedText = v.yaml;
      conflict.hidden = true;
      say(`Loaded v${v.version} by ${v.author}: apply your edit again`);
      window.history.replaceState(null, '', `#flows/${encodeURIComponent(name)}/v${v.version}`);
      showHeader();
      drawGutter();
      await validate();
      await loadHistory();
    });
    conflict.replaceChildren(
      el('h3', {}, 'Someone else changed this flow'),
      el('p', { id: 'conflict-who' },
        `v${l.version} (${l.status}) saved by ${l.author} at ${when(l.created_at)}`
        + `${l.comment ? `: “${l.comment}”` : ''}; you edited v${data.based_on ?? '(none)'}.`),
      diffView(data.diff, 'conflict-diff'),
      el('p', {}, load));
    conflict.hidden = false;
  }
  const publishErrors = el('ul', { id: 'publish-errors', class: 'errors' });
  async function publish() {
    publishErrors.replaceChildren();
    let v = state.base;
    if (ta.value !== state.savedText) {
      const saved = await save();
      if (!saved) return;
      v = saved.version;
    }
    const { status: code, data } = await request('POST', `${flowPath(name)}/versions/${v}/publish`);
    if (code === 200) {
      say(`Published v${v}: new calls take it now`, 'ok');
    } else if (code === 422) {
      say(data.error, 'error');
      showErrors(data.errors || [], publishErrors);
    } else if (code === 403) {
      say(`Refused (403): ${data.error}`, 'error');
    } else {
      say(data.error || `Publish failed (${code})`, 'error');
    }
    await loadHistory();
  }
  saveBtn.addEventListener('click', () => save().catch((e) => say(e.message, 'error')));
  publishBtn.addEventListener('click', () => publish().catch((e) => say(e.message, 'error')));

  // ---- history, diff, rollback
  async function loadHistory() {
    const all = await api('GET', `${flowPath(name)}/versions`);
    historyBody.replaceChildren(...all.map((v) => {
      const actions = el('td', { class: 'actions' },
        el('a', { href: `#flows/${encodeURIComponent(name)}/v${v.version}`, class: 'view' }, 'View'));
      if (v.version > 1) {
        const d = el('button', { type: 'button', class: 'diff-prev', title: `v${v.version - 1} → v${v.version}` }, 'Diff');
        d.addEventListener('click', () => {
          diffFrom.value = String(v.version - 1);
          diffTo.value = String(v.version);
          diffBtn.click();
        });
        actions.append(' ', d);
      }
      // Rolling back = publishing a version that was live before again.
      if (isAdmin && v.status === 'retired') {
        const rb = el('button', { type: 'button', class: 'rollback' }, 'Roll back to this');
        rb.addEventListener('click', () => rollback(v.version).catch((e) => say(e.message, 'error')));
        actions.append(' ', rb);
      }
      return el('tr', { 'data-version': String(v.version), class: v.version === state.base ? 'current' : '' },
        el('td', {}, `v${v.version}`),
        el('td', { class: 'status' }, v.status),
        el('td', {}, v.author),
        el('td', {}, when(v.created_at)),
        el('td', {}, v.comment),
        el('td', {}, v.rollback_of == null ? '' : `v${v.rollback_of}`),
        actions);
    }));
    const opts = (sel, pick) => {
      sel.replaceChildren(...all.map((v) => el('option', { value: String(v.version) }, `v${v.version}`)));
      if (pick != null) sel.value = String(pick);
    };
    opts(diffFrom, all.length > 1 ? all[1].version : all[0].version);
    opts(diffTo, all[0].version);
  }
  async function rollback(version) {
    const { status: code, data } = await request('POST', `${flowPath(name)}/rollback`,
      { version, comment: comment.value });
    if (code === 201) {
      if (ta.value === state.savedText) {
        // Nothing unsaved: the editor follows to what calls now run.
        const v = await api('GET', `${flowPath(name)}/versions/${data.version}`);
        ta.value = v.yaml;
        state.base = v.version;
        state.savedText = v.yaml;
        window.history.replaceState(null, '', `#flows/${encodeURIComponent(name)}/v${v.version}`);
        showHeader();
        drawGutter();
        await validate();
      }
      await loadHistory();
      say(`Rolled back: v${data.version} republishes v${version}`, 'ok');
      return;
    }
    if (code === 422) {
      say(data.error, 'error');
      showErrors(data.errors || [], publishErrors);
    } else {
      say(code === 403 ? `Refused (403): ${data.error}` : data.error || `Rollback failed (${code})`, 'error');
    }
    await loadHistory();
  }
  diffBtn.addEventListener('click', async () => {
    try {
      const text = await textOf(`${flowPath(name)}/diff?from=${diffFrom.value}&to=${diffTo.value}`);
      diffOut.replaceChildren(diffView(text || '(no difference)\n', 'flow-diff'));
    } catch (e) {
      say(e.message, 'error');
    }
  });

  const sim = simulator(name, () => ta.value, (n) => {
    const node = graphBox.querySelector(`[data-node="${CSS.escape(n)}"]`);
    if (node) node.dispatchEvent(new Event('click'));
  });

  main.replaceChildren(
    el('h2', {}, el('a', { href: '#flows' }, 'Flows'), ` / ${name}`),
    header,
    el('div', { class: 'flow-edit' },
      el('section', { class: 'editor-col' },
        el('div', { class: 'editor' }, gutter, ta),
        validity,
        errorsList,
        el('div', { class: 'save-row' },
          el('label', {}, 'Comment ', comment), saveBtn, publishBtn),
        status,
        publishErrors,
        conflict),
      el('section', { class: 'graph-col' }, el('h3', {}, 'Graph'), graphBox)),
    sim,
    el('section', { class: 'history' },
      el('h3', {}, 'Versions'),
      el('table', { id: 'flow-versions' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Version'), el('th', {}, 'Status'), el('th', {}, 'Author'),
          el('th', {}, 'Saved'), el('th', {}, 'Comment'), el('th', {}, 'Rollback of'), el('th', {}, ''))),
        historyBody),
      el('p', { class: 'diff-row' }, 'Compare ', diffFrom, ' with ', diffTo, ' ', diffBtn),
      diffOut));
  showHeader();
  drawGutter();
  await loadHistory();
  await validate();
}

/// A unified diff, each line coloured by its first character.
function diffView(text, id) {
  const lines = (text || '').split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return el('pre', { id, class: 'diff' }, ...lines.map((l) => {
    let cls = '';
    if (l.startsWith('+++') || l.startsWith('---')) cls = 'file';
    else if (l.startsWith('@@')) cls = 'hunk';
    else if (l.startsWith('+')) cls = 'add';
    else if (l.startsWith('-')) cls = 'del';
    return el('span', { class: cls }, `${l}\n`);
  }));
}

// ---------------------------------------------------------------- simulator

function simulator(name, yamlOf, showNode) {
  const digits = el('input', { id: 'sim-digits', type: 'text', placeholder: 'e.g. 12#', autocomplete: 'off' });
  const at = el('input', { id: 'sim-at', type: 'datetime-local' });
  const caller = el('input', { id: 'sim-caller', type: 'text', placeholder: 'e.g. +8613800000000' });
  const fixtures = el('textarea', { id: 'sim-fixtures', class: 'code small', rows: '4', spellcheck: 'false',
    placeholder: '{"lookup_name": {"field": "value"}}' });
  const run = el('button', { id: 'sim-run', type: 'button' }, 'Simulate');
  const error = el('p', { id: 'sim-error', class: 'error', role: 'alert' });
  const out = el('div', { id: 'sim-result', hidden: '' });

  run.addEventListener('click', async () => {
    error.textContent = '';
    const body = { yaml: yamlOf(), digits: digits.value.trim() };
    if (at.value) body.at = new Date(at.value).toISOString();
    if (caller.value.trim()) body.caller = caller.value.trim();
    if (fixtures.value.trim()) {
      try {
        body.fixtures = JSON.parse(fixtures.value);
      } catch (e) {
        error.textContent = `Lookup fixtures are not JSON: ${e.message}`;
        return;
      }
    }
    let res;
    try {
      res = await request('POST', `${flowPath(name)}/simulate`, body);
    } catch (e) {
      error.textContent = e.message;
      return;
    }
    const { status: code, data } = res;
    if (code !== 200) {
      const errs = (data.errors || []).map((e) => `${e.line ?? ''}:${e.column ?? ''} ${e.message}`);
      error.textContent = [data.error || `Simulation failed (${code})`, ...errs].join('\n');
      out.hidden = true;
      return;
    }
    const path = el('ol', { id: 'sim-path' }, ...data.path.map((n) => {
      const a = el('a', { href: '#', 'data-node': n }, n);
      a.addEventListener('click', (ev) => { ev.preventDefault(); showNode(n); });
      return el('li', {}, a);
    }));
    const prompts = el('ul', { id: 'sim-prompts' }, ...data.prompts.map((p) => {
      const li = el('li', { 'data-prompt': p }, el('code', {}, p), ' ');
      if (/^[A-Za-z0-9_-]+\/[A-Za-z0-9_.\/-]+$/.test(p)) {
        const [lang, ...rest] = p.split('/');
        const src = `/api/prompts/${encodeURIComponent(lang)}/${rest.map(encodeURIComponent).join('/')}`;
        li.append(el('audio', { controls: '', preload: 'none', src }));
      }
      return li;
    }));
    out.replaceChildren(
      el('h4', {}, 'Path'), path,
      el('h4', {}, 'Prompts'), prompts.children.length ? prompts : el('p', { class: 'muted' }, 'none'),
      el('h4', {}, 'Variables'), el('pre', { id: 'sim-vars', class: 'code small' }, JSON.stringify(data.variables, null, 2)),
      el('h4', {}, 'Outcome'),
      el('p', { id: 'sim-outcome' }, `${data.outcome ?? '(none)'}${data.ended ? '' : ' — still waiting for input'}`),
      el('details', {}, el('summary', {}, 'Transcript'), el('pre', { id: 'sim-transcript', class: 'code small' }, data.transcript)));
    out.hidden = false;
  });

  return el('section', { id: 'flow-sim', class: 'sim' },
    el('h3', {}, 'Simulator'),
    el('p', { class: 'muted' }, 'Runs the text in the editor (saved or not) with the gateway\'s engine.'),
    el('div', { class: 'sim-in' },
      el('label', {}, 'Digits ', digits),
      el('label', {}, 'Time of day ', at),
      el('label', {}, 'Caller ', caller),
      el('label', { class: 'wide' }, 'Lookup fixtures (JSON) ', fixtures),
      run),
    error,
    out);
}
