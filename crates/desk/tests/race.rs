//! Seeded race test for the desk: the routing crate's race test drives the
//! ACD alone; this one drives the whole desk core — agent pages that drop
//! off and come back (stale sockets too), media checks, wrap-up forms,
//! callbacks by overflow and by booking with their legs answering, failing
//! or never being placed, admin cancellations and configuration changes —
//! in random order on a fake clock. After every step the desk's invariants
//! ([`DeskCore::check_invariants`], which include the ACD's) must hold, and
//! from the outputs alone: no call is handed to two agents at once, every
//! dial request is for the agent the call is with, every notice goes to a
//! call the shell has not been told to forget, and a call the desk forgot
//! is never notified again.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use hotline_desk::{BookedCallback, CallInfo, CoreInput, DeskCore, DeskNotice, DeskOutput};
use hotline_routing::{AgentConfig, AgentState, Overflow, QueueConfig, Strategy};
use hotline_webphone::protocol::ClientMsg;

const STEPS: usize = 5_000;
const AGENTS: [&str; 4] = ["ann", "bob", "cat", "dan"];

fn queues(rng: &mut fastrand::Rng) -> Vec<QueueConfig> {
    let strategies = [
        Strategy::LongestIdle,
        Strategy::RoundRobin,
        Strategy::RingAll,
        Strategy::SkillsPriority,
    ];
    ["support", "billing"]
        .iter()
        .map(|name| {
            let mut q = QueueConfig::new(*name);
            q.strategy = strategies[rng.usize(..strategies.len())];
            q.members = AGENTS
                .iter()
                .filter(|_| rng.bool())
                .map(|a| (*a).into())
                .collect();
            q.offer_timeout = Duration::from_secs(rng.u64(2..10));
            q.wrap_up = Duration::from_secs(rng.u64(1..20));
            q.max_wait = Duration::from_secs(rng.u64(5..60));
            q.overflow = match rng.u8(..3) {
                0 => Overflow::Callback,
                1 => Overflow::Voicemail,
                _ => Overflow::Hangup,
            };
            q.callback_attempts = rng.u32(1..4);
            q.callback_retry = Duration::from_secs(rng.u64(1..30));
            q
        })
        .collect()
}

#[derive(Default)]
struct Observed {
    /// Call → the agent it was last handed to (Accepted, or a dial).
    with_agent: BTreeMap<String, String>,
    forgotten: BTreeSet<String>,
    /// Outstanding dial requests: entry → (attempt, agent).
    dials: BTreeMap<String, (u32, String)>,
    accepted: usize,
    dialled: usize,
    wrapped: usize,
}

impl Observed {
    fn see(&mut self, out: DeskOutput) -> Result<(), String> {
        match out {
            DeskOutput::Notify { call, notice } => {
                let call = call.as_str().to_owned();
                if self.forgotten.contains(&call) {
                    return Err(format!(
                        "{call} notified after it was forgotten: {notice:?}"
                    ));
                }
                match notice {
                    DeskNotice::Accepted { agent } => {
                        if let Some(other) = self.with_agent.get(&call) {
                            return Err(format!("{call} handed to {agent} while with {other}"));
                        }
                        self.with_agent.insert(call, agent);
                        self.accepted += 1;
                    }
                    DeskNotice::AgentLost { .. } | DeskNotice::AgentHungUp { .. } => {
                        self.with_agent.remove(&call);
                    }
                    DeskNotice::WrapUpDone { .. } => self.wrapped += 1,
                    _ => {}
                }
            }
            DeskOutput::Dial(r) => {
                self.dials.insert(r.entry.clone(), (r.attempt, r.agent));
                self.dialled += 1;
            }
            DeskOutput::Forget { call } => {
                let call = call.as_str().to_owned();
                self.with_agent.remove(&call);
                self.forgotten.insert(call);
            }
            _ => {}
        }
        Ok(())
    }
}

