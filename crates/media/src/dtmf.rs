//! RFC 4733 telephone-events: receiving DTMF digits from RTP and producing
//! the event payloads to send them.

use std::time::Instant;

use thiserror::Error;

use crate::rtp::RtpPacket;

/// Length of one telephone-event payload block (RFC 4733 §2.3).
pub const EVENT_LEN: usize = 4;

/// Errors of the DTMF sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DtmfError {
    /// The character is not `0`–`9`, `*`, `#` or `A`–`D` (any case).
    #[error("not a DTMF digit: {0:?}")]
    InvalidDigit(char),
    /// More than [`SEND_QUEUE`] digits are waiting to be sent.
    #[error("too many digits queued (limit {0})")]
    QueueFull(usize),
    /// The SDP answer has no `telephone-event` payload type, so digits cannot be
    /// sent as RFC 4733 events.
    #[error("no telephone-event payload type was negotiated")]
    NotNegotiated,
}

/// A DTMF digit received from the far end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// '0'..'9', '*', '#', 'A'..'D'.
    pub digit: char,
    /// Duration carried by the packet that reported the digit. Usually that
    /// is the first packet of the event, so this is short; when the start
    /// was lost it is the full duration from an end packet. For an in-band
    /// digit, the tone time heard when it was detected (about 40 ms).
    pub duration_ms: u32,
    /// How the digit arrived.
    pub transport: DigitTransport,
}

/// How a received digit was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigitTransport {
    /// An RFC 4733 telephone-event.
    Rfc4733,
    /// A key tone in the audio, found by [`crate::inband::InbandDetector`].
    Inband,
}

impl DigitTransport {
    /// The name used in call events: `rfc4733` or `inband`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DigitTransport::Rfc4733 => "rfc4733",
            DigitTransport::Inband => "inband",
        }
    }
}

/// RFC 4733 §3.2: events 0-9 are the digits, 10 is '*', 11 is '#', 12-15 are A-D.
pub fn event_to_char(event: u8) -> Option<char> {
    const CHARS: &[u8; 16] = b"0123456789*#ABCD";
    CHARS.get(usize::from(event)).map(|&c| char::from(c))
}

/// The RFC 4733 event code for a digit (case-insensitive for A-D).
pub fn char_to_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// One decoded telephone-event block (RFC 4733 §2.3, figure 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code: 0–9 the digits, 10 `*`, 11 `#`, 12–15 `A`–`D`.
    pub event: u8,
    /// The E bit: set on the (usually three) final packets of an event.
    pub end: bool,
    /// Power level in −dBm0 (0–63).
    pub volume: u8,
    /// Duration in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Decodes the first event block of a payload. RFC 4733 §2.5.1.5 lets a
    /// packet carry several blocks (length a multiple of 4); the first one is
    /// the event the packet's timestamp refers to.
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let [event, flags, d0, d1, ..] = *payload else {
            return None;
        };
        Some(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The 4-byte payload block, for sending.
    pub fn to_bytes(self) -> [u8; EVENT_LEN] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// How many recent event timestamps are remembered, so that late or
/// reordered packets of an already reported event are not reported again.
const HISTORY: usize = 4;

/// Turns a stream of RFC 4733 packets into digits, each reported once.
///
/// An event is identified by its RTP timestamp (RFC 4733 §2.5.1.2: all
/// packets of one event carry the timestamp of its start), so retransmitted
/// updates and the three end packets (§2.5.1.4) map to the digit already
/// reported, while two presses of the same key are two events.
#[derive(Debug, Clone)]
pub struct DigitReceiver {
    clock_rate: u32,
    ssrc: Option<u32>,
    /// (timestamp, event code) of recently reported events, newest at `next - 1`.
    recent: [Option<(u32, u8)>; HISTORY],
    next: usize,
    last_packet_at: Option<Instant>,
}

impl Default for DigitReceiver {
    fn default() -> Self {
        Self::new()
    }
}

impl DigitReceiver {
    /// A receiver for `telephone-event/8000`.
    pub fn new() -> Self {
        Self::with_clock_rate(8000)
    }

    /// A receiver for a telephone-event clock other than 8000 Hz.
    pub fn with_clock_rate(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            ssrc: None,
            recent: [None; HISTORY],
            next: 0,
            last_packet_at: None,
        }
    }

    /// Forgets all events (e.g. after a re-INVITE changed the stream).
    pub fn reset(&mut self) {
        self.ssrc = None;
        self.recent = [None; HISTORY];
        self.next = 0;
    }

    /// When the last telephone-event packet arrived.
    pub fn last_packet_at(&self) -> Option<Instant> {
        self.last_packet_at
    }

    /// Feeds one packet of the negotiated telephone-event payload type.
    /// Returns a digit on the first packet seen of a new event.
    pub fn on_packet(&mut self, pkt: &RtpPacket<'_>, now: Instant) -> Option<Digit> {
        let ev = TelephoneEvent::parse(pkt.payload)?;
        // Events above 15 (fax tones, line events) are not digits.
        let digit = event_to_char(ev.event)?;
        self.last_packet_at = Some(now);
        // A new SSRC is a new stream (RFC 3550 §8.2): timestamps of the old
        // one say nothing about the new one.
        if self.ssrc != Some(pkt.ssrc) {
            self.reset();
            self.ssrc = Some(pkt.ssrc);
        }
        let key = (pkt.timestamp, ev.event);
        if self.recent.contains(&Some(key)) {
            // RFC 4733 §2.5.1.3/§2.5.1.4: an update or one of the repeated
            // end packets of an event already reported.
            return None;
        }
        // A new timestamp: the first packet we see of this event. It is
        // normally the start (marker set, §2.5.1.3), but if the start was
        // lost it may already be an update or an end packet; either way the
        // digit is reported now, exactly once.
        if let Some(slot) = self.recent.get_mut(self.next) {
            *slot = Some(key);
        }
        self.next = (self.next + 1) % HISTORY;
        let duration_ms = (u64::from(ev.duration) * 1000 / u64::from(self.clock_rate)) as u32;
        Some(Digit {
            digit,
            duration_ms,
            transport: DigitTransport::Rfc4733,
        })
    }
}

