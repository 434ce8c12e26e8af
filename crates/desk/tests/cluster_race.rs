//! Seeded race test for the desk across nodes (issue 15): three
//! [`NodeDesk`]s, an election that fails over, and the mail between them,
//! all on one fake clock. Callers queue on any node, agents' pages connect
//! to any node and do what a page does; nodes are killed (their calls and
//! pages gone with them, their unread mail lost) and restarted, leaders are
//! elected, leases lapse, and every message — mail between nodes, what the
//! election tells each node — arrives late and in any interleaving a real
//! cluster allows (each node reads its mail in the order it was sent, the
//! way the `desk_mail` table hands it out; the election's word comes on its
//! own path). Every mail crosses the wire as JSON.
//!
//! Checked, from what the callers' nodes carry out:
//! - no agent is handed a call while another call of theirs is live, and no
//!   call goes to two agents at once — through every failover;
//! - the leader's core keeps its own guarantees
//!   ([`hotline_desk::DeskCore::check_invariants`]);
//! - once faults stop, a leader is elected and agents take calls, every
//!   caller still waiting on a live node is answered, and callers who had
//!   not been offered yet are offered in the order they arrived (by
//!   priority, then arrival), whichever node they landed on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use hotline_desk::cluster::{RemoteOutput, WireNotice};
use hotline_desk::{
    CallInfo, ClusterEvent, ClusterRole, CoreInput, DeskMail, DeskNotice, NodeDesk, NodeOutput,
};
use hotline_routing::{AgentConfig, AgentId, AgentState, Overflow, QueueConfig, Strategy};
use hotline_webphone::protocol::ClientMsg;

const NODES: [&str; 3] = ["n1", "n2", "n3"];
const AGENTS: [&str; 5] = ["ann", "bob", "cat", "dan", "eve"];
const QUEUES: [&str; 2] = ["support", "billing"];
const STEPS: usize = 4_000;

fn queues(rng: &mut fastrand::Rng) -> Vec<QueueConfig> {
    let strategies = [
        Strategy::LongestIdle,
        Strategy::RoundRobin,
        Strategy::RingAll,
        Strategy::SkillsPriority,
    ];
    QUEUES
        .iter()
        .map(|name| {
            let mut q = QueueConfig::new(*name);
            q.strategy = strategies[rng.usize(..strategies.len())];
            // Every queue has at least two members, so the end drains.
            q.members = AGENTS
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < 2 || rng.bool())
                .map(|(_, a)| (*a).into())
                .collect();
            q.offer_timeout = Duration::from_secs(rng.u64(2..10));
            q.wrap_up = Duration::from_secs(rng.u64(1..10));
            // Waits are long and nobody overflows: the end checks that
            // every caller is answered.
            q.max_wait = Duration::from_secs(24 * 3600);
            q.overflow = Overflow::Hangup;
            q
        })
        .collect()
}

fn agents() -> Vec<AgentConfig> {
    AGENTS
        .iter()
        .map(|a| AgentConfig::new(*a, a.to_string()))
        .collect()
}

/// One node: its desk while it runs, its unread mail, and what the
/// election has yet to tell it.
struct Node {
    desk: Option<NodeDesk>,
    mail: VecDeque<String>,
    election: VecDeque<ClusterEvent>,
    /// Media checks it was asked for, to answer later.
    checks: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Caller {
    Waiting,
    Gone,
}

struct Call {
    node: usize,
    queue: &'static str,
    priority: i64,
    arrived: Instant,
    state: Caller,
    /// Offered to an agent at least once before the end phase.
    offered_before_end: bool,
    accepted: bool,
}

struct Sim {
    rng: fastrand::Rng,
    seed: u64,
    start: Instant,
    now: Instant,
    config: Vec<QueueConfig>,
    nodes: Vec<Node>,
    /// Nodes whose lease is current (a killed node's lapses later).
    leased: BTreeSet<usize>,
    leader: Option<usize>,
    epoch: i64,
    calls: BTreeMap<String, Call>,
    next_call: u32,
    /// Each agent's page: (node, conn).
    pages: BTreeMap<&'static str, (usize, u64)>,
    next_conn: u64,
    /// What the callers' nodes carried out: call → the agent bridged to it.
    bridged: BTreeMap<String, String>,
    /// What the deciding cores decided: agent → (call, leadership).
    decided: BTreeMap<String, (String, i64)>,
    accepted: usize,
    failovers: usize,
    kills: usize,
    /// In the end phase: the calls offered, in order, first time each.
    end_offers: Option<Vec<String>>,
    /// The last things that happened, shown when a check fails.
    log: VecDeque<String>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = fastrand::Rng::with_seed(seed);
        let config = queues(&mut rng);
        let start = Instant::now();
        let mut sim = Sim {
            rng,
            seed,
            start,
            now: start,
            config,
            nodes: NODES
                .iter()
                .map(|_| Node {
                    desk: None,
                    mail: VecDeque::new(),
                    election: VecDeque::new(),
                    checks: Vec::new(),
                })
                .collect(),
            leased: BTreeSet::new(),
            leader: None,
            epoch: 0,
            calls: BTreeMap::new(),
            next_call: 0,
            pages: BTreeMap::new(),
            next_conn: 0,
            bridged: BTreeMap::new(),
            decided: BTreeMap::new(),
            accepted: 0,
            failovers: 0,
            kills: 0,
            end_offers: None,
            log: VecDeque::new(),
        };
        for n in 0..NODES.len() {
            sim.boot(n);
        }
        sim
    }

