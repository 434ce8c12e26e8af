// The Voicemail page (#voicemail): voicemails newest first with their
// callers, playable, and a "handled" mark that admins and supervisors set.
import { api, el } from './api.js';
import { duration } from './calls.js';

const when = (t) => (t ? new Date(t).toLocaleString() : '');

export async function render(main) {
  const show = el('select', { id: 'voicemail-filter' },
    el('option', { value: 'false' }, 'Not handled'),
    el('option', { value: 'true' }, 'Handled'),
    el('option', { value: 'all' }, 'All'));
  const body = el('tbody');
  const more = el('button', { type: 'button', id: 'voicemail-more', hidden: '' }, 'More');
  const error = el('p', { class: 'error', role: 'alert', id: 'voicemail-error' });
  main.replaceChildren(
    el('h2', {}, 'Voicemail'),
    el('p', {}, el('label', {}, 'Show ', show)),
    error,
    el('table', { id: 'voicemails', class: 'voicemails' },
      el('thead', {}, el('tr', {}, ...['Left at', 'Caller', 'Duration', 'Queue', 'Listen', 'Handled']
        .map((h) => el('th', {}, h)))),
      body),
    el('p', { class: 'pager' }, more));

  let after = null;
  async function page() {
    error.textContent = '';
    const q = new URLSearchParams({ handled: show.value });
    if (after) q.set('after', after);
    const res = await api('GET', `/api/voicemails?${q.toString()}`);
    for (const v of res.voicemails) body.append(row(v));
    after = res.next;
    more.hidden = !after;
    if (!body.children.length) {
      body.append(el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'No voicemails.')));
    }
  }

  function row(v) {
    const check = el('input', { type: 'checkbox', class: 'handled', 'aria-label': 'handled' });
    check.checked = v.handled;
    const who = el('span', { class: 'muted' }, v.handled ? ` ${v.handled_by}` : '');
    const tr = el('tr', { 'data-voicemail': v.id, class: v.handled ? 'handled' : '' },
      el('td', {}, el('a', { href: `#calls/${v.call_id}` }, when(v.at))),
      el('td', { class: 'caller' }, [v.caller, v.caller_name].filter(Boolean).join(' — ')),
      el('td', {}, duration(v.duration_ms / 1000)),
      el('td', {}, v.queue || ''),
      el('td', {}, v.url
        ? el('audio', { controls: '', preload: 'none', src: v.url })
        : el('span', { class: 'muted' }, `deleted (${v.deleted_reason || ''})`)),
      el('td', {}, el('label', {}, check, who)));
    check.addEventListener('change', async () => {
      check.disabled = true;
      try {
        const res = await api('PUT', `/api/voicemails/${v.id}/handled`, { handled: check.checked });
        tr.className = res.handled ? 'handled' : '';
        who.textContent = res.handled ? ` ${res.handled_by}` : '';
      } catch (e) {
        check.checked = !check.checked;
        error.textContent = e.message;
      } finally {
        check.disabled = false;
      }
    });
    return tr;
  }

  show.addEventListener('change', () => { body.replaceChildren(); after = null; page(); });
  more.addEventListener('click', () => page());
  await page();
}
