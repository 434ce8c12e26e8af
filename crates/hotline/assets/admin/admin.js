// The admin console's shell: sign in, then a page per nav entry (#agents,
// #audit, ...), each a module with `render(main)` built on the JSON API.
import { api, ApiError, el } from './api.js';
import * as agents from './agents.js';
import * as audit from './audit.js';
import * as prompts from './prompts.js';
import * as queues from './queues.js';
import * as calls from './calls.js';
import * as voicemail from './voicemail.js';
import * as flows from './flows.js';
import * as supervisor from './supervisor.js';
import * as reports from './reports.js';
import * as funnel from './funnel.js';

const pages = { agents, audit, prompts, queues, flows, calls, voicemail, supervisor, reports, funnel };
const $ = (id) => document.getElementById(id);

function showLogin(message = '') {
  $('shell').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('login-id').focus();
}

async function showShell(me) {
  $('login').hidden = true;
  $('shell').hidden = false;
  $('whoami').textContent = `${me.name} (${me.role})`;
  await route();
}

async function route() {
  const name = (location.hash || '#agents').slice(1).split('/')[0];
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('current', a.dataset.page === name);
  }
  const main = $('page');
  const page = pages[name];
  if (!page) {
    main.replaceChildren(el('h2', {}, name.charAt(0).toUpperCase() + name.slice(1)),
      el('p', { class: 'muted' }, 'This page is not here yet.'));
    return;
  }
  try {
    await page.render(main);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      showLogin('Your session ended: sign in again.');
      return;
    }
    main.replaceChildren(el('p', { class: 'error', role: 'alert' }, e.message));
  }
}

async function start() {
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('login-error').textContent = '';
    try {
      await api('POST', '/admin/login', { id: $('login-id').value, password: $('login-password').value });
      $('login-password').value = '';
      await showShell(await api('GET', '/api/me'));
    } catch (e) {
      $('login-error').textContent = e.message;
    }
  });
  $('logout').addEventListener('click', async () => {
    try { await api('POST', '/admin/logout'); } catch { /* signed out either way */ }
    showLogin();
  });
  window.addEventListener('hashchange', () => { if (!$('shell').hidden) route(); });
  try {
    await showShell(await api('GET', '/api/me'));
  } catch (e) {
    showLogin(e instanceof ApiError && e.status === 403 ? e.message : '');
  }
}

start();
