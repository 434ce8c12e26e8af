//! [`NodeDesk`]: one node's desk in a cluster, as a sans-IO state machine
//! around the [`DeskCore`] (docs/architecture.md, "One ACD for the
//! cluster").
//!
//! It decides where each input goes and where each output is carried
//! out: a node that leads the ACD (or is alone) hands its own inputs and
//! other nodes' mail to its core, and sends each output to the node that
//! holds the agent's page or the call; a follower mails its inputs to the
//! leader and carries out what the leader mails back. It keeps what a new
//! leader must be told after a change of leader (this node's waiting calls
//! with how long they have waited, its bridged calls, its pages and their
//! availability), and lets go of the calls and pages of nodes whose lease
//! lapsed.
//!
//! Inputs come in with the current time; what to do goes out as
//! [`NodeOutput`]s, in order, and the next wake-up is the core's. The
//! shell ([`crate::AgentDesk`]) owns the channels: the pages' and calls'
//! senders, the dialer, the book, the media hub and the mail.
//!
//! Guarantee (checked by the seeded cluster race test,
//! `tests/cluster_race.rs`, with nodes killed and leaders failing over):
//! no agent is handed two live calls at once and no call two agents,
//! cluster-wide; once a leader is up and agents take calls, every waiting
//! call of a live node is answered, in the order the callers arrived.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use hotline_routing::{AgentConfig, AgentId, AgentView, CallId, QueueConfig};
use hotline_webphone::protocol::{AgentState as PageState, ClientMsg, ServerMsg};

use crate::clock::{millis, unix_ms, wall_at};
use crate::cluster::{
    AnnouncedCall, AnnouncedPage, ClusterEvent, ClusterRole, DeskMail, MonitorReply,
    MonitorRequest, RemoteOutput, WireAgentView, WireMonitorStatus, WireNotice, WireQueueDepth,
};
use crate::core::{CoreInput, DeskCore, DeskOutput};
use crate::policy::DialPolicy;
use crate::protocol::{
    CallInfo, CallbackProgress, DeskNotice, DeskOverview, DialRequest, QueueDepth,
};

/// What a [`NodeDesk`] asks its shell to do, in order.
#[derive(Debug)]
pub enum NodeOutput {
    /// Send `msg` to `agent`'s page on this node (if it is connected).
    ToPage {
        /// The agent.
        agent: AgentId,
        /// What to send.
        msg: ServerMsg,
    },
    /// Tell the actor of `call` on this node (if it still listens).
    Notify {
        /// The call.
        call: CallId,
        /// What to tell it.
        notice: DeskNotice,
    },
    /// The desk let go of `call` on this node: drop its notice channel.
    Forget {
        /// The call.
        call: CallId,
    },
    /// Place a callback leg from this node (its notices come here); if it
    /// cannot be placed, hand [`CoreInput::DialFailed`] back.
    Dial(DialRequest),
    /// A step of a callback entry, for the book.
    Progress(CallbackProgress),
    /// Look whether `agent`'s browser still sends audio on `call` (here)
    /// and answer with [`CoreInput::MediaCheck`].
    CheckMedia {
        /// The agent.
        agent: AgentId,
        /// The call, on this node.
        call: CallId,
    },
    /// Answer `agent`'s SDP offer with this node's media hub (`call` is
    /// here); the answer goes to the page here (`page_node: None`) or by
    /// mail to `page_node`.
    AcceptSdp {
        /// The agent.
        agent: AgentId,
        /// The call, on this node.
        call: CallId,
        /// The browser's offer.
        sdp: String,
        /// The node with the agent's page, when not this one.
        page_node: Option<String>,
    },
    /// Agent states changed: publish the core's agent views.
    StatesChanged,
    /// A supervisor on node `from` monitors `call`, which is here: carry
    /// out `request` (answer the offer with this node's hub, hand the leg
    /// to the call) and mail what becomes of it back to `from`.
    MonitorHere {
        /// The console's node.
        from: String,
        /// The supervisor.
        supervisor: String,
        /// The call, on this node.
        call: CallId,
        /// The console's monitor session.
        session: String,
        /// What to do.
        request: MonitorRequest,
    },
    /// What became of a monitor session of a console on this node, from
    /// the call's node `node`.
    MonitorReply {
        /// The session.
        session: String,
        /// The node that answered.
        node: String,
        /// The answer.
        reply: MonitorReply,
    },
    /// Send `mail` to node `to`'s desk.
    Mail {
        /// The receiving node.
        to: String,
        /// What to send.
        mail: DeskMail,
    },
}

/// Whether this node's core decides.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    /// A node of a cluster that has not heard from the election yet (it
    /// has just started): its inputs wait, so that it decides nothing
    /// another node's desk may be deciding, until the first word or
    /// [`ELECTION_WAIT_MAX`].
    Waiting,
    /// The core decides: this node leads the ACD (`Some(epoch)`), or no
    /// other node is known to (a node alone, one that heard nothing from
    /// the election for [`ELECTION_WAIT_MAX`] after it started, or one
    /// whose database went away).
    Deciding(Option<i64>),
    /// `leader`'s desk decides; inputs go there.
    Following { leader: String, epoch: i64 },
}

/// A call this node holds in the desk: what it is, and since when.
struct LocalCall {
    info: CallInfo,
    queued_at: Instant,
}