    /// Fails with the story: every event about the calls the failure
    /// names, the elections and kills, and the last 60 events.
    fn fail(&self, what: String) -> ! {
        let named: Vec<&str> = what
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| w.len() == 5 && w.starts_with('c'))
            .collect();
        let story: Vec<&str> = self
            .log
            .iter()
            .enumerate()
            .filter(|(i, l)| {
                *i + 60 >= self.log.len()
                    || named.iter().any(|c| l.contains(c))
                    || ["ELECT", "KILL", "BOOT", "Role", "LiveNodes"]
                        .iter()
                        .any(|k| l.contains(k))
            })
            .map(|(_, l)| l.as_str())
            .collect();
        panic!(
            "seed {}: {what}\nthe story:\n{}",
            self.seed,
            story.join("\n")
        )
    }

    fn note(&mut self, what: String) {
        let t = self.now.duration_since(self.start).as_millis();
        self.log.push_back(format!("{t:>8} {what}"));
    }

    fn boot(&mut self, n: usize) {
        self.note(format!("BOOT {}", NODES[n]));
        let wall = SystemTime::UNIX_EPOCH + self.now.duration_since(self.start);
        let mut desk = NodeDesk::new(self.config.clone(), agents(), (self.now, wall));
        desk.set_node(NODES[n].to_owned());
        // Here a new leader waits for every node with a lease (the sim's
        // mail can take minutes); the cap is its own test below.
        desk.set_settle_max(Duration::from_secs(30 * 24 * 3600));
        let node = &mut self.nodes[n];
        node.desk = Some(desk);
        node.mail.clear();
        node.election.clear();
        node.checks.clear();
        self.leased.insert(n);
        // What the election says when it first runs there.
        if let Some(l) = self.leader {
            node.election
                .push_back(ClusterEvent::Role(ClusterRole::Following {
                    leader: NODES[l].to_owned(),
                    epoch: self.epoch,
                }));
        }
        self.drain(n);
    }

    fn alive(&self) -> Vec<usize> {
        (0..NODES.len())
            .filter(|n| self.nodes[*n].desk.is_some())
            .collect()
    }

    /// SIGKILL: the node's calls and pages are gone, its unread mail too.
    fn kill(&mut self, n: usize) {
        self.note(format!("KILL {}", NODES[n]));
        self.kills += 1;
        let node = &mut self.nodes[n];
        node.desk = None;
        node.mail.clear();
        node.election.clear();
        node.checks.clear();
        if self.leader == Some(n) {
            // Its session ends with it: the lock is free.
            self.leader = None;
        }
        let gone: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, c)| c.node == n && c.state == Caller::Waiting)
            .map(|(id, _)| id.clone())
            .collect();
        for call in gone {
            self.hang_up_bridge(&call);
            if let Some(c) = self.calls.get_mut(&call) {
                c.state = Caller::Gone;
            }
        }
        self.pages.retain(|_, (node, _)| *node != n);
    }

    /// The call is over for its node (or gone): no bridge, and no decision
    /// about it holds an agent any more.
    fn hang_up_bridge(&mut self, call: &str) {
        self.bridged.remove(call);
        self.decided.retain(|_, (c, _)| c != call);
    }

    /// A deciding core (leadership `epoch`) hands `call` to `agent`. Wrong
    /// if a decision not ended yet gave the agent another call (or the call
    /// another agent) in this leadership, or in an earlier one and that
    /// caller's node has bridged them. (A decision's end travels to the
    /// caller's node by mail: within a leadership, the mail's order is the
    /// decisions' order, so a bridge not yet undone there is no conflict.)
    fn decide_accept(&mut self, epoch: i64, call: &str, agent: &str) {
        // A caller already gone (their node died, its lease not yet
        // lapsed): the agent talks to nobody, and is soon let go.
        if self.calls.get(call).is_none_or(|c| c.state == Caller::Gone) {
            return;
        }
        if let Some((other, e)) = self.decided.get(agent)
            && other != call
            && (*e == epoch || self.bridged.get(other).is_some_and(|a| a == agent))
        {
            self.fail(format!(
                "e{epoch}: {agent} handed {call} while still on {other} (e{e})"
            ));
        }
        // The other way round: another agent holds the call by a decision
        // not ended, of this leadership or bridged on the call's node.
        let holder = self.decided.iter().find_map(|(a, (c, e))| {
            let holds =
                c == call && a != agent && (*e == epoch || self.bridged.get(call) == Some(a));
            holds.then(|| (a.clone(), *e))
        });
        if let Some((other, e)) = holder {
            self.fail(format!(
                "e{epoch}: {call} handed to {agent} while with {other} (e{e})"
            ));
        }
        self.decided
            .insert(agent.to_owned(), (call.to_owned(), epoch));
    }

    /// A deciding core offers `call` to an agent (in the end phase: in
    /// the order the callers arrived).
    fn decide_offer(&mut self, call: &str) {
        let Some(c) = self.calls.get_mut(call) else {
            return;
        };
        match &mut self.end_offers {
            Some(order) => {
                if !order.iter().any(|x| x == call) {
                    order.push(call.to_owned());
                }
            }
            None => c.offered_before_end = true,
        }
    }

    /// A deciding core ended an agent's part in `call`.
    fn decide_end(&mut self, call: &str) {
        self.decided.retain(|_, (c, _)| c != call);
    }

    /// A new leader among the live nodes; each hears of it in its own time.
    fn elect(&mut self) {
        let alive = self.alive();
        if self.leader.is_some() || alive.is_empty() {
            return;
        }
        let l = alive[self.rng.usize(..alive.len())];
        self.epoch += 1;
        self.leader = Some(l);
        self.note(format!("ELECT {} e{}", NODES[l], self.epoch));
        self.failovers += 1;
        for n in alive {
            let role = if n == l {
                ClusterRole::Leading { epoch: self.epoch }
            } else {
                ClusterRole::Following {
                    leader: NODES[l].to_owned(),
                    epoch: self.epoch,
                }
            };
            self.nodes[n].election.push_back(ClusterEvent::Role(role));
        }
    }

    /// Dead nodes' leases lapse; the leader's next round hears of it.
    fn lapse(&mut self) {
        let alive = self.alive();
        self.leased.retain(|n| alive.contains(n));
        if let Some(l) = self.leader {
            let live = self.leased.iter().map(|n| NODES[*n].to_owned()).collect();
            let as_of = self.now;
            self.nodes[l]
                .election
                .push_back(ClusterEvent::LiveNodes { live, as_of });
        }
    }

    fn local(&mut self, n: usize, input: CoreInput) {
        let now = self.now;
        if self.nodes[n].desk.is_some() {
            self.note(format!("{} local {}", NODES[n], short(&input)));
        }
        if let Some(desk) = self.nodes[n].desk.as_mut() {
            desk.handle_local(now, input);
            self.drain(n);
        }
    }

    /// Delivers node `n`'s next piece of mail or election news.
    fn deliver(&mut self, n: usize, election: bool) {
        let now = self.now;
        let node = &mut self.nodes[n];
        if node.desk.is_none() {
            return;
        }
        let event = if election {
            node.election.pop_front()
        } else {
            node.mail.pop_front().map(|body| {
                let mail: DeskMail = serde_json::from_str(&body)
                    .unwrap_or_else(|e| panic!("mail does not parse: {e}: {body}"));
                ClusterEvent::Mail(Box::new(mail))
            })
        };
        if let Some(event) = event {
            let what = match &event {
                ClusterEvent::Mail(mail) => describe(mail),
                other => format!("{other:?}"),
            };
            self.note(format!("{} gets {what}", NODES[n]));
            let Some(desk) = self.nodes[n].desk.as_mut() else {
                return;
            };
            desk.handle_cluster(now, event);
            self.drain(n);
        }
    }

    fn tick(&mut self, by: Duration) {
        self.now += by;
        for n in 0..NODES.len() {
            while let Some(t) = self.nodes[n]
                .desk
                .as_ref()
                .and_then(|d| d.poll_timeout())
                .filter(|t| *t <= self.now)
            {
                if let Some(desk) = self.nodes[n].desk.as_mut() {
                    desk.handle_timeout(t);
                }
                self.drain(n);
            }
        }
    }

    /// Carries out node `n`'s outputs and checks what callers observe.
    fn drain(&mut self, n: usize) {
        while let Some(desk) = self.nodes[n].desk.as_mut() {
            let deciding = desk.deciding().then(|| desk.epoch());
            let Some(out) = desk.poll_output() else {
                break;
            };
            if let Some(epoch) = deciding {
                self.decision(epoch, &out);
            }
            match out {
                NodeOutput::Mail { to, mail } => {
                    let body = serde_json::to_string(&mail)
                        .unwrap_or_else(|e| self.fail(format!("mail does not serialise: {e}")));
                    let Some(to) = NODES.iter().position(|x| *x == to) else {
                        self.fail(format!("mail to an unknown node {to}"));
                    };
                    // Mail to a dead node is discarded when it starts again.
                    if self.nodes[to].desk.is_some() {
                        self.nodes[to].mail.push_back(body);
                    }
                }
                NodeOutput::Notify { call, notice } => {
                    self.notice(n, call.as_str(), notice);
                }
                NodeOutput::Forget { call } => self.hang_up_bridge(call.as_str()),
                NodeOutput::CheckMedia { agent, call } => {
                    self.nodes[n]
                        .checks
                        .push((agent.as_str().to_owned(), call.as_str().to_owned()));
                }
                NodeOutput::Dial(r) => {
                    self.fail(format!("a callback dialled without any booked: {r:?}"))
                }
                NodeOutput::ToPage { agent, msg } => {
                    let msg: String = format!("{msg:?}").chars().take(100).collect();
                    self.note(format!("{} page {}: {msg}", NODES[n], agent.as_str()));
                }
                NodeOutput::MonitorHere { .. } | NodeOutput::MonitorReply { .. } => {
                    self.fail("monitoring in a run that monitors nothing".into())
                }
                NodeOutput::Progress(_)
                | NodeOutput::AcceptSdp { .. }
                | NodeOutput::StatesChanged => {}
            }
        }
        if let Some(l) = self.leader
            && l == n
            && let Some(desk) = &self.nodes[n].desk
            && desk.deciding()
            && let Err(e) = desk.core().check_invariants()
        {
            self.fail(format!("leader {}: {e}", NODES[n]));
        }
    }

    fn notice(&mut self, n: usize, call: &str, notice: DeskNotice) {
        self.note(format!("{} notice {call}: {notice:?}", NODES[n]));
        let Some(c) = self.calls.get_mut(call) else {
            self.fail(format!("{} told of a call nobody made: {call}", NODES[n]));
        };
        if c.node != n {
            let on = NODES[c.node];
            self.fail(format!("{} told of {call}, which is on {on}", NODES[n]));
        }
        if c.state == Caller::Gone {
            return;
        }
        match notice {
            DeskNotice::Accepted { agent } => {
                c.accepted = true;
                self.accepted += 1;
                self.bridged.insert(call.to_owned(), agent);
            }
            DeskNotice::AgentHungUp { .. } | DeskNotice::AgentLost { .. } => {
                self.bridged.remove(call);
            }
            DeskNotice::UnknownQueue | DeskNotice::Overflow { .. } => {
                self.fail(format!(
                    "{call}: {notice:?} (no caller should be turned away)"
                ));
            }
            _ => {}
        }
    }

    /// What a deciding core's output decides about agents and calls, here
    /// or by mail to the call's node.
    fn decision(&mut self, epoch: i64, out: &NodeOutput) {
        let (call, agent, ends) = match out {
            NodeOutput::Notify {
                call,
                notice: DeskNotice::Offered { .. },
            } => return self.decide_offer(call.as_str()),
            NodeOutput::Mail {
                mail:
                    DeskMail::Output {
                        out:
                            RemoteOutput::Notify {
                                call,
                                notice: WireNotice::Offered { .. },
                            },
                        ..
                    },
                ..
            } => return self.decide_offer(call),
            NodeOutput::Notify { call, notice } => match notice {
                DeskNotice::Accepted { agent } => (call.as_str(), Some(agent.as_str()), false),
                DeskNotice::AgentHungUp { .. } | DeskNotice::AgentLost { .. } => {
                    (call.as_str(), None, true)
                }
                _ => return,
            },
            NodeOutput::Forget { call } => (call.as_str(), None, true),
            NodeOutput::Mail {
                mail: DeskMail::Output { out, .. },
                ..
            } => match out {
                RemoteOutput::Notify { call, notice } => match notice {
                    WireNotice::Accepted { agent } => (call.as_str(), Some(agent.as_str()), false),
                    WireNotice::AgentHungUp { .. } | WireNotice::AgentLost { .. } => {
                        (call.as_str(), None, true)
                    }
                    _ => return,
                },
                RemoteOutput::Forget { call } => (call.as_str(), None, true),
                _ => return,
            },
            _ => return,
        };
        let (call, agent) = (call.to_owned(), agent.map(str::to_owned));
        if let Some(agent) = agent {
            self.decide_accept(epoch, &call, &agent);
        } else if ends {
            self.decide_end(&call);
        }
    }

    /// The leader's view of an agent (what their page shows).
    fn agent_state(&self, agent: &str) -> Option<AgentState> {
        let desk = self.nodes[self.leader?].desk.as_ref()?;
        desk.deciding().then_some(())?;
        desk.core()
            .acd()
            .agent(&AgentId::new(agent.to_owned()))
            .map(|v| v.state)
    }

    fn page_says(&mut self, agent: &'static str, msg: ClientMsg) {
        if let Some((n, conn)) = self.pages.get(agent).copied() {
            let input = CoreInput::AgentMessage {
                agent: agent.into(),
                conn,
                msg,
            };
            self.local(n, input);
        }
    }

    fn connect(&mut self, agent: &'static str, n: usize) {
        if let Some((old, conn)) = self.pages.remove(agent) {
            let input = CoreInput::AgentDisconnected {
                agent: agent.into(),
                conn,
                dropped: false,
            };
            self.local(old, input);
        }
        self.next_conn += 1;
        let conn = self.next_conn;
        self.pages.insert(agent, (n, conn));
        self.local(
            n,
            CoreInput::AgentConnected {
                agent: agent.into(),
                conn,
            },
        );
        self.page_says(agent, ClientMsg::Hello {});
    }

    fn new_caller(&mut self, n: usize) {
        self.next_call += 1;
        let call = format!("c{:04}", self.next_call);
        let queue = QUEUES[self.rng.usize(..QUEUES.len())];
        let priority = if self.rng.u8(..5) == 0 { 1 } else { 0 };
        self.calls.insert(
            call.clone(),
            Call {
                node: n,
                queue,
                priority,
                arrived: self.now,
                state: Caller::Waiting,
                offered_before_end: false,
                accepted: false,
            },
        );
        let info = CallInfo {
            call,
            queue: queue.into(),
            priority,
            issue_type: None,
            caller: format!("+8613900{:06}", self.next_call),
            dialable: true,
            reply_via: SocketAddr::from(([127, 0, 0, 1], 5070)),
            path: vec!["menu".into()],
            data: serde_json::Value::Null,
        };
        self.local(n, CoreInput::Enqueue(info));
    }

    fn caller_hangs_up(&mut self) {
        let waiting: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, c)| c.state == Caller::Waiting)
            .map(|(id, _)| id.clone())
            .collect();
        if waiting.is_empty() {
            return;
        }
        let call = waiting[self.rng.usize(..waiting.len())].clone();
        let n = self.calls[&call].node;
        self.hang_up_bridge(&call);
        if let Some(c) = self.calls.get_mut(&call) {
            c.state = Caller::Gone;
        }
        self.local(n, CoreInput::CallEnded { call });
    }

    /// An agent does what their page would, mostly sensibly.
    fn agent_acts(&mut self, agent: &'static str, sensible: bool) {
        let msg = match self.agent_state(agent) {
            Some(AgentState::Ringing { call }) if sensible || self.rng.u8(..4) > 0 => {
                let call = call.as_str().to_owned();
                if sensible || self.rng.u8(..5) > 0 {
                    ClientMsg::Answer { call }
                } else {
                    ClientMsg::Decline { call }
                }
            }
            Some(AgentState::OnCall { call }) if sensible || self.rng.u8(..3) == 0 => {
                ClientMsg::Hangup {
                    call: call.as_str().to_owned(),
                }
            }
            Some(AgentState::WrapUp { call, .. }) => ClientMsg::WrapUp {
                call: call.as_str().to_owned(),
                disposition: "resolved".into(),
                notes: String::new(),
            },
            Some(AgentState::Available) if !sensible && self.rng.u8(..6) == 0 => {
                ClientMsg::Available {
                    on: false,
                    reason: Some("lunch".into()),
                }
            }
            _ => ClientMsg::Available {
                on: true,
                reason: None,
            },
        };
        self.page_says(agent, msg);
    }

    fn step(&mut self) {
        let alive = self.alive();
        let pick = |rng: &mut fastrand::Rng, v: &[usize]| v[rng.usize(..v.len())];
        match self.rng.u8(..100) {
            0..=9 if !alive.is_empty() => {
                let n = pick(&mut self.rng, &alive);
                self.new_caller(n);
            }
            10..=12 => self.caller_hangs_up(),
            13..=17 if !alive.is_empty() => {
                let agent = AGENTS[self.rng.usize(..AGENTS.len())];
                if self.rng.u8(..4) == 0 || !self.pages.contains_key(agent) {
                    let n = pick(&mut self.rng, &alive);
                    self.connect(agent, n);
                } else if let Some((n, conn)) = self.pages.get(agent).copied() {
                    // The page drops off (it may come back within the grace).
                    self.pages.remove(agent);
                    let input = CoreInput::AgentDisconnected {
                        agent: agent.into(),
                        conn,
                        dropped: self.rng.bool(),
                    };
                    self.local(n, input);
                }
            }
            18..=37 => {
                let agent = AGENTS[self.rng.usize(..AGENTS.len())];
                self.agent_acts(agent, false);
            }
            38..=69 if !alive.is_empty() => {
                let n = pick(&mut self.rng, &alive);
                self.deliver(n, false);
            }
            70..=79 if !alive.is_empty() => {
                let n = pick(&mut self.rng, &alive);
                self.deliver(n, true);
            }
            80..=81 => {
                // A media check comes back.
                let with: Vec<usize> = (0..NODES.len())
                    .filter(|n| !self.nodes[*n].checks.is_empty())
                    .collect();
                if !with.is_empty() {
                    let n = pick(&mut self.rng, &with);
                    let (agent, _call) = self.nodes[n].checks.remove(0);
                    let silent = self.rng.bool();
                    self.local(n, CoreInput::MediaCheck { agent, silent });
                }
            }
            82 if alive.len() > 1 && self.rng.u8(..3) == 0 => {
                // SIGKILL, most often of the leader.
                let n = match self.leader {
                    Some(l) if self.rng.u8(..3) > 0 => l,
                    _ => pick(&mut self.rng, &alive),
                };
                self.kill(n);
            }
            83 => {
                let dead: Vec<usize> = (0..NODES.len())
                    .filter(|n| self.nodes[*n].desk.is_none())
                    .collect();
                if !dead.is_empty() && self.rng.u8(..3) == 0 {
                    let n = pick(&mut self.rng, &dead);
                    self.boot(n);
                }
            }
            84..=86 => self.elect(),
            87..=88 => self.lapse(),
            _ => {
                let by = Duration::from_millis(self.rng.u64(0..3_000));
                self.tick(by);
            }
        }
    }

    /// Delivers everything pending, election first, until quiet.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut any = false;
            for n in 0..NODES.len() {
                while !self.nodes[n].election.is_empty() {
                    self.deliver(n, true);
                    any = true;
                }
                while !self.nodes[n].mail.is_empty() {
                    self.deliver(n, false);
                    any = true;
                }
            }
            if !any {
                return;
            }
        }
        self.fail("mail never settles".into());
    }

    /// Faults stop: a leader, leases current, every agent's page on a
    /// live node; then agents take every call.
    fn end(&mut self) {
        self.lapse();
        self.elect();
        self.settle();
        // Mail a dead node sent before it died may have been read after
        // the last round asked (it looked alive): the next round sees it.
        self.tick(Duration::from_secs(1));
        self.lapse();
        self.settle();
        self.tick(Duration::from_secs(11));
        self.settle();
        let alive = self.alive();
        for (i, agent) in AGENTS.iter().enumerate() {
            let n = alive[i % alive.len()];
            self.connect(agent, n);
            self.settle();
        }
        // Calls ringing now were offered before the end phase.
        for _ in 0..20 {
            for agent in AGENTS {
                if let Some(AgentState::Ringing { call }) = self.agent_state(agent)
                    && let Some(c) = self.calls.get_mut(call.as_str())
                {
                    c.offered_before_end = true;
                }
            }
            self.settle();
        }
        self.no_ghosts();
        self.end_offers = Some(Vec::new());
        for agent in AGENTS {
            self.page_says(
                agent,
                ClientMsg::Available {
                    on: true,
                    reason: None,
                },
            );
            self.settle();
        }
        for round in 0..2_000 {
            let waiting = self
                .calls
                .values()
                .filter(|c| c.state == Caller::Waiting && !c.accepted)
                .count();
            if waiting == 0 {
                break;
            }
            if round == 1_999 {
                let stuck: Vec<&String> = self
                    .calls
                    .iter()
                    .filter(|(_, c)| c.state == Caller::Waiting && !c.accepted)
                    .map(|(id, _)| id)
                    .collect();
                let states: Vec<_> = AGENTS.iter().map(|a| (a, self.agent_state(a))).collect();
                self.fail(format!(
                    "{waiting} callers never answered: {stuck:?}; agents {states:?}"
                ));
            }
            for agent in AGENTS {
                self.agent_acts(agent, true);
                self.settle();
            }
            self.tick(Duration::from_millis(500));
            self.settle();
        }
        self.check_order();
        self.views_agree();
    }

    /// Every node shows the leader's agent states, queue loads and its
    /// pages' overviews (the admin API, `/metrics` and the agent page read
    /// them on whichever node they reach) within a second.
    fn views_agree(&mut self) {
        self.tick(Duration::from_millis(1_100));
        self.settle();
        let Some(l) = self.leader else {
            self.fail("no leader at the end".into());
        };
        let Some(leader) = self.nodes[l].desk.as_ref() else {
            self.fail("the leader is dead at the end".into());
        };
        let states = |views: Vec<hotline_routing::AgentView>| -> Vec<(String, &'static str)> {
            let mut v: Vec<_> = views
                .into_iter()
                .map(|v| (v.id.as_str().to_owned(), v.state.name()))
                .collect();
            v.sort();
            v
        };
        let want = states(leader.agent_views());
        let depths = |d: Vec<hotline_desk::QueueDepth>| -> Vec<(String, usize, usize)> {
            let mut v: Vec<_> = d
                .into_iter()
                .map(|d| (d.queue, d.waiting, d.agents_available))
                .collect();
            v.sort();
            v
        };
        let want_depths = depths(leader.queue_depths(self.now));
        for n in self.alive() {
            if n == l {
                continue;
            }
            let Some(desk) = self.nodes[n].desk.as_ref() else {
                continue;
            };
            let got = states(desk.agent_views());
            if got != want {
                self.fail(format!("{} shows {got:?}; the leader {want:?}", NODES[n]));
            }
            let got = depths(desk.queue_depths(self.now));
            if got != want_depths {
                self.fail(format!(
                    "{} shows queues {got:?}; the leader {want_depths:?}",
                    NODES[n]
                ));
            }
            for (agent, (on, _)) in &self.pages {
                if *on == n {
                    let got = desk.overview(agent, self.now);
                    let want = leader.core().overview(agent, self.now);
                    if got.queues != want.queues || got.finished != want.finished {
                        self.fail(format!(
                            "{}: {agent}'s overview {got:?}; the leader's {want:?}",
                            NODES[n]
                        ));
                    }
                }
            }
        }
    }

    /// Once leases are current and the mail settled, the leader waits
    /// with no caller who is gone (a dead node's, or one of a node's
    /// earlier life): none is offered to agents as if alive.
    fn no_ghosts(&self) {
        let Some(desk) = self.leader.and_then(|l| self.nodes[l].desk.as_ref()) else {
            self.fail("no leader at the end".into());
        };
        for q in desk.core().acd().queues() {
            for c in &q.waiting {
                let id = c.call.as_str();
                if self.calls.get(id).is_none_or(|c| c.state == Caller::Gone) {
                    self.fail(format!(
                        "{id} waits in {} but its caller is gone",
                        q.name.as_str()
                    ));
                }
            }
        }
    }

    /// Callers first offered in the end phase were offered by priority,
    /// then arrival, within each queue.
    fn check_order(&self) {
        let Some(order) = &self.end_offers else {
            return;
        };
        for queue in QUEUES {
            let offered: Vec<(&String, &Call)> = order
                .iter()
                .filter_map(|id| Some((id, self.calls.get(id)?)))
                .filter(|(_, c)| c.queue == queue && !c.offered_before_end)
                .collect();
            for pair in offered.windows(2) {
                let ((a, ca), (b, cb)) = (pair[0], pair[1]);
                let key = |c: &Call| (std::cmp::Reverse(c.priority), c.arrived);
                if key(ca) > key(cb) {
                    self.fail(format!(
                        "{queue}: {a} (priority {}, arrived {:?}) offered before {b} (priority {}, arrived {:?})",
                        ca.priority,
                        ca.arrived - self.start,
                        cb.priority,
                        cb.arrived - self.start
                    ));
                }
            }
        }
    }
}

