//! The call core's state, one small record per concern: pure data that the
//! concern files (`flow.rs`, `agent.rs`, `callback.rs`, `finish.rs`) change.
//!
//! This file names nothing of the others, so every concern can read every
//! other's state without the files importing each other.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use hotline_sip::RemoteMedia;

use crate::event::{EndedBy, EventData};

/// How a call is ending, before it is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ending {
    /// Who ended the call, recorded as `hangup`'s `ended_by`.
    pub by: EndedBy,
    /// Why, recorded as `hangup`'s `cause`: the SIP side's (`BYE`,
    /// `CANCEL`, a reject code) or ours (`rtp_timeout`, `shutdown`, …).
    pub cause: String,
}

impl Ending {
    /// An ending by `by` for `cause`, e.g. `Ending::new(EndedBy::Caller, "BYE")`.
    pub fn new(by: EndedBy, cause: &str) -> Self {
        Self {
            by,
            cause: cause.to_owned(),
        }
    }
}

/// Where the call is in its life.
#[derive(Debug)]
pub(super) enum Phase {
    /// Waiting for the shell's RTP socket (`CallInput::RtpBound`).
    BindingRtp,
    /// 180 sent; answers at `until` (`--answer-delay`).
    Ringing { until: Instant },
    /// The 200 OK is on its way (`CallInput::AnswerResult`).
    Answering,
    /// The call failed before answer; waiting (bounded) for the dialog to
    /// end. `use_reason`: the dialog's end reason replaces `fallback`.
    WaitingEnd {
        deadline: Instant,
        fallback: Ending,
        use_reason: bool,
    },
    /// A callback leg's INVITE is out; waiting for the customer.
    Dialing,
    /// Answered: media, flow, desk.
    Talking,
    /// Hung up; waiting for the agent's wrap-up before `call_ended`.
    WrapUp {
        agent: String,
        since: Instant,
        deadline: Instant,
        ending: Ending,
    },
    /// `call_ended` is out.
    Over,
}

/// The party on the other side and how it reached us.
#[derive(Clone, Debug)]
pub(super) struct Party {
    pub caller: String,
    pub caller_name: Option<String>,
    pub callee: String,
    pub transport: &'static str,
    /// The trunk (where the INVITE came from, or where a callback goes).
    pub peer: SocketAddr,
    /// The negotiated media (a callback's once answered).
    pub offer: Option<RemoteMedia>,
}

/// Where the call is, from the flow's point of view.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) enum Stage {
    /// The interpreter drives the call.
    #[default]
    Running,
    /// Handed to a queue.
    Queued,
    /// The flow has ended (it hung up, or was told the call ended).
    Done,
}

/// The voicemail the flow (or a queue overflow) asked for.
#[derive(Debug, Default)]
pub(super) enum Voicemail {
    #[default]
    Idle,
    /// The beep is playing; recording starts when it ends.
    Beeping {
        max_secs: u32,
    },
    /// The shell is creating the file (`CallInput::RecorderCreated`).
    Opening {
        max_secs: u32,
        path: PathBuf,
    },
    Recording {
        deadline: Instant,
        path: PathBuf,
    },
}

/// Who asked for the satisfaction survey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum SurveyVia {
    /// The queue (its `survey` setting), after its agent hung up; the talk
    /// ended then, so the call ends as the agent ended it.
    Queue { queue: String, talk: Ending },
    /// A flow's `survey` node, which goes on when the survey is over.
    Flow,
}

/// Where the survey is.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SurveyStep {
    /// "Rate this call from 1 to 5" plays (`deadline: None`), or the core
    /// waits for the key until `deadline`. `retried`: the one retry is spent.
    Rating {
        retried: bool,
        deadline: Option<Instant>,
    },
    /// The comment invitation and its tone play.
    Inviting,
    /// The shell is creating the comment's file.
    Opening { path: PathBuf },
    /// The caller's comment is recorded until `deadline` (or a key).
    Commenting { deadline: Instant },
    /// The thanks plays; `survey_ended` is out.
    Thanking,
}

/// The post-call satisfaction survey in progress.
#[derive(Debug)]
pub(super) struct Survey {
    pub via: SurveyVia,
    pub step: SurveyStep,
    /// The score keyed (a response), once keyed.
    pub score: Option<u8>,
}

/// A queued call held with music because no agent can come.
#[derive(Debug)]
pub(super) struct QueueWait {
    pub queue: String,
    pub since: Instant,
    pub deadline: Instant,
}

/// A REFER: sent, waiting for its answer, then for its NOTIFYs.
#[derive(Debug, Clone)]
pub(super) enum Transfer {
    Sent { target: String },
    Accepted { target: String, deadline: Instant },
}

/// The flow side of the call.
#[derive(Debug, Default)]
pub(super) struct FlowState {
    pub stage: Stage,
    /// Prompts of the current playback, reported when it finishes.
    pub playing: Vec<String>,
    pub barge_in: bool,
    pub voicemail: Voicemail,
    pub voicemails: u32,
    pub queue: Option<QueueWait>,
    /// The interpreter deadline that already fired (never fire it twice).
    pub fired: Option<Instant>,
    pub transfer: Option<Transfer>,
    /// A goodbye is playing; when it ends the call is hung up with this cause.
    pub closing: Option<String>,
    /// The flow's nodes in the order the call entered them (shown to agents).
    pub path: Vec<String>,
    /// The flow got `Started` (the ACK came).
    pub started: bool,
    /// Surveys run so far (names each one's comment file).
    pub surveys: u32,
}

