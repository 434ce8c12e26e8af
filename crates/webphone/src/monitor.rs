//! The supervisor's monitoring socket (`/admin/monitor/ws`): one JSON
//! object per text message, tagged by `"type"`, like `/agent/ws`. A
//! supervisor (or admin) listens to, whispers to or barges into an agent's
//! live call over WebRTC on the same [`crate::AgentMediaHub`] as the
//! agents' legs. See `docs/agent-protocol.md`, "Supervisor monitoring".

use serde::{Deserialize, Serialize};

/// Who hears the supervisor. The supervisor always hears the caller and the
/// agent, mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorMode {
    /// Nobody hears the supervisor.
    Listen,
    /// The agent hears the supervisor; the caller does not.
    Whisper,
    /// Everyone hears everyone.
    Barge,
}

impl MonitorMode {
    /// The name on the wire and in the call's events.
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorMode::Listen => "listen",
            MonitorMode::Whisper => "whisper",
            MonitorMode::Barge => "barge",
        }
    }

    /// The agent hears the supervisor (whisper, barge).
    pub fn agent_hears_supervisor(self) -> bool {
        matches!(self, MonitorMode::Whisper | MonitorMode::Barge)
    }

    /// The caller hears the supervisor (barge only).
    pub fn caller_hears_supervisor(self) -> bool {
        matches!(self, MonitorMode::Barge)
    }
}

/// Supervisor's page → gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MonitorClientMsg {
    /// Join `call` (the desk's call id, as `GET /api/agents/states` lists
    /// it) in `mode`, with the page's WebRTC offer (sendrecv audio, ICE
    /// gathered). Answered with `sdp_answer`, then `monitor_started`, or
    /// `monitor_stopped` / `error`. A page monitors one call at a time: a
    /// second `monitor` first stops the first.
    Monitor {
        /// The call to join.
        call: String,
        /// Listen, whisper or barge.
        mode: MonitorMode,
        /// The browser's SDP offer.
        sdp: String,
    },
    /// Switch mode on the same audio leg (no new peer connection).
    MonitorMode {
        /// The new mode.
        mode: MonitorMode,
    },
    /// Leave the call.
    MonitorStop {},
    /// Sent by the page after every (re)connect (the softphone's
    /// signalling module); nothing to restate: a new socket monitors nothing.
    Hello {},
    /// Keepalive; answered with `pong`.
    Ping {},
}

/// Gateway → supervisor's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MonitorServerMsg {
    /// The hub's ICE-lite answer to the page's offer.
    SdpAnswer {
        /// The call being monitored.
        call: String,
        /// The SDP answer text.
        sdp: String,
    },
    /// The call actor took the leg: audio flows as `mode` says.
    MonitorStarted {
        /// The call being monitored.
        call: String,
        /// The mode in force.
        mode: MonitorMode,
    },
    /// The mode switch reached the call.
    MonitorMode {
        /// The call being monitored.
        call: String,
        /// The mode in force.
        mode: MonitorMode,
    },
    /// The leg left the call: `supervisor` (Stop), `call_ended`,
    /// `agent_lost`, `media_lost`, `replaced`, `not_on_call` (the call has
    /// no agent bridged, or is unknown).
    MonitorStopped {
        /// The call that was monitored.
        call: String,
        /// Why.
        reason: String,
    },
    /// Something was refused (no such call, a bad message).
    Error {
        /// Shown to the supervisor.
        message: String,
    },
    /// Keepalive answer.
    Pong {},
}

impl MonitorServerMsg {
    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"type":"error","message":"internal"}"#.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_documented() {
        let m: MonitorClientMsg =
            serde_json::from_str(r#"{"type":"monitor","call":"C","mode":"whisper","sdp":"v=0"}"#)
                .unwrap();
        assert_eq!(
            m,
            MonitorClientMsg::Monitor {
                call: "C".into(),
                mode: MonitorMode::Whisper,
                sdp: "v=0".into()
            }
        );
        let m: MonitorClientMsg =
            serde_json::from_str(r#"{"type":"monitor_mode","mode":"barge"}"#).unwrap();
        assert_eq!(
            m,
            MonitorClientMsg::MonitorMode {
                mode: MonitorMode::Barge
            }
        );
        let m: MonitorClientMsg = serde_json::from_str(r#"{"type":"monitor_stop"}"#).unwrap();
        assert_eq!(m, MonitorClientMsg::MonitorStop {});
        let out = MonitorServerMsg::MonitorStopped {
            call: "C".into(),
            reason: "call_ended".into(),
        };
        assert_eq!(
            out.to_json(),
            r#"{"type":"monitor_stopped","call":"C","reason":"call_ended"}"#
        );
    }

    #[test]
    fn who_hears_the_supervisor() {
        use MonitorMode::*;
        assert!(!Listen.agent_hears_supervisor() && !Listen.caller_hears_supervisor());
        assert!(Whisper.agent_hears_supervisor() && !Whisper.caller_hears_supervisor());
        assert!(Barge.agent_hears_supervisor() && Barge.caller_hears_supervisor());
    }
}
