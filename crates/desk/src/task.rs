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
use hotline_webphone::protocol::ServerMsg;
use tokio::sync::{mpsc, oneshot, watch};

use crate::cluster::{
    ClusterInput, DeskMail, MonitorReply, MonitorRequest, Outbox, RemoteOutput, WireMonitorStatus,
};
use crate::core::CoreInput;
use crate::node::{NodeDesk, NodeOutput};
use crate::protocol::{
    AgentSocketEvent, CallbackProgress, DeskInput, DeskNotice, DeskOverview, DialOrder,
    DialRequest, Dialer, MonitorAction, MonitorStatus, QueueDepth,
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
    decides: watch::Receiver<bool>,
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

    /// Whether this node's desk decides now (alone, or leading the cluster
    /// and settled): its agent states are its own, not a copy of the
    /// leader's (only the deciding node keeps their history).
    pub fn decides(&self) -> bool {
        *self.decides.borrow()
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

    /// Whether `call` is on this node (its actor listens to this desk).
    pub async fn call_here(&self, call: &str) -> bool {
        let (reply, rx) = oneshot::channel();
        let input = DeskInput::CallHere {
            call: call.to_owned(),
            reply,
        };
        if self.tx.send(input).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
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

/// The desk task's state: the node's desk and the channels around it.
pub struct AgentDesk {
    desk: NodeDesk,
    hub: AgentMediaHub,
    /// Each agent's current page on this node: its connection id and sender.
    pages: HashMap<AgentId, (u64, mpsc::Sender<ServerMsg>)>,
    /// Each call's notice channel (to its actor, or its callback leg).
    notices: HashMap<CallId, mpsc::Sender<DeskNotice>>,
    states: watch::Sender<Vec<AgentView>>,
    decides: watch::Sender<bool>,
    /// Places callback legs; `None` until the router is up.
    dialer: Option<Dialer>,
    /// Where callback steps go (the `callbacks` table); `None`: nowhere.
    book: Option<mpsc::UnboundedSender<CallbackProgress>>,
    /// Answers to the media checks the task started.
    checks_tx: mpsc::Sender<CoreInput>,
    /// Mail to other nodes' desks; `None`: a node alone.
    outbox: Option<Outbox>,
    /// Monitor sessions of consoles on this node whose call is on another
    /// node: where their replies go.
    remote_monitors: HashMap<String, RemoteReplies>,
}

/// Where a remote monitor session's replies go: (answering node, reply).
type RemoteReplies = mpsc::UnboundedSender<(String, MonitorReply)>;

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
        let (decides, decides_rx) = watch::channel(true);
        let (checks_tx, checks_rx) = mpsc::channel(64);
        let (cluster_tx, cluster_rx) = mpsc::channel(1024);
        let desk = AgentDesk {
            desk: NodeDesk::new(queues, agents, (Instant::now(), SystemTime::now())),
            hub: hub.clone(),
            pages: HashMap::new(),
            notices: HashMap::new(),
            states,
            decides,
            dialer: None,
            book: None,
            checks_tx,
            outbox: None,
            remote_monitors: HashMap::new(),
        };
        tokio::spawn(desk.run(rx, checks_rx, cluster_rx));
        DeskHandle {
            tx,
            cluster: cluster_tx,
            states: states_rx,
            decides: decides_rx,
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
            let deadline = self.desk.poll_timeout();
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
                Some(check) = checks.recv() => self.desk.handle_local(Instant::now(), check),
                Some(c) = cluster.recv() => self.on_cluster(Instant::now(), c),
                _ = sleep => self.desk.handle_timeout(Instant::now()),
            }
            self.carry_out();
        }
    }

    /// Keeps an input's channels here and hands the rest to the node's desk.
    fn on_input(&mut self, input: DeskInput) {
        let now = Instant::now();
        let core_input = match input {
            DeskInput::Enqueue(q) => {
                self.notices
                    .insert(CallId::new(q.info.call.clone()), q.notices);
                CoreInput::Enqueue(q.info)
            }
            DeskInput::CallEnded { call } => CoreInput::CallEnded { call },
            DeskInput::LegConnected { call, agent } => CoreInput::LegConnected { call, agent },
            DeskInput::Agent(AgentSocketEvent::Connected { agent, conn, tx }) => {
                self.pages.insert(AgentId::new(agent.clone()), (conn, tx));
                CoreInput::AgentConnected { agent, conn }
            }
            DeskInput::Agent(AgentSocketEvent::Message { agent, conn, msg }) => {
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
            DeskInput::Configure { queues, agents } => CoreInput::Configure { queues, agents },
            DeskInput::SetDialPolicy(p) => CoreInput::SetDialPolicy(p),
            DeskInput::Monitor {
                call,
                supervisor,
                action,
            } => {
                self.monitor(call, supervisor, action);
                return;
            }
            DeskInput::CallHere { call, reply } => {
                let _ = reply.send(self.notices.contains_key(&CallId::new(call)));
                return;
            }
            DeskInput::MonitorElsewhere {
                to,
                supervisor,
                call,
                session,
                request,
                replies,
            } => {
                if let Some(replies) = replies {
                    self.remote_monitors.insert(session.clone(), replies);
                }
                self.desk
                    .monitor_elsewhere(to, supervisor, call, session, request);
                self.carry_out();
                return;
            }
            DeskInput::Overview { agent, reply } => {
                let _ = reply.send(self.desk.overview(&agent, now));
                return;
            }
            DeskInput::QueueDepths { reply } => {
                let _ = reply.send(self.desk.queue_depths(now));
                return;
            }
        };
        self.desk.handle_local(now, core_input);
    }

    fn on_cluster(&mut self, now: Instant, input: ClusterInput) {
        match input {
            ClusterInput::SetCluster { node, outbox } => {
                self.desk.set_node(node);
                self.outbox = Some(outbox);
            }
            ClusterInput::Event(event) => self.desk.handle_cluster(now, event),
        }
    }

    /// Carries out what the node's desk asked for, in order.
    fn carry_out(&mut self) {
        let decides = self.desk.decides_now();
        self.decides
            .send_if_modified(|d| std::mem::replace(d, decides) != decides);
        while let Some(out) = self.desk.poll_output() {
            match out {
                NodeOutput::ToPage { agent, msg } => self.tell_page(&agent, msg),
                NodeOutput::Notify { call, notice } => {
                    if let Some(tx) = self.notices.get(&call) {
                        // A closed channel: nobody on the line any more.
                        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(notice) {
                            tracing::warn!(call = %call.as_str(), "call actor is not reading desk notices");
                        }
                    }
                }
                NodeOutput::Forget { call } => {
                    self.notices.remove(&call);
                }
                NodeOutput::Dial(request) => self.dial(request),
                NodeOutput::Progress(p) => {
                    if let Some(book) = &self.book {
                        // A closed book costs the report, not the call.
                        let _ = book.send(p);
                    }
                }
                NodeOutput::CheckMedia { agent, call } => self.check_media(&agent, &call),
                NodeOutput::AcceptSdp {
                    agent,
                    call,
                    sdp,
                    page_node,
                } => self.accept_sdp(agent, call, sdp, page_node),
                NodeOutput::MonitorHere {
                    from,
                    supervisor,
                    call,
                    session,
                    request,
                } => self.monitor_here(from, supervisor, call, session, request),
                NodeOutput::MonitorReply {
                    session,
                    node,
                    reply,
                } => {
                    let last = reply.is_last();
                    if let Some(tx) = self.remote_monitors.get(&session) {
                        let _ = tx.send((node, reply));
                    }
                    if last {
                        self.remote_monitors.remove(&session);
                    }
                }
                NodeOutput::StatesChanged => {
                    self.states.send_replace(self.desk.agent_views());
                }
                NodeOutput::Mail { to, mail } => match &self.outbox {
                    Some(outbox) => {
                        if outbox.send((to.clone(), mail)).is_err() {
                            tracing::error!(node = %to, "desk mail to another node is gone");
                        }
                    }
                    None => {
                        tracing::error!(node = %to, "desk mail without a cluster link; dropped")
                    }
                },
            }
        }
    }

    /// Places a callback leg from this node; one that cannot be placed is
    /// handed back as failed.
    fn dial(&mut self, request: DialRequest) {
        let (tx, rx) = mpsc::channel(64);
        self.notices.insert(CallId::new(request.entry.clone()), tx);
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
            let failed = CoreInput::DialFailed { entry, attempt };
            self.desk.handle_local(Instant::now(), failed);
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

    /// A console on node `from` monitors `call`, here: the offer is
    /// answered by this node's hub and the leg handed to the call, as for
    /// a console on this node; what becomes of it goes back by mail, and
    /// the hub session closes when the leg leaves the call.
    fn monitor_here(
        &self,
        from: String,
        supervisor: String,
        call: CallId,
        session: String,
        request: MonitorRequest,
    ) {
        let Some(outbox) = self.outbox.clone() else {
            return;
        };
        let me = self.desk.node().unwrap_or_default().to_owned();
        let reply_session = session.clone();
        let reply = move |reply: MonitorReply| {
            let mail = DeskMail::MonitorReply {
                session: session.clone(),
                node: me.clone(),
                reply,
            };
            let _ = outbox.send((from.clone(), mail));
        };
        let (mode, sdp) = match request {
            MonitorRequest::Mode { mode } => {
                self.monitor(
                    call.as_str().to_owned(),
                    supervisor,
                    MonitorAction::Mode(mode),
                );
                return;
            }
            MonitorRequest::Stop => {
                self.monitor(call.as_str().to_owned(), supervisor, MonitorAction::Stop);
                return;
            }
            MonitorRequest::Start { mode, sdp } => (mode, sdp),
        };
        let Some(notices) = self.notices.get(&call).cloned() else {
            reply(MonitorReply::Status {
                status: WireMonitorStatus::Stopped {
                    reason: "not_on_call".into(),
                },
            });
            return;
        };
        let hub = self.hub.clone();
        tokio::spawn(async move {
            let leg = match hub.accept_offer(&reply_session, &sdp).await {
                Ok(leg) => leg,
                Err(e) => {
                    reply(MonitorReply::Failed {
                        message: format!("audio could not be set up: {e}"),
                    });
                    return;
                }
            };
            reply(MonitorReply::Answer {
                sdp: leg.answer_sdp.clone(),
            });
            let (status, mut statuses) = mpsc::unbounded_channel();
            let action = MonitorAction::Start {
                mode,
                leg,
                session: reply_session.clone(),
                status,
            };
            let notice = DeskNotice::Monitor { supervisor, action };
            if notices.send(notice).await.is_err() {
                reply(MonitorReply::Status {
                    status: WireMonitorStatus::Stopped {
                        reason: "call_ended".into(),
                    },
                });
                hub.close(&reply_session).await;
                return;
            }
            loop {
                match statuses.recv().await {
                    Some(st) => {
                        let stopped = matches!(st, MonitorStatus::Stopped(_));
                        reply(MonitorReply::Status { status: st.into() });
                        if stopped {
                            break;
                        }
                    }
                    // The call's actor is gone without a word: it is over.
                    None => {
                        reply(MonitorReply::Status {
                            status: WireMonitorStatus::Stopped {
                                reason: "call_ended".into(),
                            },
                        });
                        break;
                    }
                }
            }
            hub.close(&reply_session).await;
        });
    }

    fn tell_page(&self, agent: &AgentId, msg: ServerMsg) {
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
        let page = match (page_node, &self.outbox) {
            (Some(node), Some(outbox)) => PageAt::There(node, outbox.clone()),
            _ => PageAt::Here(self.pages.get(&agent).map(|(_, tx)| tx.clone())),
        };
        let epoch = self.desk.epoch();
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