fn run(seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let start = Instant::now();
    let mut now = start;
    let agents = AGENTS
        .iter()
        .map(|a| AgentConfig::new(*a, a.to_string()))
        .collect();
    let mut desk = DeskCore::new(queues(&mut rng), agents, (start, SystemTime::UNIX_EPOCH));
    let mut seen = Observed::default();
    let mut conns: BTreeMap<&str, u64> = BTreeMap::new();
    let mut next_conn = 1u64;
    let mut calls: Vec<String> = Vec::new();
    let mut next_call = 0u32;
    for step in 0..STEPS {
        let agent = AGENTS[rng.usize(..AGENTS.len())];
        // Mostly the page's current socket; sometimes a stale one.
        let conn = match conns.get(agent) {
            Some(c) if rng.u8(..10) > 0 => *c,
            _ => rng.u64(..next_conn.max(1)),
        };
        let input = match rng.u8(..22) {
            0..=2 => {
                next_call += 1;
                let call = format!("c{next_call}");
                calls.push(call.clone());
                let queue = ["support", "billing", "none"][rng.usize(..3)];
                // A number per call (the per-number dial cap, policy.rs,
                // is not what this test is about), or none.
                let caller = if rng.bool() {
                    format!("+86139{next_call:08}")
                } else {
                    "caller".to_owned()
                };
                CoreInput::Enqueue(CallInfo {
                    call,
                    queue: queue.into(),
                    priority: rng.i64(0..3),
                    issue_type: None,
                    dialable: caller.starts_with('+'),
                    caller,
                    reply_via: SocketAddr::from(([127, 0, 0, 1], 5070)),
                    path: vec![],
                    data: serde_json::Value::Null,
                })
            }
            3 => CoreInput::CallEnded {
                call: some_call(&mut rng, &calls),
            },
            4 => {
                next_conn += 1;
                conns.insert(agent, next_conn);
                CoreInput::AgentConnected {
                    agent: agent.into(),
                    conn: next_conn,
                }
            }
            5 => CoreInput::AgentDisconnected {
                agent: agent.into(),
                conn,
                dropped: rng.bool(),
            },
            6 => CoreInput::MediaCheck {
                agent: agent.into(),
                silent: rng.bool(),
            },
            7..=15 => {
                // Mostly about the agent's own call (the one a page shows),
                // and mostly what a page would send in that state.
                let state = desk.acd().agent(&agent.into()).map(|v| v.state);
                let msg = match state {
                    Some(AgentState::Ringing { call }) if rng.u8(..3) > 0 => ClientMsg::Answer {
                        call: call.as_str().to_owned(),
                    },
                    Some(AgentState::OnCall { call }) if rng.u8(..4) == 0 => ClientMsg::Hangup {
                        call: call.as_str().to_owned(),
                    },
                    Some(AgentState::WrapUp { call, .. }) if rng.bool() => ClientMsg::WrapUp {
                        call: call.as_str().to_owned(),
                        disposition: "resolved".into(),
                        notes: String::new(),
                    },
                    Some(AgentState::Away { .. } | AgentState::Offline) if rng.bool() => {
                        ClientMsg::Available {
                            on: true,
                            reason: None,
                        }
                    }
                    _ => {
                        let call = some_call(&mut rng, &calls);
                        match rng.u8(..9) {
                            0 | 1 => ClientMsg::Answer { call },
                            2 => ClientMsg::Decline { call },
                            3 => ClientMsg::Hangup { call },
                            4 => ClientMsg::Available {
                                on: rng.u8(..4) > 0,
                                reason: None,
                            },
                            5 => ClientMsg::WrapUp {
                                call,
                                disposition: "resolved".into(),
                                notes: String::new(),
                            },
                            6 => ClientMsg::Hello {},
                            7 => ClientMsg::Hold { on: rng.bool() },
                            _ => ClientMsg::SdpOffer {
                                call,
                                sdp: "v=0".into(),
                            },
                        }
                    }
                };
                CoreInput::AgentMessage {
                    agent: agent.into(),
                    conn,
                    msg,
                }
            }
            16 | 17 => {
                // A callback leg reports back (perhaps an earlier attempt's).
                let Some((entry, (attempt, _))) = seen
                    .dials
                    .iter()
                    .nth(rng.usize(..seen.dials.len().max(1)))
                    .map(|(e, a)| (e.clone(), a.clone()))
                else {
                    continue;
                };
                let attempt = if rng.u8(..8) == 0 {
                    attempt.saturating_sub(1)
                } else {
                    attempt
                };
                match rng.u8(..4) {
                    0 => CoreInput::CallbackAnswered { entry, attempt },
                    1 => CoreInput::DialFailed { entry, attempt },
                    _ => {
                        seen.dials.remove(&entry);
                        CoreInput::CallbackEnded {
                            entry,
                            attempt,
                            answered: rng.bool(),
                        }
                    }
                }
            }
            18 => {
                next_call += 1;
                let entry = format!("b{next_call}");
                calls.push(entry.clone());
                let cancelled = if rng.u8(..3) == 0 {
                    vec![some_call(&mut rng, &calls)]
                } else {
                    vec![]
                };
                CoreInput::Booked {
                    due: vec![BookedCallback {
                        entry,
                        // One number per booking: the per-number cap
                        // (policy.rs) is not what this test is about.
                        number: format!("+86138{next_call:08}"),
                        queue: [None, Some("billing".into()), Some("gone".into())][rng.usize(..3)]
                            .clone(),
                        attempts: rng.u32(0..2),
                        via: None,
                        slot: "asap".into(),
                        queued_since: None,
                    }],
                    cancelled,
                }
            }
            19 if rng.u8(..10) == 0 => {
                let agents = AGENTS
                    .iter()
                    .filter(|_| rng.u8(..5) > 0)
                    .map(|a| AgentConfig::new(*a, a.to_string()))
                    .collect();
                CoreInput::Configure {
                    queues: queues(&mut rng),
                    agents,
                }
            }
            _ => {
                now += Duration::from_millis(rng.u64(0..4_000));
                while let Some(t) = desk.poll_timeout().filter(|t| *t <= now) {
                    desk.handle_timeout(t.max(start));
                    drain(&mut desk, &mut seen, seed, step);
                }
                continue;
            }
        };
        desk.handle(now, input);
        drain(&mut desk, &mut seen, seed, step);
    }
    eprintln!(
        "seed {seed}: {} accepted, {} dialled, {} wrap-ups",
        seen.accepted, seen.dialled, seen.wrapped
    );
    assert!(
        seen.accepted > 30,
        "seed {seed}: only {} calls accepted",
        seen.accepted
    );
    assert!(
        seen.dialled > 10,
        "seed {seed}: only {} callbacks dialled",
        seen.dialled
    );
    assert!(
        seen.wrapped > 40,
        "seed {seed}: only {} wrap-ups",
        seen.wrapped
    );
}

fn some_call(rng: &mut fastrand::Rng, calls: &[String]) -> String {
    if calls.is_empty() || rng.u8(..20) == 0 {
        "nobody".to_owned()
    } else {
        // The recent ones: old calls are long gone.
        let recent = &calls[calls.len().saturating_sub(40)..];
        recent[rng.usize(..recent.len())].clone()
    }
}

fn drain(desk: &mut DeskCore, seen: &mut Observed, seed: u64, step: usize) {
    while let Some(out) = desk.poll_output() {
        if let Err(e) = seen.see(out) {
            panic!("seed {seed}, step {step}: {e}");
        }
    }
    if let Err(e) = desk.check_invariants() {
        panic!("seed {seed}, step {step}: {e}");
    }
}

#[test]
fn random_desk_inputs_keep_the_guarantees() {
    let seeds: u64 = std::env::var("DESK_RACE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    for seed in 0..seeds {
        run(seed);
    }
}
