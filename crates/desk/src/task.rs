//! The desk's task: the async shell around [`DeskCore`].
//!
//! One task owns the core; call actors and agent sockets talk to it over one
//! channel, so every routing decision is taken in one place, in order —
//! which is what makes "two agents answer one call" impossible rather than
//! unlikely. The task keeps what the core must not hold: each agent page's
//! sender, each call's notice sender, the dialer, the callback book, the
//! clock, and the media hub's round trips (answering an agent's SDP,
//! checking whether a dropped page's browser still sends audio).

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use hotline_routing::{AgentConfig, AgentId, AgentView, CallId, QueueConfig};
use hotline_webphone::AgentMediaHub;
use hotline_webphone::protocol::{AgentState as PageState, ClientMsg, ServerMsg};
use tokio::sync::{mpsc, oneshot, watch};

use crate::cluster::{
    AnnouncedPage, ClusterInput, ClusterRole, DeskMail, Outbox, RemoteOutput, WireNotice,
};
use crate::core::{CoreInput, DeskCore, DeskOutput};
use crate::policy::DialPolicy;
use crate::protocol::{
    AgentSocketEvent, CallInfo, CallbackProgress, DeskInput, DeskNotice, DeskOverview, DialOrder,
    Dialer, MonitorAction, MonitorStatus, QueueDepth,
};

/// After a dropped page, when to look at the agent's audio, and how long
/// without a frame (a live page sends one every 20 ms) means the browser
/// is gone.
const MEDIA_CHECK_AFTER: Duration = Duration::from_millis(300);
const MEDIA_SILENT: Duration = Duration::from_millis(250);

/// Cloned into call actors, the agent socket route and the admin API.
#[derive(Clone)]
pub struct DeskHandle {
    tx: mpsc::Sender<DeskInput>,
    cluster: mpsc::Sender<ClusterInput>,
    states: watch::Receiver<Vec<AgentView>>,
    hub: AgentMediaHub,
}

impl DeskHandle {
    /// Hands `input` to the desk's task, waiting while its queue is full;
    /// logs an error if the desk is gone.
    pub async fn send(&self, input: DeskInput) {
        // Waiting is rare and boxed: inline, the send future would sit in
        // every call actor's task for the few times the desk is behind.
        let input = match self.tx.try_send(input) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(input)) => input,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("agent desk is gone");
                return;
            }
        };
        if Box::pin(self.tx.send(input)).await.is_err() {
            tracing::error!("agent desk is gone");
        }
    }

    /// Hands the desk what the election says, or mail from another node,
    /// in order; logs an error if the desk is gone.
    pub async fn cluster(&self, input: ClusterInput) {
        if self.cluster.send(input).await.is_err() {
            tracing::error!("agent desk is gone");
        }
    }

    /// Live agent states (for the admin API); wakes on every change.
    pub fn watch_states(&self) -> watch::Receiver<Vec<AgentView>> {
        self.states.clone()
    }

    /// The media hub agents' WebRTC legs run on.
    pub fn hub(&self) -> &AgentMediaHub {
        &self.hub
    }

    /// Every queue's waiting calls and available members (for `/metrics`);
    /// `None` if the desk is gone.
    pub async fn queue_depths(&self) -> Option<Vec<QueueDepth>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(DeskInput::QueueDepths { reply }).await.ok()?;
        rx.await.ok()
    }

    /// `agent`'s queues and the callbacks in them; `None` if the desk is gone.
    pub async fn overview(&self, agent: &str) -> Option<DeskOverview> {
        let (reply, rx) = oneshot::channel();
        let input = DeskInput::Overview {
            agent: agent.to_owned(),
            reply,
        };
        self.tx.send(input).await.ok()?;
        rx.await.ok()
    }
}

