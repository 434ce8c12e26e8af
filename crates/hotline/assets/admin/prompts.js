// The Prompts page: every prompt per language, playable; missing ones
// marked; published flows that need a missing prompt flagged; an upload
// form (admins) that replaces or adds a prompt with any WAV.
import { api, ApiError, el } from './api.js';

const LANG = '^[a-z]{2}(-[A-Z]{2})?$';
const NAME = '^[A-Za-z0-9_\\-]{1,64}$';

function promptUrl(lang, name) {
  return `/api/prompts/${encodeURIComponent(lang)}/${name.split('/').map(encodeURIComponent).join('/')}`;
}

function seconds(ms) {
  return `${(ms / 1000).toFixed(2)} s`;
}

/// PUTs the file as the body; the server's message on failure.
async function upload(lang, name, file) {
  const res = await fetch(promptUrl(lang, name), {
    method: 'PUT',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'audio/wav', Accept: 'application/json' },
    body: file,
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

export async function render(main, notice = '') {
  const [me, data] = await Promise.all([api('GET', '/api/me'), api('GET', '/api/prompts')]);
  const admin = me.role === 'admin';
  const langs = data.languages;

  // The upload form, filled in by a cell's "Replace"/"Upload" button.
  const file = el('input', { type: 'file', id: 'prompt-file', accept: '.wav,audio/wav,audio/x-wav', required: '' });
  const lang = el('input', { id: 'prompt-lang', list: 'prompt-langs', required: '', pattern: LANG, size: '6', placeholder: 'en' });
  const name = el('input', { id: 'prompt-name', required: '', pattern: NAME, placeholder: 'welcome' });
  const submit = el('button', { type: 'submit', id: 'prompt-upload-submit' }, 'Upload');
  const error = el('p', { id: 'prompt-upload-error', class: 'error', role: 'alert' });
  const status = el('p', { id: 'prompt-upload-status', class: 'muted' }, notice);
  const form = el('form', { id: 'prompt-upload', class: 'form' },
    el('h3', {}, 'Upload a prompt'),
    el('label', {}, 'WAV file ', file),
    el('label', {}, 'Language ', lang),
    el('label', {}, 'Name ', name),
    submit,
    el('datalist', { id: 'prompt-langs' }, ...langs.map((l) => el('option', { value: l }))),
    el('p', { class: 'muted' }, 'Any sample rate, channels and bit depth; converted once to 8 kHz mono, at most 20 MB and 10 minutes.'),
    error, status);
  if (!admin) {
    for (const x of [file, lang, name, submit]) x.disabled = true;
    form.append(el('p', { class: 'muted', id: 'prompt-upload-readonly' }, 'Only admins upload prompts.'));
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    status.textContent = '';
    const f = file.files[0];
    if (!f) { error.textContent = 'Choose a WAV file.'; return; }
    submit.disabled = true;
    try {
      const r = await upload(lang.value.trim(), name.value.trim(), f);
      await render(main, `Uploaded ${r.language}/${r.name}: ${seconds(r.duration_ms)}${r.replaced ? ' (replaced)' : ''}.`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) throw e;
      error.textContent = e.message;
      submit.disabled = false;
    }
  });
  function prefill(l, n) {
    lang.value = l;
    name.value = n;
    file.focus();
    form.scrollIntoView({ block: 'nearest' });
  }

  const rows = data.prompts.map((p) => el('tr', { 'data-prompt': p.name },
    el('th', { scope: 'row' }, p.name),
    ...langs.map((l) => {
      const f = p.files[l];
      const flat = !p.name.includes('/');
      const replace = admin && flat
        ? el('button', { type: 'button', class: 'small' }, f === undefined ? 'Upload' : 'Replace')
        : '';
      if (replace) replace.addEventListener('click', () => prefill(l, p.name));
      if (f === undefined) {
        return el('td', { class: 'missing', 'data-lang': l }, el('span', { class: 'error' }, 'missing'), ' ', replace);
      }
      if (f === null) {
        return el('td', { class: 'missing', 'data-lang': l }, el('span', { class: 'error' }, 'unreadable'), ' ', replace);
      }
      return el('td', { 'data-lang': l, 'data-duration-ms': String(f.duration_ms) },
        el('audio', { controls: '', preload: 'none', src: promptUrl(l, p.name) }),
        el('div', { class: 'muted duration' },
          `${seconds(f.duration_ms)} · ${f.sample_rate} Hz · ${f.channels === 1 ? 'mono' : `${f.channels} ch`} · ${f.bits} bit`),
        replace);
    })));

  const flagged = data.flagged.map((f) => el('li', { 'data-flow': f.flow },
    el('a', { href: `#flows/${encodeURIComponent(f.flow)}` }, `${f.flow} v${f.version}`),
    f.line ? ` line ${f.line}:${f.column}: ` : ': ', f.message));

  main.replaceChildren(
    el('h2', {}, 'Prompts'),
    el('h3', {}, 'Flows that need a missing prompt'),
    flagged.length
      ? el('ul', { id: 'prompts-flagged', class: 'error' }, ...flagged)
      : el('p', { id: 'prompts-flagged', class: 'muted' }, 'None: every published flow has its prompts in every language it declares.'),
    el('table', { id: 'prompts' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Prompt'), ...langs.map((l) => el('th', {}, l)))),
      el('tbody', {}, ...rows)),
    rows.length ? '' : el('p', { class: 'muted' }, 'No prompts in the sounds directory.'),
    form);
}
