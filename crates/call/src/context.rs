//! What every call shares, read-only: the gateway's handles and settings.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hotline_desk::DeskHandle;
use hotline_media::{PromptCache, RtpPortPool};
use hotline_sip::SipHandle;
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::MediaClock;
use crate::core::CoreConfig;
use crate::event::EventSink;
use crate::flow::{FlowFactory, LookupProvider};

/// Per-call knobs from the configuration.
#[derive(Clone, Debug)]
pub struct CallSettings {
    /// Hang up when no RTP arrives for this long.
    pub rtp_timeout: Duration,
    /// Ring this long (180) before answering; 0 answers at once.
    pub answer_delay: Duration,
    /// Address put in our SDP; `None` picks the interface that routes to the caller.
    pub media_ip: Option<IpAddr>,
    /// Until agents answer queues: how long a queued caller waits before
    /// being told no one is free.
    pub queue_max_wait: Duration,
    /// `--force-hours`: every `hours` node answers this.
    pub forced_hours: Option<hotline_ivr::ForcedHours>,
    /// `--dial-allow`: the numbers a flow's `callback` node may book (the
    /// desk checks the same rule again before it dials); `None` books any
    /// dialable number.
    pub dial_check: Option<hotline_ivr::callback::DialCheck>,
    /// This gateway's name in the records (`call_started`'s `node`): the
    /// same name crash recovery closes open calls under, so the binary
    /// sets both from one place (`--node-name`, else the host name).
    pub node: String,
}

/// What every call shares, read-only.
pub struct CallContext {
    /// The SIP endpoint's handle: rings, answers, transfers and hangs up
    /// calls, and sends callback legs' INVITEs.
    pub sip: SipHandle,
    /// The decoded prompts (`en/welcome`, …) every call plays from memory.
    pub prompts: Arc<PromptCache>,
    /// The RTP port range; each call leases one port for its socket and
    /// gives it back when its media ends.
    pub ports: Arc<RtpPortPool>,
    /// Where every call's numbered events go (the event log, later the
    /// database writer).
    pub events: EventSink,
    /// Where answered calls are recorded: one stereo WAV per call, named
    /// `<call id>.wav`.
    pub recordings_dir: PathBuf,
    /// Where voicemail messages go: mono WAVs named `<call id>-<n>.wav`,
    /// `n` counting the call's messages from 1.
    pub voicemail_dir: PathBuf,
    /// The shared 20 ms tick that paces every call's outgoing RTP.
    pub clock: MediaClock,
    /// The configuration's per-call timeouts, answer delay and node name.
    pub settings: CallSettings,
    /// Chooses the IVR flow each new call runs (it keeps it to its end).
    pub flows: FlowFactory,
    /// Answers the flows' lookup nodes (subscriber, order, webhook).
    pub lookups: Arc<dyn LookupProvider>,
    /// Agents answer queued calls here; `None` holds queued callers with
    /// music until `queue_max_wait` (no agents configured).
    pub desk: Option<DeskHandle>,
    /// Flips to true when the gateway must end every call now.
    pub shutdown: watch::Receiver<bool>,
}

impl CallContext {
    pub(crate) fn core_config(&self, call_id: Uuid) -> CoreConfig {
        let s = &self.settings;
        CoreConfig {
            call_id,
            node: s.node.clone(),
            rtp_timeout: s.rtp_timeout,
            answer_delay: s.answer_delay,
            queue_max_wait: s.queue_max_wait,
            forced_hours: s.forced_hours,
            dial_check: s.dial_check.clone(),
            recordings_dir: self.recordings_dir.clone(),
            voicemail_dir: self.voicemail_dir.clone(),
            has_desk: self.desk.is_some(),
            prompts: self.prompts.clone(),
        }
    }
}