/// The desk task's state: the core and the channels around it.
pub struct AgentDesk {
    core: DeskCore,
    hub: AgentMediaHub,
    /// Each agent's current page: its connection id and sender.
    pages: HashMap<AgentId, (u64, mpsc::Sender<ServerMsg>)>,
    /// Each call's notice channel (to its actor, or its callback leg).
    notices: HashMap<CallId, mpsc::Sender<DeskNotice>>,
    states: watch::Sender<Vec<AgentView>>,
    /// Places callback legs; `None` until the router is up.
    dialer: Option<Dialer>,
    /// Where callback steps go (the `callbacks` table); `None`: nowhere.
    book: Option<mpsc::UnboundedSender<CallbackProgress>>,
    /// Answers to the media checks the task started.
    checks_tx: mpsc::Sender<CoreInput>,
    /// This node's name and its mail to other nodes; `None`: a node alone.
    cluster: Option<(String, Outbox)>,
    /// Whether this node's core decides, or forwards to the leader's.
    mode: Mode,
    /// While deciding for other nodes: the node of each call and each
    /// agent's page that is not on this node.
    call_node: HashMap<CallId, String>,
    agent_node: HashMap<AgentId, (String, u64)>,
    /// This node's calls the desk holds, oldest first, and which of them an
    /// agent has (what a new leader is told: see [`DeskMail::Announce`]).
    local_calls: Vec<CallInfo>,
    bridged: HashMap<CallId, String>,
    /// The state each page on this node was last told, and whether it
    /// last asked to take calls.
    page_state: HashMap<AgentId, PageState>,
    page_available: HashMap<AgentId, bool>,
    /// The last configuration and dial policy: a new leadership's core
    /// starts from them.
    config: (Vec<QueueConfig>, Vec<AgentConfig>),
    dial_policy: DialPolicy,
}

/// What a node tells a new leader (see [`DeskMail::Announce`]).
struct Announcement {
    calls: Vec<CallInfo>,
    pages: Vec<AnnouncedPage>,
    talking: Vec<(CallInfo, String)>,
}

/// Whether this node's desk decides.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Mode {
    /// The core decides: this node leads the ACD (`Some(epoch)`), or no
    /// other node is known to (a node alone, or before the first election
    /// round, or while the database is away).
    Deciding(Option<i64>),
    /// `leader`'s desk decides; inputs go there.
    Following { leader: String, epoch: i64 },
}

/// Where an agent's page is: on this node (its sender, if connected) or on another.
enum PageAt {
    Here(Option<mpsc::Sender<ServerMsg>>),
    There(String, Outbox),
}

impl PageAt {
    async fn send(&self, agent: &str, epoch: i64, msg: ServerMsg) {
        match self {
            PageAt::Here(Some(tx)) => {
                let _ = tx.send(msg).await;
            }
            PageAt::Here(None) => {}
            PageAt::There(node, outbox) => {
                let out = RemoteOutput::ToAgent {
                    agent: agent.to_owned(),
                    msg,
                };
                let _ = outbox.send((node.clone(), DeskMail::Output { epoch, out }));
            }
        }
    }
}

impl AgentDesk {
    /// Starts the desk on the current runtime.
    pub fn start(
        queues: Vec<QueueConfig>,
        agents: Vec<AgentConfig>,
        hub: AgentMediaHub,
    ) -> DeskHandle {
        let (tx, rx) = mpsc::channel(1024);
        let (states, states_rx) = watch::channel(Vec::new());
        let (checks_tx, checks_rx) = mpsc::channel(64);
        let (cluster_tx, cluster_rx) = mpsc::channel(1024);
        let desk = AgentDesk {
            core: DeskCore::new(
                queues.clone(),
                agents.clone(),
                (Instant::now(), SystemTime::now()),
            ),
            hub: hub.clone(),
            pages: HashMap::new(),
            notices: HashMap::new(),
            states,
            dialer: None,
            book: None,
            checks_tx,
            cluster: None,
            mode: Mode::Deciding(None),
            call_node: HashMap::new(),
            agent_node: HashMap::new(),
            local_calls: Vec::new(),
            bridged: HashMap::new(),
            page_state: HashMap::new(),
            page_available: HashMap::new(),
            config: (queues, agents),
            dial_policy: DialPolicy::default(),
        };
        tokio::spawn(desk.run(rx, checks_rx, cluster_rx));
        DeskHandle {
            tx,
            cluster: cluster_tx,
            states: states_rx,
            hub,
        }
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<DeskInput>,
        mut checks: mpsc::Receiver<CoreInput>,
        mut cluster: mpsc::Receiver<ClusterInput>,
    ) {
        self.carry_out();
        loop {
            let deadline = self.core.poll_timeout();
            let sleep = async move {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = rx.recv() => match input {
                    Some(input) => self.on_input(input),
                    None => break,
                },
                Some(check) = checks.recv() => self.dispatch(Instant::now(), check, None),
                Some(c) = cluster.recv() => self.on_cluster(Instant::now(), c),
                _ = sleep => self.core.handle_timeout(Instant::now()),
            }
            self.carry_out();
        }
    }