impl FlowState {
    /// The path an agent reads: each node entered, with what happened
    /// there (`main-menu: pressed 0`, `office-hours: open`,
    /// `find-subscriber: found`).
    pub fn note_path(&mut self, data: &EventData, node: &str) {
        let what = match data {
            EventData::NodeEntered { .. } => {
                self.path.push(node.to_owned());
                return;
            }
            EventData::Input { input, .. } => Some(format!("pressed {input}")),
            EventData::Hours { state, .. } => Some(state.clone()),
            EventData::Lookup { found, .. } => {
                found.map(|f| if f { "found" } else { "not found" }.to_owned())
            }
            _ => None,
        };
        if let (Some(what), Some(last)) = (what, self.path.last_mut())
            && last == node
        {
            last.push_str(": ");
            last.push_str(&what);
        }
    }
}

/// Who has the call's recording silenced, and since when. The recording is
/// silent while either is set.
#[derive(Debug, Default)]
pub(super) struct RecordingPauses {
    /// A secure gather runs (`reason: secure_gather`).
    pub secure: Option<Instant>,
    /// The agent pressed Pause recording (`reason: agent`).
    pub agent: Option<(String, Instant)>,
}

impl RecordingPauses {
    pub fn any(&self) -> bool {
        self.secure.is_some() || self.agent.is_some()
    }
}

/// A live audio bridge to an agent (its channels live in the shell).
#[derive(Debug)]
pub(super) struct Bridge {
    pub agent: String,
    pub muted: bool,
    pub held: bool,
}

/// The call's side towards the desk and the agent.
#[derive(Debug, Default)]
pub(super) struct AgentSide {
    /// The desk's notices reach the call (joined, channel still open).
    pub attached: bool,
    pub bridge: Option<Bridge>,
    /// The agent who answered (for the record and wrap-up).
    pub answered_by: Option<String>,
    /// The queue the call waits in (empty until enqueued).
    pub queue: String,
    /// Agents ringing for this call right now (offers without an outcome).
    pub ringing: Vec<String>,
    pub queued: bool,
    /// The desk's id of this call: the call id, or for a callback leg the
    /// id of the call whose callback entry it serves.
    pub desk_call: String,
    /// A callback leg: it ends with `CallbackEnded` for this attempt.
    pub callback: Option<u32>,
    /// The agent's decoded voice (reused: no allocation per frame).
    pub pcm: Vec<i16>,
    /// The desk was told the call ended (the agent left before the caller:
    /// a survey keeps the caller on the line).
    pub left: bool,
    /// The agent's wrap-up, when it came before the call ended (during a
    /// survey): (disposition, notes, seconds).
    pub wrap_up: Option<(Option<String>, String, u64)>,
}

/// A callback leg while it rings.
#[derive(Debug)]
pub(super) struct Dial {
    pub number: String,
    pub via: SocketAddr,
    pub attempt: u32,
    pub started: Option<Instant>,
    /// The agent's audio leg, set up while the customer's phone rings.
    pub leg: Option<String>,
    /// False once the agent gave up (the INVITE is being cancelled).
    pub desk_open: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    #[test]
    fn the_path_says_what_happened_at_each_node() {
        let mut f = FlowState::default();
        let entered = |kind: &str| EventData::NodeEntered {
            node_kind: kind.into(),
        };
        let pressed = |key: &str| EventData::Input {
            input: key.into(),
            next: None,
            into: None,
            language: None,
            slot: None,
            masked: None,
            length: None,
        };
        f.note_path(&entered("language"), "choose-language");
        f.note_path(&pressed("1"), "choose-language");
        f.note_path(&entered("hours"), "office-hours");
        let open = EventData::Hours {
            state: "open".into(),
            local_time: "2024-05-01 12:00 Wed".into(),
            forced: None,
        };
        f.note_path(&open, "office-hours");
        f.note_path(&entered("lookup"), "find-subscriber");
        let not_found = EventData::Lookup {
            lookup: "subscriber_by_caller_id".into(),
            ok: true,
            found: Some(false),
            result: Some(Map::new()),
            error: None,
        };
        f.note_path(&not_found, "find-subscriber");
        f.note_path(&entered("menu"), "main-menu");
        let prompt = EventData::PromptStarted { prompt: "x".into() };
        f.note_path(&prompt, "main-menu");
        // A retry's second input does not pile onto the first.
        f.note_path(&pressed("0"), "main-menu");
        f.note_path(&pressed("9"), "main-menu");
        f.note_path(&entered("enqueue"), "agent");
        assert_eq!(
            f.path,
            [
                "choose-language: pressed 1",
                "office-hours: open",
                "find-subscriber: not found",
                "main-menu: pressed 0",
                "agent"
            ]
        );
    }
}
