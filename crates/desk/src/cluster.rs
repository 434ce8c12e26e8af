//! The desk across nodes (issue 15; docs/architecture.md, "One ACD for
//! the cluster"): one node's desk — the ACD leader's — decides for every
//! node; the others forward what their callers and agents' pages do to it
//! and carry out what it decides for them.
//!
//! The seam is the core's own: a follower hands the leader the
//! [`CoreInput`] it would have handed its own core (stripped of channels,
//! which stay on the node that owns them), and the leader sends each
//! [`DeskOutput`] to the node that holds its agent's page or its call. What
//! travels between nodes is a [`DeskMail`] (JSON); the binary carries it
//! (PostgreSQL: a table and NOTIFY). Which node leads comes from the
//! election as a [`ClusterRole`].

use std::time::Duration;

use hotline_routing::{Overflow, QueueName};
use hotline_webphone::protocol::ServerMsg;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::core::CoreInput;
use crate::protocol::{CallInfo, DeskNotice};

/// What the election says about this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterRole {
    /// This node holds the ACD lock (leadership number `epoch`).
    Leading {
        /// Bumped by every new leadership.
        epoch: i64,
    },
    /// Another node leads.
    Following {
        /// The leading node's name.
        leader: String,
        /// Its leadership's number.
        epoch: i64,
    },
}

/// What the binary tells the desk about the cluster
/// ([`crate::DeskHandle::cluster`]).
#[derive(Debug)]
pub enum ClusterInput {
    /// This node's name and where its mail to other nodes' desks goes
    /// (sent once, before the first [`ClusterInput::Role`]).
    SetCluster {
        /// This node's name (`--node-name`).
        node: String,
        /// Where mail to other nodes goes.
        outbox: Outbox,
    },
    /// What the ACD election says about this node now.
    Role(ClusterRole),
    /// Mail from another node's desk (boxed: it is by far the largest).
    Mail(Box<DeskMail>),
    /// The nodes whose lease is current (sent by the leader's election
    /// round): the calls and pages of any other node are gone with it.
    LiveNodes(Vec<String>),
}

/// Where a desk's mail to other nodes goes: `(to node, mail)`.
pub type Outbox = mpsc::UnboundedSender<(String, DeskMail)>;

/// A message between two nodes' desks.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeskMail {
    /// Follower → leader: an input for the deciding core, from node `from`.
    Input {
        /// The sending node.
        from: String,
        /// The leadership it is meant for; another leadership drops it.
        epoch: i64,
        /// What happened on `from`.
        input: CoreInput,
    },
    /// Follower → leader after a change of leader: every queued call and
    /// every agent page the follower holds, so the new leader decides from
    /// where things are.
    Announce {
        /// The sending node.
        from: String,
        /// The leadership it is meant for.
        epoch: i64,
        /// The calls waiting in queues on `from`, oldest first.
        calls: Vec<CallInfo>,
        /// The agents' pages connected to `from`.
        pages: Vec<AnnouncedPage>,
        /// The calls on `from` bridged to an agent: (call, agent).
        #[serde(default)]
        talking: Vec<(CallInfo, String)>,
    },
    /// Leader → the node that holds an agent's page or a call.
    Output {
        /// The leadership that decided it; an older one's is dropped.
        epoch: i64,
        /// What to carry out.
        out: RemoteOutput,
    },
}

/// An agent page a follower holds, as it announces it to a new leader.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AnnouncedPage {
    /// The agent.
    pub agent: String,
    /// The page's socket.
    pub conn: u64,
    /// The page's last `available` request (`Some(true)`: taking calls).
    pub available: Option<bool>,
    /// The page is on (or wrapping up) a call the new leader cannot know
    /// of: it is not offered another until the page says `available` again.
    pub busy: bool,
}

/// A desk output for another node.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum RemoteOutput {
    /// Send `msg` to `agent`'s page.
    ToAgent {
        /// The agent.
        agent: String,
        /// What to send.
        msg: ServerMsg,
    },
    /// Tell `call`'s actor.
    Notify {
        /// The call.
        call: String,
        /// What to tell it.
        notice: WireNotice,
    },
    /// The desk let go of `call` (or nobody is on its line any more).
    Forget {
        /// The call.
        call: String,
    },
    /// `agent`'s page dropped off mid-call: look at their audio (it ends on
    /// the call's node) and answer the leader with a media check.
    CheckMedia {
        /// The agent.
        agent: String,
        /// The call they are on.
        call: String,
    },
    /// Answer `agent`'s SDP offer with this node's media hub (the call's
    /// audio is here), the answer to the page on `page_node`.
    AcceptSdp {
        /// The agent.
        agent: String,
        /// The call.
        call: String,
        /// The browser's offer.
        sdp: String,
        /// The node that holds the agent's page.
        page_node: String,
    },
}

