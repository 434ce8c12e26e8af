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
}
