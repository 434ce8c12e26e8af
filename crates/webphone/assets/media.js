// Microphone, level meter and the call's RTCPeerConnection.
//
// The browser makes the offer (sendrecv audio with the mic track); the
// gateway is ICE-lite and answers with its one host candidate, so the offer
// is sent once ICE gathering is done (or after 1 s) and nothing trickles.

import { audioContext } from './ring.js';

// ?raw-audio in the page URL turns the browser's echo cancellation, noise
// suppression and gain control off (tests feed a steady tone that AGC cuts).
const RAW = new URLSearchParams(location.search).has('raw-audio');

export class MicError extends Error {
  constructor(kind, message) { super(message); this.kind = kind; }
}

let micStream = null;

/** The microphone stream, asked for once and kept. Throws MicError. */
export async function getMic() {
  if (micStream && micStream.getAudioTracks().some((t) => t.readyState === 'live')) return micStream;
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    throw new MicError('insecure', 'The microphone needs a secure page: open the softphone over https:// (or on localhost).');
  }
  const audio = RAW
    ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false }
    : { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  try {
    micStream = await navigator.mediaDevices.getUserMedia({ audio, video: false });
    return micStream;
  } catch (e) {
    if (e.name === 'NotAllowedError' || e.name === 'SecurityError') {
      throw new MicError('blocked', 'The microphone is blocked. Allow it for this site (the icon in the address bar), then click "Check microphone" again.');
    }
    if (e.name === 'NotFoundError' || e.name === 'OverconstrainedError') {
      throw new MicError('missing', 'No microphone found. Plug in a headset and click "Check microphone" again.');
    }
    if (e.name === 'NotReadableError') {
      throw new MicError('busy', 'The microphone is in use by another application.');
    }
    throw new MicError('other', `Microphone error: ${e.message || e.name}`);
  }
}

/** Feed `onLevel(0..1)` about 20 times a second from the stream; returns stop(). */
export function levelMeter(stream, onLevel) {
  const ac = audioContext();
  // A suspended context feeds the analyser nothing: the meter would not move.
  if (ac.state !== 'running') ac.resume().catch(() => {});
  const src = ac.createMediaStreamSource(stream);
  const an = ac.createAnalyser();
  an.fftSize = 1024;
  src.connect(an);
  const buf = new Float32Array(an.fftSize);
  const timer = setInterval(() => {
    an.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    onLevel(Math.min(1, Math.sqrt(sum / buf.length) * 4));
  }, 50);
  return () => { clearInterval(timer); src.disconnect(); };
}

export class AgentPeer extends EventTarget {
  constructor(mic, audioEl) {
    super();
    this.mic = mic;
    this.audioEl = audioEl;
    this.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
    this.track = mic.getAudioTracks()[0];
    this.sender = this.pc.addTrack(this.track, mic);
    this.pc.ontrack = (e) => {
      this.audioEl.srcObject = e.streams[0] || new MediaStream([e.track]);
      this.audioEl.play().catch(() => { /* waits for the first click (autoplay) */ });
    };
    this.pc.onconnectionstatechange = () => {
      this.dispatchEvent(new CustomEvent('state', { detail: this.pc.connectionState }));
    };
  }

  /** Create the offer and wait for ICE gathering (at most 1 s). */
  async offer() {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    if (this.pc.iceGatheringState !== 'complete') {
      await new Promise((resolve) => {
        const t = setTimeout(resolve, 1000);
        this.pc.addEventListener('icegatheringstatechange', () => {
          if (this.pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
        });
      });
    }
    return this.pc.localDescription.sdp;
  }

  async answer(sdp) {
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
  }

  /** Mute: the mic track sends silence; hold also silences what we hear. */
  mute(on) { this.track.enabled = !on; }
  hold(on) { this.audioEl.muted = on; this.track.enabled = !on; }

  /** inbound/outbound RTP counters for the status line and tests. */
  async stats() {
    const out = { packetsReceived: 0, totalAudioEnergy: 0, packetsSent: 0, packetsLost: 0, jitter: 0 };
    const report = await this.pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.packetsReceived = s.packetsReceived ?? 0;
        out.totalAudioEnergy = s.totalAudioEnergy ?? 0;
        out.packetsLost = s.packetsLost ?? 0;
        out.jitter = s.jitter ?? 0;
        out.concealedSamples = s.concealedSamples ?? 0;
      } else if (s.type === 'outbound-rtp' && s.kind === 'audio') {
        out.packetsSent = s.packetsSent ?? 0;
      }
    });
    return out;
  }

  close() {
    this.pc.close();
    this.audioEl.srcObject = null;
  }
}
