// The Audit page: who did what, when, from where; newest first, page by page.
import { api, el } from './api.js';

export async function render(main) {
  const body = el('tbody');
  const more = el('button', { type: 'button', id: 'audit-older', hidden: '' }, 'Older');
  main.replaceChildren(
    el('h2', {}, 'Audit log'),
    el('table', { id: 'audit' },
      el('thead', {}, el('tr', {}, el('th', {}, 'When'), el('th', {}, 'Who'), el('th', {}, 'Action'),
        el('th', {}, 'On'), el('th', {}, 'From'), el('th', {}, 'Details'))),
      body),
    el('p', { class: 'pager' }, more));
  let before = null;
  async function page() {
    const q = before === null ? '' : `&before=${before}`;
    const res = await api('GET', `/api/audit?limit=50${q}`);
    for (const e of res.entries) {
      body.append(el('tr', { 'data-action': e.action },
        el('td', {}, new Date(e.at).toLocaleString()),
        el('td', {}, e.actor),
        el('td', { class: 'action' }, e.action),
        el('td', {}, e.subject || ''),
        el('td', {}, e.ip || ''),
        el('td', { class: 'details' }, JSON.stringify(e.details))));
    }
    before = res.next;
    more.hidden = before === null;
  }
  more.addEventListener('click', () => page());
  await page();
}