    /// Strips the channels off an input and hands the rest to the core.
    fn on_input(&mut self, input: DeskInput) {
        let now = Instant::now();
        let core_input = match input {
            DeskInput::Enqueue(q) => {
                let call = CallId::new(q.info.call.clone());
                self.notices.insert(call.clone(), q.notices);
                self.local_calls.retain(|c| c.call != q.info.call);
                self.local_calls.push(q.info.clone());
                self.bridged.remove(&call);
                CoreInput::Enqueue(q.info)
            }
            DeskInput::CallEnded { call } => {
                self.local_calls.retain(|c| c.call != call);
                CoreInput::CallEnded { call }
            }
            DeskInput::LegConnected { call, agent } => CoreInput::LegConnected { call, agent },
            DeskInput::Agent(AgentSocketEvent::Connected { agent, conn, tx }) => {
                self.pages.insert(AgentId::new(agent.clone()), (conn, tx));
                CoreInput::AgentConnected { agent, conn }
            }
            DeskInput::Agent(AgentSocketEvent::Message { agent, conn, msg }) => {
                if let ClientMsg::Available { on, .. } = &msg {
                    self.page_available.insert(AgentId::new(agent.clone()), *on);
                }
                CoreInput::AgentMessage { agent, conn, msg }
            }
            DeskInput::Agent(AgentSocketEvent::Disconnected {
                agent,
                conn,
                dropped,
            }) => {
                let id = AgentId::new(agent.clone());
                if self.pages.get(&id).is_some_and(|(c, _)| *c == conn) {
                    self.pages.remove(&id);
                    self.page_state.remove(&id);
                    self.page_available.remove(&id);
                }
                CoreInput::AgentDisconnected {
                    agent,
                    conn,
                    dropped,
                }
            }
            DeskInput::CallbackEnded {
                entry,
                attempt,
                answered,
            } => CoreInput::CallbackEnded {
                entry,
                attempt,
                answered,
            },
            DeskInput::CallbackAnswered { entry, attempt } => {
                CoreInput::CallbackAnswered { entry, attempt }
            }
            DeskInput::SetDialer(dialer) => {
                self.dialer = Some(dialer);
                return;
            }
            DeskInput::SetCallbackBook(book) => {
                self.book = Some(book);
                return;
            }
            DeskInput::Booked { due, cancelled } => CoreInput::Booked { due, cancelled },
            DeskInput::Configure { queues, agents } => {
                self.config = (queues.clone(), agents.clone());
                CoreInput::Configure { queues, agents }
            }
            DeskInput::SetDialPolicy(p) => {
                self.dial_policy = p.clone();
                CoreInput::SetDialPolicy(p)
            }

            DeskInput::Monitor {
                call,
                supervisor,
                action,
            } => {
                self.monitor(call, supervisor, action);
                return;
            }
            DeskInput::Overview { agent, reply } => {
                let _ = reply.send(self.core.overview(&agent, now));
                return;
            }
            DeskInput::QueueDepths { reply } => {
                let _ = reply.send(queue_depths(self.core.acd(), now));
                return;
            }
        };
        self.dispatch(now, core_input, None);
    }

    fn on_cluster(&mut self, now: Instant, input: ClusterInput) {
        match input {
            ClusterInput::SetCluster { node, outbox } => self.cluster = Some((node, outbox)),
            ClusterInput::Role(role) => self.on_role(now, role),
            ClusterInput::Mail(mail) => self.on_mail(now, *mail),
            ClusterInput::LiveNodes(live) => self.drop_dead_nodes(now, &live),
        }
    }

