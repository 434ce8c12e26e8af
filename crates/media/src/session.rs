//! The per-call media state machine: what to send each 20 ms tick, what the
//! received RTP means (digits, caller audio), symmetric-RTP latching,
//! inactivity detection and recording.
//!
//! Sans-IO: the call actor owns the UDP socket and a shared 20 ms ticker; it
//! hands received datagrams to [`MediaSession::on_rtp`] and sends whatever
//! [`MediaSession::on_tick`] leaves in its buffer. Nothing here reads a clock
//! or allocates per packet in steady state.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dtmf::{Digit, DigitReceiver, DigitSender, DtmfError};
use crate::g711::{Codec, FRAME_SAMPLES};
use crate::inband::InbandDetector;
use crate::prompt::Prompt;
use crate::recorder::{CallRecorder, RecordError, RecordingInfo};
use crate::rtp::{RtpPacket, RtpSender};

/// Caller audio kept for the recorder: 200 ms absorbs arrival jitter
/// between packets and ticks. Kept as the G.711 bytes that came (decoded
/// when recorded, the same samples): 1.6 KiB per call, not 3.2.
const CALLER_FIFO_SAMPLES: usize = 1600;
/// The other leg's audio waiting to be sent: 200 ms at most.
const BRIDGE_FIFO_SAMPLES: usize = 1600;
/// Packets in a row, with one SSRC, needed from a new source address before
/// we move the stream there (symmetric RTP, RFC 4961): one stray or spoofed
/// packet must not hijack the call's audio.
const RELATCH_PACKETS: u32 = 3;
/// A sequence number this far behind the last one is treated as a restarted
/// stream rather than a late packet.
const MAX_MISORDER: i16 = 100;
/// RFC 3550 appendix A.1: a forward jump larger than this is a restart
/// of the sender's numbering, not loss.
const MAX_DROPOUT: u16 = 3000;

/// What the media of one call is set up with, from the SDP negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// G.711 µ-law or A-law, as the SDP answer chose.
    pub codec: Codec,
    /// Payload type to send and accept audio with (normally the codec's
    /// static one).
    pub payload_type: u8,
    /// The negotiated `telephone-event/8000` payload type, if any.
    pub dtmf_payload_type: Option<u8>,
    /// Where the SDP says to send; replaced by the actual source once RTP
    /// arrives (symmetric RTP).
    pub remote: SocketAddr,
    /// How long without received RTP before [`MediaEvent::InactivityTimeout`].
    pub inactivity_timeout: Duration,
}

impl MediaConfig {
    /// Static payload type of the codec, telephone-event on 101, 30 s timeout.
    pub fn new(codec: Codec, remote: SocketAddr) -> Self {
        Self {
            codec,
            payload_type: codec.payload_type(),
            dtmf_payload_type: Some(101),
            remote,
            inactivity_timeout: Duration::from_secs(30),
        }
    }
}

/// Something the call actor needs to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// A DTMF digit from the caller: an RFC 4733 event, or, when no
    /// telephone-event payload type was negotiated, a key tone found in the
    /// audio ([`Digit::transport`] says which).
    Digit(Digit),
    /// The prompt queue finished (`interrupted: false`) or was cut short by
    /// a digit during a barge-in prompt (`interrupted: true`). Not reported
    /// for `play`/`stop_playback` called by the actor itself.
    PromptFinished {
        /// `true` when a digit cut the prompts short.
        interrupted: bool,
    },
    /// No RTP received for the configured time (reported once per silence).
    InactivityTimeout,
}

/// Most events one call can produce: interrupted prompt + digit, or
/// prompt finished + inactivity.
pub const MAX_EVENTS: usize = 4;

/// A small inline list of events, so returning them allocates nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaEvents {
    items: [Option<MediaEvent>; MAX_EVENTS],
    len: usize,
}

impl MediaEvents {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            items: [None; MAX_EVENTS],
            len: 0,
        }
    }

    fn push(&mut self, ev: MediaEvent) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Some(ev);
            self.len += 1;
        } else {
            tracing::warn!(?ev, "media event dropped: event list full");
        }
    }

    /// How many events the list holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing happened.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The earliest event, if any.
    pub fn first(&self) -> Option<MediaEvent> {
        self.iter().next()
    }

    /// The events in the order they happened.
    pub fn iter(&self) -> impl Iterator<Item = MediaEvent> + '_ {
        self.items.iter().take(self.len).flatten().copied()
    }
}

impl IntoIterator for MediaEvents {
    type Item = MediaEvent;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<MediaEvent>, MAX_EVENTS>>;

    fn into_iter(self) -> Self::IntoIter {
        // Slots past `len` are always None, so flattening yields exactly the
        // pushed events in order.
        self.items.into_iter().flatten()
    }
}

/// Result of one 20 ms tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickOutput {
    /// Where to send the packet left in `out`; `None` means `out` is empty.
    pub send_to: Option<SocketAddr>,
    /// What happened during the tick (a prompt ended, a timeout).
    pub events: MediaEvents,
}

/// Counters for logs and CDRs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// RTP packets we sent.
    pub packets_sent: u64,
    /// Bytes of the RTP packets we sent, headers included.
    pub bytes_sent: u64,
    /// Valid RTP packets accepted from the remote.
    pub packets_received: u64,
    /// Bytes of the accepted packets, headers included.
    pub bytes_received: u64,
    /// Datagrams that were not valid RTP.
    pub packets_invalid: u64,
    /// Valid RTP that was not used (unknown source, other payload type,
    /// receiving disabled, late audio).
    pub packets_ignored: u64,
    /// Digits received.
    pub digits: u64,
    /// Digits queued for sending.
    pub digits_sent: u64,
    /// Times the remote address moved to a new source.
    pub relatches: u64,
    /// Audio packets missing from the received sequence: the gaps between
    /// consecutive sequence numbers of one SSRC (RFC 3550 §6.4.1's
    /// "expected minus received", without crediting late arrivals back).
    pub packets_lost: u64,
}

/// A fixed-size ring of samples (linear, or G.711 bytes); the oldest are
/// overwritten when full.
#[derive(Debug)]
struct SampleFifo<T = i16> {
    buf: Box<[T]>,
    head: usize,
    len: usize,
}

impl SampleFifo<u8> {
    /// Fills `out` with the next G.711 samples decoded by `codec`; missing
    /// samples are silence.
    fn pop_decoded(&mut self, codec: Codec, out: &mut [i16]) {
        let mut bytes = [0u8; FRAME_SAMPLES];
        for out in out.chunks_mut(FRAME_SAMPLES) {
            let n = self.pop_some(&mut bytes[..out.len()]);
            let (got, silence) = out.split_at_mut(n);
            for (o, &b) in got.iter_mut().zip(&bytes) {
                *o = codec.decode_sample(b);
            }
            silence.fill(0);
        }
    }
}