/// One node's desk; see the module docs.
pub struct NodeDesk {
    core: DeskCore,
    /// This node's name; `None`: a node alone.
    node: Option<String>,
    mode: Mode,
    /// Instant ↔ wall clock (a new leadership's core starts from it).
    clock: (Instant, SystemTime),
    /// While deciding for other nodes: the node of each call and each
    /// agent's page that is not on this node.
    call_node: HashMap<CallId, String>,
    agent_node: HashMap<AgentId, (String, u64)>,
    /// Calls of nodes that died, until the core lets go of them: what the
    /// core still says about them goes nowhere.
    gone: HashSet<CallId>,
    /// When each other node's desk was last heard from.
    heard: HashMap<String, Instant>,
    /// This node's calls the desk holds, oldest first, and which of them
    /// an agent has.
    local_calls: Vec<LocalCall>,
    bridged: HashMap<CallId, String>,
    /// The pages on this node (their connection), the state each was last
    /// told, and whether it last asked to take calls.
    pages: HashMap<AgentId, u64>,
    page_state: HashMap<AgentId, PageState>,
    page_available: HashMap<AgentId, bool>,
    /// The last configuration and dial policy: a new leadership's core
    /// starts from them.
    config: (Vec<QueueConfig>, Vec<AgentConfig>),
    dial_policy: DialPolicy,
    /// Inputs and announcements for a leadership this node has not heard
    /// of yet (another node read the election first): taken once it leads
    /// in it, dropped once it is past.
    held: VecDeque<DeskMail>,
    /// A new leadership waiting for the announcements, at most this long.
    settling: Option<Settling>,
    settle_max: Duration,
    /// While [`Mode::Waiting`]: this node's inputs so far, and when the
    /// wait ends (set by the first).
    waiting: Vec<(Instant, CoreInput)>,
    waiting_until: Option<Instant>,
    /// While following: the leader's last view, and when it came.
    view: Option<LeaderView>,
    /// While leading: the nodes with a current lease (who get the view and
    /// whom a new leadership waits for; empty until this leadership's first
    /// round), when the view last went out, and whether agent states
    /// changed since.
    live: Vec<String>,
    view_sent: Option<Instant>,
    views_dirty: bool,
    out: VecDeque<NodeOutput>,
}

/// A new leadership waiting for every live node's announcement before its
/// core decides anything: until then an agent whose page moved nodes
/// mid-call could look free while their call's node has yet to say they
/// talk. What comes meanwhile waits here, with when it came.
struct Settling {
    /// The last leader: gone with its database session, not waited for.
    previous: String,
    /// When the wait ends even if a node with a current lease has not
    /// announced (it died and its lease has yet to lapse). The nodes with
    /// a current lease are `NodeDesk::live` (empty until the first round).
    until: Instant,
    /// The nodes that announced (this one included).
    announced: HashSet<String>,
    /// Announced pages, bridged and waiting calls; then availability.
    first: Vec<(Instant, CoreInput, Option<String>)>,
    then: Vec<(Instant, CoreInput, Option<String>)>,
    /// Inputs from any node, in order.
    inputs: Vec<(Instant, CoreInput, Option<String>)>,
}

/// The leader's view, on a follower (see [`DeskMail::View`]).
struct LeaderView {
    at: Instant,
    agents: Vec<AgentView>,
    depths: Vec<WireQueueDepth>,
    overviews: HashMap<String, DeskOverview>,
    handle_times: Vec<(String, Vec<Duration>)>,
}

/// How long a new leadership waits for a node with a current lease to
/// announce before it decides without it: such a node normally announces
/// within milliseconds; one that has not in this time is most likely dead
/// with its lease not yet lapsed (`--node-lease-secs`, 60 s by default),
/// and its calls join when (if) it announces.
pub const SETTLE_MAX: Duration = Duration::from_secs(3);

/// How long a node of a cluster holds its inputs at start for the
/// election's first word (a round takes milliseconds when the database
/// answers) before its desk decides alone, as it does while the database
/// is away.
pub const ELECTION_WAIT_MAX: Duration = Duration::from_secs(3);

/// How often a leader sends its view to the other nodes, and how soon
/// after agent states change.
const VIEW_EVERY: Duration = Duration::from_secs(1);
const VIEW_SOON: Duration = Duration::from_millis(200);

/// What becomes of an input or announcement for leadership `epoch`.
enum Fate {
    Take,
    Hold,
    Drop,
}

/// Mail held for a leadership not heard of yet, at most (then the oldest
/// goes): a few seconds of a busy cluster's inputs.
const HELD_MAX: usize = 4096;

impl NodeDesk {
    /// A node's desk over `queues` and `agents`, deciding alone until the
    /// election says otherwise; `clock` pairs an instant with the wall
    /// clock at that instant.
    pub fn new(
        queues: Vec<QueueConfig>,
        agents: Vec<AgentConfig>,
        clock: (Instant, SystemTime),
    ) -> Self {
        NodeDesk {
            core: DeskCore::new(queues.clone(), agents.clone(), clock),
            node: None,
            mode: Mode::Deciding(None),
            clock,
            call_node: HashMap::new(),
            agent_node: HashMap::new(),
            gone: HashSet::new(),
            heard: HashMap::new(),
            local_calls: Vec::new(),
            bridged: HashMap::new(),
            pages: HashMap::new(),
            page_state: HashMap::new(),
            page_available: HashMap::new(),
            config: (queues, agents),
            dial_policy: DialPolicy::default(),
            held: VecDeque::new(),
            settling: None,
            settle_max: SETTLE_MAX,
            waiting: Vec::new(),
            waiting_until: None,
            view: None,
            live: Vec::new(),
            view_sent: None,
            views_dirty: false,
            out: VecDeque::new(),
        }
    }

    /// Names this node, a node of a cluster: until the election's first
    /// word ([`ClusterEvent::Role`]) its inputs wait (at most
    /// [`ELECTION_WAIT_MAX`]).
    pub fn set_node(&mut self, node: String) {
        self.node = Some(node);
        if self.mode == Mode::Deciding(None) {
            self.mode = Mode::Waiting;
        }
    }

    /// This node's name (`None`: a node alone).
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The deciding core here (for views, and read while following: the
    /// configuration only).
    pub fn core(&self) -> &DeskCore {
        &self.core
    }

    /// Whether this node's core decides for the cluster (or it is alone).
    pub fn deciding(&self) -> bool {
        matches!(self.mode, Mode::Deciding(_))
    }

    /// The leadership this node decides in or follows (0: none known).
    pub fn epoch(&self) -> i64 {
        match &self.mode {
            Mode::Waiting => 0,
            Mode::Deciding(e) => e.unwrap_or(0),
            Mode::Following { epoch, .. } => *epoch,
        }
    }

    /// When to call [`NodeDesk::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core
            .poll_timeout()
            .into_iter()
            .chain(self.view_due())
            .chain(self.settling.as_ref().map(|s| s.until))
            .chain(self.waiting_until)
            .min()
    }

    /// How long a new leadership waits for nodes that have not announced
    /// (default [`SETTLE_MAX`]).
    pub fn set_settle_max(&mut self, max: Duration) {
        self.settle_max = max;
    }

