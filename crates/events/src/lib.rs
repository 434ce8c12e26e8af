//! Hotline call events: one typed [`CallEvent`] per step of a call.
//!
//! For: the shared shape of a call's events, between the call actor that
//! emits them (`hotline-call`), the JSON-lines log (`call-events.jsonl`) and
//! the call-record writer (`hotline-store`, which derives the `calls` row
//! from them). Not for: producing, numbering or shipping events (the call
//! actor's stamper and sinks do that); this crate has no I/O.
//!
//! The contract is `docs/call-events.md`: one [`EventData`] variant per row
//! of its table, with that row's `data` fields. On the wire an event is a
//! flat JSON object, `kind` and `data` next to the ids:
//!
//! ```
//! use hotline_events::{CallEvent, EventData};
//! let line = r#"{"call_id":"67e55044-10b1-426f-9247-bb680e5fe0c8","sip_call_id":"a@b",
//!     "seq":1,"at":"2024-05-01T10:00:00.000123Z","node":null,
//!     "kind":"answered","data":{"rtp":"10.0.0.1:20000"}}"#;
//! let ev: CallEvent = serde_json::from_str(line).unwrap();
//! assert_eq!(ev.kind(), "answered");
//! assert!(matches!(&ev.data, EventData::Answered { rtp } if rtp == "10.0.0.1:20000"));
//! ```
//!
//! # Adding a kind
//!
//! A new kind is a new row in `docs/call-events.md`'s table and a new
//! variant of [`EventData`] (with its name in [`EventData::kind`] and
//! [`KINDS`]); a test checks that the table and the enum agree. Fields that
//! are not always written are `Option`s skipped when `None`, so the JSON
//! keeps its keys exactly as the emitter wrote them.
//!
//! # Events this version cannot type
//!
//! An event whose `kind` is not one of [`KINDS`] (an older or newer gateway's,
//! or a hand-written row), or whose `data` does not have its kind's shape,
//! is read as [`EventData::Other`]: kept verbatim (it serialises back to the
//! same `kind` and `data`) and ignored by the call-record derivation. Reading
//! events therefore never fails on their `kind` or `data`, so one unexpected
//! row cannot stop a writer or an admin page; `EventData::is_other` tells
//! the two apart. Unknown keys in a known kind's `data` are ignored.

#![warn(missing_docs)]

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Who ended a call, as the record names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// The caller hung up (BYE) or gave up before the answer (CANCEL).
    Caller,
    /// The gateway ended the call: the flow hung up, a transfer, a shutdown,
    /// a failure on our side, …
    Gateway,
    /// The agent hung up from their desk page.
    Agent,
    /// A timer ran out: no ACK to our 200 OK (`ack_timeout`) or no audio
    /// from the caller (`rtp_timeout`).
    Timeout,
}

impl EndedBy {
    /// The name written in events and in `calls.ended_by`: `caller`,
    /// `gateway`, `agent` or `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Caller => "caller",
            EndedBy::Gateway => "gateway",
            EndedBy::Agent => "agent",
            EndedBy::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for EndedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step of a call's path.
///
/// `(call_id, seq)` is the identity of an event: `seq` counts from 0 per
/// call, without gaps, so a consumer can tell a replay from a new event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    /// The gateway's own id of the call.
    pub call_id: Uuid,
    /// The SIP `Call-ID` header of the call's dialog.
    pub sip_call_id: String,
    /// The event's number within the call: from 0, without gaps.
    pub seq: u32,
    /// When the event happened, in UTC.
    /// Written with microseconds (`2024-05-01T10:00:00.000123Z`); read from
    /// any RFC 3339 time.
    #[serde(serialize_with = "micros")]
    pub at: DateTime<Utc>,
    /// The IVR node id, when one applies.
    pub node: Option<String>,
    /// `kind` and `data`, side by side in the event's JSON object.
    #[serde(flatten)]
    pub data: EventData,
}

impl CallEvent {
    /// The event's `kind` (as in `docs/call-events.md`).
    pub fn kind(&self) -> &str {
        self.data.kind()
    }
}

