//! The shared media clock and RTP pacer: one thread paces every call.
//!
//! Instead of a timer per packet per call, one OS thread ticks every 20 ms.
//! On each tick it first sends every call's frame that is due (the
//! [`Pacer`]), then publishes the tick's index on a watch channel. Call
//! actors wake only every [`BATCH`] ticks: they read what their caller sent
//! since (non-blocking, no wake-up per packet) and queue the next [`BATCH`]
//! frames with the tick each is due on. So a call costs one task wake-up
//! per 40 ms instead of a wake-up per timer tick and another per packet,
//! and the send instants follow the clock thread, not the scheduler: a call
//! task that wakes a few milliseconds late no longer shifts its packets.
//!
//! An actor that wakes late sees the index jump and produces the frames it
//! owes (sent at the next tick), so recording lengths follow the wall
//! clock, not the scheduler.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// The clock's tick and the audio in one RTP packet: 20 ms (160 G.711
/// samples at 8 kHz).
pub const FRAME: Duration = Duration::from_millis(20);

/// Frames a call actor produces per wake-up (and how far ahead it works).
pub const BATCH: u64 = 2;

/// The largest datagram the pacer queues: a 20 ms G.711 frame (172 bytes)
/// or an RFC 4733 event (16 bytes) with room for header extensions.
const MAX_PACED: usize = 256;

/// A frame queued for sending on the tick `due`.
struct PacedFrame {
    due: u64,
    to: SocketAddr,
    len: usize,
    data: [u8; MAX_PACED],
}

/// One call's outgoing RTP, drained by the clock thread.
pub struct PacedStream {
    socket: UdpSocket,
    frames: Mutex<VecDeque<PacedFrame>>,
    /// Set when the call drops its [`Paced`] handle: the clock thread lets
    /// the stream (and its socket) go on its next tick.
    closed: AtomicBool,
}

/// A call's handle on its paced stream. The clock thread holds the stream
/// strongly (no weak handle to upgrade per stream per tick); dropping this
/// handle marks the stream closed and the next tick removes it.
pub struct Paced(Arc<PacedStream>);

impl std::ops::Deref for Paced {
    type Target = PacedStream;

    fn deref(&self) -> &PacedStream {
        &self.0
    }
}

impl Drop for Paced {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
    }
}

impl PacedStream {
    /// Queues `data` for `to`, sent by the clock thread on tick `due` (at
    /// once on the next tick if `due` has passed).
    pub fn push(&self, due: u64, to: SocketAddr, data: &[u8]) {
        if data.len() > MAX_PACED {
            // Not a G.711 or telephone-event packet: send it unpaced.
            if let Err(e) = self.socket.send_to(data, to) {
                tracing::debug!(error = %e, "RTP send failed");
            }
            return;
        }
        let mut frame = PacedFrame {
            due,
            to,
            len: data.len(),
            data: [0; MAX_PACED],
        };
        frame.data[..data.len()].copy_from_slice(data);
        if let Ok(mut q) = self.frames.lock() {
            q.push_back(frame);
        }
    }

    /// Frames queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.frames.lock().map_or(0, |q| q.len())
    }

    /// Sends every frame due by `tick`.
    fn flush(&self, tick: u64) {
        let Ok(mut q) = self.frames.lock() else {
            return;
        };
        while q.front().is_some_and(|f| f.due <= tick) {
            if let Some(f) = q.pop_front() {
                if let Err(e) = self.socket.send_to(&f.data[..f.len], f.to) {
                    tracing::debug!(error = %e, "RTP send failed");
                }
            }
        }
    }
}

/// The streams the clock thread paces. A stream leaves on the first tick
/// after its call dropped its [`Paced`] handle.
#[derive(Default)]
struct Pacer {
    streams: Mutex<Vec<Arc<PacedStream>>>,
}

impl Pacer {
    fn flush(&self, tick: u64) {
        let Ok(mut streams) = self.streams.lock() else {
            return;
        };
        streams.retain(|s| {
            if s.closed.load(Ordering::Acquire) {
                return false;
            }
            s.flush(tick);
            true
        });
    }
}

/// A receiver of frame ticks and the way into the pacer, cloned into each call.
#[derive(Clone)]
pub struct MediaClock {
    rx: watch::Receiver<u64>,
    epoch: Instant,
    pacer: Arc<Pacer>,
}

