// The Agents page: everyone who can sign in, with their role and live
// state; admins create, edit and delete them (supervisors only read).
import { api, ApiError, el } from './api.js';

const ROLES = ['agent', 'supervisor', 'admin'];

function skillsOf(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

function roleSelect(id, value = 'agent') {
  const s = el('select', { id }, ...ROLES.map((r) => el('option', { value: r }, r)));
  s.value = value;
  return s;
}

function field(label, input) {
  return el('label', {}, `${label} `, input);
}

export async function render(main, notice = '') {
  const [me, agents, states] = await Promise.all([
    api('GET', '/api/me'),
    api('GET', '/api/agents'),
    api('GET', '/api/agents/states').catch(() => ({ agents: [] })),
  ]);
  const admin = me.role === 'admin';
  const stateOf = new Map(states.agents.map((s) => [s.agent, s]));
  const error = el('p', { id: 'agents-error', class: 'error', role: 'alert' });
  const status = el('p', { id: 'agents-status', class: 'muted' }, notice);
  const editor = el('div', { id: 'agent-editor' });

  /// Runs a change; the page again on success, the message inline on failure.
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

  function edit(a) {
    const name = el('input', { id: 'agent-edit-name', value: a.name, required: '' });
    const skills = el('input', { id: 'agent-edit-skills', value: (a.skills || []).join(', ') });
    const active = el('input', { id: 'agent-edit-active', type: 'checkbox' });
    active.checked = a.active;
    const role = roleSelect('agent-edit-role', a.role);
    const password = el('input', { id: 'agent-edit-password', type: 'password', autocomplete: 'new-password', placeholder: 'unchanged' });
    const cancel = el('button', { type: 'button' }, 'Cancel');
    cancel.addEventListener('click', () => editor.replaceChildren());
    const form = el('form', { id: 'agent-edit', class: 'form' },
      el('h3', {}, `Edit ${a.id}`),
      field('Name', name), field('Skills', skills), field('Active', active), field('Role', role),
      field('New password', password),
      el('button', { type: 'submit', id: 'agent-edit-save' }, 'Save'), ' ', cancel);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const body = { name: name.value.trim(), skills: skillsOf(skills.value), active: active.checked, role: role.value };
      if (password.value) body.password = password.value;
      change(() => api('PUT', `/api/agents/${encodeURIComponent(a.id)}`, body), `Saved ${a.id}.`);
    });
    editor.replaceChildren(form);
    name.focus();
  }

  const rows = agents.map((a) => {
    const live = stateOf.get(a.id);
    const actions = el('td', { class: 'actions' });
    if (admin) {
      const e = el('button', { type: 'button', class: 'edit' }, 'Edit');
      e.addEventListener('click', () => edit(a));
      const d = el('button', { type: 'button', class: 'delete' }, 'Delete');
      d.addEventListener('click', () => {
        if (!window.confirm(`Delete agent ${a.id} (${a.name})?`)) return;
        change(() => api('DELETE', `/api/agents/${encodeURIComponent(a.id)}`), `Deleted ${a.id}.`);
      });
      actions.append(e, ' ', d);
    }
    return el('tr', { 'data-agent': a.id },
      el('td', {}, a.id),
      el('td', { class: 'name' }, a.name),
      el('td', { class: 'role' }, a.role),
      el('td', { class: 'skills' }, (a.skills || []).join(', ')),
      el('td', { class: 'active' }, a.active ? 'yes' : 'no'),
      el('td', { class: 'state' }, live ? live.state + (live.reason ? ` (${live.reason})` : '') : 'offline'),
      actions);
  });

  const id = el('input', { id: 'agent-new-id', required: '', autocomplete: 'off' });
  const name = el('input', { id: 'agent-new-name', required: '' });
  const password = el('input', { id: 'agent-new-password', type: 'password', required: '', autocomplete: 'new-password' });
  const role = roleSelect('agent-new-role');
  const skills = el('input', { id: 'agent-new-skills', placeholder: 'billing, refunds' });
  const active = el('input', { id: 'agent-new-active', type: 'checkbox' });
  active.checked = true;
  const create = el('form', { id: 'agent-create', class: 'form' },
    el('h3', {}, 'New user'),
    field('ID', id), field('Name', name), field('Password', password), field('Role', role),
    field('Skills', skills), field('Active', active),
    el('button', { type: 'submit', id: 'agent-create-submit' }, 'Create'));
  create.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const body = {
      id: id.value.trim(), name: name.value.trim(), password: password.value, role: role.value,
      skills: skillsOf(skills.value), active: active.checked,
    };
    change(() => api('POST', '/api/agents', body), `Created ${body.id}.`);
  });
  if (!admin) {
    for (const x of create.querySelectorAll('input, select, button')) x.disabled = true;
    create.append(el('p', { class: 'muted' }, 'Only admins manage users.'));
  }

  main.replaceChildren(
    el('h2', {}, 'Agents'),
    error, status,
    el('table', { id: 'agents' },
      el('thead', {}, el('tr', {}, el('th', {}, 'ID'), el('th', {}, 'Name'), el('th', {}, 'Role'),
        el('th', {}, 'Skills'), el('th', {}, 'Active'), el('th', {}, 'State'), el('th', {}, ''))),
      el('tbody', {}, ...rows)),
    rows.length ? '' : el('p', { class: 'muted' }, 'No agents yet.'),
    editor,
    create);
}
