// A recording's channels as waveforms: one <canvas> per channel, drawn from
// the server's min/max peaks (GET /api/calls/{id}/recording/peaks), with a
// playhead that follows an <audio> element; a click on a waveform seeks.
import { el } from './api.js';

const WIDTH = 800;
const HEIGHT = 70;

// Draws one channel's peaks and the playhead at `frac` (0 to 1).
function draw(canvas, ch, frac) {
  const g = canvas.getContext('2d');
  const w = canvas.width;
  const h = canvas.height;
  g.clearRect(0, 0, w, h);
  g.fillStyle = '#fafbfc';
  g.fillRect(0, 0, w, h);
  const n = ch.min.length;
  const mid = h / 2;
  g.strokeStyle = ch.name === 'agent' ? '#2f8f5b' : '#2f6fd0';
  g.beginPath();
  for (let i = 0; i < n; i += 1) {
    const x = Math.floor((i * w) / n) + 0.5;
    const top = mid - Math.max(ch.max[i], 0) * mid;
    const bottom = mid - Math.min(ch.min[i], 0) * mid;
    g.moveTo(x, top);
    g.lineTo(x, Math.max(bottom, top + 1));
  }
  g.stroke();
  if (frac > 0) {
    g.strokeStyle = '#d0342c';
    g.beginPath();
    const x = Math.round(frac * w) + 0.5;
    g.moveTo(x, 0);
    g.lineTo(x, h);
    g.stroke();
  }
}

// The waveforms of `peaks` (the route's answer) bound to `audio`; returns
// the element holding them.
export function waveforms(peaks, audio) {
  const box = el('div', { class: 'waveforms' });
  const canvases = [];
  for (const ch of peaks.channels) {
    const canvas = el('canvas', {
      class: 'waveform', width: String(WIDTH), height: String(HEIGHT),
      'data-channel': ch.name, 'aria-label': `${ch.name} channel waveform`,
    });
    const nonEmpty = ch.min.filter((v, i) => v !== 0 || ch.max[i] !== 0).length;
    canvas.dataset.peaks = String(nonEmpty);
    canvases.push([canvas, ch]);
    box.append(el('div', { class: 'waveform-row' }, el('span', { class: 'channel' }, ch.name), canvas));
    canvas.addEventListener('click', (ev) => {
      if (!Number.isFinite(audio.duration) || audio.duration <= 0) return;
      const r = canvas.getBoundingClientRect();
      audio.currentTime = ((ev.clientX - r.left) / r.width) * audio.duration;
    });
  }
  const redraw = () => {
    const d = audio.duration;
    const frac = Number.isFinite(d) && d > 0 ? audio.currentTime / d : 0;
    for (const [canvas, ch] of canvases) draw(canvas, ch, frac);
  };
  let frame = 0;
  const tick = () => {
    redraw();
    frame = audio.paused ? 0 : requestAnimationFrame(tick);
  };
  audio.addEventListener('play', () => { if (!frame) frame = requestAnimationFrame(tick); });
  for (const ev of ['pause', 'seeked', 'timeupdate', 'loadedmetadata', 'ended']) {
    audio.addEventListener(ev, redraw);
  }
  redraw();
  return box;
}