/// Maximum number of digits waiting to be sent.
pub const SEND_QUEUE: usize = 32;

/// Produces RFC 4733 event payloads for digits to send, one per 20 ms tick.
///
/// For each digit: the first packet has the marker bit (§2.5.1.3), every
/// packet carries the cumulative duration (§2.5.1.2), and the end packet is
/// sent three times (§2.5.1.4) so a single loss does not stretch the tone.
/// A short pause follows each digit so the far end sees distinct key presses.
#[derive(Debug, Clone)]
pub struct DigitSender {
    queue: [u8; SEND_QUEUE],
    head: usize,
    len: usize,
    tone_ticks: u32,
    gap_ticks: u32,
    samples_per_tick: u32,
    volume: u8,
    current: Option<Sending>,
    /// Ticks of silence still to wait before the next digit may start.
    gap_left: u32,
}

#[derive(Debug, Clone, Copy)]
struct Sending {
    event: u8,
    /// Ticks already sent for this event, end repeats included.
    ticks: u32,
}

/// The end packet is sent this many times (RFC 4733 §2.5.1.4 recommends three).
const END_REPEATS: u32 = 3;

impl Default for DigitSender {
    fn default() -> Self {
        Self::new()
    }
}

impl DigitSender {
    /// 100 ms tones, 60 ms pauses, 20 ms ticks at 8 kHz, volume -10 dBm0.
    pub fn new() -> Self {
        Self::with_timing(100, 60)
    }

    /// Chooses tone and pause length in ms (rounded up to 20 ms ticks, tone
    /// at least one tick).
    pub fn with_timing(tone_ms: u32, gap_ms: u32) -> Self {
        Self {
            queue: [0; SEND_QUEUE],
            head: 0,
            len: 0,
            tone_ticks: tone_ms.div_ceil(20).max(1),
            gap_ticks: gap_ms.div_ceil(20),
            samples_per_tick: 160,
            volume: 10,
            current: None,
            gap_left: 0,
        }
    }

    /// Queues a digit; it starts at the next tick when nothing else is sent.
    pub fn start(&mut self, digit: char) -> Result<(), DtmfError> {
        let event = char_to_event(digit).ok_or(DtmfError::InvalidDigit(digit))?;
        if self.len == SEND_QUEUE {
            return Err(DtmfError::QueueFull(SEND_QUEUE));
        }
        let at = (self.head + self.len) % SEND_QUEUE;
        if let Some(slot) = self.queue.get_mut(at) {
            *slot = event;
        }
        self.len += 1;
        Ok(())
    }

