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

use crate::core::{CoreInput, DeskCore, DeskOutput};
use crate::protocol::{
    AgentSocketEvent, CallbackProgress, DeskInput, DeskNotice, DeskOverview, DialOrder, Dialer,
    MonitorAction, MonitorStatus, QueueDepth,
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
        let desk = AgentDesk {
            core: DeskCore::new(queues, agents, (Instant::now(), SystemTime::now())),
            hub: hub.clone(),
            pages: HashMap::new(),
            notices: HashMap::new(),
            states,
            dialer: None,
            book: None,
            checks_tx,
        };
        tokio::spawn(desk.run(rx, checks_rx));
        DeskHandle {
            tx,
            states: states_rx,
            hub,
        }
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<DeskInput>,
        mut checks: mpsc::Receiver<CoreInput>,
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
                Some(check) = checks.recv() => self.core.handle(Instant::now(), check),
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
            DeskInput::Overview { agent, reply } => {
                let _ = reply.send(self.core.overview(&agent, now));
                return;
            }
            DeskInput::QueueDepths { reply } => {
                let _ = reply.send(queue_depths(self.core.acd(), now));
                return;
            }
        };
        self.core.handle(now, core_input);
    }

    /// Carries out what the core asked for, in order.
    fn carry_out(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                DeskOutput::ToAgent { agent, msg } => self.to_agent(&agent, msg),
                DeskOutput::Notify { call, notice } => {
                    if let Some(tx) = self.notices.get(&call) {
                        // A closed channel: nobody on the line any more.
                        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(notice) {
                            tracing::warn!(call = %call.as_str(), "call actor is not reading desk notices");
                        }
                    }
                }
                DeskOutput::Dial(request) => {
                    let (tx, rx) = mpsc::channel(64);
                    let call = CallId::new(request.entry.clone());
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
                    self.notices.remove(&call);
                }
                DeskOutput::Progress(p) => {
                    if let Some(book) = &self.book {
                        // A closed book costs the report, not the call.
                        let _ = book.send(p);
                    }
                }
                DeskOutput::CheckMedia { agent, call } => self.check_media(&agent, &call),
                DeskOutput::AcceptSdp { agent, call, sdp } => self.accept_sdp(agent, call, sdp),
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

    fn to_agent(&self, agent: &AgentId, msg: ServerMsg) {
        if let Some((_, tx)) = self.pages.get(agent) {
            // A page that cannot keep up loses messages, not the desk's time;
            // it catches up with `hello` after reconnecting.
            if tx.try_send(msg).is_err() {
                tracing::warn!(agent = %agent.as_str(), "agent page is not reading; message dropped");
            }
        }
    }

    /// The hub answers after a round trip to its task: the desk does not wait.
    fn accept_sdp(&self, agent: AgentId, call: CallId, sdp: String) {
        let Some(notices) = self.notices.get(&call).cloned() else {
            return;
        };
        let hub = self.hub.clone();
        let page = self.pages.get(&agent).map(|(_, tx)| tx.clone());
        let agent = agent.as_str().to_owned();
        let call = call.as_str().to_owned();
        tokio::spawn(async move {
            match hub.accept_offer(&format!("{agent}/{call}"), &sdp).await {
                Ok(leg) => {
                    if let Some(page) = &page {
                        let _ = page
                            .send(ServerMsg::SdpAnswer {
                                call: call.clone(),
                                sdp: leg.answer_sdp.clone(),
                            })
                            .await;
                    }
                    let _ = notices.send(DeskNotice::Leg { agent, leg }).await;
                }
                Err(e) => {
                    tracing::warn!(%agent, %call, error = %e, "agent SDP refused");
                    if let Some(page) = &page {
                        let _ = page
                            .send(ServerMsg::Error {
                                message: format!("audio could not be set up: {e}"),
                            })
                            .await;
                    }
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