    /// Fires the core's timers due by `now`, and sends the leader's view
    /// when it is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.handle_timeout(now);
        if self.waiting_until.is_some_and(|t| t <= now) {
            self.stop_waiting(now);
        }
        self.try_settle(now);
        if self.view_due().is_some_and(|t| t <= now) {
            self.send_views(now);
        }
    }

    /// Every agent's live state: the core's, or on a follower (and on a
    /// leader still settling) the leader's last view.
    pub fn agent_views(&self) -> Vec<AgentView> {
        match self.leader_view() {
            Some(v) => v.agents.clone(),
            None => self.core.agent_views(),
        }
    }

    /// Every queue's load at `now` (see [`NodeDesk::agent_views`]).
    pub fn queue_depths(&self, now: Instant) -> Vec<QueueDepth> {
        match self.leader_view() {
            Some(v) => {
                let since = now.saturating_duration_since(v.at);
                v.depths
                    .iter()
                    .map(|d| d.clone().into_depth(since))
                    .collect()
            }
            None => queue_depths(self.core.acd(), now),
        }
    }

    /// `agent`'s queues and the callbacks in them (see
    /// [`NodeDesk::agent_views`]).
    pub fn overview(&self, agent: &str, now: Instant) -> DeskOverview {
        match self.leader_view() {
            Some(v) => v.overviews.get(agent).cloned().unwrap_or_default(),
            None => self.core.overview(agent, now),
        }
    }

    /// Whether this node's core decides now: alone, or leading and
    /// settled (its agent views are its own).
    pub fn decides_now(&self) -> bool {
        self.deciding() && self.settling.is_none()
    }

    fn leader_view(&self) -> Option<&LeaderView> {
        if self.decides_now() {
            return None;
        }
        self.view.as_ref()
    }

    /// When the leader's view is next due to go out; `None` when this node
    /// does not send it (not leading, settling, or alone).
    fn view_due(&self) -> Option<Instant> {
        let me = self.node.as_deref()?;
        if !self.deciding() || self.settling.is_some() || !self.live.iter().any(|n| n != me) {
            return None;
        }
        let every = if self.views_dirty {
            VIEW_SOON
        } else {
            VIEW_EVERY
        };
        Some(self.view_sent.map_or(self.clock.0, |t| t + every))
    }

    /// The view to every other live node: agents, queues, and the
    /// overviews of the agents whose page is there.
    fn send_views(&mut self, now: Instant) {
        self.view_sent = Some(now);
        self.views_dirty = false;
        let epoch = self.epoch();
        let agents: Vec<WireAgentView> = self
            .core
            .agent_views()
            .iter()
            .map(|v| WireAgentView::from_view(v, now))
            .collect();
        let depths: Vec<WireQueueDepth> = queue_depths(self.core.acd(), now)
            .iter()
            .map(WireQueueDepth::from_depth)
            .collect();
        let acd = self.core.acd();
        let handle_times: Vec<(String, Vec<u64>)> = acd
            .queues()
            .map(|q| {
                let times = acd
                    .handle_times(&q.name)
                    .iter()
                    .map(|t| millis(*t))
                    .collect();
                (q.name.as_str().to_owned(), times)
            })
            .collect();
        let me = self.node_name().to_owned();
        for node in self.live.clone() {
            if node == me {
                continue;
            }
            let mut overviews: Vec<(String, DeskOverview)> = self
                .agent_node
                .iter()
                .filter(|(_, (n, _))| *n == node)
                .map(|(a, _)| (a.as_str().to_owned(), self.core.overview(a.as_str(), now)))
                .collect();
            overviews.sort_by(|a, b| a.0.cmp(&b.0));
            let mail = DeskMail::View {
                epoch,
                agents: agents.clone(),
                depths: depths.clone(),
                overviews,
                handle_times: handle_times.clone(),
            };
            self.mail(node, mail);
        }
    }

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<NodeOutput> {
        loop {
            if let Some(out) = self.out.pop_front() {
                return Some(out);
            }
            let out = self.core.poll_output()?;
            self.route(out);
        }
    }

    /// What happened on this node: a caller or an agent's page, a media
    /// check's answer, a dial that failed, the configuration.
    pub fn handle_local(&mut self, now: Instant, input: CoreInput) {
        match &input {
            CoreInput::Enqueue(info) => {
                let call = CallId::new(info.call.clone());
                self.local_calls.retain(|c| c.info.call != info.call);
                self.local_calls.push(LocalCall {
                    info: info.clone(),
                    queued_at: now,
                });
                self.bridged.remove(&call);
            }
            CoreInput::CallEnded { call } => {
                self.local_calls.retain(|c| c.info.call != *call);
            }
            CoreInput::AgentConnected { agent, conn } => {
                self.pages.insert(AgentId::new(agent.clone()), *conn);
            }
            CoreInput::AgentMessage {
                agent,
                msg: ClientMsg::Available { on, .. },
                ..
            } => {
                self.page_available.insert(AgentId::new(agent.clone()), *on);
            }
            CoreInput::AgentDisconnected { agent, conn, .. } => {
                let id = AgentId::new(agent.clone());
                if self.pages.get(&id) == Some(conn) {
                    self.pages.remove(&id);
                    self.page_state.remove(&id);
                    self.page_available.remove(&id);
                }
            }
            CoreInput::Configure { queues, agents } => {
                self.config = (queues.clone(), agents.clone());
            }
            CoreInput::SetDialPolicy(p) => self.dial_policy = p.clone(),
            _ => {}
        }
        self.dispatch(now, input, None);
    }

    /// A supervisor on this node monitors `call`, which is not here: the
    /// request goes to `to` (the call's node, known from its first reply),
    /// else to the node this one knows holds the call (deciding), else to
    /// the leader, who forwards it. With nowhere to send it, the session
    /// ends at once (`not_on_call`).
    pub fn monitor_elsewhere(
        &mut self,
        to: Option<String>,
        supervisor: String,
        call: String,
        session: String,
        request: MonitorRequest,
    ) {
        let to = to.or_else(|| match &self.mode {
            Mode::Following { leader, .. } => Some(leader.clone()),
            Mode::Deciding(_) => self.call_node.get(&CallId::new(call.clone())).cloned(),
            Mode::Waiting => None,
        });
        let me = self.node_name().to_owned();
        match to {
            Some(to) if self.node.is_some() && to != me => {
                let mail = DeskMail::Monitor {
                    from: me,
                    supervisor,
                    call,
                    session,
                    request,
                };
                self.mail(to, mail);
            }
            _ => self.out.push_back(NodeOutput::MonitorReply {
                session,
                node: me,
                reply: not_on_call(),
            }),
        }
    }

    /// What the election says, or mail from another node.
    pub fn handle_cluster(&mut self, now: Instant, event: ClusterEvent) {
        match event {
            ClusterEvent::Role(role) => self.on_role(now, role),
            ClusterEvent::Mail(mail) => self.on_mail(now, *mail),
            ClusterEvent::LiveNodes { live, as_of } => self.drop_dead_nodes(now, &live, as_of),
        }
    }

    /// While deciding: the calls and pages of nodes whose lease has lapsed
    /// are gone (the node died); its queue entries are not offered as if
    /// alive, and its agents' pages, unless they came back elsewhere, log
    /// out. A node heard from after the round asked is alive whatever the
    /// answer said (it came back meanwhile).
    fn drop_dead_nodes(&mut self, now: Instant, live: &[String], as_of: Instant) {
        if !self.deciding() {
            return;
        }
        self.live = live.to_vec();
        if self.settling.is_some() {
            self.try_settle(now);
            return;
        }
        let heard = &self.heard;
        let dead =
            |node: &String| !live.contains(node) && heard.get(node).is_none_or(|t| *t < as_of);
        let mut calls: Vec<(CallId, String)> = self
            .call_node
            .iter()
            .filter(|(_, n)| dead(n))
            .map(|(c, n)| (c.clone(), n.clone()))
            .collect();
        calls.sort();
        let mut pages: Vec<(AgentId, (String, u64))> = self
            .agent_node
            .iter()
            .filter(|(_, (n, _))| dead(n))
            .map(|(a, at)| (a.clone(), at.clone()))
            .collect();
        pages.sort();
        for (call, node) in calls {
            tracing::info!(call = %call.as_str(), %node, "the call's node is gone; the desk lets it go");
            self.let_go_call(now, call);
        }
        for (agent, (node, conn)) in pages {
            tracing::info!(agent = %agent.as_str(), %node, "the agent page's node is gone");
            self.let_go_page(now, agent, conn);
        }
    }

    /// A call of another node that is gone: ended for the core, and what
    /// the core still says about it goes nowhere.
    fn let_go_call(&mut self, now: Instant, call: CallId) {
        self.call_node.remove(&call);
        self.gone.insert(call.clone());
        let call = call.as_str().to_owned();
        self.core.handle(now, CoreInput::CallEnded { call });
    }

    /// A page of another node that is gone: it logs out.
    fn let_go_page(&mut self, now: Instant, agent: AgentId, conn: u64) {
        self.agent_node.remove(&agent);
        let agent = agent.as_str().to_owned();
        let input = CoreInput::AgentDisconnected {
            agent,
            conn,
            dropped: false,
        };
        self.core.handle(now, input);
    }

    /// Hands an input from this node (`from: None`) or another to the
    /// deciding core: this node's, or the leader's by mail.
    fn dispatch(&mut self, now: Instant, input: CoreInput, from: Option<String>) {
        if let Some(settling) = &mut self.settling {
            settling.inputs.push((now, input, from));
            return;
        }
        let (leader, epoch) = match &self.mode {
            Mode::Waiting => {
                match input {
                    CoreInput::Configure { .. } | CoreInput::SetDialPolicy(_) => {
                        self.core.handle(now, input)
                    }
                    // Mail from other nodes waits in `held` (its epoch is
                    // not heard of yet); only this node's inputs come here.
                    input => {
                        self.waiting_until.get_or_insert(now + ELECTION_WAIT_MAX);
                        self.waiting.push((now, input));
                    }
                }
                return;
            }
            Mode::Deciding(_) => {
                match (&input, from) {
                    (
                        CoreInput::Enqueue(info)
                        | CoreInput::Restore { info, .. }
                        | CoreInput::Rejoin { info, .. },
                        Some(node),
                    ) => {
                        self.call_node.insert(CallId::new(info.call.clone()), node);
                    }
                    (
                        CoreInput::Enqueue(info)
                        | CoreInput::Restore { info, .. }
                        | CoreInput::Rejoin { info, .. },
                        None,
                    ) => {
                        self.call_node.remove(&CallId::new(info.call.clone()));
                    }
                    (CoreInput::AgentConnected { agent, conn }, Some(node)) => {
                        self.agent_node
                            .insert(AgentId::new(agent.clone()), (node, *conn));
                    }
                    (CoreInput::AgentConnected { agent, .. }, None) => {
                        self.agent_node.remove(&AgentId::new(agent.clone()));
                    }
                    _ => {}
                }
                self.core.handle(now, input);
                return;
            }
            Mode::Following { leader, epoch } => (leader.clone(), *epoch),
        };
        match input {
            // Every node reads these from the database; the local core keeps
            // them for the day this node leads (it holds no call meanwhile).
            CoreInput::Configure { .. } | CoreInput::SetDialPolicy(_) => {
                self.core.handle(now, input)
            }
            // The leader's own book hands it the due ones.
            CoreInput::Booked { .. } => {}
            input => match from {
                None => {
                    let from = self.node_name().to_owned();
                    let at_ms = Some(unix_ms(self.wall(now)));
                    let mail = DeskMail::Input {
                        from,
                        epoch,
                        input,
                        at_ms,
                    };
                    self.mail(leader, mail);
                }
                Some(from) => {
                    tracing::debug!(%from, ?input, "desk input from another node while not leading; dropped");
                }
            },
        }
    }

    fn node_name(&self) -> &str {
        self.node.as_deref().unwrap_or("")
    }

    fn mail(&mut self, to: String, mail: DeskMail) {
        if self.node.is_none() {
            tracing::error!(node = %to, "desk mail without a cluster link; dropped");
            return;
        }
        self.out.push_back(NodeOutput::Mail { to, mail });
    }

    /// What the election says. A node that starts deciding after following
    /// starts from a fresh core and what every node announces; one that
    /// starts following tells the leader what it holds.
    fn on_role(&mut self, now: Instant, role: ClusterRole) {
        let was = self.mode.clone();
        match role {
            ClusterRole::Leading { epoch } => {
                self.mode = Mode::Deciding(Some(epoch));
                // A leadership after another node's (or after one this node
                // did not hear had ended): the core's view is stale.
                // A node that just started may lead a cluster whose other
                // nodes followed a leader it never heard of: it settles too.
                let after = match &was {
                    Mode::Following { leader, .. } => Some(leader.as_str()),
                    Mode::Deciding(Some(e)) if *e != epoch => Some(self.node_name()),
                    Mode::Deciding(_) => None,
                    Mode::Waiting => Some(""),
                };
                if let Some(previous) = after {
                    if previous.is_empty() {
                        tracing::info!(
                            epoch,
                            "this node leads the desk from its start; waiting for every node's announcement"
                        );
                    } else {
                        tracing::info!(epoch, %previous, "this node leads the desk; waiting for every node's announcement");
                    }
                    // The previous leader is not waited for: the lock
                    // changed hands because its database session ended.
                    let previous = previous.to_owned();
                    self.fresh_core(now);
                    self.settling = Some(Settling {
                        previous,
                        until: now + self.settle_max,
                        announced: HashSet::new(),
                        first: Vec::new(),
                        then: Vec::new(),
                        inputs: Vec::new(),
                    });
                    let what = self.announcement();
                    self.announced(now, None, what);
                } else if was != self.mode {
                    tracing::info!(epoch, "this node's desk decides for the cluster");
                }
            }
            ClusterRole::Following { leader, epoch } => {
                if leader == self.node_name() {
                    // The row still names this node from before a restart.
                    return;
                }
                let now_mode = Mode::Following {
                    leader: leader.clone(),
                    epoch,
                };
                if was == now_mode {
                    return;
                }
                tracing::info!(%leader, epoch, "this node's desk follows the ACD leader");
                if let Mode::Deciding(_) = was {
                    self.fresh_core(now);
                }
                self.mode = now_mode;
                let Announcement {
                    calls,
                    pages,
                    talking,
                } = self.announcement();
                let from = self.node_name().to_owned();
                let mail = DeskMail::Announce {
                    from,
                    epoch,
                    calls,
                    pages,
                    talking,
                };
                self.mail(leader, mail);
            }
        }
        if was == Mode::Waiting && self.mode != was {
            self.waited();
        }
        if self.mode != was {
            self.release_held(now);
        }
    }

    /// The election's first word came: what this node holds went out with
    /// its announcement (to the leader, or to its own settling core); the
    /// inputs that waited and that the announcement does not carry follow
    /// it, in order, with when they happened.
    fn waited(&mut self) {
        self.waiting_until = None;
        for (at, input) in std::mem::take(&mut self.waiting) {
            let announced = matches!(
                input,
                CoreInput::Enqueue(_)
                    | CoreInput::Restore { .. }
                    | CoreInput::Rejoin { .. }
                    | CoreInput::CallEnded { .. }
                    | CoreInput::AgentConnected { .. }
                    | CoreInput::AgentDisconnected { .. }
                    | CoreInput::AgentMessage {
                        msg: ClientMsg::Available { .. } | ClientMsg::Hello {},
                        ..
                    }
            );
            if !announced {
                self.dispatch(at, input, None);
            }
        }
    }

    /// No word from the election in [`ELECTION_WAIT_MAX`] (the database is
    /// away): this node's desk decides alone, from what waited, as it does
    /// when the database goes away later.
    fn stop_waiting(&mut self, now: Instant) {
        self.waiting_until = None;
        if self.mode != Mode::Waiting {
            return;
        }
        tracing::warn!(
            waited = ?ELECTION_WAIT_MAX,
            "no word from the ACD election; this node's desk decides alone until there is"
        );
        self.mode = Mode::Deciding(None);
        let waiting = std::mem::take(&mut self.waiting);
        self.replay(now, waiting.into_iter().map(|(at, i)| (at, i, None)));
    }

    /// Hands inputs that waited to the deciding core now; a call's wait
    /// counts from when it was heard of, not from now.
    fn replay(
        &mut self,
        now: Instant,
        inputs: impl IntoIterator<Item = (Instant, CoreInput, Option<String>)>,
    ) {
        for (at, input, from) in inputs {
            let late = millis(now.saturating_duration_since(at));
            let input = match input {
                CoreInput::Enqueue(info) => CoreInput::Rejoin {
                    info,
                    waited_ms: late,
                },
                CoreInput::Rejoin { info, waited_ms } => CoreInput::Rejoin {
                    info,
                    waited_ms: waited_ms.saturating_add(late),
                },
                input => input,
            };
            self.dispatch(now, input, from);
        }
    }

    /// The wall-clock time at `at`.
    fn wall(&self, at: Instant) -> SystemTime {
        wall_at(self.clock, at)
    }

    /// A core with the configuration and nothing else.
    fn fresh_core(&mut self, now: Instant) {
        let wall = self.wall(now);
        self.core = DeskCore::new(self.config.0.clone(), self.config.1.clone(), (now, wall));
        self.core
            .handle(now, CoreInput::SetDialPolicy(self.dial_policy.clone()));
        // The wait estimates go on from the last leader's handle times.
        if let Some(view) = &self.view {
            for (queue, times) in &view.handle_times {
                self.core.seed_handle_times(queue, times);
            }
        }
        self.call_node.clear();
        self.agent_node.clear();
        self.gone.clear();
        self.live.clear();
        self.settling = None;
    }

    /// This node's waiting calls, its pages and its bridged calls, for a
    /// new leader.
    fn announcement(&self) -> Announcement {
        let mut calls = Vec::new();
        let mut talking = Vec::new();
        for c in &self.local_calls {
            match self.bridged.get(&CallId::new(c.info.call.clone())) {
                Some(agent) => talking.push((c.info.clone(), agent.clone())),
                None => calls.push(AnnouncedCall {
                    info: c.info.clone(),
                    queued_at_ms: Some(unix_ms(self.wall(c.queued_at))),
                }),
            }
        }
        let mut pages: Vec<AnnouncedPage> = self
            .pages
            .iter()
            .map(|(agent, conn)| {
                let state = self.page_state.get(agent);
                AnnouncedPage {
                    agent: agent.as_str().to_owned(),
                    conn: *conn,
                    available: self.page_available.get(agent).copied(),
                    busy: matches!(state, Some(PageState::OnCall | PageState::WrapUp)),
                }
            })
            .collect();
        pages.sort_by(|a, b| a.agent.cmp(&b.agent));
        Announcement {
            calls,
            pages,
            talking,
        }
    }

    /// A node's announcement to this (deciding) node: its calls rejoin
    /// their queues where their wait puts them, its pages log in and, if
    /// they were taking calls, go available.
    fn announced(&mut self, now: Instant, from: Option<String>, what: Announcement) {
        let Announcement {
            calls,
            pages,
            talking,
        } = what;
        tracing::info!(
            node = from.as_deref().unwrap_or(self.node_name()),
            calls = calls.len(),
            pages = pages.len(),
            talking = talking.len(),
            "desk state announced"
        );
        if let Some(node) = &from {
            self.forget_unannounced(now, node, &calls, &pages, &talking);
        }
        // The pages, bridged calls and waiting calls first — bridged ones
        // before anyone goes available, so their agents are offered nothing
        // else, and every call in the place its wait gives it before any
        // agent takes one — then who takes calls.
        let mut first = Vec::new();
        let mut then = Vec::new();
        for page in &pages {
            first.push(CoreInput::AgentConnected {
                agent: page.agent.clone(),
                conn: page.conn,
            });
        }
        for (info, agent) in talking {
            first.push(CoreInput::Restore { info, agent });
        }
        let now_ms = unix_ms(self.wall(now));
        for AnnouncedCall { info, queued_at_ms } in calls {
            let waited_ms = queued_at_ms.map_or(0, |t| now_ms.saturating_sub(t));
            first.push(CoreInput::Rejoin { info, waited_ms });
        }
        for page in pages {
            if page.available == Some(true) && !page.busy {
                then.push(CoreInput::AgentMessage {
                    agent: page.agent.clone(),
                    conn: page.conn,
                    msg: ClientMsg::Available {
                        on: true,
                        reason: None,
                    },
                });
            }
            then.push(CoreInput::AgentMessage {
                agent: page.agent,
                conn: page.conn,
                msg: ClientMsg::Hello {},
            });
        }
        if let Some(settling) = &mut self.settling {
            let node = from
                .clone()
                .unwrap_or_else(|| self.node.clone().unwrap_or_default());
            settling.announced.insert(node);
            let at = |input| (now, input, from.clone());
            settling.first.extend(first.into_iter().map(at));
            settling.then.extend(then.into_iter().map(at));
            self.try_settle(now);
            return;
        }
        for input in first.into_iter().chain(then) {
            self.dispatch(now, input, from.clone());
        }
    }

    /// Once every live node announced what it holds, the new leadership's
    /// core takes it all, then what came meanwhile, in order.
    fn try_settle(&mut self, now: Instant) {
        let Some(settling) = &self.settling else {
            return;
        };
        let me = self.node_name();
        let waits_for =
            |n: &String| n != me && *n != settling.previous && !settling.announced.contains(n);
        let all_in = !self.live.is_empty() && !self.live.iter().any(waits_for);
        if !all_in && now < settling.until {
            return;
        }
        let missing: Vec<String> = self.live.iter().filter(|n| waits_for(n)).cloned().collect();
        let Some(settling) = self.settling.take() else {
            return;
        };
        if all_in {
            tracing::info!(
                nodes = settling.announced.len(),
                "every live node announced; this node's desk decides"
            );
        } else {
            tracing::warn!(
                ?missing,
                "nodes with a lease did not announce in time; this node's desk decides without them"
            );
        }
        let all = settling
            .first
            .into_iter()
            .chain(settling.then)
            .chain(settling.inputs);
        self.replay(now, all);
    }

    /// Whether an input or announcement for leadership `epoch` is for this
    /// node's core now, later, or never.
    fn fate(&self, epoch: i64) -> Fate {
        match &self.mode {
            Mode::Waiting => Fate::Hold,
            Mode::Deciding(Some(e)) if epoch == *e => Fate::Take,
            Mode::Deciding(Some(e)) if epoch < *e => Fate::Drop,
            Mode::Deciding(_) => Fate::Hold,
            Mode::Following { epoch: f, .. } if epoch > *f => Fate::Hold,
            Mode::Following { .. } => Fate::Drop,
        }
    }

    /// After a change of role: held mail for the leadership this node now
    /// decides in is taken, in order; mail for a past one is dropped.
    fn release_held(&mut self, now: Instant) {
        for mail in std::mem::take(&mut self.held) {
            self.on_mail(now, mail);
        }
    }

    /// A node's announcement is all it holds: what this core has of it
    /// beyond that went with an earlier life of the node (killed and
    /// restarted within its lease) and is let go, not offered as if alive.
    fn forget_unannounced(
        &mut self,
        now: Instant,
        node: &str,
        calls: &[AnnouncedCall],
        pages: &[AnnouncedPage],
        talking: &[(CallInfo, String)],
    ) {
        let announced: HashSet<&str> = calls
            .iter()
            .map(|c| c.info.call.as_str())
            .chain(talking.iter().map(|(c, _)| c.call.as_str()))
            .collect();
        let mut stale: Vec<CallId> = self
            .call_node
            .iter()
            .filter(|(c, n)| *n == node && !announced.contains(c.as_str()))
            .map(|(c, _)| c.clone())
            .collect();
        stale.sort();
        for call in stale {
            tracing::info!(call = %call.as_str(), %node, "a call its node no longer holds; the desk lets it go");
            self.let_go_call(now, call);
        }
        let mut stale: Vec<(AgentId, u64)> = self
            .agent_node
            .iter()
            .filter(|(a, (n, conn))| {
                n == node
                    && !pages
                        .iter()
                        .any(|p| p.agent == a.as_str() && p.conn == *conn)
            })
            .map(|(a, (_, conn))| (a.clone(), *conn))
            .collect();
        stale.sort();
        for (agent, conn) in stale {
            self.let_go_page(now, agent, conn);
        }
    }

    /// Mail from another node's desk.
    fn on_mail(&mut self, now: Instant, mail: DeskMail) {
        let epoch = match &mail {
            DeskMail::Input { epoch, from, .. } | DeskMail::Announce { epoch, from, .. } => {
                self.heard.insert(from.clone(), now);
                Some(*epoch)
            }
            DeskMail::Monitor { .. } | DeskMail::MonitorReply { .. } => None,
            DeskMail::Output { epoch, .. } | DeskMail::View { epoch, .. } => {
                // From a leadership before the one this node follows or
                // decides in: it has told the new leader where things are
                // (without this), and that leader decides from there.
                if *epoch < self.epoch() {
                    tracing::debug!(epoch, "desk output of a past leadership; dropped");
                    return;
                }
                None
            }
        };
        if let Some(epoch) = epoch {
            match self.fate(epoch) {
                Fate::Take => {}
                Fate::Hold => {
                    if self.held.len() >= HELD_MAX {
                        self.held.pop_front();
                        tracing::warn!(
                            "too much desk mail for a leadership not heard of; the oldest dropped"
                        );
                    }
                    self.held.push_back(mail);
                    return;
                }
                Fate::Drop => {
                    tracing::debug!(epoch, "desk mail for a past leadership; dropped");
                    return;
                }
            }
        }
        match mail {
            DeskMail::Input {
                from, input, at_ms, ..
            } => {
                let input = match (input, at_ms) {
                    (CoreInput::Enqueue(info), Some(at)) => {
                        let waited_ms = unix_ms(self.wall(now)).saturating_sub(at);
                        CoreInput::Rejoin { info, waited_ms }
                    }
                    (input, _) => input,
                };
                self.dispatch(now, input, Some(from))
            }
            DeskMail::Announce {
                from,
                calls,
                pages,
                talking,
                ..
            } => {
                let what = Announcement {
                    calls,
                    pages,
                    talking,
                };
                self.announced(now, Some(from), what);
            }
            DeskMail::View {
                agents,
                depths,
                overviews,
                handle_times,
                ..
            } => {
                if self.decides_now() {
                    return;
                }
                self.view = Some(LeaderView {
                    at: now,
                    agents: agents
                        .into_iter()
                        .filter_map(|a| a.into_view(now))
                        .collect(),
                    depths,
                    overviews: overviews.into_iter().collect(),
                    handle_times: handle_times
                        .into_iter()
                        .map(|(q, t)| (q, t.into_iter().map(Duration::from_millis).collect()))
                        .collect(),
                });
                self.out.push_back(NodeOutput::StatesChanged);
            }
            DeskMail::Monitor {
                from,
                supervisor,
                call,
                session,
                request,
            } => self.on_monitor(from, supervisor, call, session, request),
            DeskMail::MonitorReply {
                session,
                node,
                reply,
            } => self.out.push_back(NodeOutput::MonitorReply {
                session,
                node,
                reply,
            }),
            DeskMail::Output { out, .. } => match out {
                RemoteOutput::ToAgent { agent, msg } => self.tell_page(AgentId::new(agent), msg),
                RemoteOutput::Notify { call, notice } => {
                    self.deliver(CallId::new(call), notice.into_notice())
                }
                RemoteOutput::Forget { call } => self.forget_here(CallId::new(call)),
                RemoteOutput::CheckMedia { agent, call } => {
                    self.out.push_back(NodeOutput::CheckMedia {
                        agent: AgentId::new(agent),
                        call: CallId::new(call),
                    })
                }
                RemoteOutput::AcceptSdp {
                    agent,
                    call,
                    sdp,
                    page_node,
                } => {
                    let page_node = (page_node != self.node_name()).then_some(page_node);
                    self.out.push_back(NodeOutput::AcceptSdp {
                        agent: AgentId::new(agent),
                        call: CallId::new(call),
                        sdp,
                        page_node,
                    });
                }
            },
        }
    }

    /// A monitor request from a console on another node: carried out here
    /// if the call is here; forwarded to the call's node by a deciding
    /// node that knows it; else the session ends (`not_on_call`).
    fn on_monitor(
        &mut self,
        from: String,
        supervisor: String,
        call: String,
        session: String,
        request: MonitorRequest,
    ) {
        let id = CallId::new(call.clone());
        if self.local_calls.iter().any(|c| c.info.call == call) {
            self.out.push_back(NodeOutput::MonitorHere {
                from,
                supervisor,
                call: id,
                session,
                request,
            });
            return;
        }
        let there = match self.mode {
            Mode::Deciding(_) => self.call_node.get(&id).filter(|n| **n != from).cloned(),
            _ => None,
        };
        match there {
            Some(node) => {
                let mail = DeskMail::Monitor {
                    from,
                    supervisor,
                    call,
                    session,
                    request,
                };
                self.mail(node, mail);
            }
            None => {
                let node = self.node_name().to_owned();
                let reply = DeskMail::MonitorReply {
                    session,
                    node,
                    reply: not_on_call(),
                };
                self.mail(from, reply);
            }
        }
    }

    /// A notice for a call on this node.
    fn deliver(&mut self, call: CallId, notice: DeskNotice) {
        match &notice {
            DeskNotice::Accepted { agent } => {
                self.bridged.insert(call.clone(), agent.clone());
            }
            DeskNotice::AgentLost { requeued: true, .. } => {
                self.bridged.remove(&call);
            }
            _ => {}
        }
        self.out.push_back(NodeOutput::Notify { call, notice });
    }

    /// The desk let go of a call on this node.
    fn forget_here(&mut self, call: CallId) {
        self.bridged.remove(&call);
        self.local_calls.retain(|c| c.info.call != call.as_str());
        self.out.push_back(NodeOutput::Forget { call });
    }

    /// A message for a page on this node.
    fn tell_page(&mut self, agent: AgentId, msg: ServerMsg) {
        if let ServerMsg::State { state, .. } = &msg
            && self.pages.contains_key(&agent)
        {
            self.page_state.insert(agent.clone(), *state);
        }
        self.out.push_back(NodeOutput::ToPage { agent, msg });
    }

    /// Routes one of the core's outputs: here, or by mail to the node that
    /// holds the page or the call.
    fn route(&mut self, out: DeskOutput) {
        let epoch = self.epoch();
        if !self.gone.is_empty() {
            match &out {
                DeskOutput::Notify { call, .. }
                | DeskOutput::CheckMedia { call, .. }
                | DeskOutput::AcceptSdp { call, .. }
                    if self.gone.contains(call) =>
                {
                    return;
                }
                DeskOutput::Detach { call } | DeskOutput::Forget { call }
                    if self.gone.remove(call) =>
                {
                    return;
                }
                _ => {}
            }
        }
        match out {
            DeskOutput::ToAgent { agent, msg } => match self.agent_node.get(&agent) {
                Some((node, _)) => {
                    let node = node.clone();
                    let agent = agent.as_str().to_owned();
                    let out = RemoteOutput::ToAgent { agent, msg };
                    self.mail(node, DeskMail::Output { epoch, out });
                }
                None => self.tell_page(agent, msg),
            },
            DeskOutput::Notify { call, notice } => match self.call_node.get(&call).cloned() {
                Some(node) => match WireNotice::from_notice(notice) {
                    Some(notice) => {
                        let call = call.as_str().to_owned();
                        let out = RemoteOutput::Notify { call, notice };
                        self.mail(node, DeskMail::Output { epoch, out });
                    }
                    None => {
                        tracing::error!(call = %call.as_str(), "a leg or monitor notice cannot go to another node")
                    }
                },
                None => self.deliver(call, notice),
            },
            DeskOutput::Dial(request) => {
                // The callback leg is placed here: its notices stay here.
                self.call_node.remove(&CallId::new(request.entry.clone()));
                self.out.push_back(NodeOutput::Dial(request));
            }
            DeskOutput::Detach { call } | DeskOutput::Forget { call } => {
                match self.call_node.remove(&call) {
                    Some(node) => {
                        let call = call.as_str().to_owned();
                        let out = RemoteOutput::Forget { call };
                        self.mail(node, DeskMail::Output { epoch, out });
                    }
                    None => self.forget_here(call),
                }
            }
            DeskOutput::Progress(p) => self.out.push_back(NodeOutput::Progress(p)),
            DeskOutput::CheckMedia { agent, call } => match self.call_node.get(&call).cloned() {
                Some(node) => {
                    let out = RemoteOutput::CheckMedia {
                        agent: agent.as_str().to_owned(),
                        call: call.as_str().to_owned(),
                    };
                    self.mail(node, DeskMail::Output { epoch, out });
                }
                None => self.out.push_back(NodeOutput::CheckMedia { agent, call }),
            },
            DeskOutput::AcceptSdp { agent, call, sdp } => {
                let page = self.agent_node.get(&agent).map(|(n, _)| n.clone());
                match self.call_node.get(&call).cloned() {
                    Some(node) => {
                        let page_node = page.unwrap_or_else(|| self.node_name().to_owned());
                        let out = RemoteOutput::AcceptSdp {
                            agent: agent.as_str().to_owned(),
                            call: call.as_str().to_owned(),
                            sdp,
                            page_node,
                        };
                        self.mail(node, DeskMail::Output { epoch, out });
                    }
                    None => self.out.push_back(NodeOutput::AcceptSdp {
                        agent,
                        call,
                        sdp,
                        page_node: page,
                    }),
                }
            }
            // A settling leader's fresh core is not what agents look like:
            // the last view stands until it has heard from every node.
            DeskOutput::StatesChanged => {
                if self.settling.is_none() {
                    self.views_dirty = true;
                    self.out.push_back(NodeOutput::StatesChanged);
                }
            }
        }
    }
}