impl MediaClock {
    /// Starts the ticking thread. A dedicated OS thread rather than a tokio
    /// task: behind hundreds of busy call tasks a task wakes late, a late
    /// tick skips an index, and every call then sends two frames at once
    /// (measured: p99 pacing deviation of 20 ms at 500 calls).
    pub fn start() -> Self {
        let epoch = Instant::now();
        let (tx, rx) = watch::channel(0u64);
        let pacer = Arc::new(Pacer::default());
        let thread_pacer = pacer.clone();
        let spawned = std::thread::Builder::new()
            .name("media-clock".into())
            .spawn(move || {
                if raise_priority() {
                    tracing::info!("media clock thread runs at real-time priority (SCHED_FIFO)");
                } else {
                    tracing::info!(
                        "media clock thread runs at normal priority (real-time needs CAP_SYS_NICE or an rtprio limit)"
                    );
                }
                let mut n = 0u64;
                loop {
                    n += 1;
                    let at = epoch + Duration::from_micros(FRAME.as_micros() as u64 * n);
                    if let Some(wait) = at.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    // Index by the clock, so a late wake-up still reports
                    // where time really is.
                    let now = frame_index(epoch, Instant::now());
                    n = n.max(now);
                    thread_pacer.flush(n);
                    if n % BATCH == 0 && tx.send(n).is_err() {
                        break;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the media clock thread");
        }
        Self { rx, epoch, pacer }
    }

    /// The frame index now, by the wall clock.
    pub fn now_index(&self) -> u64 {
        frame_index(self.epoch, Instant::now())
    }

    /// Waits for the next published tick (every [`BATCH`] frames).
    pub async fn next(&mut self) -> Option<u64> {
        self.rx.changed().await.ok()?;
        Some(*self.rx.borrow_and_update())
    }

    /// Paces `socket`'s sends from now on; the stream stops being paced
    /// when the returned handle is dropped.
    pub fn pace(&self, socket: UdpSocket) -> Paced {
        let stream = Arc::new(PacedStream {
            socket,
            frames: Mutex::new(VecDeque::with_capacity(4)),
            closed: AtomicBool::new(false),
        });
        if let Ok(mut streams) = self.pacer.streams.lock() {
            streams.push(Arc::clone(&stream));
        }
        Paced(stream)
    }
}

/// Best effort: the calling thread at real-time priority (SCHED_FIFO 10),
/// as Asterisk (`-p`) and FreeSWITCH (`-rp`) do for their timing threads,
/// so a tick's sends do not queue behind busy threads (the RTP pacing
/// measured at 500 calls with SIPp on the same two cores). The thread
/// sleeps between ticks and does bounded work in one, so it cannot starve
/// the box. False without the privilege (root, CAP_SYS_NICE or an rtprio
/// limit); the thread then keeps its normal priority.
fn raise_priority() -> bool {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: `pthread_self()` names the calling, live thread and `param`
    // outlives the call, which only reads it.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    rc == 0
}

fn frame_index(epoch: Instant, now: Instant) -> u64 {
    (now.saturating_duration_since(epoch).as_micros() / FRAME.as_micros()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_go_out_on_their_tick_and_in_order() {
        let clock = MediaClock::start();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stream = clock.pace(tx);
        let base = clock.now_index() + 2;
        for i in 0..5u8 {
            stream.push(base + u64::from(i), rx.local_addr().unwrap(), &[i; 12]);
        }
        let mut buf = [0u8; 64];
        let mut arrivals = Vec::new();
        for i in 0..5u8 {
            let (n, _) = rx.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i; 12], "frame {i} in order");
            arrivals.push(Instant::now());
        }
        // Paced, not burst: five frames span about four ticks.
        let span = arrivals[4] - arrivals[0];
        assert!(
            span >= Duration::from_millis(50),
            "sent in a burst: {span:?}"
        );
        assert_eq!(stream.queued(), 0);
    }

    #[tokio::test]
    async fn a_dropped_stream_leaves_the_pacer() {
        let clock = MediaClock::start();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stream = clock.pace(tx);
        stream.push(u64::MAX, "127.0.0.1:9".parse().unwrap(), &[0; 12]);
        let weak = Arc::downgrade(&stream.0);
        drop(stream);
        // Gone from the pacer, and its socket closed, within a few ticks.
        let deadline = Instant::now() + Duration::from_secs(2);
        while weak.strong_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(weak.strong_count(), 0, "the pacer still holds the stream");
        assert!(clock.pacer.streams.lock().unwrap().is_empty());
    }
}
