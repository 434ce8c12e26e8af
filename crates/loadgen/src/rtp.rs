//! Caller media for every call from ONE thread: each 20 ms tick it sends a
//! PCMU frame of a tone (or an RFC 4733 event packet) on every call's
//! socket, and every other tick it drains what the gateway sent with one
//! `recvmmsg(2)` per call, reading the kernel's receive timestamp
//! (SO_TIMESTAMPNS) of each packet, so the inter-arrival times measured are
//! what reached the socket, not when this thread got round to reading them.
//! The socket is connected to the gateway's media address once it is known
//! (no route lookup per send; the gateway must answer from the port it
//! advertised, which symmetric RTP expects anyway).

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hotline_testpeer::g711::ulaw_encode;
pub use hotline_testpeer::rtp::dtmf_event;
use hotline_testpeer::rtp::{PT_EVENT, PT_PCMU, RtpHeader, SAMPLES_PER_PACKET, event_payload};

use crate::mmsg::{BATCH, Batch};
use crate::stats::Histogram;

pub const FRAME: Duration = Duration::from_millis(20);
pub const FRAME_SAMPLES: u32 = SAMPLES_PER_PACKET as u32;
/// RFC 4733 digit: 5 updates (100 ms tone) then the end packet 3 times.
const DIGIT_UPDATES: u32 = 5;
const DIGIT_ENDS: u32 = 3;

/// One second of a 440 Hz tone at -12 dBFS, µ-law: 50 frames, looped.
pub fn tone_second() -> Vec<u8> {
    (0..8000)
        .map(|n| {
            let v = (2.0 * std::f64::consts::PI * 440.0 * f64::from(n) / 8000.0).sin() * 8000.0;
            ulaw_encode(v as i16)
        })
        .collect()
}

/// The RTP payload the caller sends at frame `n` after answer (`digit_frame`:
/// when the digit starts). Shared by the live sender and the pcap writer so
/// SIPp's audio and the load generator's are the same stream.
pub enum Frame {
    Audio {
        marker: bool,
    },
    Event {
        marker: bool,
        end: bool,
        duration: u16,
        start_ts_frames: u32,
    },
}

pub fn frame_at(n: u32, digit_frame: Option<u32>) -> Frame {
    if let Some(d) = digit_frame {
        if n >= d && n < d + DIGIT_UPDATES + DIGIT_ENDS {
            let k = n - d;
            let end = k >= DIGIT_UPDATES;
            let duration = (k.min(DIGIT_UPDATES - 1) + 1) * FRAME_SAMPLES;
            return Frame::Event {
                marker: k == 0,
                end,
                duration: duration as u16,
                start_ts_frames: d,
            };
        }
        if n == d + DIGIT_UPDATES + DIGIT_ENDS {
            return Frame::Audio { marker: true };
        }
    }
    Frame::Audio { marker: n == 0 }
}

/// Builds the packet of frame `n` into `out`.
#[allow(clippy::too_many_arguments)]
pub fn build_frame(
    out: &mut Vec<u8>,
    tone: &[u8],
    n: u32,
    digit_frame: Option<u32>,
    event: u8,
    seq0: u16,
    ts0: u32,
    ssrc: u32,
) {
    let frame = frame_at(n, digit_frame);
    // An event's packets all carry the timestamp of its start (RFC 4733 §2.5.1.2).
    let (marker, payload_type, ts_frames) = match frame {
        Frame::Audio { marker } => (marker, PT_PCMU, n),
        Frame::Event {
            marker,
            start_ts_frames,
            ..
        } => (marker, PT_EVENT, start_ts_frames),
    };
    out.clear();
    RtpHeader {
        marker,
        payload_type,
        seq: seq0.wrapping_add(n as u16),
        timestamp: ts0.wrapping_add(ts_frames * FRAME_SAMPLES),
        ssrc,
    }
    .write(out);
    match frame {
        Frame::Audio { .. } => {
            let off = (n as usize % 50) * FRAME_SAMPLES as usize;
            out.extend_from_slice(&tone[off..off + FRAME_SAMPLES as usize]);
        }
        Frame::Event { end, duration, .. } => {
            out.extend_from_slice(&event_payload(event, end, 10, duration));
        }
    }
}

