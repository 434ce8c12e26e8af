// The Queues page: every queue with its settings and members; admins
// create, edit (members in round-robin order) and delete them.
import { api, ApiError, el } from './api.js';

const STRATEGIES = ['longest_idle', 'round_robin', 'ring_all', 'skills_priority'];
const LOST = ['requeue', 'release'];
const NUMBERS = [
  ['max_wait_secs', 'Max wait (s)'],
  ['offer_timeout_secs', 'Offer timeout (s)'],
  ['wrap_up_secs', 'Wrap-up (s)'],
  ['callback_attempts', 'Callback attempts'],
  ['callback_retry_secs', 'Callback retry (s)'],
  ['service_level_secs', 'Service level threshold (s)'],
];

function select(id, values, value) {
  const s = el('select', { id }, ...values.map((v) => el('option', { value: v }, v)));
  if (value !== undefined) s.value = value;
  return s;
}

function field(label, input) {
  return el('label', {}, `${label} `, input);
}

export async function render(main, notice = '') {
  const [me, queues, agents] = await Promise.all([
    api('GET', '/api/me'), api('GET', '/api/queues'), api('GET', '/api/agents'),
  ]);
  const admin = me.role === 'admin';
  const error = el('p', { id: 'queues-error', class: 'error', role: 'alert' });
  const status = el('p', { id: 'queues-status', class: 'muted' }, notice);
  const editor = el('div', { id: 'queue-editor' });

  async function change(fn, done) {
    error.textContent = '';
    try {
      await fn();
      await render(main, done);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) throw e;
      error.textContent = e.message;
    }
  }

  /// The form for a new queue (`q` undefined) or for editing `q`.
  function open(q) {
    const editing = q !== undefined;
    const name = el('input', { id: 'queue-name', required: '', value: editing ? q.name : '' });
    if (editing) name.readOnly = true;
    const strategy = select('queue-strategy', STRATEGIES, editing ? q.strategy : 'longest_idle');
    const overflow = el('input', { id: 'queue-overflow', list: 'queue-overflows', value: editing ? q.overflow : 'voicemail' });
    const overflows = el('datalist', { id: 'queue-overflows' },
      ...['voicemail', 'callback', 'hangup', ...queues.filter((o) => !editing || o.name !== q.name).map((o) => `queue:${o.name}`)]
        .map((v) => el('option', { value: v })));
    const lost = select('queue-on-agent-lost', LOST, editing ? q.on_agent_lost : 'requeue');
    // The post-call satisfaction survey after the agent hangs up.
    const survey = el('input', { id: 'queue-survey', type: 'checkbox' });
    survey.checked = editing && q.survey === true;
    const numbers = NUMBERS.map(([key, label]) => {
      const input = el('input', { id: `queue-${key.replaceAll('_', '-')}`, type: 'number', min: '0', step: '1', placeholder: 'default' });
      if (editing) input.value = String(q[key]);
      return [key, label, input];
    });
    const skills = el('textarea', { id: 'queue-issue-skills', rows: '3', cols: '40', placeholder: '{"billing.refund": "refunds"}' });
    skills.value = editing && Object.keys(q.issue_skills || {}).length ? JSON.stringify(q.issue_skills, null, 1) : '';

    // Members, in round-robin order.
    const members = editing ? [...q.members] : [];
    const list = el('ol', { id: 'queue-members' });
    const pick = el('select', { id: 'queue-member-pick' });
    const add = el('button', { type: 'button', id: 'queue-member-add' }, 'Add');
    function drawMembers() {
      list.replaceChildren(...members.map((m, i) => {
        const up = el('button', { type: 'button', class: 'small', title: 'Earlier' }, '↑');
        const down = el('button', { type: 'button', class: 'small', title: 'Later' }, '↓');
        const remove = el('button', { type: 'button', class: 'small remove' }, 'Remove');
        up.disabled = i === 0;
        down.disabled = i === members.length - 1;
        up.addEventListener('click', () => { [members[i - 1], members[i]] = [members[i], members[i - 1]]; drawMembers(); });
        down.addEventListener('click', () => { [members[i + 1], members[i]] = [members[i], members[i + 1]]; drawMembers(); });
        remove.addEventListener('click', () => { members.splice(i, 1); drawMembers(); });
        const who = agents.find((a) => a.id === m);
        return el('li', { 'data-member': m }, who ? `${m} (${who.name})` : m, ' ', up, down, ' ', remove);
      }));
      pick.replaceChildren(...agents.filter((a) => !members.includes(a.id))
        .map((a) => el('option', { value: a.id }, `${a.id} (${a.name})`)));
      add.disabled = pick.options.length === 0;
    }
    add.addEventListener('click', () => { if (pick.value) { members.push(pick.value); drawMembers(); } });
    drawMembers();

    const cancel = el('button', { type: 'button' }, 'Cancel');
    cancel.addEventListener('click', () => editor.replaceChildren());
    const form = el('form', { id: 'queue-form', class: 'form' },
      el('h3', {}, editing ? `Edit ${q.name}` : 'New queue'),
      field('Name', name), field('Strategy', strategy), field('Overflow', overflow), overflows,
      field('On agent lost', lost),
      field('Satisfaction survey after the agent hangs up', survey),
      ...numbers.map(([, label, input]) => field(label, input)),
      field('Issue skills (JSON)', skills),
      el('fieldset', {}, el('legend', {}, 'Members (round-robin order)'), list, pick, ' ', add),
      el('button', { type: 'submit', id: 'queue-save' }, editing ? 'Save' : 'Create'), ' ', cancel);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      error.textContent = '';
      const body = { strategy: strategy.value, overflow: overflow.value.trim(), on_agent_lost: lost.value, survey: survey.checked };
      for (const [key, label, input] of numbers) {
        if (input.value === '') continue;
        const n = Number(input.value);
        if (!Number.isInteger(n) || n < 0) { error.textContent = `${label}: a whole number of 0 or more`; return; }
        body[key] = n;
      }
      if (skills.value.trim()) {
        try {
          body.issue_skills = JSON.parse(skills.value);
        } catch (e) {
          error.textContent = `Issue skills: not JSON (${e.message})`;
          return;
        }
      } else {
        body.issue_skills = {};
      }
      const qname = name.value.trim();
      if (editing) {
        change(async () => {
          await api('PUT', `/api/queues/${encodeURIComponent(qname)}`, body);
          await api('PUT', `/api/queues/${encodeURIComponent(qname)}/members`, members);
        }, `Saved ${qname}.`);
      } else {
        change(() => api('POST', '/api/queues', { name: qname, ...body, members }), `Created ${qname}.`);
      }
    });
    editor.replaceChildren(form);
    (editing ? strategy : name).focus();
  }

  const rows = queues.map((q) => {
    const actions = el('td', { class: 'actions' });
    if (admin) {
      const e = el('button', { type: 'button', class: 'edit' }, 'Edit');
      e.addEventListener('click', () => open(q));
      const d = el('button', { type: 'button', class: 'delete' }, 'Delete');
      d.addEventListener('click', () => {
        if (!window.confirm(`Delete queue ${q.name}?`)) return;
        change(() => api('DELETE', `/api/queues/${encodeURIComponent(q.name)}`), `Deleted ${q.name}.`);
      });
      actions.append(e, ' ', d);
    }
    return el('tr', { 'data-queue': q.name },
      el('td', {}, q.name),
      el('td', { class: 'strategy' }, q.strategy),
      el('td', {}, `${q.max_wait_secs} s → ${q.overflow}`),
      el('td', {}, `offer ${q.offer_timeout_secs} s, wrap-up ${q.wrap_up_secs} s, lost: ${q.on_agent_lost}${q.survey ? ', survey' : ''}`),
      el('td', {}, `${q.callback_attempts} × ${q.callback_retry_secs} s`),
      el('td', { class: 'members' }, q.members.join(', ')),
      actions);
  });

  const create = el('button', { type: 'button', id: 'queue-new' }, 'New queue');
  create.addEventListener('click', () => open());
  if (!admin) create.disabled = true;

  main.replaceChildren(
    el('h2', {}, 'Queues'),
    error, status,
    el('table', { id: 'queues' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Name'), el('th', {}, 'Strategy'), el('th', {}, 'Wait → overflow'),
        el('th', {}, 'Offer / wrap-up'), el('th', {}, 'Callbacks'), el('th', {}, 'Members'), el('th', {}, ''))),
      el('tbody', {}, ...rows)),
    rows.length ? '' : el('p', { class: 'muted' }, 'No queues yet.'),
    el('p', {}, create, admin ? '' : el('span', { class: 'muted' }, ' Only admins change queues.')),
    editor);
}