/// What a node tells a new leader (see [`DeskMail::Announce`]).
struct Announcement {
    calls: Vec<AnnouncedCall>,
    pages: Vec<AnnouncedPage>,
    talking: Vec<(CallInfo, String)>,
}

/// Every queue's [`QueueDepth`] at `now`, by name.
fn queue_depths(acd: &hotline_routing::Acd, now: Instant) -> Vec<QueueDepth> {
    acd.queues()
        .map(|q| QueueDepth {
            queue: q.name.as_str().to_owned(),
            waiting: q.waiting.len(),
            longest_wait: q
                .waiting
                .iter()
                .map(|c| now.saturating_duration_since(c.queued_at))
                .max()
                .unwrap_or_default(),
            agents_available: q
                .members
                .iter()
                .filter(|a| {
                    acd.agent(a)
                        .is_some_and(|v| matches!(v.state, hotline_routing::AgentState::Available))
                })
                .count(),
        })
        .collect()
}

/// The reply that ends a monitor session whose call is nowhere to be found.
fn not_on_call() -> MonitorReply {
    MonitorReply::Status {
        status: WireMonitorStatus::Stopped {
            reason: "not_on_call".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_routing::{Acd, AgentConfig, QueueConfig, QueueName};
    use std::time::Duration;

    #[test]
    fn queue_depths_count_waiting_calls_and_available_members() {
        let t0 = Instant::now();
        let member = |q: &str, m: &[&str]| QueueConfig {
            members: m.iter().map(|a| AgentId::new((*a).to_owned())).collect(),
            ..QueueConfig::new(q)
        };
        let mut acd = Acd::new(
            [member("sales", &["x"]), member("support", &["y", "z"])],
            [
                AgentConfig::new("x", "X"),
                AgentConfig::new("y", "Y"),
                AgentConfig::new("z", "Z"),
            ],
        );
        let support = QueueName::from("support");
        for call in ["c1", "c2"] {
            acd.enqueue(CallId::new(call.to_owned()), &support, 0, None, t0)
                .unwrap();
        }
        let x = AgentId::new("x".to_owned());
        acd.agent_login(&x, t0).unwrap();
        acd.set_available(&x, t0).unwrap();
        let later = t0 + Duration::from_secs(30);
        let depths = queue_depths(&acd, later);
        let by_name = |n: &str| depths.iter().find(|d| d.queue == n).unwrap().clone();
        assert_eq!(
            by_name("support"),
            QueueDepth {
                queue: "support".into(),
                waiting: 2,
                longest_wait: Duration::from_secs(30),
                agents_available: 0,
            }
        );
        assert_eq!(by_name("sales").waiting, 0);
        assert_eq!(by_name("sales").agents_available, 1);
    }
}