/// What one call's media saw, returned when the call leaves the thread.
#[derive(Debug, Default, Clone)]
pub struct MediaReport {
    pub sent: u64,
    pub send_errors: u64,
    pub received: u64,
    /// Packets missing by sequence number (highest - first + 1 - received).
    pub lost: u64,
    pub digit_sent: bool,
}

pub enum Cmd {
    Add {
        id: u64,
        socket: UdpSocket,
        remote: SocketAddr,
        /// Frame index after answer at which the digit starts.
        digit_frame: Option<u32>,
        event: u8,
    },
    Remove {
        id: u64,
        reply: tokio::sync::oneshot::Sender<MediaReport>,
    },
    /// Hand back the deviation histogram and stop when no call is left.
    Finish {
        reply: tokio::sync::oneshot::Sender<Histogram>,
    },
}

struct Call {
    socket: UdpSocket,
    remote: SocketAddr,
    connected: bool,
    digit_frame: Option<u32>,
    event: u8,
    /// Next frame to send, counted from the call's first tick.
    n: u32,
    start_tick: u64,
    seq0: u16,
    ts0: u32,
    ssrc: u32,
    report: MediaReport,
    first_seq: Option<u32>,
    /// Extended highest sequence number seen.
    high_seq: u32,
    /// (extended seq, kernel arrival ns) of the previous packet.
    prev: Option<(u32, i64)>,
}

