//! The agent WebSocket protocol (`/agent/ws`): one JSON object per text
//! message, tagged by `"type"`. See `docs/agent-protocol.md`.

use serde::{Deserialize, Serialize};

/// Browser → gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// First message after (re)connecting; the server answers with `state`
    /// (and a current `offer` / `connected` if one is live for this agent).
    Hello {},
    /// Go available (`on: true`) or away (`on: false`, optional reason).
    Available {
        /// `true` to take calls, `false` to step away.
        on: bool,
        /// Why the agent steps away (e.g. `lunch`), shown to admins; ignored with
        /// `on: true`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Accept an offered call. Followed by `sdp_offer` for the same call.
    Answer {
        /// The call from the `offer`.
        call: String,
    },
    /// Turn down an offered call (also sent when the microphone is unavailable);
    /// it is offered to someone else.
    Decline {
        /// The call from the `offer`.
        call: String,
    },
    /// The browser's RTCPeerConnection offer (sendrecv audio, complete
    /// ICE gathering not required: the server is ICE-lite).
    SdpOffer {
        /// The call being answered.
        call: String,
        /// The SDP offer text.
        sdp: String,
    },
    /// The agent hangs up the call.
    Hangup {
        /// The call to end.
        call: String,
    },
    /// Mute the agent's microphone (the page already sends silence; this is for
    /// the record).
    Mute {
        /// `true` to mute, `false` to unmute.
        on: bool,
    },
    /// Hold: the gateway plays hold music to the caller and stops bridging.
    Hold {
        /// `true` to hold, `false` to resume.
        on: bool,
    },
    /// Silence the recording of the agent's current call (`on: true`) or
    /// let it hear the call again (`false`). Answered with `recording`, or
    /// `error` when the agent is on no call.
    PauseRecording {
        /// `true` to pause, `false` to resume.
        on: bool,
    },
    /// One of `0-9 * # A-D`; the gateway sends it to the caller as RFC 4733.
    Dtmf {
        /// The key pressed, as a one-character string.
        digit: String,
    },
    /// The wrap-up form, stored on the call; ends the agent's wrap-up.
    WrapUp {
        /// The call wrapped up.
        call: String,
        /// The code picked in the form, normally one of the
        /// [`LoginResponse::dispositions`]; stored as given.
        disposition: String,
        /// Free text; may be empty.
        #[serde(default)]
        notes: String,
    },
    /// Application keepalive; answered with `pong`.
    Ping {},
}

/// Agent states as shown to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Not connected.
    Offline,
    /// Waiting for an offer.
    Available,
    /// An offer rings.
    Ringing,
    /// Talking to a caller.
    OnCall,
    /// After-call work: the wrap-up form is open.
    WrapUp,
    /// Logged in, not taking calls.
    Away,
}

/// Gateway → browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The agent's state; `since` is Unix time in milliseconds.
    State {
        /// Where the agent is.
        state: AgentState,
        /// When the agent entered it (Unix ms).
        since: u64,
        /// Why the agent is away; absent otherwise.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A call offered to this agent; ring for at most `expires_in_ms`.
    Offer {
        /// The gateway's id of the call; later messages about it carry the same id.
        call: String,
        /// The caller's number (or SIP user name); for a callback, the number to dial.
        caller: String,
        /// The flow's issue type (e.g. `billing`); absent when none was set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issue_type: Option<String>,
        /// IVR steps the caller went through, human-readable.
        #[serde(default)]
        path: Vec<String>,
        /// What the lookups found: `customer`, `subscriptions`, `orders`, …
        #[serde(default)]
        data: serde_json::Value,
        /// How long the offer rings before it times out, in milliseconds.
        expires_in_ms: u64,
        /// A callback request: answering dials `caller` back (the caller
        /// hung up and kept their place in the queue).
        #[serde(default)]
        callback: bool,
    },
    /// The offer is gone: taken by another agent (ring-all), timed out, or the
    /// caller hung up.
    OfferWithdrawn {
        /// The call that was offered.
        call: String,
    },
    /// The gateway's ICE-lite answer to the browser's `sdp_offer`, with the
    /// hub's host candidate.
    SdpAnswer {
        /// The call being answered.
        call: String,
        /// The SDP answer text.
        sdp: String,
    },
    /// Media is up both ways: the agent and the caller hear each other.
    Connected {
        /// The call now connected.
        call: String,
    },
    /// `by`: `caller`, `agent`, `system` (timeout, agent media lost, …), or
    /// `no_answer` (a callback the customer did not pick up).
    Ended {
        /// The call that ended.
        call: String,
        /// Who ended it.
        by: String,
    },
    /// After-call work until `until` (Unix ms); then back to available.
    WrapUp {
        /// The call just ended.
        call: String,
        /// When the wrap-up time runs out (Unix ms).
        until: u64,
    },
    /// The agent's `pause_recording` was passed to their call: whether its
    /// recording is now paused (the button's state).
    Recording {
        /// `true` while the agent has the recording paused.
        paused: bool,
    },
    /// A message the agent's page could not act on, or a refused request.
    Error {
        /// Shown to the agent.
        message: String,
    },
    /// The answer to `ping`.
    Pong {},
    /// The agent's desk at a glance: their queues, their calls today and
    /// the callbacks waiting in their queues. Sent after the socket opens
    /// and again whenever it differs (checked every 2 s).
    Overview {
        /// The queues the agent is a member of.
        queues: Vec<QueueSummary>,
        /// The agent's calls since their midnight, from the call records.
        calls_today: Vec<CallSummary>,
        /// Callback entries waiting in the agent's queues.
        callbacks: Vec<CallbackSummary>,
        /// The agent's own figures since their midnight (the reports'
        /// per-agent figures, docs/metrics.md); absent until first read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        today: Option<AgentToday>,
    },
}