    /// While deciding: the calls and pages of nodes whose lease has lapsed
    /// are gone (the node died); its queue entries are not offered as if
    /// alive, and its agents' pages, unless they came back elsewhere, log out.
    fn drop_dead_nodes(&mut self, now: Instant, live: &[String]) {
        if !matches!(self.mode, Mode::Deciding(_)) {
            return;
        }
        let dead = |node: &String| !live.contains(node);
        let calls: Vec<(CallId, String)> = self
            .call_node
            .iter()
            .filter(|(_, n)| dead(n))
            .map(|(c, n)| (c.clone(), n.clone()))
            .collect();
        for (call, node) in calls {
            tracing::info!(call = %call.as_str(), %node, "the call's node is gone; the desk lets it go");
            self.call_node.remove(&call);
            let call = call.as_str().to_owned();
            self.core.handle(now, CoreInput::CallEnded { call });
        }
        let pages: Vec<(AgentId, (String, u64))> = self
            .agent_node
            .iter()
            .filter(|(_, (n, _))| dead(n))
            .map(|(a, at)| (a.clone(), at.clone()))
            .collect();
        for (agent, (node, conn)) in pages {
            tracing::info!(agent = %agent.as_str(), %node, "the agent page's node is gone");
            self.agent_node.remove(&agent);
            let agent = agent.as_str().to_owned();
            let input = CoreInput::AgentDisconnected {
                agent,
                conn,
                dropped: false,
            };
            self.core.handle(now, input);
        }
    }

