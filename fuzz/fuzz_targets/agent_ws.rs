//! The agent WebSocket protocol: one text frame from the agent's page
//! (`ClientMsg::parse`, what `/agent/ws` runs on every frame) and what the
//! desk does with it (`DeskCore`, the sans-IO desk: ACD, offers, wrap-up,
//! reconnect grace).
//!
//! Input: frames, one per line. A frame's first character picks the
//! agent and connection (`a`..`d`: ann on 1, ann on 2, bob on 3, an agent
//! the desk does not know) or an event (`+` a caller enqueued, `-` the
//! caller hangs up, `=` the agent's audio leg is up, `?` the media check
//! after a drop, `!` the page drops off, `>` time passes); the rest is the
//! JSON text.
//!
//! Beyond "no panic":
//! - a parsed message serialises and parses back to the same message;
//! - the desk's invariants (`DeskCore::check_invariants`) hold after every
//!   input and every timer, and every message for a page serialises.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use hotline_desk::{CallInfo, CoreInput, DeskCore, DeskOutput};
use hotline_routing::{AgentConfig, QueueConfig};
use hotline_webphone::protocol::ClientMsg;
use libfuzzer_sys::fuzz_target;

struct Desk {
    core: DeskCore,
    now: Instant,
    calls: u32,
}

impl Desk {
    fn drain(&mut self) {
        while let Some(o) = self.core.poll_output() {
            if let DeskOutput::ToAgent { msg, .. } = o {
                let json = msg.to_json();
                assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
            }
        }
        if let Err(e) = self.core.check_invariants() {
            panic!("desk invariant broken: {e}");
        }
    }

    fn input(&mut self, input: CoreInput) {
        self.core.handle(self.now, input);
        self.drain();
    }

    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        let mut rounds = 0;
        while let Some(t) = self.core.poll_timeout().filter(|t| *t <= until) {
            self.now = t.max(self.now);
            self.core.handle_timeout(self.now);
            self.drain();
            rounds += 1;
            assert!(rounds < 10_000, "desk timers do not make progress");
        }
        self.now = until;
    }
}

fn info(call: &str) -> CallInfo {
    CallInfo {
        call: call.into(),
        queue: "support".into(),
        priority: 0,
        issue_type: None,
        caller: "+15551234567".into(),
        dialable: true,
        reply_via: SocketAddr::from(([127, 0, 0, 1], 5070)),
        path: vec!["main".into()],
        data: serde_json::json!({}),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = Instant::now();
    let mut q = QueueConfig::new("support");
    q.members = vec!["ann".into(), "bob".into()];
    q.offer_timeout = Duration::from_secs(15);
    q.wrap_up = Duration::from_secs(30);
    q.max_wait = Duration::from_secs(300);
    let agents = ["ann", "bob"]
        .iter()
        .map(|a| AgentConfig::new(*a, a.to_string()))
        .collect();
    let mut desk = Desk {
        core: DeskCore::new(vec![q], agents, (now, SystemTime::UNIX_EPOCH)),
        now,
        calls: 0,
    };
    desk.drain();
    for (agent, conn) in [("ann", 1), ("bob", 3)] {
        desk.input(CoreInput::AgentConnected {
            agent: agent.into(),
            conn,
        });
    }
    for line in text.lines().take(64) {
        let mut chars = line.chars();
        let Some(first) = chars.next() else { continue };
        let rest = chars.as_str();
        let (agent, conn) = match first {
            'a' => ("ann", 1),
            'b' => ("ann", 2),
            'c' => ("bob", 3),
            'd' => ("eve", 4),
            '+' => {
                desk.calls += 1;
                desk.input(CoreInput::Enqueue(info(&format!("c{}", desk.calls))));
                continue;
            }
            '-' => {
                let call = format!("c{}", rest.trim());
                desk.input(CoreInput::CallEnded { call });
                continue;
            }
            '=' => {
                // The agent's audio leg is up (what the media hub reports
                // after an `sdp_offer`): `=<call number> <agent>`.
                let (n, who) = rest.split_once(' ').unwrap_or((rest, "ann"));
                desk.input(CoreInput::LegConnected {
                    call: format!("c{}", n.trim()),
                    agent: who.trim().to_string(),
                });
                continue;
            }
            '?' => {
                desk.input(CoreInput::MediaCheck {
                    agent: if rest.starts_with('b') { "bob" } else { "ann" }.into(),
                    silent: rest.ends_with('s'),
                });
                continue;
            }
            '!' => {
                desk.input(CoreInput::AgentDisconnected {
                    agent: if rest.starts_with('b') { "bob" } else { "ann" }.into(),
                    conn: if rest.starts_with('b') { 3 } else { 1 },
                    dropped: !rest.ends_with('.'),
                });
                continue;
            }
            '>' => {
                let secs: u64 = rest.trim().parse().unwrap_or(1);
                desk.advance(Duration::from_secs(secs.min(3600)));
                continue;
            }
            _ => ("ann", 1),
        };
        let Ok(msg) = ClientMsg::parse(rest) else {
            continue;
        };
        let json = serde_json::to_string(&msg).expect("a ClientMsg serialises");
        assert_eq!(
            ClientMsg::parse(&json).expect("our own serialisation parses"),
            msg,
            "round trip through {json}"
        );
        if agent == "eve" || conn == 2 {
            desk.input(CoreInput::AgentConnected {
                agent: agent.into(),
                conn,
            });
        }
        desk.input(CoreInput::AgentMessage {
            agent: agent.into(),
            conn,
            msg,
        });
    }
    desk.advance(Duration::from_secs(600));
});