/// One line of the story for a piece of mail.
fn describe(mail: &DeskMail) -> String {
    match mail {
        DeskMail::Input {
            from, epoch, input, ..
        } => format!("mail from {from} e{epoch}: {}", short(input)),
        DeskMail::View { epoch, agents, .. } => format!("view e{epoch}: {} agents", agents.len()),
        DeskMail::Monitor { from, call, .. } => format!("monitor of {call} from {from}"),
        DeskMail::MonitorReply { session, node, .. } => {
            format!("monitor reply {session} from {node}")
        }
        DeskMail::Output { epoch, out } => {
            let out: String = format!("{out:?}").chars().take(120).collect();
            format!("mail e{epoch}: {out}")
        }
        DeskMail::Announce {
            from,
            epoch,
            calls,
            pages,
            talking,
        } => {
            let calls: Vec<&str> = calls.iter().map(|c| c.info.call.as_str()).collect();
            let pages: Vec<String> = pages
                .iter()
                .map(|p| format!("{}:{}:{:?}:{}", p.agent, p.conn, p.available, p.busy))
                .collect();
            let talking: Vec<String> = talking
                .iter()
                .map(|(c, a)| format!("{}={a}", c.call))
                .collect();
            format!(
                "announce from {from} e{epoch}: calls {calls:?} pages {pages:?} talking {talking:?}"
            )
        }
    }
}

