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
        on: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Accept an offered call. Followed by `sdp_offer` for the same call.
    Answer {
        call: String,
    },
    Decline {
        call: String,
    },
    /// The browser's RTCPeerConnection offer (sendrecv audio, complete
    /// ICE gathering not required: the server is ICE-lite).
    SdpOffer {
        call: String,
        sdp: String,
    },
    Hangup {
        call: String,
    },
    Mute {
        on: bool,
    },
    Hold {
        on: bool,
    },
    /// One of `0-9 * # A-D`; the gateway sends it to the caller as RFC 4733.
    Dtmf {
        digit: String,
    },
    WrapUp {
        call: String,
        disposition: String,
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
    Offline,
    Available,
    Ringing,
    OnCall,
    WrapUp,
    Away,
}

/// Gateway → browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The agent's state; `since` is Unix time in milliseconds.
    State {
        state: AgentState,
        since: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A call offered to this agent; ring for at most `expires_in_ms`.
    Offer {
        call: String,
        caller: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issue_type: Option<String>,
        /// IVR steps the caller went through, human-readable.
        #[serde(default)]
        path: Vec<String>,
        /// What the lookups found: `customer`, `subscriptions`, `orders`, …
        #[serde(default)]
        data: serde_json::Value,
        expires_in_ms: u64,
        /// A callback request: answering dials `caller` back (the caller
        /// hung up and kept their place in the queue).
        #[serde(default)]
        callback: bool,
    },
    OfferWithdrawn {
        call: String,
    },
    SdpAnswer {
        call: String,
        sdp: String,
    },
    /// Media is up both ways: the agent and the caller hear each other.
    Connected {
        call: String,
    },
    /// `by`: `caller`, `agent` or `system` (timeout, agent media lost, …).
    Ended {
        call: String,
        by: String,
    },
    /// After-call work until `until` (Unix ms); then back to available.
    WrapUp {
        call: String,
        until: u64,
    },
    Error {
        message: String,
    },
    Pong {},
    /// The agent's desk at a glance: their queues, their calls today and
    /// the callbacks waiting in their queues. Sent after the socket opens
    /// and again whenever it differs (checked every 2 s).
    Overview {
        queues: Vec<QueueSummary>,
        calls_today: Vec<CallSummary>,
        callbacks: Vec<CallbackSummary>,
    },
}

/// One queue the agent is a member of, in an `overview`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSummary {
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

/// One of the agent's calls today, from the call records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSummary {
    pub call: String,
    /// When the call started (Unix ms).
    pub at: u64,
    pub caller: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
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
    pub call: String,
    pub queue: String,
    /// The number the gateway will dial.
    pub caller: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_type: Option<String>,
    /// Seconds since the caller first queued (the place it keeps).
    pub waited_s: u64,
    /// Failed attempts to reach the customer so far.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
}

impl ServerMsg {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("ServerMsg always serializes")
    }
}

impl ClientMsg {
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// `POST /agent/login` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub agent: String,
    pub password: String,
}

/// `POST /agent/login` and `GET /agent/me` success body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    pub agent: String,
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
