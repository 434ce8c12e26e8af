// The Supervisor page: live calls with an agent, and Listen / Whisper /
// Barge / Stop on one of them from this browser (docs/agent-protocol.md,
// "Supervisor monitoring"). The audio is WebRTC to the gateway's agent
// media hub, with the agent softphone's own modules (microphone, peer
// connection, signalling socket), served from /agent/static/.
import { api, el } from './api.js';
import { getMic, AgentPeer } from '/agent/static/media.js';
import { Signalling } from '/agent/static/signalling.js';

const MODES = ['listen', 'whisper', 'barge'];
const LABELS = { listen: 'Listen', whisper: 'Whisper', barge: 'Barge' };

// One monitor per page, kept across re-renders of the page.
const mon = {
  sig: null,
  peer: null,
  call: null,
  state: 'idle', // idle, connecting, listen, whisper, barge
  message: '',
  view: null, // { status, audio } while the page is shown
};

function show() {
  const v = mon.view;
  if (!v) return;
  v.status.dataset.state = mon.state;
  v.status.dataset.call = mon.call || '';
  const what = mon.state === 'idle' ? 'Not monitoring'
    : mon.state === 'connecting' ? `Connecting to call ${mon.call}…`
      : `${LABELS[mon.state]}: call ${mon.call}`;
  v.status.textContent = mon.message ? `${what} — ${mon.message}` : what;
  v.stop.disabled = mon.state === 'idle';
}

function reset(message) {
  mon.peer?.close();
  mon.peer = null;
  mon.call = null;
  mon.state = 'idle';
  mon.message = message || '';
  show();
}

function signalling() {
  if (mon.sig) return mon.sig;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const sig = new Signalling(`${scheme}://${location.host}/admin/monitor/ws`);
  sig.addEventListener('message', (e) => onMessage(e.detail));
  // The socket closing stops the monitor on the gateway: start over.
  sig.addEventListener('status', (e) => { if (!e.detail.up && mon.call) reset('connection lost'); });
  sig.connect();
  mon.sig = sig;
  return sig;
}

async function onMessage(msg) {
  if (msg.call && msg.call !== mon.call) return;
  switch (msg.type) {
    case 'sdp_answer':
      await mon.peer?.answer(msg.sdp);
      break;
    case 'monitor_started':
    case 'monitor_mode':
      mon.state = msg.mode;
      mon.message = '';
      show();
      break;
    case 'monitor_stopped':
      reset(msg.reason === 'supervisor' ? '' : `stopped: ${msg.reason.replace(/_/g, ' ')}`);
      break;
    case 'error':
      mon.message = msg.message;
      show();
      break;
    default:
  }
}

async function waitUp(sig) {
  for (let i = 0; i < 100 && !sig.up; i++) await new Promise((r) => setTimeout(r, 50));
  if (!sig.up) throw new Error('the monitor socket did not open');
}

/** Join `call` in `mode`, or switch mode on the call already joined. */
export async function monitor(call, mode) {
  const sig = signalling();
  if (mon.call === call && mon.peer) {
    sig.send({ type: 'monitor_mode', mode });
    return;
  }
  if (mon.call) sig.send({ type: 'monitor_stop' });
  reset();
  mon.call = call;
  mon.state = 'connecting';
  show();
  try {
    const mic = await getMic();
    await waitUp(sig);
    mon.peer = new AgentPeer(mic, mon.view?.audio || document.getElementById('monitor-audio'));
    const sdp = await mon.peer.offer();
    sig.send({ type: 'monitor', call, mode, sdp });
  } catch (e) {
    reset(e.message);
  }
}

export function stop() {
  if (!mon.call) return;
  mon.sig?.send({ type: 'monitor_stop' });
  reset();
}

// For tests and the console.
window.hotlineMonitor = {
  stats: () => (mon.peer ? mon.peer.stats() : null),
  state: () => ({ state: mon.state, call: mon.call }),
};

function duration(since) {
  if (!since) return '';
  const s = Math.max(0, Math.round((Date.now() - new Date(since).getTime()) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export async function render(main) {
  const body = el('tbody');
  const status = el('p', { id: 'monitor-status', class: 'monitor-status', role: 'status' });
  const stopBtn = el('button', { type: 'button', id: 'monitor-stop' }, 'Stop');
  const audio = el('audio', { id: 'monitor-audio', autoplay: '' });
  stopBtn.addEventListener('click', () => stop());
  main.replaceChildren(
    el('h2', {}, 'Supervisor'),
    el('p', { class: 'muted' }, 'Listen: you hear the caller and the agent; nobody hears you. '
      + 'Whisper: the agent hears you, the caller does not. Barge: everyone hears everyone.'),
    el('div', { class: 'monitor-bar' }, status, stopBtn),
    el('table', { id: 'live-calls' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Agent'), el('th', {}, 'Call'),
        el('th', {}, 'On call for'), el('th', {}, ''))),
      body),
    audio);
  if (mon.peer && mon.peer.audioEl !== audio) {
    // Back on the page: keep hearing the call in the new element.
    audio.srcObject = mon.peer.audioEl.srcObject;
    mon.peer.audioEl = audio;
    audio.play().catch(() => {});
  }
  mon.view = { status, stop: stopBtn, audio };
  show();
  async function refresh() {
    const res = await api('GET', '/api/agents/states');
    const live = res.agents.filter((a) => a.state === 'on_call' && a.call);
    body.replaceChildren(...live.map((a) => el('tr', { 'data-call': a.call, 'data-agent': a.agent },
      el('td', {}, `${a.name} (${a.agent})`),
      el('td', { class: 'mono' }, a.call),
      el('td', {}, duration(a.since)),
      el('td', { class: 'actions' }, ...MODES.map((mode) => {
        const b = el('button', { type: 'button', 'data-mode': mode }, LABELS[mode]);
        b.addEventListener('click', () => monitor(a.call, mode));
        return b;
      })))));
    if (live.length === 0) {
      body.append(el('tr', {}, el('td', { colspan: '4', class: 'muted' }, 'No agent is on a call.')));
    }
  }
  await refresh();
  const timer = setInterval(() => {
    if (!document.body.contains(body)) { clearInterval(timer); return; }
    refresh().catch(() => {});
  }, 2000);
}