    /// True while a digit is being sent or waiting.
    pub fn is_active(&self) -> bool {
        self.current.is_some() || self.len > 0
    }

    /// Drops queued digits and the one being sent (without end packets).
    pub fn clear(&mut self) {
        self.current = None;
        self.len = 0;
        self.gap_left = 0;
    }

    /// The payload for this tick, if a digit is being sent: `(marker, block)`.
    /// A `true` marker starts a new event; the caller stamps all packets of
    /// the event with the RTP timestamp it had at that moment.
    pub fn next_payload(&mut self) -> Option<(bool, [u8; EVENT_LEN])> {
        if self.current.is_none() {
            if self.gap_left > 0 {
                self.gap_left -= 1;
                return None;
            }
            if self.len == 0 {
                return None;
            }
            let event = self.queue.get(self.head).copied().unwrap_or(0);
            self.head = (self.head + 1) % SEND_QUEUE;
            self.len -= 1;
            self.current = Some(Sending { event, ticks: 0 });
        }
        let cur = self.current.as_mut()?;
        cur.ticks += 1;
        let marker = cur.ticks == 1;
        let end = cur.ticks >= self.tone_ticks;
        let duration_ticks = cur.ticks.min(self.tone_ticks);
        let duration = (duration_ticks * self.samples_per_tick).min(u32::from(u16::MAX)) as u16;
        let block = TelephoneEvent {
            event: cur.event,
            end,
            volume: self.volume,
            duration,
        }
        .to_bytes();
        if cur.ticks >= self.tone_ticks + END_REPEATS - 1 {
            self.current = None;
            self.gap_left = self.gap_ticks;
        }
        Some((marker, block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ssrc: u32, ts: u32, marker: bool, block: [u8; 4]) -> Vec<u8> {
        let mut tx = crate::rtp::RtpSender::with_state(ssrc, 1, 0);
        let mut out = Vec::new();
        tx.write_with_timestamp(101, marker, ts, &block, &mut out);
        out
    }

    fn ev(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    fn feed(rx: &mut DigitReceiver, bytes: &[u8]) -> Option<Digit> {
        let pkt = RtpPacket::parse(bytes).unwrap();
        rx.on_packet(&pkt, Instant::now())
    }

    #[test]
    fn maps_events() {
        assert_eq!(event_to_char(0), Some('0'));
        assert_eq!(event_to_char(10), Some('*'));
        assert_eq!(event_to_char(11), Some('#'));
        assert_eq!(event_to_char(15), Some('D'));
        assert_eq!(event_to_char(16), None);
        for e in 0..16 {
            assert_eq!(char_to_event(event_to_char(e).unwrap()), Some(e));
        }
        assert_eq!(char_to_event('x'), None);
    }

    #[test]
    fn one_digit_per_event_with_repeats_and_end_packets() {
        let mut rx = DigitReceiver::new();
        let mut digits = Vec::new();
        let mut pkts = vec![packet(7, 1000, true, ev(5, false, 0))];
        for d in [160, 160, 320, 480] {
            pkts.push(packet(7, 1000, false, ev(5, false, d)));
        }
        for _ in 0..3 {
            pkts.push(packet(7, 1000, false, ev(5, true, 800)));
        }
        for p in &pkts {
            digits.extend(feed(&mut rx, p));
        }
        assert_eq!(
            digits,
            vec![Digit {
                digit: '5',
                duration_ms: 0,
                transport: DigitTransport::Rfc4733
            }]
        );
    }

    #[test]
    fn lost_start_reports_on_end_packet() {
        let mut rx = DigitReceiver::new();
        let end = packet(7, 5000, false, ev(11, true, 800));
        assert_eq!(
            feed(&mut rx, &end),
            Some(Digit {
                digit: '#',
                duration_ms: 100,
                transport: DigitTransport::Rfc4733
            })
        );
        assert_eq!(feed(&mut rx, &end), None);
        assert_eq!(feed(&mut rx, &end), None);
    }

    #[test]
    fn same_digit_twice_is_two_digits() {
        let mut rx = DigitReceiver::new();
        let mut got = Vec::new();
        for ts in [1000u32, 3000] {
            got.extend(feed(&mut rx, &packet(7, ts, true, ev(1, false, 160))));
            got.extend(feed(&mut rx, &packet(7, ts, false, ev(1, true, 800))));
            got.extend(feed(&mut rx, &packet(7, ts, false, ev(1, true, 800))));
        }
        assert_eq!(got.iter().map(|d| d.digit).collect::<String>(), "11");
    }

    #[test]
    fn late_packet_of_previous_event_is_ignored() {
        let mut rx = DigitReceiver::new();
        assert!(feed(&mut rx, &packet(7, 1000, true, ev(1, false, 160))).is_some());
        assert!(feed(&mut rx, &packet(7, 2000, true, ev(2, false, 160))).is_some());
        assert_eq!(
            feed(&mut rx, &packet(7, 1000, false, ev(1, true, 800))),
            None
        );
    }

    #[test]
    fn ssrc_change_resets() {
        let mut rx = DigitReceiver::new();
        assert!(feed(&mut rx, &packet(7, 1000, true, ev(3, false, 160))).is_some());
        // A new stream that happens to reuse the timestamp is a new event.
        assert_eq!(
            feed(&mut rx, &packet(8, 1000, true, ev(3, false, 160))).map(|d| d.digit),
            Some('3')
        );
        assert_eq!(
            feed(&mut rx, &packet(8, 1000, false, ev(3, true, 800))),
            None
        );
    }

    #[test]
    fn multiple_blocks_take_the_first_and_garbage_is_ignored() {
        let mut rx = DigitReceiver::new();
        let mut block = ev(9, false, 160).to_vec();
        block.extend_from_slice(&ev(4, true, 800));
        let mut tx = crate::rtp::RtpSender::with_state(7, 1, 0);
        let mut out = Vec::new();
        tx.write_with_timestamp(101, true, 42, &block, &mut out);
        assert_eq!(feed(&mut rx, &out).map(|d| d.digit), Some('9'));
        // Too short, and a non-DTMF event (fax CNG = 36).
        out.clear();
        tx.write_with_timestamp(101, true, 43, &[1, 2, 3], &mut out);
        assert_eq!(feed(&mut rx, &out), None);
        assert_eq!(feed(&mut rx, &packet(7, 44, true, ev(36, false, 0))), None);
    }

    #[test]
    fn sender_sequence() {
        let mut tx = DigitSender::new();
        assert_eq!(tx.next_payload(), None);
        tx.start('#').unwrap();
        tx.start('1').unwrap();
        assert!(tx.is_active());
        let mut got = Vec::new();
        while let Some(p) = tx.next_payload() {
            got.push(p);
        }
        // 100 ms = 5 ticks: 4 updates, then the end packet 3 times.
        let expect: Vec<(bool, [u8; 4])> = vec![
            (true, ev(11, false, 160)),
            (false, ev(11, false, 320)),
            (false, ev(11, false, 480)),
            (false, ev(11, false, 640)),
            (false, ev(11, true, 800)),
            (false, ev(11, true, 800)),
            (false, ev(11, true, 800)),
        ];
        assert_eq!(got, expect);
        // 60 ms pause: three ticks without packets (the call that ended the
        // loop above was the first), then the next digit.
        assert_eq!(tx.next_payload(), None);
        assert_eq!(tx.next_payload(), None);
        assert_eq!(tx.next_payload(), Some((true, ev(1, false, 160))));
        assert_eq!(tx.start('x'), Err(DtmfError::InvalidDigit('x')));
    }

    #[test]
    fn sender_queue_is_bounded() {
        let mut tx = DigitSender::new();
        for _ in 0..SEND_QUEUE {
            tx.start('0').unwrap();
        }
        assert_eq!(tx.start('0'), Err(DtmfError::QueueFull(SEND_QUEUE)));
        tx.clear();
        assert!(!tx.is_active());
    }

    #[test]
    fn sender_output_round_trips_through_receiver() {
        let mut tx = DigitSender::with_timing(60, 0);
        let mut rx = DigitReceiver::new();
        for d in "12#*A".chars() {
            tx.start(d).unwrap();
        }
        let mut rtp = crate::rtp::RtpSender::with_state(9, 0, 0);
        let mut event_ts = 0;
        let mut got = String::new();
        let mut out = Vec::new();
        for _ in 0..100 {
            if let Some((marker, block)) = tx.next_payload() {
                if marker {
                    event_ts = rtp.timestamp();
                }
                out.clear();
                rtp.write_with_timestamp(101, marker, event_ts, &block, &mut out);
                if let Some(d) = feed(&mut rx, &out) {
                    got.push(d.digit);
                }
            }
            rtp.advance(160);
        }
        assert_eq!(got, "12#*A");
    }
}