fn short(input: &CoreInput) -> String {
    match input {
        CoreInput::Enqueue(i) => format!("enqueue {} {}", i.call, i.queue),
        CoreInput::Rejoin { info, waited_ms } => format!("rejoin {} {waited_ms}", info.call),
        CoreInput::Restore { info, agent } => format!("restore {} {agent}", info.call),
        other => format!("{other:?}"),
    }
}

/// One seed's run: (calls accepted, leaderships, kills).
fn run(seed: u64) -> (usize, usize, usize) {
    let mut sim = Sim::new(seed);
    sim.elect();
    for _ in 0..STEPS {
        sim.step();
    }
    let waiting_at_end = sim
        .calls
        .values()
        .filter(|c| c.state == Caller::Waiting && !c.accepted)
        .count();
    sim.end();
    eprintln!(
        "seed {seed}: {} calls, {} accepted, {} leaderships, {} kills, {waiting_at_end} waiting when faults stopped, {} offered in the end phase",
        sim.calls.len(),
        sim.accepted,
        sim.failovers,
        sim.kills,
        sim.end_offers.as_ref().map_or(0, Vec::len),
    );
    (sim.accepted, sim.failovers, sim.kills)
}

#[test]
fn nodes_die_and_leaders_fail_over_and_no_agent_gets_two_calls() {
    let seeds: u64 = std::env::var("DESK_RACE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let first: u64 = std::env::var("DESK_RACE_FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (mut accepted, mut leaderships, mut kills) = (0, 0, 0);
    for seed in first..first + seeds {
        let (a, l, k) = run(seed);
        accepted += a;
        leaderships += l;
        kills += k;
    }
    // The runs did what they are for (a seed alone may be quiet).
    let n = seeds as usize;
    assert!(accepted > 20 * n, "{accepted} accepted in {n} seeds");
    assert!(
        leaderships > 3 * n,
        "{leaderships} leaderships in {n} seeds"
    );
    assert!(kills > 3 * n, "{kills} kills in {n} seeds");
}

/// Carries every piece of mail between two nodes until both are quiet.
fn pump(now: Instant, a: &mut NodeDesk, b: &mut NodeDesk) {
    while pass(now, a, b) | pass(now, b, a) {}
}

/// Hands `from`'s mail to `to`; whether there was any.
fn pass(now: Instant, from: &mut NodeDesk, to: &mut NodeDesk) -> bool {
    let mut any = false;
    while let Some(out) = from.poll_output() {
        if let NodeOutput::Mail { mail, .. } = out {
            any = true;
            let json = serde_json::to_string(&mail).unwrap();
            let mail: DeskMail = serde_json::from_str(&json).unwrap();
            to.handle_cluster(now, ClusterEvent::Mail(Box::new(mail)));
        }
    }
    any
}

/// Two nodes on one clock, every agent in every queue: n1 leads
/// (epoch 1), n2 follows it and has announced.
fn two_nodes(start: Instant) -> (NodeDesk, NodeDesk) {
    let (mut n1, mut n2) = (cluster_node("n1", start), cluster_node("n2", start));
    n1.handle_cluster(start, ClusterEvent::Role(ClusterRole::Leading { epoch: 1 }));
    let following = ClusterRole::Following {
        leader: "n1".into(),
        epoch: 1,
    };
    n2.handle_cluster(start, ClusterEvent::Role(following));
    pump(start, &mut n1, &mut n2);
    (n1, n2)
}

/// A node of the cluster of [`two_nodes`], started at `start` (the
/// election has not spoken to it yet), every agent in every queue.
fn cluster_node(name: &str, start: Instant) -> NodeDesk {
    let mut rng = fastrand::Rng::with_seed(1);
    let mut config = queues(&mut rng);
    for q in &mut config {
        q.members = AGENTS.iter().map(|a| (*a).into()).collect();
    }
    let mut d = NodeDesk::new(config, agents(), (start, SystemTime::UNIX_EPOCH));
    d.set_node(name.into());
    d
}

/// A caller for the support queue.
fn support_caller(id: &str) -> CallInfo {
    CallInfo {
        call: id.into(),
        queue: "support".into(),
        priority: 0,
        issue_type: None,
        caller: "+8613900000001".into(),
        dialable: true,
        reply_via: SocketAddr::from(([127, 0, 0, 1], 5070)),
        path: vec![],
        data: serde_json::Value::Null,
    }
}

#[test]
fn a_new_leader_goes_on_with_the_last_ones_wait_estimates() {
    let start = Instant::now();
    let (mut n1, mut n2) = two_nodes(start);
    let mut now = start;
    let live = vec!["n1".to_owned(), "n2".to_owned()];
    n1.handle_cluster(now, ClusterEvent::LiveNodes { live, as_of: now });
    pump(now, &mut n1, &mut n2);

    // On n1, ann takes a support call for 3 minutes and wraps up.
    let msg = |msg| CoreInput::AgentMessage {
        agent: "ann".into(),
        conn: 1,
        msg,
    };
    n1.handle_local(
        now,
        CoreInput::AgentConnected {
            agent: "ann".into(),
            conn: 1,
        },
    );
    n1.handle_local(
        now,
        msg(ClientMsg::Available {
            on: true,
            reason: None,
        }),
    );
    n1.handle_local(now, CoreInput::Enqueue(support_caller("c1")));
    n1.handle_local(now, msg(ClientMsg::Answer { call: "c1".into() }));
    now += Duration::from_secs(180);
    n1.handle_local(now, msg(ClientMsg::Hangup { call: "c1".into() }));
    n1.handle_local(
        now,
        msg(ClientMsg::WrapUp {
            call: "c1".into(),
            disposition: "resolved".into(),
            notes: String::new(),
        }),
    );
    pump(now, &mut n1, &mut n2);
    let support = hotline_routing::QueueName::new("support".to_owned());
    assert_eq!(
        n1.core().acd().handle_times(&support),
        [Duration::from_secs(180)]
    );
    // Its view reaches n2 within a second.
    now += Duration::from_secs(1);
    n1.handle_timeout(now);
    pump(now, &mut n1, &mut n2);

    // n1 dies; n2 leads, settles, and a caller queues there: they hear
    // an estimate at once, from n1's handle time.
    n2.handle_cluster(now, ClusterEvent::Role(ClusterRole::Leading { epoch: 2 }));
    let live = vec!["n2".to_owned()];
    n2.handle_cluster(now, ClusterEvent::LiveNodes { live, as_of: now });
    n2.handle_local(now, CoreInput::Enqueue(support_caller("c2")));
    let mut told = Vec::new();
    while let Some(out) = n2.poll_output() {
        if let NodeOutput::Notify { call, notice } = out {
            told.push((call.as_str().to_owned(), notice));
        }
    }
    assert_eq!(
        n2.core().acd().handle_times(&support),
        [Duration::from_secs(180)]
    );
    assert!(
        told.iter().any(|(c, n)| c == "c2"
            && matches!(n, DeskNotice::Position { estimated_wait: Some(w), .. } if *w == Duration::from_secs(180))),
        "{told:?}"
    );
}

#[test]
fn a_new_leader_waits_for_live_nodes_not_the_dead_leader_and_not_past_its_cap() {
    let start = Instant::now();
    let (n1, mut n2) = two_nodes(start);
    let now = start;
    // n1 (the leader) and n3 die; both leases are current for a while.
    drop(n1);
    n2.handle_cluster(now, ClusterEvent::Role(ClusterRole::Leading { epoch: 2 }));
    let live = ["n1", "n2", "n3"].map(String::from).to_vec();
    n2.handle_cluster(now, ClusterEvent::LiveNodes { live, as_of: now });
    let ann = |msg| CoreInput::AgentMessage {
        agent: "ann".into(),
        conn: 7,
        msg,
    };
    n2.handle_local(
        now,
        CoreInput::AgentConnected {
            agent: "ann".into(),
            conn: 7,
        },
    );
    n2.handle_local(
        now,
        ann(ClientMsg::Available {
            on: true,
            reason: None,
        }),
    );
    n2.handle_local(now, CoreInput::Enqueue(support_caller("c1")));
    let offered = |d: &mut NodeDesk| {
        let mut offered = false;
        while let Some(out) = d.poll_output() {
            if let NodeOutput::Notify {
                notice: DeskNotice::Offered { agent },
                ..
            } = out
            {
                offered |= agent == "ann";
            }
        }
        offered
    };
    // n1 is not waited for (its session ended: that is why n2 leads); n3
    // might hold a call ann is on, so nothing is offered yet...
    assert!(!offered(&mut n2), "offered before n3 announced or the cap");
    assert!(!n2.decides_now());
    let cap = n2.poll_timeout().expect("the cap is a wake-up");
    assert_eq!(cap, now + hotline_desk::node::SETTLE_MAX);
    n2.handle_timeout(cap - Duration::from_millis(1));
    assert!(!offered(&mut n2));
    // ... until the cap: n3 is taken for dead.
    n2.handle_timeout(cap);
    assert!(n2.decides_now());
    assert!(offered(&mut n2), "ann is offered c1 once the wait is over");
}

/// `agent`'s page connects to `node` (socket `conn`) and goes available.
fn page_available(node: &mut NodeDesk, now: Instant, agent: &str, conn: u64) {
    let agent = agent.to_owned();
    node.handle_local(
        now,
        CoreInput::AgentConnected {
            agent: agent.clone(),
            conn,
        },
    );
    let msg = ClientMsg::Available {
        on: true,
        reason: None,
    };
    node.handle_local(now, CoreInput::AgentMessage { agent, conn, msg });
}

/// (call, agent) pairs.
type Offers = Vec<(String, String)>;

/// The offers among `node`'s outputs, made there or mailed to the call's
/// node; the mail (recipient, mail), in order.
fn offers_and_mail(node: &mut NodeDesk) -> (Offers, Vec<(String, DeskMail)>) {
    let mut offers = Vec::new();
    let mut mail = Vec::new();
    while let Some(out) = node.poll_output() {
        match out {
            NodeOutput::Notify {
                call,
                notice: DeskNotice::Offered { agent },
            } => offers.push((call.as_str().to_owned(), agent)),
            NodeOutput::Mail { to, mail: m } => {
                if let DeskMail::Output {
                    out:
                        RemoteOutput::Notify {
                            call,
                            notice: WireNotice::Offered { agent },
                        },
                    ..
                } = &m
                {
                    offers.push((call.clone(), agent.clone()));
                }
                mail.push((to, m));
            }
            _ => {}
        }
    }
    (offers, mail)
}

/// A node that has just started (its page and caller come in before the
/// election's first round reaches it) decides nothing on its own: another
/// node's desk may already be deciding for the same agents. Its first word
/// from the election sends what it holds to the leader, once, and the
/// leader offers the call. A node that hears nothing for
/// `ELECTION_WAIT_MAX` (its database away) decides alone.
#[test]
fn a_starting_node_decides_nothing_before_the_election_speaks() {
    let start = Instant::now();
    let (mut n1, mut n2) = two_nodes(start);
    let now = start + Duration::from_secs(5);
    let live = ["n1", "n2", "n3"].map(String::from).to_vec();
    n1.handle_cluster(now, ClusterEvent::LiveNodes { live, as_of: now });
    pump(now, &mut n1, &mut n2);
    assert!(n1.decides_now());

    // n3 starts: ann's page and a caller arrive before the election's word.
    let mut n3 = cluster_node("n3", now);
    page_available(&mut n3, now, "ann", 3);
    n3.handle_local(now, CoreInput::Enqueue(support_caller("c3")));
    let (offers, mail) = offers_and_mail(&mut n3);
    assert_eq!(offers, [], "n3 offered while the election had not spoken");
    assert!(mail.is_empty(), "{mail:?}");
    assert!(!n3.decides_now() && !n3.deciding());
    let later = now + Duration::from_millis(40);
    n3.handle_timeout(later);
    assert_eq!(offers_and_mail(&mut n3).0, []);

    // It follows n1: one announcement with the call and the page, nothing
    // sent twice; n1 offers the call to ann.
    let following = ClusterRole::Following {
        leader: "n1".into(),
        epoch: 1,
    };
    n3.handle_cluster(later, ClusterEvent::Role(following));
    let (offers, mail) = offers_and_mail(&mut n3);
    assert_eq!(offers, []);
    assert_eq!(mail.len(), 1, "one announcement and nothing else: {mail:?}");
    let (to, announce) = mail.into_iter().next().expect("one piece of mail");
    assert_eq!(to, "n1");
    match &announce {
        DeskMail::Announce { calls, pages, .. } => {
            assert_eq!(calls.len(), 1, "{announce:?}");
            assert_eq!(calls[0].info.call, "c3");
            assert_eq!(pages.len(), 1, "{announce:?}");
            assert_eq!(pages[0].available, Some(true));
        }
        other => panic!("not an announcement: {other:?}"),
    }
    n1.handle_cluster(later, ClusterEvent::Mail(Box::new(announce)));
    let (offers, _) = offers_and_mail(&mut n1);
    assert_eq!(offers, [("c3".to_owned(), "ann".to_owned())]);

    // n4 starts with its database away: no word. It holds its caller for
    // ELECTION_WAIT_MAX, then decides alone.
    let mut n4 = cluster_node("n4", later);
    page_available(&mut n4, later, "bob", 4);
    n4.handle_local(later, CoreInput::Enqueue(support_caller("c4")));
    let cap = n4.poll_timeout().expect("the wait has an end");
    assert_eq!(cap, later + hotline_desk::node::ELECTION_WAIT_MAX);
    n4.handle_timeout(cap - Duration::from_millis(1));
    assert_eq!(offers_and_mail(&mut n4).0, []);
    n4.handle_timeout(cap);
    assert!(n4.decides_now());
    assert_eq!(
        offers_and_mail(&mut n4).0,
        [("c4".to_owned(), "bob".to_owned())]
    );
}

/// A supervisor's console on one node monitors a call on another: the
/// request reaches the call's node (through the leader when the console's
/// node does not know where the call is), and the call's node's reply comes
/// straight back; a call nowhere ends the session at once.
#[test]
fn a_monitor_request_finds_the_calls_node_and_its_reply_comes_back() {
    use hotline_desk::cluster::{MonitorReply, MonitorRequest, WireMonitorStatus};
    use hotline_webphone::monitor::MonitorMode;

    let start = Instant::now();
    let (mut n1, mut n2) = two_nodes(start);
    let mut n3 = cluster_node("n3", start);
    let following = ClusterRole::Following {
        leader: "n1".into(),
        epoch: 1,
    };
    n3.handle_cluster(start, ClusterEvent::Role(following));
    let now = start + Duration::from_secs(1);
    let live = ["n1", "n2", "n3"].map(String::from).to_vec();
    n1.handle_cluster(now, ClusterEvent::LiveNodes { live, as_of: now });
    let to_n1: Vec<DeskMail> = offers_and_mail(&mut n3)
        .1
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    for m in to_n1 {
        n1.handle_cluster(now, ClusterEvent::Mail(Box::new(m)));
    }
    pump(now, &mut n1, &mut n2);
    assert!(n1.decides_now());

    // A caller queues on n3; the leader knows the call is there.
    n3.handle_local(now, CoreInput::Enqueue(support_caller("c3")));
    for (to, m) in offers_and_mail(&mut n3).1 {
        assert_eq!(to, "n1");
        n1.handle_cluster(now, ClusterEvent::Mail(Box::new(m)));
    }
    let _ = offers_and_mail(&mut n1);

    // sue's console on n2 asks to listen to c3: n2 → n1 (the leader) → n3.
    let start_req = MonitorRequest::Start {
        mode: MonitorMode::Listen,
        sdp: "v=0 offer".into(),
    };
    n2.monitor_elsewhere(
        None,
        "sue".into(),
        "c3".into(),
        "s1".into(),
        start_req.clone(),
    );
    let (_, mail) = offers_and_mail(&mut n2);
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0].0, "n1", "a follower asks the leader");
    n1.handle_cluster(now, ClusterEvent::Mail(Box::new(mail[0].1.clone())));
    let (_, mail) = offers_and_mail(&mut n1);
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0].0, "n3", "the leader forwards to the call's node");
    n3.handle_cluster(now, ClusterEvent::Mail(Box::new(mail[0].1.clone())));
    let here: Vec<NodeOutput> = std::iter::from_fn(|| n3.poll_output()).collect();
    match here.as_slice() {
        [
            NodeOutput::MonitorHere {
                from,
                supervisor,
                call,
                session,
                request,
            },
        ] => {
            assert_eq!(
                (from.as_str(), supervisor.as_str(), call.as_str()),
                ("n2", "sue", "c3")
            );
            assert_eq!(session, "s1");
            assert_eq!(request, &start_req);
        }
        other => panic!("not carried out on n3: {other:?}"),
    }

    // n3's reply (the shell mails it) reaches the console's node as is,
    // naming n3; later requests go to n3 directly.
    let reply = DeskMail::MonitorReply {
        session: "s1".into(),
        node: "n3".into(),
        reply: MonitorReply::Answer {
            sdp: "v=0 answer".into(),
        },
    };
    let json = serde_json::to_string(&reply).unwrap();
    let reply: DeskMail = serde_json::from_str(&json).unwrap();
    n2.handle_cluster(now, ClusterEvent::Mail(Box::new(reply)));
    let back: Vec<NodeOutput> = std::iter::from_fn(|| n2.poll_output()).collect();
    assert!(
        matches!(back.as_slice(), [NodeOutput::MonitorReply { session, node, reply: MonitorReply::Answer { sdp } }]
            if session == "s1" && node == "n3" && sdp == "v=0 answer"),
        "{back:?}"
    );
    n2.monitor_elsewhere(
        Some("n3".into()),
        "sue".into(),
        "c3".into(),
        "s1".into(),
        MonitorRequest::Stop,
    );
    let (_, mail) = offers_and_mail(&mut n2);
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].0, "n3");

    // A call no node holds: the leader ends the session.
    n2.monitor_elsewhere(None, "sue".into(), "nope".into(), "s2".into(), start_req);
    let (_, mail) = offers_and_mail(&mut n2);
    n1.handle_cluster(now, ClusterEvent::Mail(Box::new(mail[0].1.clone())));
    let (_, mail) = offers_and_mail(&mut n1);
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0].0, "n2");
    n2.handle_cluster(now, ClusterEvent::Mail(Box::new(mail[0].1.clone())));
    let back: Vec<NodeOutput> = std::iter::from_fn(|| n2.poll_output()).collect();
    assert!(
        matches!(back.as_slice(), [NodeOutput::MonitorReply { session, reply: MonitorReply::Status { status: WireMonitorStatus::Stopped { reason } }, .. }]
            if session == "s2" && reason == "not_on_call"),
        "{back:?}"
    );
}