/// A [`DeskNotice`] the core makes, in a form that travels (the legs and
/// monitor requests, which carry channels, never leave their node).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum WireNotice {
    /// See [`DeskNotice::UnknownQueue`].
    UnknownQueue,
    /// See [`DeskNotice::Position`].
    Position {
        /// 1 is next.
        position: usize,
        /// In milliseconds.
        estimated_wait_ms: Option<u64>,
    },
    /// See [`DeskNotice::Offered`].
    Offered {
        /// The agent rung.
        agent: String,
    },
    /// See [`DeskNotice::OfferEnded`].
    OfferEnded {
        /// The agent.
        agent: String,
        /// `accepted`, `declined`, `timeout` or `withdrawn`.
        outcome: String,
    },
    /// See [`DeskNotice::Accepted`].
    Accepted {
        /// The agent.
        agent: String,
    },
    /// See [`DeskNotice::AgentHungUp`].
    AgentHungUp {
        /// The agent.
        agent: String,
        /// The queue whose survey the caller hears.
        survey: Option<String>,
    },
    /// See [`DeskNotice::AgentLost`].
    AgentLost {
        /// The agent.
        agent: String,
        /// Back in the queue.
        requeued: bool,
    },
    /// See [`DeskNotice::Overflow`].
    Overflow {
        /// `voicemail`, `callback`, `hangup` or `queue:<name>`.
        target: String,
    },
    /// See [`DeskNotice::Hold`].
    Hold {
        /// Hold starts.
        on: bool,
    },
    /// See [`DeskNotice::Mute`].
    Mute {
        /// Muted.
        on: bool,
    },
    /// See [`DeskNotice::RecordingPause`].
    RecordingPause {
        /// The agent.
        agent: String,
        /// Paused.
        on: bool,
    },
    /// See [`DeskNotice::Dtmf`].
    Dtmf {
        /// The key.
        digit: char,
    },
    /// See [`DeskNotice::WrapUpDone`].
    WrapUpDone {
        /// The agent.
        agent: String,
        /// The form's code.
        disposition: Option<String>,
        /// The notes.
        notes: String,
        /// Seconds of wrap-up.
        seconds: u64,
    },
}

const OUTCOMES: [&str; 4] = ["accepted", "declined", "timeout", "withdrawn"];

impl WireNotice {
    /// The wire form of `notice`; `None` for a leg or a monitor request
    /// (they carry channels; the core never makes them).
    pub fn from_notice(notice: DeskNotice) -> Option<WireNotice> {
        Some(match notice {
            DeskNotice::UnknownQueue => WireNotice::UnknownQueue,
            DeskNotice::Position {
                position,
                estimated_wait,
            } => WireNotice::Position {
                position,
                estimated_wait_ms: estimated_wait
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            },
            DeskNotice::Offered { agent } => WireNotice::Offered { agent },
            DeskNotice::OfferEnded { agent, outcome } => WireNotice::OfferEnded {
                agent,
                outcome: outcome.to_owned(),
            },
            DeskNotice::Accepted { agent } => WireNotice::Accepted { agent },
            DeskNotice::AgentHungUp { agent, survey } => WireNotice::AgentHungUp { agent, survey },
            DeskNotice::AgentLost { agent, requeued } => WireNotice::AgentLost { agent, requeued },
            DeskNotice::Overflow { target } => WireNotice::Overflow {
                target: match target {
                    Overflow::Voicemail => "voicemail".into(),
                    Overflow::Callback => "callback".into(),
                    Overflow::Hangup => "hangup".into(),
                    Overflow::Queue(q) => format!("queue:{}", q.as_str()),
                },
            },
            DeskNotice::Hold { on } => WireNotice::Hold { on },
            DeskNotice::Mute { on } => WireNotice::Mute { on },
            DeskNotice::RecordingPause { agent, on } => WireNotice::RecordingPause { agent, on },
            DeskNotice::Dtmf { digit } => WireNotice::Dtmf { digit },
            DeskNotice::WrapUpDone {
                agent,
                disposition,
                notes,
                seconds,
            } => WireNotice::WrapUpDone {
                agent,
                disposition,
                notes,
                seconds,
            },
            DeskNotice::Leg { .. } | DeskNotice::Monitor { .. } => return None,
        })
    }