impl<T: Copy + Default> SampleFifo<T> {
    fn new(capacity: usize) -> Self {
        Self {
            buf: vec![T::default(); capacity.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    /// Appends `samples`; when full, the oldest samples are overwritten.
    /// Bulk copies: this runs for every packet of every call.
    fn push_slice(&mut self, samples: &[T]) {
        let cap = self.buf.len();
        // Only the newest `cap` samples can survive.
        let samples = samples
            .get(samples.len().saturating_sub(cap)..)
            .unwrap_or_default();
        let n = samples.len();
        let overflow = (self.len + n).saturating_sub(cap);
        if overflow > 0 {
            self.head = (self.head + overflow) % cap;
            self.len -= overflow;
        }
        let tail = (self.head + self.len) % cap;
        let first = n.min(cap - tail);
        let (a, b) = samples.split_at(first);
        if let Some(dst) = self.buf.get_mut(tail..tail + first) {
            dst.copy_from_slice(a);
        }
        if let Some(dst) = self.buf.get_mut(..b.len()) {
            dst.copy_from_slice(b);
        }
        self.len += n;
    }

    /// Fills `out` from the front; missing samples are silence.
    fn pop_into(&mut self, out: &mut [T]) {
        let n = self.pop_some(out);
        if let Some(rest) = out.get_mut(n..) {
            rest.fill(T::default());
        }
    }

    /// Moves up to `out.len()` samples from the front into `out`; returns
    /// how many.
    fn pop_some(&mut self, out: &mut [T]) -> usize {
        let cap = self.buf.len();
        let n = out.len().min(self.len);
        let first = n.min(cap - self.head);
        let (out_a, rest) = out.split_at_mut(first);
        let out_b = rest.get_mut(..n - first).unwrap_or_default();
        if let Some(src) = self.buf.get(self.head..self.head + first) {
            out_a.copy_from_slice(src);
        }
        if let Some(src) = self.buf.get(..out_b.len()) {
            out_b.copy_from_slice(src);
        }
        self.head = (self.head + n) % cap;
        self.len -= n;
        n
    }
}

/// Symmetric RTP state (RFC 4961; "comedia"): we send to where the caller's
/// packets come from, which behind a NAT differs from the SDP address.
#[derive(Debug, Clone, Copy, Default)]
struct Latch {
    /// True once RTP arrived from `remote`.
    latched: bool,
    /// A different source seen since: (address, SSRC, packets in a row).
    candidate: Option<(SocketAddr, u32, u32)>,
}

/// Media of one call. See the module docs for how it is driven.
#[derive(Debug)]
pub struct MediaSession {
    cfg: MediaConfig,
    remote: SocketAddr,
    latch: Latch,
    send: bool,
    recv: bool,

    rtp: RtpSender,
    /// Set the marker bit on the next audio packet (RFC 3551 §4.1: first
    /// packet of a talkspurt, here: first after start, hold or DTMF).
    marker_next: bool,

    queue: VecDeque<Arc<Prompt>>,
    /// Read position in the front prompt.
    pos: usize,
    playing: bool,
    barge_in: bool,

    digits_in: DigitReceiver,
    digits_out: DigitSender,
    /// RFC 4733 §2.5.1.2: the RTP timestamp at the start of the event being
    /// sent; all its packets carry it.
    dtmf_ts: u32,
    /// In-band DTMF detection, only when no telephone-event payload type
    /// was negotiated (a caller with RFC 4733 keeps using it).
    inband: Option<Box<InbandDetector>>,

    /// (SSRC, sequence) of the last audio packet, to drop duplicates and
    /// late packets before they reach the recording.
    last_audio: Option<(u32, u16)>,
    /// (SSRC, highest sequence) of received audio, for `packets_lost`.
    rx_seq: Option<(u32, u16)>,
    caller: SampleFifo<u8>,
    recorder: Option<CallRecorder>,
    /// While set, the call recording gets silence on both channels (a
    /// secure gather, an agent's pause): time keeps running in the file.
    recording_paused: bool,
    record_error: Option<RecordError>,
    /// A caller-only capture beside the call recording (voicemail).
    capture: Option<CallRecorder>,
    /// Audio from the other leg of a bridge (an agent), sent to the caller
    /// when no prompt plays. `None` when not bridged.
    bridge: Option<SampleFifo>,

    last_rx: Instant,
    timeout_reported: bool,
    stats: MediaStats,
}

impl MediaSession {
    /// A session with a random SSRC, sequence number and timestamp; nothing
    /// plays until [`MediaSession::play`].
    pub fn new(cfg: MediaConfig, now: Instant) -> Self {
        Self::with_rtp_sender(cfg, now, RtpSender::new())
    }

    /// Like [`MediaSession::new`] with a chosen RTP sender state (tests,
    /// or keeping SSRC and sequence across a re-INVITE).
    pub fn with_rtp_sender(cfg: MediaConfig, now: Instant, rtp: RtpSender) -> Self {
        Self {
            remote: cfg.remote,
            latch: Latch::default(),
            send: true,
            recv: true,
            rtp,
            marker_next: true,
            queue: VecDeque::new(),
            pos: 0,
            playing: false,
            barge_in: false,
            digits_in: DigitReceiver::new(),
            digits_out: DigitSender::new(),
            dtmf_ts: 0,
            inband: cfg
                .dtmf_payload_type
                .is_none()
                .then(|| Box::new(InbandDetector::new())),
            last_audio: None,
            rx_seq: None,
            caller: SampleFifo::new(CALLER_FIFO_SAMPLES),
            recorder: None,
            recording_paused: false,
            record_error: None,
            capture: None,
            bridge: None,
            last_rx: now,
            timeout_reported: false,
            stats: MediaStats::default(),
            cfg,
        }
    }

    /// What the session was set up with; `remote` is the configured address,
    /// not a later latched one.
    pub fn config(&self) -> &MediaConfig {
        &self.cfg
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.rtp.ssrc()
    }

    /// Starts recording; from now on every tick adds one 20 ms stereo frame.
    /// A recorder already attached is finished first.
    pub fn set_recorder(&mut self, rec: CallRecorder) {
        if let Some(Err(e)) = self.finish_recording() {
            tracing::warn!(error = %e, "previous recording failed");
        }
        self.caller.clear();
        self.recorder = Some(rec);
    }

    /// Stops recording and closes the file (the call goes on).
    pub fn finish_recording(&mut self) -> Option<Result<RecordingInfo, RecordError>> {
        if let Some(e) = self.record_error.take() {
            self.recorder = None;
            return Some(Err(e));
        }
        self.recorder.take().map(CallRecorder::finish)
    }

    /// True while a call recording is attached.
    pub fn is_recording(&self) -> bool {
        self.recorder.is_some()
    }

    /// Silences the call recording (`true`) or lets it hear the call again
    /// (`false`). While paused every tick still adds a 20 ms frame, of
    /// silence on both channels, so the file's timeline stays the call's;
    /// the caller's audio is read and dropped. A caller-only capture
    /// (voicemail) is not affected.
    pub fn set_recording_paused(&mut self, paused: bool) {
        if self.recording_paused && !paused {
            // Caller audio still queued (jitter) was spoken while paused.
            self.caller.clear();
        }
        self.recording_paused = paused;
    }

    /// True while the call recording is silenced.
    pub fn is_recording_paused(&self) -> bool {
        self.recording_paused
    }

    /// Starts capturing the caller alone into `rec` (a voicemail), beside
    /// the call recording. A capture already running is finished first.
    pub fn start_capture(
        &mut self,
        rec: CallRecorder,
    ) -> Option<Result<RecordingInfo, RecordError>> {
        let previous = self.stop_capture();
        if self.recorder.is_none() {
            self.caller.clear();
        }
        self.capture = Some(rec);
        previous
    }

    /// Stops the caller-only capture and closes its file.
    pub fn stop_capture(&mut self) -> Option<Result<RecordingInfo, RecordError>> {
        self.capture.take().map(CallRecorder::finish)
    }

    /// True while a caller-only capture (voicemail) runs.
    pub fn is_capturing(&self) -> bool {
        self.capture.is_some()
    }

    /// Bridges another leg (an agent) to the caller: audio pushed with
    /// [`MediaSession::push_bridge_audio`] is sent whenever no prompt plays,
    /// and lands on the recording's right channel.
    pub fn start_bridge(&mut self) {
        if self.bridge.is_none() {
            self.bridge = Some(SampleFifo::new(BRIDGE_FIFO_SAMPLES));
        }
    }

    /// Unbridges the other leg; queued bridge audio is dropped.
    pub fn stop_bridge(&mut self) {
        self.bridge = None;
    }

    /// True between [`MediaSession::start_bridge`] and
    /// [`MediaSession::stop_bridge`].
    pub fn is_bridged(&self) -> bool {
        self.bridge.is_some()
    }

    /// Queues the other leg's audio (8 kHz linear) for the caller. Beyond
    /// the FIFO's 200 ms the oldest samples go: latency must not grow.
    pub fn push_bridge_audio(&mut self, pcm: &[i16]) {
        if let Some(fifo) = self.bridge.as_mut() {
            fifo.push_slice(pcm);
        }
    }

    /// Plays `prompts` back to back, replacing whatever was playing. With
    /// `barge_in`, a received digit stops playback. An empty list finishes
    /// at the next tick.
    pub fn play(&mut self, prompts: Vec<Arc<Prompt>>, barge_in: bool) {
        // VecDeque::from(Vec) reuses the allocation.
        self.queue = VecDeque::from(prompts);
        self.pos = 0;
        self.playing = true;
        self.barge_in = barge_in;
    }

    /// Stops playback silently (no event: the actor asked for it).
    pub fn stop_playback(&mut self) {
        self.queue.clear();
        self.pos = 0;
        self.playing = false;
    }

    /// True while prompts are queued or playing.
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// Points the stream at a new address (re-INVITE); the next RTP
    /// received may latch it again.
    pub fn set_remote(&mut self, addr: SocketAddr) {
        self.remote = addr;
        self.latch = Latch::default();
    }

    /// Where packets go now: the SDP address, or the latched source.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Sets what we do (from the SDP direction attributes, RFC 4566 §6):
    /// `send = false` on hold stops packets (and pauses playback), `recv =
    /// false` ignores received RTP and suspends the inactivity timer.
    pub fn set_direction(&mut self, send: bool, recv: bool) {
        if send && !self.send {
            self.marker_next = true;
        }
        self.send = send;
        self.recv = recv;
    }

    /// Queues a digit to send as RFC 4733 events.
    pub fn send_digit(&mut self, digit: char) -> Result<(), DtmfError> {
        if self.cfg.dtmf_payload_type.is_none() {
            return Err(DtmfError::NotNegotiated);
        }
        self.digits_out.start(digit)?;
        self.stats.digits_sent += 1;
        Ok(())
    }

    /// A copy of the counters so far.
    pub fn stats(&self) -> MediaStats {
        self.stats
    }

    /// Handles one datagram received on the call's RTP socket from `from`.
    pub fn on_rtp(&mut self, now: Instant, from: SocketAddr, data: &[u8]) -> MediaEvents {
        let mut events = MediaEvents::new();
        let pkt = match RtpPacket::parse(data) {
            Ok(p) => p,
            Err(e) => {
                self.stats.packets_invalid += 1;
                tracing::trace!(%from, error = %e, "not RTP");
                return events;
            }
        };
        // RFC 5761 §4: payload types 64-95 are RTCP when RTP and RTCP share
        // a port; they are not media and must not steer the latch.
        if (64..=95).contains(&pkt.payload_type) {
            self.stats.packets_ignored += 1;
            return events;
        }
        if !self.recv || !self.accept_source(from, pkt.ssrc) {
            self.stats.packets_ignored += 1;
            return events;
        }
        self.last_rx = now;
        self.timeout_reported = false;
        self.stats.packets_received += 1;
        self.stats.bytes_received += data.len() as u64;

        if Some(pkt.payload_type) == self.cfg.dtmf_payload_type {
            if let Some(digit) = self.digits_in.on_packet(&pkt, now) {
                self.digit_received(digit, &mut events);
            }
        } else if pkt.payload_type == self.cfg.payload_type {
            self.count_gap(pkt.ssrc, pkt.sequence);
            if let Some(digit) = self.on_audio(&pkt) {
                self.digit_received(digit, &mut events);
            }
        } else {
            // Comfort noise (RFC 3389), other codecs, RTCP on a muxed port.
            self.stats.packets_ignored += 1;
        }
        events
    }

    /// Counts the audio packets skipped between the highest sequence number
    /// seen and `seq` (RFC 3550 appendix A.1 style wrap-around compare; a
    /// jump of more than [`MAX_DROPOUT`] or a new SSRC restarts the count).
    fn count_gap(&mut self, ssrc: u32, seq: u16) {
        if let Some((s, highest)) = self.rx_seq
            && s == ssrc
        {
            let delta = seq.wrapping_sub(highest);
            if delta == 0 || delta >= 0x8000 {
                return; // duplicate or older: not a new highest
            }
            if delta <= MAX_DROPOUT {
                self.stats.packets_lost += u64::from(delta - 1);
            }
        }
        self.rx_seq = Some((ssrc, seq));
    }

    /// Symmetric RTP: decides whether a packet from `from` belongs to the
    /// stream, moving the stream to a new source when warranted.
    fn accept_source(&mut self, from: SocketAddr, ssrc: u32) -> bool {
        if from == self.remote {
            self.latch.latched = true;
            self.latch.candidate = None;
            return true;
        }
        if !self.latch.latched {
            // First RTP of the call comes from elsewhere than the SDP said:
            // the caller is behind a NAT. Send where it really is.
            tracing::debug!(sdp = %self.remote, actual = %from, "latching RTP to source address");
            self.move_to(from);
            return true;
        }
        let count = match self.latch.candidate {
            Some((addr, s, n)) if addr == from && s == ssrc => n + 1,
            _ => 1,
        };
        if count >= RELATCH_PACKETS {
            tracing::info!(old = %self.remote, new = %from, "RTP source moved, re-latching");
            self.move_to(from);
            true
        } else {
            self.latch.candidate = Some((from, ssrc, count));
            false
        }
    }

    fn move_to(&mut self, addr: SocketAddr) {
        self.remote = addr;
        self.latch = Latch {
            latched: true,
            candidate: None,
        };
        self.stats.relatches += 1;
    }

    /// Counts a received digit, cuts a barge-in prompt short, reports it.
    fn digit_received(&mut self, digit: Digit, events: &mut MediaEvents) {
        self.stats.digits += 1;
        if self.playing && self.barge_in {
            self.stop_playback();
            events.push(MediaEvent::PromptFinished { interrupted: true });
        }
        events.push(MediaEvent::Digit(digit));
    }

    /// Queues caller audio for the recordings (as it came) and decodes it
    /// for the in-band DTMF detector; returns an in-band digit if one was
    /// detected.
    fn on_audio(&mut self, pkt: &RtpPacket<'_>) -> Option<Digit> {
        let keep = self.recorder.is_some() || self.capture.is_some();
        if !keep && self.inband.is_none() {
            // Caller audio is only used for recordings; skip decoding.
            return None;
        }
        if let Some((ssrc, last)) = self.last_audio {
            // RFC 3550 appendix A.1 style wrap-around compare.
            let delta = pkt.sequence.wrapping_sub(last) as i16;
            if ssrc == pkt.ssrc && delta <= 0 && delta > -MAX_MISORDER {
                // Duplicate or late: its slot in the recording has passed.
                self.stats.packets_ignored += 1;
                return None;
            }
        }
        self.last_audio = Some((pkt.ssrc, pkt.sequence));
        let codec = self.cfg.codec;
        let mut pcm = [0i16; FRAME_SAMPLES];
        let mut digit = None;
        for chunk in pkt.payload.chunks(FRAME_SAMPLES) {
            if keep {
                self.caller.push_slice(chunk);
            }
            if let Some(det) = self.inband.as_mut() {
                let pcm = &mut pcm[..chunk.len()];
                for (o, &b) in pcm.iter_mut().zip(chunk) {
                    *o = codec.decode_sample(b);
                }
                det.process(pcm, |d| {
                    digit.get_or_insert(d);
                });
            }
        }
        digit
    }

    /// Runs one 20 ms tick: leaves the next packet to send in `out` (cleared
    /// first), records one frame, and reports events.
    pub fn on_tick(&mut self, now: Instant, out: &mut Vec<u8>) -> TickOutput {
        out.clear();
        let mut events = MediaEvents::new();
        // What we send this tick, linear, for the recording's right channel.
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut send_to = None;

        if self.send {
            let dtmf = match self.cfg.dtmf_payload_type {
                Some(pt) => self.digits_out.next_payload().map(|p| (pt, p)),
                None => None,
            };
            if let Some((pt, (marker, block))) = dtmf {
                if marker {
                    self.dtmf_ts = self.rtp.timestamp();
                }
                self.rtp
                    .write_with_timestamp(pt, marker, self.dtmf_ts, &block, out);
                self.marker_next = true;
            } else {
                let prompting = self.playing;
                self.fill_playback(&mut frame, &mut events);
                if !prompting {
                    if let Some(fifo) = self.bridge.as_mut() {
                        fifo.pop_into(&mut frame);
                    }
                }
                // Always send, silence included: keeps NAT bindings open and
                // gives the caller continuous audio.
                let ts = self.rtp.timestamp();
                self.rtp
                    .write_header(self.cfg.payload_type, self.marker_next, ts, out);
                self.cfg.codec.encode(&frame, out);
                self.marker_next = false;
            }
            send_to = Some(self.remote);
            self.stats.packets_sent += 1;
            self.stats.bytes_sent += out.len() as u64;
        }
        // RFC 3550 §5.1: the timestamp follows the sampling clock, also while
        // nothing or a DTMF event is sent.
        self.rtp.advance(FRAME_SAMPLES as u32);

        if self.recorder.is_some() || self.capture.is_some() {
            let mut caller = [0i16; FRAME_SAMPLES];
            self.caller.pop_decoded(self.cfg.codec, &mut caller);
            if let Some(rec) = self.recorder.as_mut() {
                let written = if self.recording_paused {
                    rec.write_frame(&[], &[])
                } else {
                    rec.write_frame(&caller, &frame)
                };
                if let Err(e) = written {
                    tracing::warn!(error = %e, "recording failed; call continues without it");
                    self.recorder = None;
                    self.record_error = Some(e);
                }
            }
            if let Some(cap) = self.capture.as_mut() {
                if let Err(e) = cap.write_frame(&caller, &frame) {
                    tracing::warn!(error = %e, "caller capture failed");
                    self.capture = None;
                }
            }
        }

        if !self.recv {
            // Nothing is expected while we do not receive (hold); the
            // silence is measured from when receiving resumes.
            self.last_rx = now;
            self.timeout_reported = false;
        } else if !self.timeout_reported
            && now.saturating_duration_since(self.last_rx) >= self.cfg.inactivity_timeout
        {
            self.timeout_reported = true;
            events.push(MediaEvent::InactivityTimeout);
        }
        TickOutput { send_to, events }
    }

    /// Copies the next 20 ms of the prompt queue into `frame` (prompts are
    /// played back to back; the tail is silence) and reports the end.
    fn fill_playback(&mut self, frame: &mut [i16; FRAME_SAMPLES], events: &mut MediaEvents) {
        if !self.playing {
            return;
        }
        let mut filled = 0;
        while filled < FRAME_SAMPLES {
            let Some(prompt) = self.queue.front() else {
                break;
            };
            let rest = prompt.samples.get(self.pos..).unwrap_or(&[]);
            let n = rest.len().min(FRAME_SAMPLES - filled);
            if let (Some(dst), Some(src)) = (frame.get_mut(filled..filled + n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            filled += n;
            self.pos += n;
            if self.pos >= prompt.samples.len() {
                self.queue.pop_front();
                self.pos = 0;
            }
        }
        if self.queue.is_empty() {
            self.playing = false;
            events.push(MediaEvent::PromptFinished { interrupted: false });
        }
    }

    /// Ends the session, closing the recording if there is one (and a
    /// caller capture nobody stopped, which keeps what it has).
    pub fn finish(mut self) -> Option<Result<RecordingInfo, RecordError>> {
        if let Some(Err(e)) = self.stop_capture() {
            tracing::warn!(error = %e, "caller capture failed to close");
        }
        self.finish_recording()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sample_fifo_matches_a_simple_queue() {
        use std::collections::VecDeque;
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for cap in [1usize, 7, 160, 1600] {
            let mut fifo = SampleFifo::new(cap);
            let mut model: VecDeque<i16> = VecDeque::new();
            let mut v = 0i16;
            for _ in 0..5_000 {
                if next(2) == 0 {
                    let n = next(cap as u64 * 2 + 2) as usize;
                    let samples: Vec<i16> = (0..n)
                        .map(|_| {
                            v = v.wrapping_add(1);
                            v
                        })
                        .collect();
                    fifo.push_slice(&samples);
                    model.extend(&samples);
                    while model.len() > cap {
                        model.pop_front();
                    }
                } else {
                    let mut out = vec![7i16; next(cap as u64 + 3) as usize];
                    fifo.pop_into(&mut out);
                    let want: Vec<i16> = (0..out.len())
                        .map(|_| model.pop_front().unwrap_or(0))
                        .collect();
                    assert_eq!(out, want, "cap {cap}");
                }
                assert_eq!(fifo.len, model.len());
            }
        }
    }
    use crate::dtmf::TelephoneEvent;
    use crate::g711::ulaw_encode;

    const SDP_REMOTE: &str = "10.0.0.1:4000";
    const NAT: &str = "203.0.113.5:30000";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn session(now: Instant) -> MediaSession {
        let cfg = MediaConfig::new(Codec::Pcmu, addr(SDP_REMOTE));
        MediaSession::with_rtp_sender(cfg, now, RtpSender::with_state(0xABCD, 65530, 1000))
    }

    #[test]
    fn bridged_audio_reaches_the_caller_when_no_prompt_plays() {
        let t0 = Instant::now();
        let mut m = session(t0);
        let mut out = Vec::new();
        m.push_bridge_audio(&[9000; FRAME_SAMPLES]); // not bridged: ignored
        m.on_tick(t0, &mut out);
        assert!(
            out[crate::rtp::RTP_HEADER_LEN..]
                .iter()
                .all(|&b| b == ulaw_encode(0))
        );
        m.start_bridge();
        m.push_bridge_audio(&[9000; FRAME_SAMPLES]);
        m.on_tick(t0, &mut out);
        assert!(
            out[crate::rtp::RTP_HEADER_LEN..]
                .iter()
                .all(|&b| b == ulaw_encode(9000))
        );
        // A prompt (e.g. "please hold") takes precedence over the bridge.
        m.push_bridge_audio(&[9000; FRAME_SAMPLES]);
        m.play(vec![tone(FRAME_SAMPLES)], false);
        m.on_tick(t0, &mut out);
        assert!(
            out[crate::rtp::RTP_HEADER_LEN..]
                .iter()
                .any(|&b| b != ulaw_encode(9000))
        );
        m.stop_bridge();
        assert!(!m.is_bridged());
    }

    #[test]
    fn the_recording_holds_the_callers_samples_exactly_and_silence_between() {
        // The caller's audio waits as the G.711 bytes that came: what is
        // recorded must be those bytes decoded, sample for sample (A-law
        // here, whose silence byte does not decode to 0), and a tick
        // without caller audio records exact silence.
        let t0 = Instant::now();
        let cfg = MediaConfig::new(Codec::Pcma, addr(SDP_REMOTE));
        let mut m =
            MediaSession::with_rtp_sender(cfg, t0, RtpSender::with_state(0xABCD, 65530, 1000));
        let path = std::env::temp_dir().join(format!("hotline-alaw-{}.wav", std::process::id()));
        m.set_recorder(CallRecorder::create(&path).unwrap());
        let from = addr(SDP_REMOTE);
        let mut out = Vec::new();
        let mut sent = Vec::new();
        for i in 0..4u16 {
            if i != 2 {
                let mut pkt = vec![0x80, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
                pkt[2..4].copy_from_slice(&i.to_be_bytes());
                pkt[4..8].copy_from_slice(&(u32::from(i) * 160).to_be_bytes());
                let payload: Vec<u8> = (0..FRAME_SAMPLES)
                    .map(|k| (k as u8).wrapping_mul(7).wrapping_add(i as u8))
                    .collect();
                pkt.extend(&payload);
                m.on_rtp(t0, from, &pkt);
                sent.extend(payload.iter().map(|&b| Codec::Pcma.decode_sample(b)));
            } else {
                sent.extend([0i16; FRAME_SAMPLES]);
            }
            m.on_tick(t0, &mut out);
        }
        m.finish_recording().unwrap().unwrap();
        let left: Vec<i16> = hound::WavReader::open(&path)
            .unwrap()
            .samples::<i16>()
            .step_by(2)
            .map(|s| s.unwrap())
            .collect();
        assert_eq!(left, sent);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn capture_takes_caller_audio_only_while_running() {
        let t0 = Instant::now();
        let mut m = session(t0);
        let path = std::env::temp_dir().join(format!("hotline-capture-{}.wav", std::process::id()));
        m.start_capture(CallRecorder::create_mono(&path).unwrap());
        let mut out = Vec::new();
        let from = addr(SDP_REMOTE);
        for i in 0..25u16 {
            let mut pkt = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            pkt[2..4].copy_from_slice(&i.to_be_bytes());
            pkt[4..8].copy_from_slice(&(u32::from(i) * 160).to_be_bytes());
            pkt.extend(std::iter::repeat_n(ulaw_encode(8000), FRAME_SAMPLES));
            m.on_rtp(t0, from, &pkt);
            m.on_tick(t0, &mut out);
        }
        let info = m.stop_capture().unwrap().unwrap();
        assert_eq!((info.channels, info.duration_ms), (1, 500));
        let loud = hound::WavReader::open(&path)
            .unwrap()
            .samples::<i16>()
            .filter(|s| s.as_ref().is_ok_and(|v| v.abs() > 4000))
            .count();
        assert!(loud > 3000, "caller audio missing from the capture: {loud}");
        assert!(!m.is_capturing());
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_paused_recording_keeps_its_length_and_holds_silence() {
        let t0 = Instant::now();
        let mut m = session(t0);
        let path = std::env::temp_dir().join(format!("hotline-paused-{}.wav", std::process::id()));
        m.set_recorder(CallRecorder::create(&path).unwrap());
        m.play(vec![tone(8000 * 3)], false);
        let mut out = Vec::new();
        let from = addr(SDP_REMOTE);
        for i in 0..75u16 {
            // 0.5 s heard, 0.5 s paused, 0.5 s heard again.
            m.set_recording_paused((25..50).contains(&i));
            let mut pkt = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            pkt[2..4].copy_from_slice(&i.to_be_bytes());
            pkt[4..8].copy_from_slice(&(u32::from(i) * 160).to_be_bytes());
            pkt.extend(std::iter::repeat_n(ulaw_encode(8000), FRAME_SAMPLES));
            m.on_rtp(t0, from, &pkt);
            m.on_tick(t0, &mut out);
        }
        assert!(!m.is_recording_paused());
        let info = m.finish_recording().unwrap().unwrap();
        assert_eq!(info.duration_ms, 1500, "paused time is kept as silence");
        let samples: Vec<i16> = hound::WavReader::open(&path)
            .unwrap()
            .samples::<i16>()
            .map(|s| s.unwrap())
            .collect();
        let span = |from: usize, to: usize, ch: usize| {
            samples[from * 2 * 160..to * 2 * 160]
                .iter()
                .skip(ch)
                .step_by(2)
                .filter(|v| v.abs() > 1000)
                .count()
        };
        for ch in 0..2 {
            assert!(span(2, 24, ch) > 1000, "channel {ch} heard before");
            assert_eq!(span(25, 50, ch), 0, "channel {ch} silent while paused");
            assert!(span(52, 75, ch) > 1000, "channel {ch} heard after");
        }
        let _ = std::fs::remove_file(&path);
    }

    fn tone(len: usize) -> Arc<Prompt> {
        let samples: Vec<i16> = (0..len)
            .map(|i| ((i as f32 * 0.3).sin() * 8000.0) as i16)
            .collect();
        Arc::new(Prompt::from_samples("test/tone", samples))
    }

    /// The far end's stream.
    struct Far {
        tx: RtpSender,
        buf: Vec<u8>,
    }

    impl Far {
        fn new(ssrc: u32) -> Self {
            Self {
                tx: RtpSender::with_state(ssrc, 100, 50_000),
                buf: Vec::new(),
            }
        }

        fn audio(&mut self, sample: i16) -> &[u8] {
            self.buf.clear();
            let payload = [ulaw_encode(sample); 160];
            self.tx.write(0, false, 160, &payload, &mut self.buf);
            &self.buf
        }

        fn digit(&mut self, event: u8, ts: u32, end: bool) -> &[u8] {
            self.buf.clear();
            let block = TelephoneEvent {
                event,
                end,
                volume: 10,
                duration: 160,
            }
            .to_bytes();
            self.tx
                .write_with_timestamp(101, !end, ts, &block, &mut self.buf);
            &self.buf
        }
    }

    #[test]
    fn gaps_in_the_callers_sequence_count_as_lost() {
        let t0 = Instant::now();
        let mut m = session(t0);
        let mut far = Far::new(7);
        let from = addr(SDP_REMOTE);
        m.on_rtp(t0, from, far.audio(0));
        let _ = far.audio(0);
        let _ = far.audio(0);
        let third = far.audio(0).to_vec();
        m.on_rtp(t0, from, &third);
        m.on_rtp(t0, from, &third); // a duplicate is not loss
        assert_eq!(m.stats().packets_lost, 2);
        assert_eq!(m.stats().packets_received, 3);
        // A new SSRC starts its own count.
        let mut other = Far::new(8);
        m.on_rtp(t0, from, other.audio(0));
        assert_eq!(m.stats().packets_lost, 2);
    }

    fn temp_wav(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir()
            .join(format!(
                "hotline-media-sess-{}-{}",
                std::process::id(),
                fastrand::u64(..)
            ))
            .join(format!("{tag}.wav"))
    }

    #[test]
    fn plays_one_second_prompt_as_fifty_packets() {
        let t0 = Instant::now();
        let mut s = session(t0);
        let prompt = tone(8000);
        s.play(vec![Arc::clone(&prompt)], false);
        assert!(s.is_playing());
        let mut out = Vec::new();
        let mut finished_at = None;
        for tick in 0..50u32 {
            let now = t0 + Duration::from_millis(20 * u64::from(tick));
            let o = s.on_tick(now, &mut out);
            assert_eq!(o.send_to, Some(addr(SDP_REMOTE)));
            assert_eq!(out.len(), 172);
            let pkt = RtpPacket::parse(&out).unwrap();
            assert_eq!(pkt.payload_type, 0);
            assert_eq!(pkt.ssrc, 0xABCD);
            assert_eq!(pkt.sequence, 65530u16.wrapping_add(tick as u16));
            assert_eq!(pkt.timestamp, 1000 + 160 * tick);
            assert_eq!(pkt.marker, tick == 0);
            let start = tick as usize * 160;
            let mut expect = Vec::new();
            Codec::Pcmu.encode(&prompt.samples[start..start + 160], &mut expect);
            assert_eq!(pkt.payload, &expect[..]);
            if o.events.first() == Some(MediaEvent::PromptFinished { interrupted: false }) {
                finished_at = Some(tick);
            } else {
                assert!(o.events.is_empty());
            }
        }
        assert_eq!(
            finished_at,
            Some(49),
            "finished with the tick that sent the last audio"
        );
        assert!(!s.is_playing());
        // Afterwards: comfort silence, still one packet per tick, no events.
        let o = s.on_tick(t0 + Duration::from_secs(1), &mut out);
        assert!(o.events.is_empty());
        let pkt = RtpPacket::parse(&out).unwrap();
        assert_eq!(out.len(), 172);
        assert!(pkt.payload.iter().all(|&b| b == 0xFF));
        assert_eq!(pkt.timestamp, 1000 + 160 * 50);
        assert_eq!(s.stats().packets_sent, 51);
    }

    #[test]
    fn prompts_play_back_to_back() {
        let t0 = Instant::now();
        let mut s = session(t0);
        s.play(vec![tone(100), tone(100), tone(0), tone(100)], false);
        let mut out = Vec::new();
        let o1 = s.on_tick(t0, &mut out);
        assert!(o1.events.is_empty());
        let o2 = s.on_tick(t0, &mut out);
        assert_eq!(
            o2.events.first(),
            Some(MediaEvent::PromptFinished { interrupted: false })
        );
        // An empty queue finishes at the next tick.
        s.play(Vec::new(), true);
        let o = s.on_tick(t0, &mut out);
        assert_eq!(o.events.len(), 1);
    }

    #[test]
    fn barge_in_digit_stops_playback() {
        let t0 = Instant::now();
        let mut s = session(t0);
        let mut far = Far::new(77);
        let mut out = Vec::new();
        s.play(vec![tone(8000)], true);
        s.on_tick(t0, &mut out);
        let ev = s.on_rtp(t0, addr(SDP_REMOTE), far.digit(5, 9000, false));
        let got: Vec<_> = ev.into_iter().collect();
        assert_eq!(
            got,
            vec![
                MediaEvent::PromptFinished { interrupted: true },
                MediaEvent::Digit(Digit {
                    digit: '5',
                    duration_ms: 20,
                    transport: crate::dtmf::DigitTransport::Rfc4733,
                })
            ]
        );
        assert!(!s.is_playing());
        // The end packets of the same event report nothing more.
        for _ in 0..3 {
            assert!(
                s.on_rtp(t0, addr(SDP_REMOTE), far.digit(5, 9000, true))
                    .is_empty()
            );
        }
        // Playback stopped: silence from now on, no second PromptFinished.
        let o = s.on_tick(t0, &mut out);
        assert!(o.events.is_empty());
        assert!(
            RtpPacket::parse(&out)
                .unwrap()
                .payload
                .iter()
                .all(|&b| b == 0xFF)
        );

        // Without barge-in the prompt keeps playing and only the digit is reported.
        s.play(vec![tone(8000)], false);
        let ev = s.on_rtp(t0, addr(SDP_REMOTE), far.digit(11, 12000, false));
        assert_eq!(ev.len(), 1);
        assert!(matches!(
            ev.first(),
            Some(MediaEvent::Digit(Digit { digit: '#', .. }))
        ));
        assert!(s.is_playing());
        assert_eq!(s.stats().digits, 2);
    }

    #[test]
    fn latches_to_actual_source_and_relatches_carefully() {
        let t0 = Instant::now();
        let mut s = session(t0);
        let mut far = Far::new(1);
        let mut out = Vec::new();
        // First packet from behind a NAT: latch at once.
        s.on_rtp(t0, addr(NAT), far.audio(0));
        assert_eq!(s.remote(), addr(NAT));
        assert_eq!(s.on_tick(t0, &mut out).send_to, Some(addr(NAT)));

        // A stray packet from elsewhere does not move the stream.
        let mut other = Far::new(2);
        let stray = addr("198.51.100.9:5000");
        s.on_rtp(t0, stray, other.audio(0));
        s.on_rtp(t0, stray, other.audio(0));
        assert_eq!(s.remote(), addr(NAT));
        // The current source still talking resets the count.
        s.on_rtp(t0, addr(NAT), far.audio(0));
        // A digit from the unlatched source is not accepted.
        assert!(s.on_rtp(t0, stray, other.digit(1, 1, false)).is_empty());
        s.on_rtp(t0, stray, other.audio(0));
        assert_eq!(s.remote(), addr(NAT));
        assert_eq!(s.stats().digits, 0);
        // Changing SSRC restarts the count.
        let mut third = Far::new(3);
        s.on_rtp(t0, stray, third.audio(0));
        s.on_rtp(t0, stray, third.audio(0));
        assert_eq!(s.remote(), addr(NAT));
        // Three in a row with one SSRC: the stream moved (NAT rebinding).
        s.on_rtp(t0, stray, third.audio(0));
        assert_eq!(s.remote(), stray);
        assert_eq!(s.on_tick(t0, &mut out).send_to, Some(stray));

        // A re-INVITE's new address is used until RTP says otherwise.
        s.set_remote(addr("192.0.2.1:7000"));
        assert_eq!(
            s.on_tick(t0, &mut out).send_to,
            Some(addr("192.0.2.1:7000"))
        );
        s.on_rtp(t0, addr(NAT), far.audio(0));
        assert_eq!(s.remote(), addr(NAT));
    }

    #[test]
    fn reports_inactivity_once_per_silence() {
        let t0 = Instant::now();
        let mut s = session(t0);
        let mut far = Far::new(1);
        let mut out = Vec::new();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert!(s.on_tick(at(29_980), &mut out).events.is_empty());
        let o = s.on_tick(at(30_000), &mut out);
        assert_eq!(o.events.first(), Some(MediaEvent::InactivityTimeout));
        assert!(
            s.on_tick(at(30_020), &mut out).events.is_empty(),
            "reported once"
        );
        // RTP arrives: the timer restarts from that packet.
        s.on_rtp(at(31_000), addr(SDP_REMOTE), far.audio(0));
        assert!(s.on_tick(at(60_980), &mut out).events.is_empty());
        assert_eq!(
            s.on_tick(at(61_000), &mut out).events.first(),
            Some(MediaEvent::InactivityTimeout)
        );
        // While not receiving (on hold) the timer is suspended.
        s.set_direction(true, false);
        assert!(s.on_tick(at(200_000), &mut out).events.is_empty());
        s.set_direction(true, true);
        assert!(s.on_tick(at(229_000), &mut out).events.is_empty());
        assert!(!s.on_tick(at(230_000), &mut out).events.is_empty());
    }

    #[test]
    fn hold_stops_sending_but_keeps_clock_and_recording() {
        let t0 = Instant::now();
        let mut s = session(t0);
        let path = temp_wav("hold");
        s.set_recorder(CallRecorder::create(&path).unwrap());
        let mut out = Vec::new();
        s.play(vec![tone(480)], false);
        s.on_tick(t0, &mut out);
        s.set_direction(false, true);
        let o = s.on_tick(t0, &mut out);
        assert_eq!(o.send_to, None);
        assert!(out.is_empty());
        assert!(s.is_playing(), "playback pauses on hold");
        s.set_direction(true, true);
        s.on_tick(t0, &mut out);
        let pkt = RtpPacket::parse(&out).unwrap();
        assert!(pkt.marker, "talkspurt starts again after hold");
        assert_eq!(pkt.timestamp, 1000 + 2 * 160, "clock ran during hold");
        assert_eq!(pkt.sequence, 65531, "no sequence number used during hold");
        let info = s.finish().unwrap().unwrap();
        assert_eq!(info.frames, 3 * 160);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn sends_rfc4733_digits_with_one_timestamp() {
        let t0 = Instant::now();
        let mut s = session(t0);
        let mut out = Vec::new();
        s.on_tick(t0, &mut out); // one audio packet first
        s.send_digit('7').unwrap();
        let mut pkts = Vec::new();
        for _ in 0..7 {
            let o = s.on_tick(t0, &mut out);
            assert!(o.send_to.is_some());
            let p = RtpPacket::parse(&out).unwrap();
            pkts.push((
                p.payload_type,
                p.marker,
                p.timestamp,
                p.sequence,
                TelephoneEvent::parse(p.payload).unwrap(),
            ));
        }
        for (i, (pt, marker, ts, seq, ev)) in pkts.iter().enumerate() {
            assert_eq!(*pt, 101);
            assert_eq!(*marker, i == 0);
            assert_eq!(*ts, 1160, "event keeps its start timestamp");
            assert_eq!(*seq, 65531u16.wrapping_add(i as u16));
            assert_eq!(ev.event, 7);
            assert_eq!(ev.end, i >= 4);
        }
        // Audio resumes with the clock that kept running, marker set.
        s.on_tick(t0, &mut out);
        let p = RtpPacket::parse(&out).unwrap();
        assert_eq!(
            (p.payload_type, p.marker, p.timestamp),
            (0, true, 1000 + 8 * 160)
        );
        assert_eq!(s.send_digit('x'), Err(DtmfError::InvalidDigit('x')));

        let mut cfg = MediaConfig::new(Codec::Pcma, addr(SDP_REMOTE));
        cfg.dtmf_payload_type = None;
        let mut no_dtmf = MediaSession::new(cfg, t0);
        assert_eq!(no_dtmf.send_digit('1'), Err(DtmfError::NotNegotiated));
        no_dtmf.on_tick(t0, &mut out);
        let p = RtpPacket::parse(&out).unwrap();
        assert_eq!(p.payload_type, 8);
        assert!(p.payload.iter().all(|&b| b == 0xD5));
    }

    #[test]
    fn recording_length_and_channels() {
        let t0 = Instant::now();
        let mut s = session(t0);
        let path = temp_wav("call");
        let mut out = Vec::new();
        // Ticks before the recorder is attached are not recorded.
        s.on_tick(t0, &mut out);
        s.set_recorder(CallRecorder::create(&path).unwrap());
        let prompt = tone(8000);
        s.play(vec![Arc::clone(&prompt)], false);
        let mut far = Far::new(9);
        let ticks = 75;
        for tick in 0..ticks {
            let now = t0 + Duration::from_millis(20 * tick);
            // The caller talks for the first 40 ticks; one packet arrives twice.
            if tick < 40 {
                let pkt = far.audio(1000).to_vec();
                s.on_rtp(now, addr(SDP_REMOTE), &pkt);
                if tick == 10 {
                    s.on_rtp(now, addr(SDP_REMOTE), &pkt);
                }
            }
            s.on_tick(now, &mut out);
        }
        let info = s.finish().unwrap().unwrap();
        assert_eq!(info.frames, ticks * 160);
        assert_eq!(info.duration_ms, ticks * 20);
        let mut r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.duration() as u64, ticks * 160);
        assert_eq!(r.spec().channels, 2);
        let samples: Vec<i16> = r.samples::<i16>().map(|x| x.unwrap()).collect();
        let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
        let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
        let caller_level = Codec::Pcmu.decode_sample(ulaw_encode(1000));
        assert!(
            left[..40 * 160].iter().all(|&x| x == caller_level),
            "caller on the left"
        );
        assert!(
            left[40 * 160..].iter().all(|&x| x == 0),
            "duplicate packet not recorded"
        );
        assert_eq!(&right[..8000], &prompt.samples[..], "prompt on the right");
        assert!(right[8000..].iter().all(|&x| x == 0));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn muxed_rtcp_is_ignored() {
        let t0 = Instant::now();
        let mut s = session(t0);
        // An RTCP receiver report (PT 201) from somewhere else.
        let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0];
        assert!(s.on_rtp(t0, addr(NAT), &rr).is_empty());
        assert_eq!(s.remote(), addr(SDP_REMOTE));
        assert_eq!(s.stats().packets_ignored, 1);
    }

    #[test]
    fn types_are_thread_safe() {
        fn send<T: Send>() {}
        fn send_sync<T: Send + Sync>() {}
        send::<MediaSession>();
        send_sync::<crate::PromptCache>();
        send_sync::<crate::RtpPortPool>();
        send_sync::<Prompt>();
    }

    #[test]
    fn caller_fifo_is_bounded() {
        let mut f = SampleFifo::new(4);
        for s in 1..=6 {
            f.push_slice(&[s]);
        }
        let mut out = [9i16; 6];
        f.pop_into(&mut out);
        assert_eq!(out, [3, 4, 5, 6, 0, 0]);
    }

    #[test]
    fn random_datagrams_never_panic() {
        let t0 = Instant::now();
        let mut s = session(t0);
        s.set_recorder(CallRecorder::create(&temp_wav("fuzz")).unwrap());
        s.play(vec![tone(1000)], true);
        let mut rng = fastrand::Rng::with_seed(4733);
        let sources = [addr(SDP_REMOTE), addr(NAT), addr("[2001:db8::1]:9")];
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for i in 0..10_000u64 {
            buf.clear();
            let len = rng.usize(0..220);
            buf.extend((0..len).map(|_| rng.u8(..)));
            if i % 2 == 0 && len > 1 {
                buf[0] = 0x80 | (buf[0] & 0x3F);
                buf[1] = (buf[1] & 0x80) | [0, 101, 8, 13][rng.usize(0..4)];
            }
            let now = t0 + Duration::from_millis(i);
            let from = sources[rng.usize(0..sources.len())];
            let _ = s.on_rtp(now, from, &buf);
            if i % 20 == 0 {
                let _ = s.on_tick(now, &mut out);
            }
        }
        let st = s.stats();
        assert!(st.packets_received + st.packets_invalid + st.packets_ignored >= 10_000);
        assert!(st.packets_invalid > 0 && st.packets_received > 0);
        let info = s.finish().unwrap().unwrap();
        assert_eq!(info.frames, 500 * 160);
        std::fs::remove_dir_all(info.path.parent().unwrap()).unwrap();
    }

    /// Rough hot-path cost: `cargo test --release -p hotline-media -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing benchmark, run in release by hand"]
    fn throughput_2000_calls_one_second() {
        for record in [false, true] {
            throughput(record);
        }
    }

    fn throughput(record: bool) {
        let t0 = Instant::now();
        let dir = temp_wav("bench");
        let prompt = tone(80_000);
        let mut calls: Vec<(MediaSession, Far)> = (0..2000)
            .map(|i| {
                let mut s = session(t0);
                s.play(vec![Arc::clone(&prompt)], true);
                if record {
                    let path = dir.with_file_name(format!("{i}.wav"));
                    s.set_recorder(CallRecorder::create(&path).unwrap());
                }
                (s, Far::new(i))
            })
            .collect();
        let mut out = Vec::with_capacity(172);
        let start = std::time::Instant::now();
        for tick in 0..50u64 {
            let now = t0 + Duration::from_millis(20 * tick);
            for (s, far) in calls.iter_mut() {
                let pkt = far.audio(100);
                let _ = s.on_rtp(now, addr(SDP_REMOTE), pkt);
                let _ = s.on_tick(now, &mut out);
            }
        }
        let spent = start.elapsed();
        eprintln!("2000 calls x 1 s of media (recording: {record}): {spent:?} of one core");
        assert!(calls.iter().all(|(s, _)| s.stats().packets_sent == 50));
        drop(calls);
        let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    }
}
