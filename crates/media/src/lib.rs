//! Media for the Hotline IVR gateway: RTP, G.711, RFC 4733 DTMF, prompts and
//! call recording, written sans-IO.
//!
//! **What it is for.** Everything a call needs between "a UDP datagram
//! arrived" and "send these bytes": parsing and building RTP (RFC 3550),
//! G.711 µ-law/A-law (ITU-T G.711), DTMF digits as RFC 4733
//! telephone-events in both directions (and, for callers without them, key
//! tones found in the audio by [`InbandDetector`]), prompts loaded from WAV
//! files and converted to 8 kHz mono once, a stereo WAV call recorder, the RTP port
//! pool, and [`MediaSession`], the per-call state machine that ties them
//! together (symmetric RTP latching, playback queue with barge-in,
//! inactivity detection).
//!
//! **What it is not for.** It opens no sockets, spawns no tasks and reads
//! no clock: the call actor owns the UDP socket and a shared 20 ms ticker
//! and passes `now` in. It does no SIP/SDP (see `hotline-sip`), no RTCP, no
//! jitter buffering or packet-loss concealment, no transcoding beyond
//! G.711. SRTP is a separate tool, [`srtp::SrtpContext`] (RFC 3711
//! AES_CM_128_HMAC_SHA1_80, protect/unprotect one packet in place), which
//! the call actor applies on the socket side of SDES-SRTP calls. File IO happens only in [`PromptCache`] and
//! [`CallRecorder`].
//!
//! The hot path (one [`MediaSession::on_rtp`] per received packet, one
//! [`MediaSession::on_tick`] per call every 20 ms) allocates nothing in
//! steady state and holds no timers, so one shared ticker can drive
//! thousands of calls.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use hotline_media::{Codec, MediaConfig, MediaEvent, MediaSession, Prompt, RtpPacket};
//!
//! let now = Instant::now();
//! let remote = "192.0.2.10:40000".parse().unwrap();
//! let mut media = MediaSession::new(MediaConfig::new(Codec::Pcmu, remote), now);
//!
//! // Normally from PromptCache::get("en/welcome"); here 40 ms of silence.
//! let prompt = Arc::new(Prompt::from_samples("en/welcome", vec![0i16; 320]));
//! media.play(vec![prompt], true);
//!
//! let mut out = Vec::with_capacity(172);
//! let mut finished = false;
//! for tick in 0..2u64 {
//!     let t = media.on_tick(now + Duration::from_millis(20 * tick), &mut out);
//!     // The call actor would now do: socket.send_to(&out, t.send_to.unwrap())
//!     assert_eq!(t.send_to, Some(remote));
//!     assert_eq!(RtpPacket::parse(&out).unwrap().payload.len(), 160);
//!     finished |= t.events.iter().any(|e| e == MediaEvent::PromptFinished { interrupted: false });
//! }
//! assert!(finished);
//! ```

#![warn(missing_docs)]

pub mod dtmf;
pub mod g711;
pub mod inband;
pub mod mixer;
pub mod ports;
pub mod prompt;
pub mod recorder;
pub mod rtp;
pub mod session;
pub mod srtp;

pub use dtmf::{Digit, DigitReceiver, DigitSender, DigitTransport, DtmfError, TelephoneEvent};
pub use g711::{
    CLOCK_RATE, Codec, FRAME_SAMPLES, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode,
};
pub use inband::InbandDetector;
pub use mixer::{MixFifo, mix_into};
pub use ports::{PortLease, PortRangeError, RtpPortPool};
pub use prompt::{Prompt, PromptCache, PromptError, WavInfo, convert_wav, encode_wav, wav_info};
pub use recorder::{CallRecorder, RecordError, RecordingInfo};
pub use rtp::{RTP_HEADER_LEN, RtpError, RtpPacket, RtpSender};
pub use session::{MediaConfig, MediaEvent, MediaEvents, MediaSession, MediaStats, TickOutput};
