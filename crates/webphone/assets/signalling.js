// The /agent/ws connection: JSON messages (docs/agent-protocol.md), reconnect
// with exponential backoff (0.5 s doubling to 15 s, with jitter) after any
// drop, an application ping every 15 s so a half-open socket is noticed.

export class Signalling extends EventTarget {
  #ws = null;
  #attempt = 0;
  #timer = null;
  #ping = null;
  #lastPong = 0;
  #stopped = false;

  constructor(url) {
    super();
    this.url = url;
  }

  get up() { return this.#ws?.readyState === WebSocket.OPEN; }

  connect() {
    this.#stopped = false;
    clearTimeout(this.#timer);
    const ws = new WebSocket(this.url);
    this.#ws = ws;
    ws.onopen = () => {
      this.#attempt = 0;
      this.#lastPong = Date.now();
      this.send({ type: 'hello' });
      this.#ping = setInterval(() => {
        // Half-open: drop it and reconnect. 4000 tells the gateway the page
        // is still here (it holds the agent's call for a grace period).
        if (Date.now() - this.#lastPong > 40000) { ws.close(4000, 'no pong'); return; }
        this.send({ type: 'ping' });
      }, 15000);
      this.dispatchEvent(new CustomEvent('status', { detail: { up: true } }));
    };
    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      if (msg.type === 'pong') { this.#lastPong = Date.now(); return; }
      this.dispatchEvent(new CustomEvent('message', { detail: msg }));
    };
    ws.onclose = () => {
      clearInterval(this.#ping);
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.dispatchEvent(new CustomEvent('status', { detail: { up: false } }));
      if (this.#stopped) return;
      const base = Math.min(15000, 500 * 2 ** this.#attempt++);
      const delay = base / 2 + Math.random() * base / 2;
      this.#timer = setTimeout(() => this.connect(), delay);
    };
    ws.onerror = () => { /* onclose follows */ };
  }

  send(msg) {
    if (!this.up) return false;
    this.#ws.send(JSON.stringify(msg));
    return true;
  }

  close() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#ws?.close(1000, 'logout');
  }

  // A network blip as the page would see it (tests and diagnostics): the
  // socket drops without the page going away, and reconnects.
  drop() {
    this.#ws?.close(4000, 'dropped');
  }
}