    /// Hands an input from this node (`from: None`) or another to the
    /// deciding core: this node's, or the leader's by mail.
    fn dispatch(&mut self, now: Instant, input: CoreInput, from: Option<String>) {
        let (leader, epoch) = match &self.mode {
            Mode::Deciding(_) => {
                match (&input, from) {
                    (CoreInput::Enqueue(info) | CoreInput::Restore { info, .. }, Some(node)) => {
                        self.call_node.insert(CallId::new(info.call.clone()), node);
                    }
                    (CoreInput::Enqueue(info) | CoreInput::Restore { info, .. }, None) => {
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
                    let from = self.node().to_owned();
                    self.mail(&leader, DeskMail::Input { from, epoch, input });
                }
                Some(from) => {
                    tracing::debug!(%from, ?input, "desk input from another node while not leading; dropped");
                }
            },
        }
    }

    fn node(&self) -> &str {
        self.cluster.as_ref().map_or("", |(n, _)| n.as_str())
    }

    fn mail(&self, to: &str, mail: DeskMail) {
        match &self.cluster {
            Some((_, outbox)) => {
                if outbox.send((to.to_owned(), mail)).is_err() {
                    tracing::error!(node = %to, "desk mail to another node is gone");
                }
            }
            None => tracing::error!(node = %to, "desk mail without a cluster link; dropped"),
        }
    }

    fn epoch(&self) -> i64 {
        match &self.mode {
            Mode::Deciding(e) => e.unwrap_or(0),
            Mode::Following { epoch, .. } => *epoch,
        }
    }

    /// The node holding `call`, when the deciding core is here and it is not.
    fn call_elsewhere(&self, call: &CallId) -> Option<String> {
        self.call_node.get(call).cloned()
    }

    /// The node holding `agent`'s page, when the core is here and it is not.
    fn agent_elsewhere(&self, agent: &AgentId) -> Option<String> {
        self.agent_node.get(agent).map(|(n, _)| n.clone())
    }

    /// What the election says. A node that starts deciding after following
    /// starts from a fresh core and what every node announces; one that
    /// starts following tells the leader what it holds.
    fn on_role(&mut self, now: Instant, role: ClusterRole) {
        let was = self.mode.clone();
        match role {
            ClusterRole::Leading { epoch } => {
                self.mode = Mode::Deciding(Some(epoch));
                if let Mode::Following { leader, .. } = was {
                    tracing::info!(epoch, previous = %leader, "this node's desk decides for the cluster");
                    self.fresh_core(now);
                    let what = self.announcement();
                    self.announced(now, None, what);
                } else if was != self.mode {
                    tracing::info!(epoch, "this node's desk decides for the cluster");
                }
            }
            ClusterRole::Following { leader, epoch } => {
                if leader == self.node() {
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
                let from = self.node().to_owned();
                self.mail(
                    &leader,
                    DeskMail::Announce {
                        from,
                        epoch,
                        calls,
                        pages,
                        talking,
                    },
                );
            }
        }
    }

    /// A core with the configuration and nothing else.
    fn fresh_core(&mut self, now: Instant) {
        self.core = DeskCore::new(
            self.config.0.clone(),
            self.config.1.clone(),
            (Instant::now(), SystemTime::now()),
        );
        self.core
            .handle(now, CoreInput::SetDialPolicy(self.dial_policy.clone()));
        self.call_node.clear();
        self.agent_node.clear();
    }

    /// This node's waiting calls, its pages and its bridged calls, for a
    /// new leader.
    fn announcement(&self) -> Announcement {
        let mut calls = Vec::new();
        let mut talking = Vec::new();
        for c in &self.local_calls {
            match self.bridged.get(&CallId::new(c.call.clone())) {
                Some(agent) => talking.push((c.clone(), agent.clone())),
                None => calls.push(c.clone()),
            }
        }
        let pages = self
            .pages
            .iter()
            .map(|(agent, (conn, _))| {
                let state = self.page_state.get(agent);
                AnnouncedPage {
                    agent: agent.as_str().to_owned(),
                    conn: *conn,
                    available: self.page_available.get(agent).copied(),
                    busy: matches!(state, Some(PageState::OnCall | PageState::WrapUp)),
                }
            })
            .collect();
        Announcement {
            calls,
            pages,
            talking,
        }
    }

    /// A node's announcement to this (deciding) node: its calls join their
    /// queues, its pages log in and, if they were taking calls, go available.
    fn announced(&mut self, now: Instant, from: Option<String>, what: Announcement) {
        let Announcement {
            calls,
            pages,
            talking,
        } = what;
        tracing::info!(
            node = from.as_deref().unwrap_or(self.node()),
            calls = calls.len(),
            pages = pages.len(),
            talking = talking.len(),
            "desk state announced"
        );
        for page in &pages {
            let input = CoreInput::AgentConnected {
                agent: page.agent.clone(),
                conn: page.conn,
            };
            self.dispatch(now, input, from.clone());
        }
        // Bridged calls before anyone goes available: their agents are
        // offered nothing else.
        for (info, agent) in talking {
            self.dispatch(now, CoreInput::Restore { info, agent }, from.clone());
        }
        for page in pages {
            let agent = page.agent.clone();
            if page.available == Some(true) && !page.busy {
                let msg = ClientMsg::Available {
                    on: true,
                    reason: None,
                };
                let input = CoreInput::AgentMessage {
                    agent: agent.clone(),
                    conn: page.conn,
                    msg,
                };
                self.dispatch(now, input, from.clone());
            }
            let hello = CoreInput::AgentMessage {
                agent,
                conn: page.conn,
                msg: ClientMsg::Hello {},
            };
            self.dispatch(now, hello, from.clone());
        }
        for info in calls {
            self.dispatch(now, CoreInput::Enqueue(info), from.clone());
        }
    }

    /// Mail from another node's desk.
    fn on_mail(&mut self, now: Instant, mail: DeskMail) {
        match mail {
            DeskMail::Input { from, input, .. } => {
                if matches!(self.mode, Mode::Deciding(_)) {
                    self.dispatch(now, input, Some(from));
                } else {
                    tracing::debug!(%from, "desk input for a leader this node no longer is; dropped");
                }
            }
            DeskMail::Announce {
                from,
                calls,
                pages,
                talking,
                ..
            } => {
                if matches!(self.mode, Mode::Deciding(_)) {
                    let what = Announcement {
                        calls,
                        pages,
                        talking,
                    };
                    self.announced(now, Some(from), what);
                } else {
                    tracing::info!(%from, "desk announcement for a leader this node no longer is; dropped");
                }
            }
            DeskMail::Output { out, .. } => match out {
                RemoteOutput::ToAgent { agent, msg } => self.tell_page(&AgentId::new(agent), msg),
                RemoteOutput::Notify { call, notice } => {
                    self.deliver(CallId::new(call), notice.into_notice())
                }
                RemoteOutput::Forget { call } => self.forget_here(&CallId::new(call)),
                RemoteOutput::CheckMedia { agent, call } => {
                    self.check_media(&AgentId::new(agent), &CallId::new(call))
                }
                RemoteOutput::AcceptSdp {
                    agent,
                    call,
                    sdp,
                    page_node,
                } => {
                    let page = if page_node == self.node() {
                        None
                    } else {
                        Some(page_node)
                    };
                    self.accept_sdp(AgentId::new(agent), CallId::new(call), sdp, page);
                }
            },
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
        if let Some(tx) = self.notices.get(&call) {
            // A closed channel: nobody on the line any more.
            if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(notice) {
                tracing::warn!(call = %call.as_str(), "call actor is not reading desk notices");
            }
        }
    }

    /// The desk let go of a call on this node.
    fn forget_here(&mut self, call: &CallId) {
        self.notices.remove(call);
        self.bridged.remove(call);
        self.local_calls.retain(|c| c.call != call.as_str());
    }

    /// Carries out what the core asked for, in order: here, or on the node
    /// that holds the page or the call.
    fn carry_out(&mut self) {
        let epoch = self.epoch();
        while let Some(out) = self.core.poll_output() {
            match out {
                DeskOutput::ToAgent { agent, msg } => match self.agent_elsewhere(&agent) {
                    Some(node) => {
                        let agent = agent.as_str().to_owned();
                        let out = RemoteOutput::ToAgent { agent, msg };
                        self.mail(&node, DeskMail::Output { epoch, out });
                    }
                    None => self.tell_page(&agent, msg),
                },
                DeskOutput::Notify { call, notice } => match self.call_elsewhere(&call) {
                    Some(node) => match WireNotice::from_notice(notice) {
                        Some(notice) => {
                            let call = call.as_str().to_owned();
                            let out = RemoteOutput::Notify { call, notice };
                            self.mail(&node, DeskMail::Output { epoch, out });
                        }
                        None => {
                            tracing::error!(call = %call.as_str(), "a leg or monitor notice cannot go to another node")
                        }
                    },
                    None => self.deliver(call, notice),
                },
                DeskOutput::Dial(request) => {
                    let (tx, rx) = mpsc::channel(64);
                    let call = CallId::new(request.entry.clone());
                    // The callback leg is placed here: its notices stay here.
                    self.call_node.remove(&call);
                    self.notices.insert(call, tx);
                    let (entry, attempt) = (request.entry.clone(), request.attempt);
                    let dialled = match &self.dialer {
                        Some(dialer) => {
                            let mut request = request;
                            if let Some(via) = dialer.via {
                                request.via = via;
                            }
                            dialer.dial(DialOrder {
                                request,
                                notices: rx,
                            })
                        }
                        None => false,
                    };
                    if !dialled {
                        self.core
                            .handle(Instant::now(), CoreInput::DialFailed { entry, attempt });
                    }
                }
                DeskOutput::Detach { call } | DeskOutput::Forget { call } => {
                    match self.call_node.remove(&call) {
                        Some(node) => {
                            let call = call.as_str().to_owned();
                            let out = RemoteOutput::Forget { call };
                            self.mail(&node, DeskMail::Output { epoch, out });
                        }
                        None => self.forget_here(&call),
                    }
                }
                DeskOutput::Progress(p) => {
                    if let Some(book) = &self.book {
                        // A closed book costs the report, not the call.
                        let _ = book.send(p);
                    }
                }
                DeskOutput::CheckMedia { agent, call } => match self.call_elsewhere(&call) {
                    Some(node) => {
                        let out = RemoteOutput::CheckMedia {
                            agent: agent.as_str().to_owned(),
                            call: call.as_str().to_owned(),
                        };
                        self.mail(&node, DeskMail::Output { epoch, out });
                    }
                    None => self.check_media(&agent, &call),
                },
                DeskOutput::AcceptSdp { agent, call, sdp } => {
                    let page = self.agent_elsewhere(&agent);
                    match self.call_elsewhere(&call) {
                        Some(node) => {
                            let page_node = page.unwrap_or_else(|| self.node().to_owned());
                            let out = RemoteOutput::AcceptSdp {
                                agent: agent.as_str().to_owned(),
                                call: call.as_str().to_owned(),
                                sdp,
                                page_node,
                            };
                            self.mail(&node, DeskMail::Output { epoch, out });
                        }
                        None => self.accept_sdp(agent, call, sdp, page),
                    }
                }
                DeskOutput::StatesChanged => {
                    self.states.send_replace(self.core.agent_views());
                }
            }
        }
    }

    /// Passes a supervisor's request to the call's actor; a call the desk
    /// has no channel to ends the request at once.
    fn monitor(&self, call: String, supervisor: String, action: MonitorAction) {
        let notice = DeskNotice::Monitor { supervisor, action };
        let refused = match self.notices.get(&CallId::new(call.clone())) {
            Some(tx) => tx.try_send(notice).err().map(|e| e.into_inner()),
            None => Some(notice),
        };
        if let Some(DeskNotice::Monitor {
            action: MonitorAction::Start { status, .. },
            ..
        }) = refused
        {
            tracing::info!(%call, "monitor refused: the desk has no such call");
            let _ = status.send(MonitorStatus::Stopped("not_on_call".into()));
        }
    }

    fn tell_page(&mut self, agent: &AgentId, msg: ServerMsg) {
        if let ServerMsg::State { state, .. } = &msg
            && self.pages.contains_key(agent)
        {
            self.page_state.insert(agent.clone(), *state);
        }
        if let Some((_, tx)) = self.pages.get(agent) {
            // A page that cannot keep up loses messages, not the desk's time;
            // it catches up with `hello` after reconnecting.
            if tx.try_send(msg).is_err() {
                tracing::warn!(agent = %agent.as_str(), "agent page is not reading; message dropped");
            }
        }
    }

    /// The hub answers after a round trip to its task: the desk does not
    /// wait. The page is here, or on `page_node`.
    fn accept_sdp(&self, agent: AgentId, call: CallId, sdp: String, page_node: Option<String>) {
        let Some(notices) = self.notices.get(&call).cloned() else {
            return;
        };
        let hub = self.hub.clone();
        let page = match (page_node, &self.cluster) {
            (Some(node), Some((_, outbox))) => PageAt::There(node, outbox.clone()),
            _ => PageAt::Here(self.pages.get(&agent).map(|(_, tx)| tx.clone())),
        };
        let epoch = self.epoch();
        let agent = agent.as_str().to_owned();
        let call = call.as_str().to_owned();
        tokio::spawn(async move {
            match hub.accept_offer(&format!("{agent}/{call}"), &sdp).await {
                Ok(leg) => {
                    let answer = ServerMsg::SdpAnswer {
                        call: call.clone(),
                        sdp: leg.answer_sdp.clone(),
                    };
                    page.send(&agent, epoch, answer).await;
                    let _ = notices.send(DeskNotice::Leg { agent, leg }).await;
                }
                Err(e) => {
                    tracing::warn!(%agent, %call, error = %e, "agent SDP refused");
                    let msg = ServerMsg::Error {
                        message: format!("audio could not be set up: {e}"),
                    };
                    page.send(&agent, epoch, msg).await;
                }
            }
        });
    }

    /// Shortly after an on-call agent's page dropped off: if their browser
    /// has stopped sending audio too, it is gone (closed, crashed), and
    /// holding the call would only leave the caller in silence.
    fn check_media(&self, agent: &AgentId, call: &CallId) {
        let hub = self.hub.clone();
        let session = format!("{}/{}", agent.as_str(), call.as_str());
        let agent = agent.as_str().to_owned();
        let checks = self.checks_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(MEDIA_CHECK_AFTER).await;
            let since = hub.since_last_media(&session).await;
            // No session (the page never set up audio): unknown, keep the grace.
            let silent = since.is_some_and(|d| d >= MEDIA_SILENT);
            let _ = checks.send(CoreInput::MediaCheck { agent, silent }).await;
        });
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_routing::{Acd, QueueName};

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