fn micros<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// A field some emitters write (possibly as `null`) and others leave out:
/// `None` is absent, `Some(None)` is `null`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// What happened, with its data: one variant per row of
/// `docs/call-events.md`. Serialised as `"kind": "<snake_case name>"` and
/// `"data": {…}` (an empty object for [`EventData::CallEnded`]).
///
/// `Option` fields marked "absent when `None`" are left out of the JSON when
/// `None`; other `Option`s are written as `null`. `Option<Option<_>>` fields
/// are written by some emitters only: `None` absent, `Some(None)` `null`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum EventData {
    /// The call reached the gateway (or, on a callback leg, the gateway
    /// dials the customer: `caller` and `callee` are then their number).
    CallStarted {
        /// The caller's user part (from the INVITE's `From`), or the
        /// customer's number on a callback leg.
        caller: String,
        /// The caller's display name (`null` when the INVITE had none);
        /// absent on a callback leg.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        caller_name: Option<Option<String>>,
        /// The number or user part the caller dialled (the INVITE's
        /// Request-URI), or the customer's number on a callback leg.
        callee: String,
        /// `udp` or `tcp`.
        transport: String,
        /// The peer's `ip:port`.
        source: String,
        /// The gateway's host name; the record writer adds it when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        /// `outbound` on a callback leg; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        direction: Option<String>,
        /// A callback leg's original call id; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        callback_of: Option<String>,
        /// A callback leg's attempt (1 for the first); absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
        /// A callback leg's queue; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queue: Option<String>,
        /// The call's audio is SDES-SRTP (RFC 4568); absent when plain RTP.
        #[serde(default, skip_serializing_if = "is_false")]
        srtp: bool,
    },
    /// The gateway answered; its RTP address.
    Answered {
        /// The gateway's `ip:port` for the call's audio, as put in the SDP answer.
        rtp: String,
    },
    /// The call's IVR flow began.
    FlowStarted {
        /// The flow's name.
        flow: String,
        /// The version of the flow that runs this call (flows hot-reload;
        /// a call keeps the version it started with).
        version: String,
        /// The language the flow starts in.
        language: String,
    },
    /// The caller's language changed (a `language` node).
    LanguageSet {
        /// The language now used for prompts, e.g. `en`.
        language: String,
    },
    /// The flow classified what the caller is calling about.
    IssueType {
        /// The flow's label, e.g. `subscription.refund`.
        issue_type: String,
    },
    /// The flow moved to a node; the event's `node` names it.
    NodeEntered {
        /// The node's kind (`menu`, `play`, …).
        #[serde(rename = "kind")]
        node_kind: String,
    },
    /// A prompt began playing.
    PromptStarted {
        /// The prompt's name, e.g. `en/welcome`.
        prompt: String,
    },
    /// A node's prompts stopped playing, to the end or cut short.
    PromptFinished {
        /// The last of `prompts`.
        prompt: Option<String>,
        /// Every prompt the node played, in order.
        prompts: Vec<String>,
        /// `true` when a key (barge-in) cut the prompts short.
        interrupted: bool,
    },
    /// A prompt could not be played (no such file, or an unreadable one);
    /// the flow goes on without it.
    PromptMissing {
        /// The prompt's name.
        prompt: String,
        /// Why it could not be played.
        error: String,
    },
    /// The caller pressed a key.
    Digit {
        /// The key: `0`–`9`, `*`, `#` or `A`–`D`.
        digit: String,
        /// `rfc4733`, `info` or `inband`.
        transport: String,
        /// INFO's `Duration`; `null` for RFC 4733 (reported on its first packet).
        duration_ms: Option<u32>,
        /// `true` when the key was pressed in a secure gather: `digit` is
        /// then `*`, not the key; absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        masked: Option<bool>,
    },
    /// No key within a menu's or gather's timeout.
    Timeout {
        /// The timeout that passed, in milliseconds.
        after_ms: u64,
        /// Which try this was (1 for the first).
        attempt: u32,
    },
    /// A key or digits a menu or gather did not accept.
    Invalid {
        /// What the caller entered (`*` per digit when masked).
        input: String,
        /// Which try this was (1 for the first).
        attempt: u32,
        /// `true` in a secure gather (`input` is then stars); absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        masked: Option<bool>,
    },
    /// A key or digits a menu, gather, language or callback node accepted,
    /// with what it led to (each absent when `None`).
    Input {
        /// The key or digits entered.
        input: String,
        /// The node the flow goes to next.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
        /// The flow variable a gather stored the digits into.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into: Option<String>,
        /// The language a language node switched to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        language: Option<String>,
        /// The callback slot a callback node booked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slot: Option<String>,
        /// `true` when a secure gather took the digits: `input` is then one
        /// `*` per digit; absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        masked: Option<bool>,
        /// A secure gather's number of digits; absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        length: Option<u32>,
    },
    /// Retries spent; the flow takes `on_exhausted`.
    Exhausted {
        /// How many tries the caller had.
        attempts: u32,
    },
    /// An hours node checked the opening hours.
    Hours {
        /// `open`, `closed` or `holiday`.
        state: String,
        /// The time the check used, local to the node's `time_zone`.
        local_time: String,
        /// `true` when `--force-hours` decided; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        forced: Option<bool>,
    },
    /// A lookup node asked an external source (e.g. a CRM) about the caller.
    Lookup {
        /// The lookup source's name.
        lookup: String,
        /// `false` when the source could not be asked or did not answer.
        ok: bool,
        /// When `ok`; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        found: Option<bool>,
        /// The source's answer (free-form) when `ok`; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Map<String, Value>>,
        /// When not `ok`; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A flow problem at run time.
    Error {
        /// What went wrong, e.g. a value `say` cannot speak.
        error: String,
    },
    /// The call joined an agent queue.
    Enqueued {
        /// The queue's name.
        queue: String,
        /// The call's priority in the queue, from the flow.
        priority: i64,
    },
    /// Where the call stands in its queue, told to the caller.
    QueuePosition {
        /// 1 is next.
        position: u64,
        /// `null` until the queue has finished a call.
        estimated_wait_ms: Option<u64>,
    },
    /// No agent desk knows the queue and the call was held until
    /// `--queue-max-wait-secs`.
    QueueTimeout {
        /// The queue's name.
        queue: String,
        /// How long the call waited, in milliseconds.
        waited_ms: u64,
    },
    /// The queue's max wait passed; the call goes to its overflow target.
    QueueOverflow {
        /// `voicemail`, `callback`, `hangup` or `queue:<name>`.
        target: String,
    },
    /// The call rings an agent.
    AgentOffered {
        /// The agent offered the call.
        agent_id: String,
    },
    /// How an offer to an agent ended.
    OfferOutcome {
        /// The agent the call was offered to.
        agent_id: String,
        /// `accepted`, `declined`, `timeout` or `withdrawn`.
        outcome: String,
    },
    /// An agent accepted the call; it counts as answered from here.
    AgentAnswered {
        /// The agent who answered.
        agent_id: String,
    },
    /// The agent's WebRTC leg is up: audio flows between caller and agent.
    AgentConnected {
        /// The agent on the call.
        agent_id: String,
        /// From the media hub taking the browser's SDP offer to audio
        /// flowing, in milliseconds.
        setup_ms: u64,
    },
    /// The agent put the caller on hold or took them off it.
    AgentHold {
        /// `true` when the hold starts, `false` when it ends.
        on: bool,
    },
    /// The agent muted or unmuted their microphone.
    AgentMute {
        /// `true` when muted, `false` when unmuted.
        on: bool,
    },
    /// The agent's page went away mid-call.
    AgentLost {
        /// The agent who was lost.
        agent_id: String,
        /// `true` when the call went back into its queue.
        requeued: bool,
    },
    /// The agent's audio leg failed.
    AgentMediaLost {
        /// Why, as the media hub reported it.
        reason: String,
    },
    /// A supervisor joined the agent's call from their browser.
    MonitorStarted {
        /// The supervisor's (or admin's) login.
        supervisor_id: String,
        /// `listen` (hears both sides, heard by nobody), `whisper` (heard by
        /// the agent only) or `barge` (heard by both).
        mode: String,
    },
    /// The supervisor switched mode on the same audio leg.
    MonitorMode {
        /// The supervisor's login.
        supervisor_id: String,
        /// The new mode: `listen`, `whisper` or `barge`.
        mode: String,
    },
    /// The supervisor's leg left the call.
    MonitorStopped {
        /// The supervisor's login.
        supervisor_id: String,
        /// `supervisor` (Stop, or the page went away), `call_ended` (the
        /// agent's call ended), `media_lost` (the supervisor's audio failed)
        /// or `replaced` (another supervisor took over).
        reason: String,
    },
    /// The caller is leaving a voicemail: recording starts.
    VoicemailStarted {
        /// The WAV file being written.
        path: String,
        /// The longest the recording may run, in seconds.
        max_secs: u32,
    },
    /// A voicemail was recorded.
    Voicemail {
        /// The mono WAV of the caller.
        path: String,
        /// The recording's length in milliseconds.
        duration_ms: u64,
        /// The file's size in bytes.
        bytes: u64,
    },
    /// The caller is kept on the line for the satisfaction survey: after
    /// the agent hung up (a queue with `survey` on) or at a flow's `survey`
    /// node.
    SurveyStarted {
        /// `queue` (after the agent hung up) or `flow` (a `survey` node).
        via: String,
        /// The queue whose setting asked for it; `null` for a flow's node.
        queue: Option<String>,
    },
    /// The caller keyed a score: a response.
    SurveyAnswered {
        /// 1 (worst) to 5 (best).
        score: u8,
    },
    /// The caller left a voice comment after the score.
    SurveyComment {
        /// The mono WAV of the caller.
        path: String,
        /// The comment's length in milliseconds.
        duration_ms: u64,
    },
    /// The survey is over.
    SurveyEnded {
        /// `answered` (a score was keyed), `hangup` (the caller hung up
        /// before keying one) or `no_input` (no valid key after the retry).
        reason: String,
    },
    /// The caller booked a callback, from the flow or after a queue overflow.
    CallbackRequested {
        /// The number to call back: `+` and 5–15 digits.
        number: String,
        /// When to call back; `asap` after a queue overflow (the entry keeps
        /// its place in the queue).
        slot: String,
        /// The flow's queue (`null` for none); absent after a queue overflow.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        queue: Option<Option<String>>,
        /// RFC 3339, as the flow wrote it; absent after a queue overflow.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_at: Option<String>,
        /// `ivr`; absent after a queue overflow.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// A flow's callback node was given a number it cannot dial (e.g. a SIP
    /// user name); the flow goes to `on_no_number`.
    CallbackRefused {
        /// The number as given.
        number: String,
        /// Why it cannot be dialled.
        reason: String,
    },
    /// An outbound callback leg rings (180/183).
    Ringing {
        /// The provisional status: 180 or 183.
        code: u16,
    },
    /// The customer did not answer a callback leg; an `outcome` `failed`
    /// follows.
    CallbackFailed {
        /// The final SIP status (486, 480, 408, 503, …).
        code: u16,
        /// The status's reason phrase or the local failure.
        reason: String,
        /// Which attempt this was (1 for the first).
        attempt: u32,
    },
    /// The peer accepted our REFER (202).
    TransferAccepted {
        /// Where the call is transferred to.
        target: String,
    },
    /// The transferred call reached a final status, as NOTIFY reported it.
    TransferCompleted {
        /// Where the call was transferred to.
        target: String,
        /// The new call's final SIP status.
        code: u16,
    },
    /// A transfer could not be made.
    TransferFailed {
        /// Where the call was to be transferred to.
        target: String,
        /// Why it failed.
        error: String,
    },
    /// The agent's after-call work ended: the wrap-up form was submitted or
    /// its timer ran out.
    WrapUp {
        /// The agent who wrapped up.
        agent_id: String,
        /// The form's code; `null` when the wrap-up timer ran out.
        disposition: Option<String>,
        /// May be empty.
        notes: String,
        /// Whole seconds of after-call work: from the end of the talk to the
        /// form's submission or the wrap-up timer.
        seconds: u64,
    },
    /// The flow transferred the call.
    Transfer {
        /// Where the call is transferred to.
        target: String,
        /// `refer` or `invite`.
        method: String,
    },
    /// How the call ended for the caller (`calls.outcome`); the last one wins.
    Outcome {
        /// `self_served`, `voicemail`, `callback`, `failed`, …
        outcome: String,
        /// A flow's voicemail: its length; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
        /// A flow's voicemail: its file (`null` when recording failed);
        /// absent otherwise.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        path: Option<Option<String>>,
        /// `true` when the caller ended the voicemail by hanging up; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ended_by_hangup: Option<bool>,
        /// A flow's callback booking: the number; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        number: Option<String>,
        /// A flow's callback booking: the slot; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slot: Option<String>,
    },
    /// The caller's side changed the audio stream with a re-INVITE (hold,
    /// resume, a new address).
    MediaChanged {
        /// `sendrecv`, `sendonly`, `recvonly` or `inactive`.
        direction: String,
        /// The peer's RTP `ip:port` from now on.
        rtp: String,
    },
    /// The call ended.
    Hangup {
        /// Which side or timer ended it.
        ended_by: EndedBy,
        /// Why: `BYE`, `CANCEL`, `rtp_timeout`, `flow_ended`, a SIP status
        /// code, … (the list is in `docs/call-events.md`).
        cause: String,
        /// When start-up recovery closed the call; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recovered_at: Option<DateTime<Utc>>,
    },
    /// The call's recording was written.
    Recording {
        /// Absolute.
        path: String,
        /// The recording's length in milliseconds.
        duration_ms: u64,
        /// Audio channels in the WAV file.
        channels: u16,
        /// Samples per second, per channel.
        sample_rate: u32,
        /// The file's size in bytes.
        bytes: u64,
        /// Lowercase hex; absent until the record writer adds it, `null`
        /// when recovery could not read the file.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        sha256: Option<Option<String>>,
        /// `true` when start-up recovery linked a crashed call's WAV; absent when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
    },
    /// The call's recording went silent: both channels are written as
    /// silence (the file's timeline keeps running) until
    /// `recording_resumed` with the same `reason`.
    RecordingPaused {
        /// `secure_gather` (a `gather` node with `secure: true`) or `agent`
        /// (the agent pressed Pause recording).
        reason: String,
        /// The agent who paused it, for `reason` `agent`; absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
    },
    /// The call's recording hears the call again (also written when the
    /// call ends while paused, before `hangup`).
    RecordingResumed {
        /// The `reason` of the `recording_paused` it ends.
        reason: String,
        /// The agent, for `reason` `agent`; absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
        /// How long the recording was silenced, in milliseconds.
        paused_ms: u64,
    },
    /// The last event of a call.
    CallEnded {},
    /// An event this version cannot type (see the crate documentation): its
    /// `kind` and `data` as they were read.
    #[serde(untagged)]
    Other {
        /// The `kind` as read.
        kind: String,
        /// The `data` as read (`null` when there was none).
        #[serde(default)]
        data: Value,
    },
}

/// Every kind [`EventData`] types, in the order of `docs/call-events.md`.
pub const KINDS: &[&str] = &[
    "call_started",
    "answered",
    "flow_started",
    "language_set",
    "issue_type",
    "node_entered",
    "prompt_started",
    "prompt_finished",
    "prompt_missing",
    "digit",
    "timeout",
    "invalid",
    "input",
    "exhausted",
    "hours",
    "lookup",
    "error",
    "enqueued",
    "queue_position",
    "queue_timeout",
    "queue_overflow",
    "agent_offered",
    "offer_outcome",
    "agent_answered",
    "agent_connected",
    "agent_hold",
    "agent_mute",
    "agent_lost",
    "agent_media_lost",
    "monitor_started",
    "monitor_mode",
    "monitor_stopped",
    "voicemail_started",
    "voicemail",
    "survey_started",
    "survey_answered",
    "survey_comment",
    "survey_ended",
    "callback_requested",
    "callback_refused",
    "ringing",
    "callback_failed",
    "transfer_accepted",
    "transfer_completed",
    "transfer_failed",
    "wrap_up",
    "transfer",
    "outcome",
    "media_changed",
    "hangup",
    "recording",
    "recording_paused",
    "recording_resumed",
    "call_ended",
];

impl EventData {
    /// The event's `kind`: the variant's name in snake case, or what an
    /// [`EventData::Other`] was read with.
    pub fn kind(&self) -> &str {
        match self {
            Self::CallStarted { .. } => "call_started",
            Self::Answered { .. } => "answered",
            Self::FlowStarted { .. } => "flow_started",
            Self::LanguageSet { .. } => "language_set",
            Self::IssueType { .. } => "issue_type",
            Self::NodeEntered { .. } => "node_entered",
            Self::PromptStarted { .. } => "prompt_started",
            Self::PromptFinished { .. } => "prompt_finished",
            Self::PromptMissing { .. } => "prompt_missing",
            Self::Digit { .. } => "digit",
            Self::Timeout { .. } => "timeout",
            Self::Invalid { .. } => "invalid",
            Self::Input { .. } => "input",
            Self::Exhausted { .. } => "exhausted",
            Self::Hours { .. } => "hours",
            Self::Lookup { .. } => "lookup",
            Self::Error { .. } => "error",
            Self::Enqueued { .. } => "enqueued",
            Self::QueuePosition { .. } => "queue_position",
            Self::QueueTimeout { .. } => "queue_timeout",
            Self::QueueOverflow { .. } => "queue_overflow",
            Self::AgentOffered { .. } => "agent_offered",
            Self::OfferOutcome { .. } => "offer_outcome",
            Self::AgentAnswered { .. } => "agent_answered",
            Self::AgentConnected { .. } => "agent_connected",
            Self::AgentHold { .. } => "agent_hold",
            Self::AgentMute { .. } => "agent_mute",
            Self::AgentLost { .. } => "agent_lost",
            Self::AgentMediaLost { .. } => "agent_media_lost",
            Self::MonitorStarted { .. } => "monitor_started",
            Self::MonitorMode { .. } => "monitor_mode",
            Self::MonitorStopped { .. } => "monitor_stopped",
            Self::VoicemailStarted { .. } => "voicemail_started",
            Self::Voicemail { .. } => "voicemail",
            Self::SurveyStarted { .. } => "survey_started",
            Self::SurveyAnswered { .. } => "survey_answered",
            Self::SurveyComment { .. } => "survey_comment",
            Self::SurveyEnded { .. } => "survey_ended",
            Self::CallbackRequested { .. } => "callback_requested",
            Self::CallbackRefused { .. } => "callback_refused",
            Self::Ringing { .. } => "ringing",
            Self::CallbackFailed { .. } => "callback_failed",
            Self::TransferAccepted { .. } => "transfer_accepted",
            Self::TransferCompleted { .. } => "transfer_completed",
            Self::TransferFailed { .. } => "transfer_failed",
            Self::WrapUp { .. } => "wrap_up",
            Self::Transfer { .. } => "transfer",
            Self::Outcome { .. } => "outcome",
            Self::MediaChanged { .. } => "media_changed",
            Self::Hangup { .. } => "hangup",
            Self::Recording { .. } => "recording",
            Self::RecordingPaused { .. } => "recording_paused",
            Self::RecordingResumed { .. } => "recording_resumed",
            Self::CallEnded {} => "call_ended",
            Self::Other { kind, .. } => kind,
        }
    }

    /// An `outcome` event with nothing but the outcome.
    pub fn outcome(outcome: impl Into<String>) -> Self {
        Self::Outcome {
            outcome: outcome.into(),
            duration_ms: None,
            path: None,
            ended_by_hangup: None,
            number: None,
            slot: None,
        }
    }

    /// True for an event this version could not type.
    pub fn is_other(&self) -> bool {
        matches!(self, Self::Other { .. })
    }

    /// The event made of a `kind` and its `data` as stored apart (the
    /// `call_events` columns, the IVR interpreter's records). Never fails:
    /// what does not fit a typed variant is an [`EventData::Other`].
    pub fn from_parts(kind: &str, data: Value) -> Self {
        let mut raw = Map::with_capacity(2);
        raw.insert("kind".into(), Value::String(kind.to_owned()));
        raw.insert("data".into(), data);
        let raw = Value::Object(raw);
        match EventData::deserialize(&raw) {
            Ok(ev) => ev,
            Err(_) => {
                let data = match raw {
                    Value::Object(mut m) => m.remove("data").unwrap_or(Value::Null),
                    _ => Value::Null,
                };
                Self::Other {
                    kind: kind.to_owned(),
                    data,
                }
            }
        }
    }

    /// The event's `data` alone, as JSON (the `call_events.data` column).
    pub fn data_json(&self) -> serde_json::Result<Value> {
        if let Self::Other { data, .. } = self {
            return Ok(data.clone());
        }
        match serde_json::to_value(self)? {
            Value::Object(mut m) => Ok(m.remove("data").unwrap_or(Value::Null)),
            _ => Ok(Value::Null),
        }
    }
}

/// serde: leave a `false` flag out.
fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kind_matches_the_serialised_tag() {
        let ev = EventData::Hangup {
            ended_by: EndedBy::Caller,
            cause: "BYE".into(),
            recovered_at: None,
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            v,
            json!({"kind": "hangup", "data": {"ended_by": "caller", "cause": "BYE"}})
        );
        assert_eq!(ev.kind(), "hangup");
        assert_eq!(ev.data_json().unwrap(), v["data"]);
        let ended = serde_json::to_value(EventData::CallEnded {}).unwrap();
        assert_eq!(ended, json!({"kind": "call_ended", "data": {}}));
    }

    #[test]
    fn unknown_kinds_and_misshapen_data_are_kept_as_other() {
        let odd = EventData::from_parts("dtmf", json!({"key": "5"}));
        assert_eq!(
            odd,
            EventData::Other {
                kind: "dtmf".into(),
                data: json!({"key": "5"})
            }
        );
        assert_eq!(odd.kind(), "dtmf");
        assert_eq!(odd.data_json().unwrap(), json!({"key": "5"}));
        // A known kind without its fields: kept, not typed.
        let bad = EventData::from_parts("hangup", json!({"cause": 3}));
        assert!(bad.is_other());
        assert_eq!(bad.kind(), "hangup");
        assert_eq!(
            serde_json::to_value(&bad).unwrap(),
            json!({"kind": "hangup", "data": {"cause": 3}})
        );
    }

    #[test]
    fn absent_and_null_stay_apart() {
        let inbound = EventData::from_parts(
            "call_started",
            json!({"caller": "1001", "caller_name": null, "callee": "800",
                   "transport": "udp", "source": "10.0.0.1:5060"}),
        );
        let EventData::CallStarted { caller_name, .. } = &inbound else {
            panic!("typed: {inbound:?}");
        };
        assert_eq!(caller_name, &Some(None));
        assert_eq!(inbound.data_json().unwrap()["caller_name"], Value::Null);
        let outbound = EventData::from_parts(
            "call_started",
            json!({"caller": "1001", "callee": "1001", "transport": "udp",
                   "source": "10.0.0.1:5060", "direction": "outbound"}),
        );
        let data = outbound.data_json().unwrap();
        assert!(data.get("caller_name").is_none(), "{data}");
    }
}