    /// The notice for the call's actor. An outcome or overflow target this
    /// version does not know reads as `withdrawn` / `hangup`.
    pub fn into_notice(self) -> DeskNotice {
        match self {
            WireNotice::UnknownQueue => DeskNotice::UnknownQueue,
            WireNotice::Position {
                position,
                estimated_wait_ms,
            } => DeskNotice::Position {
                position,
                estimated_wait: estimated_wait_ms.map(Duration::from_millis),
            },
            WireNotice::Offered { agent } => DeskNotice::Offered { agent },
            WireNotice::OfferEnded { agent, outcome } => DeskNotice::OfferEnded {
                agent,
                outcome: OUTCOMES
                    .iter()
                    .find(|o| **o == outcome)
                    .copied()
                    .unwrap_or("withdrawn"),
            },
            WireNotice::Accepted { agent } => DeskNotice::Accepted { agent },
            WireNotice::AgentHungUp { agent, survey } => DeskNotice::AgentHungUp { agent, survey },
            WireNotice::AgentLost { agent, requeued } => DeskNotice::AgentLost { agent, requeued },
            WireNotice::Overflow { target } => DeskNotice::Overflow {
                target: match target.as_str() {
                    "voicemail" => Overflow::Voicemail,
                    "callback" => Overflow::Callback,
                    t => match t.strip_prefix("queue:") {
                        Some(q) => Overflow::Queue(QueueName::from(q)),
                        None => Overflow::Hangup,
                    },
                },
            },
            WireNotice::Hold { on } => DeskNotice::Hold { on },
            WireNotice::Mute { on } => DeskNotice::Mute { on },
            WireNotice::RecordingPause { agent, on } => DeskNotice::RecordingPause { agent, on },
            WireNotice::Dtmf { digit } => DeskNotice::Dtmf { digit },
            WireNotice::WrapUpDone {
                agent,
                disposition,
                notes,
                seconds,
            } => DeskNotice::WrapUpDone {
                agent,
                disposition,
                notes,
                seconds,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(n: DeskNotice) -> DeskNotice {
        let wire = WireNotice::from_notice(n).expect("travels");
        let json = serde_json::to_string(&wire).unwrap();
        let back: WireNotice = serde_json::from_str(&json).unwrap();
        assert_eq!(back, wire, "{json}");
        back.into_notice()
    }

    #[test]
    fn notices_survive_the_wire() {
        let n = round_trip(DeskNotice::Position {
            position: 3,
            estimated_wait: Some(Duration::from_millis(42_500)),
        });
        assert!(matches!(
            n,
            DeskNotice::Position { position: 3, estimated_wait: Some(d) } if d == Duration::from_millis(42_500)
        ));
        let n = round_trip(DeskNotice::OfferEnded {
            agent: "a1".into(),
            outcome: "timeout",
        });
        assert!(matches!(
            n,
            DeskNotice::OfferEnded {
                outcome: "timeout",
                ..
            }
        ));
        for target in [
            Overflow::Voicemail,
            Overflow::Callback,
            Overflow::Hangup,
            Overflow::Queue(QueueName::from("sales")),
        ] {
            let n = round_trip(DeskNotice::Overflow {
                target: target.clone(),
            });
            assert!(matches!(n, DeskNotice::Overflow { target: t } if t == target));
        }
    }

    #[test]
    fn an_unknown_outcome_reads_as_withdrawn() {
        let wire: WireNotice =
            serde_json::from_str(r#"{"notice":"offer_ended","agent":"a","outcome":"eaten"}"#)
                .unwrap();
        assert!(matches!(
            wire.into_notice(),
            DeskNotice::OfferEnded {
                outcome: "withdrawn",
                ..
            }
        ));
    }

    #[test]
    fn inputs_travel_and_channels_do_not() {
        let mail = DeskMail::Input {
            from: "node-b".into(),
            epoch: 7,
            input: CoreInput::AgentMessage {
                agent: "a1".into(),
                conn: 3,
                msg: hotline_webphone::protocol::ClientMsg::Answer { call: "c1".into() },
            },
        };
        let json = serde_json::to_string(&mail).unwrap();
        let back: DeskMail = serde_json::from_str(&json).unwrap();
        assert!(
            matches!(
                back,
                DeskMail::Input {
                    epoch: 7,
                    input: CoreInput::AgentMessage { conn: 3, .. },
                    ..
                }
            ),
            "{json}"
        );
        // Configuration never travels: every node reads it from the database.
        let config = CoreInput::Configure {
            queues: Vec::new(),
            agents: Vec::new(),
        };
        assert!(serde_json::to_string(&config).is_err());
    }
}