/// One queue the agent is a member of, in an `overview`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSummary {
    /// The queue's name.
    pub name: String,
    /// Callers on the line waiting (ringing ones included, callback
    /// entries not: those are in `callbacks`).
    pub waiting: usize,
    /// How long the longest-waiting of them has waited, in seconds.
    pub longest_wait_s: u64,
    /// Members available for a call right now.
    pub agents_available: usize,
    /// Callback entries holding a place in this queue.
    #[serde(default)]
    pub callbacks: usize,
}

/// The agent's own figures today (`overview.today`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentToday {
    /// Calls the agent answered.
    pub calls_handled: u64,
    /// Average handle time (talk + hold + wrap-up), seconds; `null` before
    /// the first finished call.
    pub aht_secs: Option<f64>,
    /// Average satisfaction score (1–5) of the agent's calls; `null` without
    /// a response.
    pub csat_avg: Option<f64>,
    /// Survey responses to the agent's calls.
    pub csat_responses: u64,
}

/// One of the agent's calls today, from the call records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    /// The gateway's id of the call.
    pub call: String,
    /// When the call started (Unix ms).
    pub at: u64,
    /// The caller's number or SIP user name.
    pub caller: String,
    /// The queue it came through; absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The flow's issue type; absent when none was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
    /// Seconds the agent talked; absent until known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talk_seconds: Option<u64>,
    /// The wrap-up's disposition code; `None` until wrapped up (or when
    /// wrap-up ran out without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
}

/// A callback entry waiting in one of the agent's queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackSummary {
    /// The booking call's id.
    pub call: String,
    /// The queue the entry waits in.
    pub queue: String,
    /// The number the gateway will dial.
    pub caller: String,
    /// The flow's issue type; absent when none was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
    /// Seconds since the caller first queued (the place it keeps).
    pub waited_s: u64,
    /// Failed attempts to reach the customer so far.
    pub attempts: u32,
    /// Its place in the queue (1 = next); absent once an agent has accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
}

impl ServerMsg {
    /// The message as one WebSocket text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("ServerMsg always serializes")
    }
}

impl ClientMsg {
    /// Reads one text frame from the browser.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// `POST /agent/login` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    /// The agent's id (their login).
    pub agent: String,
    /// In clear text, over the login POST only.
    pub password: String,
}

/// `POST /agent/login` and `GET /agent/me` success body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The agent's id (their login).
    pub agent: String,
    /// Display name for the page's header.
    #[serde(default)]
    pub name: String,
    /// Disposition codes offered in the wrap-up form.
    #[serde(default)]
    pub dispositions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_round_trip() {
        let m = ClientMsg::parse(r#"{"type":"available","on":false,"reason":"lunch"}"#).unwrap();
        assert_eq!(
            m,
            ClientMsg::Available {
                on: false,
                reason: Some("lunch".into())
            }
        );
        assert_eq!(
            ClientMsg::parse(r#"{"type":"hello"}"#).unwrap(),
            ClientMsg::Hello {}
        );
        let w =
            ClientMsg::parse(r#"{"type":"wrap_up","call":"c1","disposition":"refund"}"#).unwrap();
        assert!(matches!(w, ClientMsg::WrapUp { notes, .. } if notes.is_empty()));
        assert!(ClientMsg::parse(r#"{"type":"nope"}"#).is_err());
    }

    #[test]
    fn server_messages_are_tagged() {
        let s = ServerMsg::State {
            state: AgentState::OnCall,
            since: 5,
            reason: None,
        }
        .to_json();
        assert_eq!(s, r#"{"type":"state","state":"on_call","since":5}"#);
        let o = ServerMsg::Offer {
            call: "c".into(),
            caller: "+15550100".into(),
            issue_type: Some("billing".into()),
            path: vec!["menu: 2".into()],
            data: serde_json::json!({"customer": {"name": "Ada"}}),
            expires_in_ms: 15000,
            callback: false,
        };
        let back: ServerMsg = serde_json::from_str(&o.to_json()).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn overview_is_tagged_and_round_trips() {
        let o = ServerMsg::Overview {
            queues: vec![QueueSummary {
                name: "support".into(),
                waiting: 1,
                longest_wait_s: 7,
                agents_available: 0,
                callbacks: 1,
            }],
            calls_today: vec![CallSummary {
                call: "c1".into(),
                at: 1_700_000_000_000,
                caller: "+15550100".into(),
                queue: Some("support".into()),
                issue_type: Some("subscription.refund".into()),
                talk_seconds: Some(42),
                disposition: Some("refund".into()),
            }],
            callbacks: vec![CallbackSummary {
                call: "c2".into(),
                queue: "support".into(),
                caller: "+15550101".into(),
                issue_type: None,
                waited_s: 90,
                attempts: 0,
                position: Some(1),
            }],
            today: Some(AgentToday {
                calls_handled: 3,
                aht_secs: Some(95.5),
                csat_avg: None,
                csat_responses: 0,
            }),
        };
        let json = o.to_json();
        assert!(
            json.starts_with(r#"{"type":"overview","queues":[{"name":"support","waiting":1,"#),
            "{json}"
        );
        let back: ServerMsg = serde_json::from_str(&json).unwrap();
        assert_eq!(back, o);
    }
}