/// Enables kernel receive timestamps on a socket.
pub fn enable_timestamps(sock: &UdpSocket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: valid fd, pointer to a c_int of the size passed.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets SO_RCVBUF (best effort).
pub fn set_rcvbuf(fd: i32, bytes: i32) {
    // SAFETY: valid fd, pointer to a c_int of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}

fn realtime_ns() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_nanos() as i64
}

impl Call {
    /// Reads everything waiting on the socket, `recvmmsg` by `recvmmsg`.
    fn drain(&mut self, batch: &mut Batch, hist: &mut Histogram) {
        loop {
            let n = batch.recv(&self.socket).unwrap_or(0);
            for i in 0..n {
                let (data, at) = batch.get(i);
                self.on_packet(data, at.unwrap_or_else(realtime_ns), hist);
            }
            if n < BATCH {
                return;
            }
        }
    }

    fn on_packet(&mut self, data: &[u8], at_ns: i64, hist: &mut Histogram) {
        let Some(header) = RtpHeader::parse(data) else {
            return;
        };
        self.report.received += 1;
        let seq16 = header.seq;
        // Extend the 16-bit sequence number around the highest seen.
        let ext = match self.first_seq {
            None => {
                self.first_seq = Some(u32::from(seq16));
                self.high_seq = u32::from(seq16);
                u32::from(seq16)
            }
            Some(_) => {
                let delta = seq16.wrapping_sub(self.high_seq as u16) as i16;
                let ext = (self.high_seq as i64 + i64::from(delta)).max(0) as u32;
                self.high_seq = self.high_seq.max(ext);
                ext
            }
        };
        if let Some((pseq, pat)) = self.prev {
            if ext == pseq + 1 {
                let dev_ns = ((at_ns - pat) - FRAME.as_nanos() as i64).abs();
                hist.record((dev_ns / 1000) as u64);
            }
        }
        self.prev = Some((ext, at_ns));
    }

    fn finish(mut self) -> MediaReport {
        if let Some(first) = self.first_seq {
            let expected = u64::from(self.high_seq - first) + 1;
            self.report.lost = expected.saturating_sub(self.report.received);
        }
        self.report
    }
}

/// Runs the media thread until `Finish` arrives and every call is removed.
pub fn run(rx: mpsc::Receiver<Cmd>) {
    let tone = tone_second();
    let mut calls: HashMap<u64, Call> = HashMap::new();
    let mut hist = Histogram::new();
    let mut finish: Option<tokio::sync::oneshot::Sender<Histogram>> = None;
    let mut out = Vec::with_capacity(200);
    let mut batch = Batch::new();
    let start = Instant::now();
    let mut tick: u64 = 0;
    loop {
        loop {
            match rx.try_recv() {
                Ok(Cmd::Add {
                    id,
                    socket,
                    remote,
                    digit_frame,
                    event,
                }) => {
                    // Connected: no route lookup per send. Should it fail,
                    // `send_to` below still addresses every datagram.
                    let connected = socket.connect(remote).is_ok();
                    calls.insert(
                        id,
                        Call {
                            socket,
                            remote,
                            connected,
                            digit_frame,
                            event,
                            n: 0,
                            start_tick: tick,
                            seq0: fastrand::u16(..),
                            ts0: fastrand::u32(..),
                            ssrc: fastrand::u32(..),
                            report: MediaReport::default(),
                            first_seq: None,
                            high_seq: 0,
                            prev: None,
                        },
                    );
                }
                Ok(Cmd::Remove { id, reply }) => {
                    if let Some(mut c) = calls.remove(&id) {
                        // Take what is still queued before closing.
                        c.drain(&mut batch, &mut hist);
                        let _ = reply.send(c.finish());
                    } else {
                        let _ = reply.send(MediaReport::default());
                    }
                }
                Ok(Cmd::Finish { reply }) => finish = Some(reply),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
        if calls.is_empty() {
            if let Some(reply) = finish.take() {
                let _ = reply.send(hist);
                return;
            }
        }
        for c in calls.values_mut() {
            // Frames owed by now (catching up after a late wake-up, at most 5).
            let due = (tick + 1).saturating_sub(c.start_tick);
            let mut sent_now = 0;
            while u64::from(c.n) < due && sent_now < 5 {
                build_frame(
                    &mut out,
                    &tone,
                    c.n,
                    c.digit_frame,
                    c.event,
                    c.seq0,
                    c.ts0,
                    c.ssrc,
                );
                let r = if c.connected {
                    c.socket.send(&out)
                } else {
                    c.socket.send_to(&out, c.remote)
                };
                match r {
                    Ok(_) => c.report.sent += 1,
                    Err(_) => c.report.send_errors += 1,
                }
                // Any packet of the event counts: a late wake-up may have
                // skipped its first one, and the receiver reports the digit
                // on whichever packet of the event arrives first.
                if c.digit_frame
                    .is_some_and(|d| (d..d + DIGIT_UPDATES + DIGIT_ENDS).contains(&c.n))
                {
                    c.report.digit_sent = true;
                }
                c.n += 1;
                sent_now += 1;
            }
            if u64::from(c.n) < due {
                // Too far behind: skip, keeping timestamps on the clock.
                c.n = due as u32;
            }
            // Every other tick, half the calls on each: one system call
            // for the two frames the gateway sent since (timestamps are the
            // kernel's, so reading later changes no measurement).
            if (tick + c.start_tick) % 2 == 0 {
                c.drain(&mut batch, &mut hist);
            }
        }
        tick += 1;
        let next = start + FRAME * tick as u32;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // Late: resync the tick to the clock, frames are caught up above.
            tick = (now.duration_since(start).as_micros() / FRAME.as_micros()) as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_frames_follow_rfc4733() {
        let tone = tone_second();
        let mut out = Vec::new();
        build_frame(&mut out, &tone, 10, Some(10), 1, 100, 1000, 7);
        assert_eq!(out[1], 0x80 | PT_EVENT);
        assert_eq!(&out[12..], &[1, 10, 0, 160]);
        build_frame(&mut out, &tone, 14, Some(10), 1, 100, 1000, 7);
        assert_eq!(&out[12..], &[1, 10, 3, 32]);
        let ts = u32::from_be_bytes([out[4], out[5], out[6], out[7]]);
        assert_eq!(ts, 1000 + 10 * 160);
        build_frame(&mut out, &tone, 17, Some(10), 1, 100, 1000, 7);
        assert_eq!(&out[12..], &[1, 0x80 | 10, 3, 32]);
        build_frame(&mut out, &tone, 18, Some(10), 1, 100, 1000, 7);
        assert_eq!(out[1], 0x80 | PT_PCMU);
        assert_eq!(out.len(), 172);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 118);
    }
}
