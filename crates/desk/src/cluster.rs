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

use std::time::{Duration, Instant};

use hotline_routing::{AgentId, AgentState, AgentView, CallId, Overflow, QueueName};
use hotline_webphone::protocol::ServerMsg;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::clock::millis;
use crate::core::CoreInput;
use crate::protocol::{CallInfo, DeskNotice, DeskOverview, QueueDepth};
pub use crate::protocol::{MonitorReply, MonitorRequest, WireMonitorStatus};

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

/// What happened in the cluster, for [`crate::NodeDesk::handle_cluster`].
#[derive(Debug)]
pub enum ClusterEvent {
    /// What the ACD election says about this node now.
    Role(ClusterRole),
    /// Mail from another node's desk (boxed: it is by far the largest).
    Mail(Box<DeskMail>),
    /// The nodes whose lease was current at `as_of`: the calls and pages
    /// of any other node not heard from since are gone with it.
    LiveNodes {
        /// The nodes with a current lease.
        live: Vec<String>,
        /// When the election round asked.
        as_of: Instant,
    },
}

/// What the binary tells the desk about the cluster
/// ([`crate::DeskHandle::cluster`]).
#[derive(Debug)]
pub enum ClusterInput {
    /// This node's name and where its mail to other nodes' desks goes
    /// (sent once, before the first event).
    SetCluster {
        /// This node's name (`--node-name`).
        node: String,
        /// Where mail to other nodes goes.
        outbox: Outbox,
    },
    /// What the election says, or mail from another node, for the node's
    /// desk ([`crate::NodeDesk::handle_cluster`]).
    Event(ClusterEvent),
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
        /// When it happened, Unix milliseconds by `from`'s clock: a call
        /// queues where its arrival puts it, however late the mail came.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_ms: Option<u64>,
    },
    /// Follower → leader after a change of leader: every queued call and
    /// every agent page the follower holds, so the new leader decides from
    /// where things are.
    Announce {
        /// The sending node.
        from: String,
        /// The leadership it is meant for.
        epoch: i64,
        /// The calls waiting in queues on `from`, oldest first, with how
        /// long each has waited.
        calls: Vec<AnnouncedCall>,
        /// The agents' pages connected to `from`.
        pages: Vec<AnnouncedPage>,
        /// The calls on `from` bridged to an agent: (call, agent).
        #[serde(default)]
        talking: Vec<(CallInfo, String)>,
    },
    /// Leader → every other live node, every second and soon after agent
    /// states change: what the admin API, `/metrics` and the agents'
    /// overviews show on that node.
    View {
        /// The leadership whose view it is; an older one's is dropped.
        epoch: i64,
        /// Every agent's live state.
        agents: Vec<WireAgentView>,
        /// Every queue's load.
        depths: Vec<WireQueueDepth>,
        /// The overview of each agent whose page is on the receiving node.
        overviews: Vec<(String, DeskOverview)>,
        /// Each queue's recent handle times in milliseconds, oldest first:
        /// the next leader's wait estimates start from them.
        #[serde(default)]
        handle_times: Vec<(String, Vec<u64>)>,
    },
    /// Leader → the node that holds an agent's page or a call.
    Output {
        /// The leadership that decided it; an older one's is dropped.
        epoch: i64,
        /// What to carry out.
        out: RemoteOutput,
    },
    /// A supervisor whose console is on node `from` monitors `call`, which
    /// is on another node: sent to the call's node when `from` knows it
    /// (after the first answer), else to the leader, who forwards it there.
    /// No leadership's business: it never waits for one.
    Monitor {
        /// The console's node, where the replies go.
        from: String,
        /// The supervisor's name (in the call's events).
        supervisor: String,
        /// The call.
        call: String,
        /// The console's monitor session (the audio leg's hub session on
        /// the call's node).
        session: String,
        /// Join, switch mode, or leave.
        request: MonitorRequest,
    },
    /// The call's node → the console's: what became of a [`DeskMail::Monitor`].
    MonitorReply {
        /// The session it answers.
        session: String,
        /// The node that answers (the call's, or one that has no such call).
        node: String,
        /// The answer.
        reply: MonitorReply,
    },
}

/// A call waiting on a node, as it announces it to a new leader. On the
/// wire, the call's own fields and `queued_at_ms` (absent from an older
/// node's mail: the call rejoins at the back).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AnnouncedCall {
    /// The call.
    #[serde(flatten)]
    pub info: CallInfo,
    /// When it queued, Unix milliseconds by its node's clock: the leader
    /// places it among the others by that (nodes' clocks are kept in step
    /// by NTP; a skew of a few milliseconds can swap two callers who came
    /// within it).
    #[serde(default)]
    pub queued_at_ms: Option<u64>,
}

