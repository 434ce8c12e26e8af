// Ring tone from a WebAudio oscillator pair (no audio file): 440 + 480 Hz,
// 1 s on, 2 s off, until stop(). Needs an AudioContext unlocked by a click.

let ctx = null;

export function audioContext() {
  if (!ctx) ctx = new AudioContext();
  return ctx;
}

export class Ringer {
  #timer = null;
  #nodes = [];

  start() {
    if (this.#timer) return;
    const burst = () => {
      const ac = audioContext();
      if (ac.state !== 'running') return; // not unlocked yet: the card still flashes
      const gain = ac.createGain();
      gain.gain.value = 0.0001;
      gain.connect(ac.destination);
      const t = ac.currentTime;
      gain.gain.exponentialRampToValueAtTime(0.15, t + 0.05);
      gain.gain.setValueAtTime(0.15, t + 0.95);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 1.0);
      for (const f of [440, 480]) {
        const osc = ac.createOscillator();
        osc.frequency.value = f;
        osc.connect(gain);
        osc.start(t);
        osc.stop(t + 1.05);
        this.#nodes.push(osc);
        osc.onended = () => { this.#nodes = this.#nodes.filter((n) => n !== osc); };
      }
    };
    burst();
    this.#timer = setInterval(burst, 3000);
  }

  stop() {
    clearInterval(this.#timer);
    this.#timer = null;
    for (const n of this.#nodes) { try { n.stop(); } catch { /* already stopped */ } }
    this.#nodes = [];
  }
}