/// An agent's live state as the leader sends it; times are relative to
/// when the view was made (clocks of different nodes' processes do not
/// share an origin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireAgentView {
    /// The agent's id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Skills.
    pub skills: Vec<String>,
    /// `offline`, `available`, `ringing`, `on_call`, `wrap_up` or `away`.
    pub state: String,
    /// Why they are away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The call they ring for, talk on or wrap up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// Milliseconds in the state when the view was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
    /// Milliseconds of wrap-up left when the view was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrap_up_left_ms: Option<u64>,
    /// Removed by an admin while on a call.
    #[serde(default)]
    pub removed: bool,
}

impl WireAgentView {
    /// The wire form of `v`, made at `now`.
    pub fn from_view(v: &AgentView, now: Instant) -> WireAgentView {
        let (reason, wrap_up_left_ms) = match &v.state {
            AgentState::Away { reason } => (Some(reason.clone()), None),
            AgentState::WrapUp { until, .. } => {
                (None, Some(millis(until.saturating_duration_since(now))))
            }
            _ => (None, None),
        };
        WireAgentView {
            id: v.id.as_str().to_owned(),
            name: v.name.clone(),
            skills: v.skills.clone(),
            state: v.state.name().to_owned(),
            reason,
            call: v.call.as_ref().map(|c| c.as_str().to_owned()),
            for_ms: v.since.map(|s| millis(now.saturating_duration_since(s))),
            wrap_up_left_ms,
            removed: v.removed,
        }
    }

    /// The view on this node, received at `at`; `None` for a state this
    /// version does not know.
    pub fn into_view(self, at: Instant) -> Option<AgentView> {
        let call = self.call.clone().map(CallId::new);
        let state = match (self.state.as_str(), call.clone()) {
            ("offline", _) => AgentState::Offline,
            ("available", _) => AgentState::Available,
            ("ringing", Some(call)) => AgentState::Ringing { call },
            ("on_call", Some(call)) => AgentState::OnCall { call },
            ("wrap_up", Some(call)) => AgentState::WrapUp {
                call,
                until: at + Duration::from_millis(self.wrap_up_left_ms.unwrap_or(0)),
            },
            ("away", _) => AgentState::Away {
                reason: self.reason.unwrap_or_default(),
            },
            _ => return None,
        };
        Some(AgentView {
            id: AgentId::new(self.id),
            name: self.name,
            skills: self.skills,
            state,
            since: self
                .for_ms
                .and_then(|d| at.checked_sub(Duration::from_millis(d))),
            call,
            removed: self.removed,
        })
    }
}

/// A queue's load as the leader sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireQueueDepth {
    /// The queue.
    pub queue: String,
    /// Calls waiting.
    pub waiting: usize,
    /// The longest wait when the view was made, in milliseconds.
    pub longest_wait_ms: u64,
    /// Members available.
    pub agents_available: usize,
}

impl WireQueueDepth {
    /// The wire form of `d`.
    pub fn from_depth(d: &QueueDepth) -> WireQueueDepth {
        WireQueueDepth {
            queue: d.queue.clone(),
            waiting: d.waiting,
            longest_wait_ms: millis(d.longest_wait),
            agents_available: d.agents_available,
        }
    }

    /// The depth `since` after the view was made (the longest wait grew).
    pub fn into_depth(self, since: Duration) -> QueueDepth {
        let longest = Duration::from_millis(self.longest_wait_ms);
        QueueDepth {
            queue: self.queue,
            waiting: self.waiting,
            longest_wait: if self.waiting > 0 {
                longest + since
            } else {
                longest
            },
            agents_available: self.agents_available,
        }
    }
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
    fn announced_calls_carry_their_arrival_and_an_older_nodes_mail_still_reads() {
        let info = CallInfo {
            call: "c1".into(),
            queue: "support".into(),
            priority: 1,
            issue_type: Some("refund".into()),
            caller: "+8613900000001".into(),
            dialable: true,
            reply_via: "127.0.0.1:5070".parse().unwrap(),
            path: vec!["menu".into()],
            data: serde_json::json!({"plan": "gold"}),
        };
        let mail = DeskMail::Announce {
            from: "node-a".into(),
            epoch: 3,
            calls: vec![AnnouncedCall {
                info,
                queued_at_ms: Some(1_765_000_000_123),
            }],
            pages: Vec::new(),
            talking: Vec::new(),
        };
        let json = serde_json::to_string(&mail).unwrap();
        let DeskMail::Announce { calls, .. } = serde_json::from_str(&json).unwrap() else {
            panic!("{json}");
        };
        assert_eq!(calls[0].queued_at_ms, Some(1_765_000_000_123));
        assert_eq!(calls[0].info.reply_via.port(), 5070);
        assert_eq!(calls[0].info.data["plan"], "gold");
        // A node of the previous version announces bare calls: they rejoin
        // at the back.
        let old = json.replace(",\"queued_at_ms\":1765000000123", "");
        assert_ne!(old, json);
        let DeskMail::Announce { calls, .. } = serde_json::from_str(&old).unwrap() else {
            panic!("{old}");
        };
        assert_eq!(calls[0].queued_at_ms, None);
        assert_eq!(calls[0].info.call, "c1");
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
            at_ms: None,
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
