//! DeskCore with a fake clock: every desk decision the end-to-end agent
//! tests exercise (tests/e2e/agents.rs, callbacks, agent_desk), here without
//! a runtime, a socket or a browser.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use hotline_desk::{BookedCallback, CallInfo, CoreInput, DeskCore, DeskOutput, RECONNECT_GRACE};
use hotline_routing::{AgentConfig, AgentState, Overflow, QueueConfig, Strategy};
use hotline_webphone::protocol::{AgentState as PageState, ClientMsg, ServerMsg};

struct Desk {
    core: DeskCore,
    now: Instant,
    out: Vec<DeskOutput>,
}

fn queue(name: &str, members: &[&str]) -> QueueConfig {
    let mut q = QueueConfig::new(name);
    q.members = members.iter().map(|m| (*m).into()).collect();
    q.offer_timeout = Duration::from_secs(15);
    q.wrap_up = Duration::from_secs(30);
    q.max_wait = Duration::from_secs(300);
    q
}

fn info(call: &str, queue: &str, caller: &str) -> CallInfo {
    CallInfo {
        call: call.into(),
        queue: queue.into(),
        priority: 0,
        issue_type: Some("subscription.refund".into()),
        caller: caller.into(),
        dialable: caller.starts_with('+'),
        reply_via: SocketAddr::from(([127, 0, 0, 1], 5070)),
        path: vec!["main".into(), "support".into()],
        data: serde_json::json!({"flow": {}}),
    }
}

impl Desk {
    fn new(queues: Vec<QueueConfig>, agents: &[&str]) -> Self {
        let now = Instant::now();
        let agents = agents
            .iter()
            .map(|a| AgentConfig::new(*a, a.to_string()))
            .collect();
        let mut d = Desk {
            core: DeskCore::new(queues, agents, (now, SystemTime::UNIX_EPOCH)),
            now,
            out: Vec::new(),
        };
        d.drain();
        d
    }

    fn drain(&mut self) {
        while let Some(o) = self.core.poll_output() {
            self.out.push(o);
        }
        self.core.check_invariants().expect("desk invariants");
    }

    fn input(&mut self, input: CoreInput) {
        self.core.handle(self.now, input);
        self.drain();
    }

    /// Moves the fake clock, firing every timer due on the way.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(t) = self.core.poll_timeout().filter(|t| *t <= until) {
            self.now = t.max(self.now);
            self.core.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
    }

    fn msg(&mut self, agent: &str, conn: u64, msg: ClientMsg) {
        self.input(CoreInput::AgentMessage {
            agent: agent.into(),
            conn,
            msg,
        });
    }

    /// An agent page connects and goes available.
    fn login(&mut self, agent: &str, conn: u64) {
        self.input(CoreInput::AgentConnected {
            agent: agent.into(),
            conn,
        });
        self.msg(
            agent,
            conn,
            ClientMsg::Available {
                on: true,
                reason: None,
            },
        );
    }

    /// `ann` (support's one agent) talking to caller `c1`.
    fn on_call() -> Self {
        let mut d = Desk::new(vec![queue("support", &["ann"])], &["ann"]);
        d.login("ann", 1);
        d.input(CoreInput::Enqueue(info("c1", "support", "1001")));
        d.msg("ann", 1, answer("c1"));
        d
    }

    /// `ann`'s page goes away (`dropped`: without a goodbye).
    fn page_gone(&mut self, dropped: bool) {
        self.input(CoreInput::AgentDisconnected {
            agent: "ann".into(),
            conn: 1,
            dropped,
        });
    }

    fn take(&mut self) -> Vec<DeskOutput> {
        std::mem::take(&mut self.out)
    }

    /// Messages for `agent`'s page since the last take.
    fn page(out: &[DeskOutput], agent: &str) -> Vec<ServerMsg> {
        out.iter()
            .filter_map(|o| match o {
                DeskOutput::ToAgent { agent: a, msg } if a.as_str() == agent => Some(msg.clone()),
                _ => None,
            })
            .collect()
    }

    /// Notices for `call` since the last take, as text.
    fn notices(out: &[DeskOutput], call: &str) -> Vec<String> {
        out.iter()
            .filter_map(|o| match o {
                DeskOutput::Notify { call: c, notice } if c.as_str() == call => {
                    Some(format!("{notice:?}"))
                }
                _ => None,
            })
            .collect()
    }

    fn state(&self, agent: &str) -> Option<AgentState> {
        self.core.acd().agent(&agent.into()).map(|v| v.state)
    }
}

fn answer(call: &str) -> ClientMsg {
    ClientMsg::Answer { call: call.into() }
}

#[test]
fn a_queued_call_rings_the_agent_who_answers_talks_and_wraps_up() {
    let mut d = Desk::new(vec![queue("support", &["ann"])], &["ann"]);
    d.login("ann", 1);
    d.take();
    // No call yet: nothing to pause, and the page is told why.
    d.msg("ann", 1, ClientMsg::PauseRecording { on: true });
    assert_eq!(
        Desk::page(&d.take(), "ann"),
        vec![ServerMsg::Error {
            message: "no call in progress: there is no recording to pause".into()
        }]
    );
    d.input(CoreInput::Enqueue(info("c1", "support", "+8613800000000")));
    let out = d.take();
    let offer = Desk::page(&out, "ann")
        .into_iter()
        .find_map(|m| match m {
            ServerMsg::Offer {
                call,
                caller,
                expires_in_ms,
                callback,
                path,
                ..
            } => Some((call, caller, expires_in_ms, callback, path)),
            _ => None,
        })
        .expect("ann's page shows the offer");
    assert_eq!(offer.0, "c1");
    assert_eq!(offer.1, "+8613800000000");
    assert_eq!(
        offer.2, 15_000,
        "the page counts down the queue's offer timeout"
    );
    assert!(!offer.3);
    assert_eq!(offer.4, vec!["main", "support"]);
    assert_eq!(Desk::notices(&out, "c1"), vec!["Offered(ann)"]);

    d.advance(Duration::from_secs(3));
    d.msg("ann", 1, answer("c1"));
    let out = d.take();
    assert_eq!(
        Desk::notices(&out, "c1"),
        vec!["OfferEnded(ann, accepted)", "Accepted(ann)"]
    );
    assert_eq!(
        d.state("ann"),
        Some(AgentState::OnCall { call: "c1".into() })
    );

    // The page sends its SDP: the shell is asked to have the hub answer it.
    d.msg(
        "ann",
        1,
        ClientMsg::SdpOffer {
            call: "c1".into(),
            sdp: "v=0".into(),
        },
    );
    let out = d.take();
    assert!(matches!(
        &out[..],
        [DeskOutput::AcceptSdp { agent, call, sdp }]
            if agent.as_str() == "ann" && call.as_str() == "c1" && sdp == "v=0"
    ));
    d.input(CoreInput::LegConnected {
        call: "c1".into(),
        agent: "ann".into(),
    });
    assert_eq!(
        Desk::page(&d.take(), "ann"),
        vec![ServerMsg::Connected { call: "c1".into() }]
    );

    // Hold, mute and a key from the page reach the call.
    d.msg("ann", 1, ClientMsg::Hold { on: true });
    d.msg("ann", 1, ClientMsg::Mute { on: true });
    d.msg("ann", 1, ClientMsg::Dtmf { digit: "5".into() });
    d.msg("ann", 1, ClientMsg::Dtmf { digit: "55".into() });
    let out = d.take();
    assert_eq!(
        Desk::notices(&out, "c1"),
        vec!["Hold(true)", "Mute(true)", "Dtmf(5)"]
    );
    assert!(
        Desk::page(&out, "ann")
            .iter()
            .any(|m| matches!(m, ServerMsg::Error { message } if message.contains("not one key")))
    );

    // Pause recording: the call is told, the page gets the button's state.
    d.msg("ann", 1, ClientMsg::PauseRecording { on: true });
    d.msg("ann", 1, ClientMsg::PauseRecording { on: false });
    let out = d.take();
    assert_eq!(
        Desk::notices(&out, "c1"),
        vec!["RecordingPause(ann, true)", "RecordingPause(ann, false)"]
    );
    assert_eq!(
        Desk::page(&out, "ann"),
        vec![
            ServerMsg::Recording { paused: true },
            ServerMsg::Recording { paused: false }
        ]
    );

    // The agent hangs up: the call is told, the agent wraps up.
    d.advance(Duration::from_secs(60));
    d.msg("ann", 1, ClientMsg::Hangup { call: "c1".into() });
    let out = d.take();
    assert_eq!(Desk::notices(&out, "c1"), vec!["AgentHungUp(ann)"]);
    assert!(
        Desk::page(&out, "ann")
            .iter()
            .any(|m| matches!(m, ServerMsg::WrapUp { call, .. } if call == "c1"))
    );
    d.input(CoreInput::CallEnded { call: "c1".into() });
    assert!(d.core.holds("c1"), "kept while its agent wraps up");

    d.advance(Duration::from_secs(7));
    d.msg(
        "ann",
        1,
        ClientMsg::WrapUp {
            call: "c1".into(),
            disposition: "resolved".into(),
            notes: "refund sent".into(),
        },
    );
    let out = d.take();
    assert_eq!(
        Desk::notices(&out, "c1"),
        vec![r#"WrapUpDone(ann, Some("resolved"), "refund sent", 7)"#]
    );
    assert!(
        out.iter()
            .any(|o| matches!(o, DeskOutput::Forget { call } if call.as_str() == "c1"))
    );
    assert!(!d.core.holds("c1"));
    assert_eq!(d.state("ann"), Some(AgentState::Available));
    let ov = d.core.overview("ann", d.now);
    assert_eq!(ov.finished, 1);
    assert_eq!(ov.last_finished.as_deref(), Some("c1"));
}

#[test]
fn wrap_up_ends_by_its_timer_without_a_disposition() {
    let mut d = Desk::on_call();
    d.input(CoreInput::CallEnded { call: "c1".into() });
    d.take();
    d.advance(Duration::from_secs(29));
    assert!(Desk::notices(&d.take(), "c1").is_empty());
    d.advance(Duration::from_secs(1));
    assert_eq!(
        Desk::notices(&d.take(), "c1"),
        vec![r#"WrapUpDone(ann, None, "", 30)"#]
    );
    assert_eq!(d.state("ann"), Some(AgentState::Available));
}

#[test]
fn a_declined_offer_moves_on_to_the_next_agent_and_an_unanswered_one_times_out() {
    let mut d = Desk::new(vec![queue("support", &["ann", "bob"])], &["ann", "bob"]);
    d.login("ann", 1);
    d.advance(Duration::from_secs(1));
    d.login("bob", 2);
    d.take();
    d.input(CoreInput::Enqueue(info("c1", "support", "1001")));
    let first = d.take();
    let rung = if Desk::page(&first, "ann").is_empty() {
        "bob"
    } else {
        "ann"
    };
    let other = if rung == "ann" { "bob" } else { "ann" };
    let conn = if rung == "ann" { 1 } else { 2 };
    d.msg(rung, conn, ClientMsg::Decline { call: "c1".into() });
    let out = d.take();
    assert_eq!(
        Desk::notices(&out, "c1"),
        vec![
            format!("OfferEnded({rung}, declined)"),
            format!("Offered({other})")
        ]
    );
    // Nobody answers the second offer: it times out and the agent goes away.
    d.advance(Duration::from_secs(15));
    let out = d.take();
    assert!(Desk::notices(&out, "c1").contains(&format!("OfferEnded({other}, timeout)")));
    assert!(matches!(d.state(other), Some(AgentState::Away { .. })));
}

#[test]
fn ring_all_first_answer_wins_and_the_other_is_withdrawn() {
    let mut q = queue("support", &["ann", "bob"]);
    q.strategy = Strategy::RingAll;
    let mut d = Desk::new(vec![q], &["ann", "bob"]);
    d.login("ann", 1);
    d.login("bob", 2);
    d.input(CoreInput::Enqueue(info("c1", "support", "1001")));
    d.take();
    d.msg("bob", 2, answer("c1"));
    d.msg("ann", 1, answer("c1"));
    let out = d.take();
    assert!(Desk::page(&out, "ann").contains(&ServerMsg::OfferWithdrawn { call: "c1".into() }));
    assert!(
        Desk::page(&out, "ann")
            .iter()
            .any(|m| matches!(m, ServerMsg::Error { .. })),
        "a late answer is refused"
    );
    assert_eq!(
        d.state("bob"),
        Some(AgentState::OnCall { call: "c1".into() })
    );
    assert_eq!(
        Desk::notices(&out, "c1")
            .iter()
            .filter(|n| n.starts_with("Accepted"))
            .count(),
        1
    );
}

#[test]
fn a_page_that_blips_back_within_the_grace_keeps_its_call() {
    let mut d = Desk::on_call();
    d.take();
    d.page_gone(true);
    let out = d.take();
    assert!(matches!(&out[..], [DeskOutput::CheckMedia { agent, call }]
        if agent.as_str() == "ann" && call.as_str() == "c1"));
    assert!(d.core.in_grace("ann"));
    // The browser still sends audio: not silent.
    d.input(CoreInput::MediaCheck {
        agent: "ann".into(),
        silent: false,
    });
    d.advance(Duration::from_secs(4));
    // A stale socket's message is ignored.
    d.msg("ann", 1, ClientMsg::Hangup { call: "c1".into() });
    assert!(d.take().is_empty());
    d.input(CoreInput::AgentConnected {
        agent: "ann".into(),
        conn: 2,
    });
    d.msg("ann", 2, ClientMsg::Hello {});
    let out = d.take();
    assert!(Desk::page(&out, "ann").iter().any(|m| matches!(
        m,
        ServerMsg::State {
            state: PageState::OnCall,
            ..
        }
    )));
    // Past the grace: still on the call, no agent lost.
    d.advance(RECONNECT_GRACE * 2);
    let out = d.take();
    assert!(
        Desk::notices(&out, "c1").is_empty(),
        "{:?}",
        Desk::notices(&out, "c1")
    );
    assert_eq!(
        d.state("ann"),
        Some(AgentState::OnCall { call: "c1".into() })
    );
    assert!(!d.core.in_grace("ann"));
}

#[test]
fn a_page_that_never_comes_back_loses_the_call_at_the_end_of_the_grace() {
    let mut d = Desk::on_call();
    d.page_gone(true);
    d.take();
    d.advance(RECONNECT_GRACE - Duration::from_millis(1));
    assert!(Desk::notices(&d.take(), "c1").is_empty());
    d.advance(Duration::from_millis(1));
    let out = d.take();
    assert_eq!(
        Desk::notices(&out, "c1"),
        vec!["AgentLost(ann, true)", "Position(1, None)"],
        "back in the queue, first in line"
    );
    assert_eq!(d.state("ann"), Some(AgentState::Offline));
    assert!(d.core.holds("c1"), "requeued: the caller waits again");
}

#[test]
fn a_silent_browser_ends_the_grace_at_once() {
    let mut d = Desk::on_call();
    d.page_gone(true);
    d.take();
    d.advance(Duration::from_millis(300));
    d.input(CoreInput::MediaCheck {
        agent: "ann".into(),
        silent: true,
    });
    assert_eq!(
        Desk::notices(&d.take(), "c1"),
        vec!["AgentLost(ann, true)", "Position(1, None)"]
    );
}

#[test]
fn a_closed_tab_is_gone_at_once_and_its_page_hears_nothing_more() {
    let mut d = Desk::on_call();
    d.take();
    d.page_gone(false);
    let out = d.take();
    assert_eq!(
        Desk::notices(&out, "c1"),
        vec!["AgentLost(ann, true)", "Position(1, None)"],
        "back in the queue, first in line"
    );
    assert!(Desk::page(&out, "ann").is_empty());
}

#[test]
fn an_unknown_queue_is_told_to_the_call_and_forgotten() {
    let mut d = Desk::new(vec![queue("support", &["ann"])], &["ann"]);
    d.input(CoreInput::Enqueue(info("c1", "nope", "1001")));
    let out = d.take();
    assert_eq!(Desk::notices(&out, "c1"), vec!["UnknownQueue"]);
    assert!(matches!(out.last(), Some(DeskOutput::Forget { call }) if call.as_str() == "c1"));
    assert!(!d.core.holds("c1"));
}

#[test]
fn a_caller_who_hangs_up_while_ringing_withdraws_the_offer() {
    let mut d = Desk::new(vec![queue("support", &["ann"])], &["ann"]);
    d.login("ann", 1);
    d.input(CoreInput::Enqueue(info("c1", "support", "1001")));
    d.take();
    d.input(CoreInput::CallEnded { call: "c1".into() });
    let out = d.take();
    assert!(Desk::page(&out, "ann").contains(&ServerMsg::OfferWithdrawn { call: "c1".into() }));
    assert!(!d.core.holds("c1"));
    assert_eq!(d.state("ann"), Some(AgentState::Available));
}

#[test]
fn overflow_to_callback_keeps_the_entry_and_dials_when_an_agent_accepts() {
    let mut q = queue("support", &["ann"]);
    q.overflow = Overflow::Callback;
    q.max_wait = Duration::from_secs(60);
    let mut d = Desk::new(vec![q], &["ann"]);
    d.input(CoreInput::Enqueue(info("c1", "support", "+8613800000000")));
    assert_eq!(Desk::notices(&d.take(), "c1"), vec!["Position(1, None)"]);
    d.advance(Duration::from_secs(60));
    let out = d.take();
    assert_eq!(Desk::notices(&out, "c1"), vec!["Overflow(Callback)"]);
    assert!(
        out.iter()
            .any(|o| matches!(o, DeskOutput::Detach { call } if call.as_str() == "c1"))
    );
    // The caller hangs up; the entry lives on.
    d.input(CoreInput::CallEnded { call: "c1".into() });
    assert!(d.core.holds("c1"));
    d.login("ann", 1);
    let out = d.take();
    assert!(
        Desk::page(&out, "ann")
            .iter()
            .any(|m| matches!(m, ServerMsg::Offer { callback: true, .. }))
    );
    d.msg("ann", 1, answer("c1"));
    let out = d.take();
    let dial = out
        .iter()
        .find_map(|o| match o {
            DeskOutput::Dial(r) => Some(r.clone()),
            _ => None,
        })
        .expect("a dial request");
    assert_eq!(dial.number, "+8613800000000");
    assert_eq!(dial.agent, "ann");
    assert_eq!(dial.attempt, 1);
    assert_eq!(dial.via, SocketAddr::from(([127, 0, 0, 1], 5070)));
    assert!(out.iter().any(|o| matches!(o, DeskOutput::Progress(p)
        if p.state == "dialing" && p.attempts == 1 && p.agent.as_deref() == Some("ann"))));
    // The customer answers and talks.
    d.input(CoreInput::CallbackAnswered {
        entry: "c1".into(),
        attempt: 1,
    });
    d.input(CoreInput::CallbackEnded {
        entry: "c1".into(),
        attempt: 1,
        answered: true,
    });
    let out = d.take();
    assert!(out.iter().any(|o| matches!(o, DeskOutput::Progress(p)
        if p.state == "done" && p.result.as_deref() == Some("answered"))));
    assert!(matches!(d.state("ann"), Some(AgentState::WrapUp { .. })));
}

#[test]
fn an_undialable_caller_overflows_to_voicemail_not_callback() {
    let mut q = queue("support", &["ann"]);
    q.overflow = Overflow::Callback;
    q.max_wait = Duration::from_secs(60);
    let mut d = Desk::new(vec![q], &["ann"]);
    d.input(CoreInput::Enqueue(info("c1", "support", "caller")));
    d.take();
    d.advance(Duration::from_secs(60));
    let out = d.take();
    assert_eq!(Desk::notices(&out, "c1"), vec!["Overflow(Voicemail)"]);
    assert!(!d.core.holds("c1"));
}

#[test]
fn a_booked_callback_is_retried_then_abandoned() {
    let mut q = queue("support", &["ann"]);
    q.callback_attempts = 2;
    q.callback_retry = Duration::from_secs(120);
    let mut d = Desk::new(vec![q], &["ann"]);
    d.login("ann", 1);
    d.take();
    let booked = BookedCallback {
        entry: "b1".into(),
        number: "+8613800000001".into(),
        queue: None,
        attempts: 0,
        via: None,
        slot: "tomorrow 10:00".into(),
        queued_since: None,
    };
    d.input(CoreInput::Booked {
        due: vec![booked.clone()],
        cancelled: vec![],
    });
    // Due twice (the book polls): held once.
    d.input(CoreInput::Booked {
        due: vec![booked],
        cancelled: vec![],
    });
    let out = d.take();
    let queued = out
        .iter()
        .filter(|o| matches!(o, DeskOutput::Progress(p) if p.state == "queued"))
        .count();
    assert_eq!(queued, 1);
    let offer = Desk::page(&out, "ann");
    assert!(offer.iter().any(
        |m| matches!(m, ServerMsg::Offer { call, path, callback: true, .. }
        if call == "b1" && path == &vec!["callback booked for tomorrow 10:00".to_string()])
    ));
    for attempt in 1..=2 {
        d.msg("ann", 1, answer("b1"));
        let out = d.take();
        assert!(
            out.iter()
                .any(|o| matches!(o, DeskOutput::Dial(r) if r.attempt == attempt))
        );
        d.input(CoreInput::CallbackEnded {
            entry: "b1".into(),
            attempt,
            answered: false,
        });
        let out = d.take();
        assert!(out.iter().any(|o| matches!(o, DeskOutput::Progress(p)
            if p.state == "queued" && p.result.as_deref() == Some("no answer"))));
        if attempt == 1 {
            // Not offered again before the retry delay; wrap-up first.
            d.msg(
                "ann",
                1,
                ClientMsg::WrapUp {
                    call: "b1".into(),
                    disposition: "no_answer".into(),
                    notes: String::new(),
                },
            );
            let out = d.take();
            assert!(
                !Desk::page(&out, "ann")
                    .iter()
                    .any(|m| matches!(m, ServerMsg::Offer { .. }))
            );
            d.advance(Duration::from_secs(120));
            assert!(
                Desk::page(&d.take(), "ann")
                    .iter()
                    .any(|m| matches!(m, ServerMsg::Offer { call, .. } if call == "b1"))
            );
        } else {
            assert!(out.iter().any(|o| matches!(o, DeskOutput::Progress(p)
                if p.state == "abandoned" && p.attempts == 2)));
        }
    }
}

#[test]
fn a_dial_that_cannot_be_placed_counts_as_a_failed_attempt() {
    let mut d = Desk::new(vec![queue("support", &["ann"])], &["ann"]);
    d.login("ann", 1);
    d.input(CoreInput::Booked {
        due: vec![BookedCallback {
            entry: "b1".into(),
            number: "+8613800000001".into(),
            queue: Some("support".into()),
            attempts: 0,
            via: None,
            slot: "asap".into(),
            queued_since: None,
        }],
        cancelled: vec![],
    });
    d.msg("ann", 1, answer("b1"));
    d.take();
    d.input(CoreInput::DialFailed {
        entry: "b1".into(),
        attempt: 1,
    });
    assert!(matches!(d.state("ann"), Some(AgentState::WrapUp { .. })));
    let v = d.core.acd().call(&"b1".into()).expect("still an entry");
    assert_eq!(v.attempts, 1);
}

#[test]
fn an_admin_cancels_a_waiting_callback() {
    let mut d = Desk::new(vec![queue("support", &["ann"])], &["ann"]);
    d.input(CoreInput::Booked {
        due: vec![BookedCallback {
            entry: "b1".into(),
            number: "+8613800000001".into(),
            queue: Some("support".into()),
            attempts: 0,
            via: None,
            slot: "asap".into(),
            queued_since: None,
        }],
        cancelled: vec![],
    });
    assert_eq!(d.core.overview("ann", d.now).callbacks.len(), 1);
    d.input(CoreInput::Booked {
        due: vec![],
        cancelled: vec!["b1".into()],
    });
    assert!(!d.core.holds("b1"));
    assert!(d.core.acd().call(&"b1".into()).is_none());
}

#[test]
fn the_overview_shows_the_agents_queues_and_waiting_callers() {
    let mut d = Desk::new(
        vec![
            queue("billing", &["ann"]),
            queue("support", &["ann", "bob"]),
        ],
        &["ann", "bob"],
    );
    d.input(CoreInput::Enqueue(info("c1", "support", "1001")));
    d.advance(Duration::from_secs(42));
    d.input(CoreInput::Enqueue(info("c2", "support", "1002")));
    d.login("bob", 2);
    d.msg("bob", 2, ClientMsg::Decline { call: "c1".into() });
    let ov = d.core.overview("ann", d.now);
    let names: Vec<_> = ov.queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, vec!["billing", "support"]);
    let support = &ov.queues[1];
    assert_eq!(support.waiting, 2);
    assert_eq!(support.longest_wait_s, 42);
    assert!(d.core.overview("carol", d.now).queues.is_empty());
}

#[test]
fn configure_removes_what_the_admin_removed() {
    let mut d = Desk::new(vec![queue("support", &["ann"])], &["ann"]);
    d.login("ann", 1);
    d.take();
    d.input(CoreInput::Configure {
        queues: vec![queue("sales", &[])],
        agents: vec![],
    });
    let out = d.take();
    assert!(out.iter().any(|o| matches!(o, DeskOutput::StatesChanged)));
    assert!(d.core.acd().queue(&"support".into()).is_none());
    assert!(d.core.acd().queue(&"sales".into()).is_some());
    assert!(Desk::page(&out, "ann").iter().any(|m| matches!(
        m,
        ServerMsg::State {
            state: PageState::Offline,
            ..
        }
    )));
}

#[test]
fn page_times_are_unix_milliseconds_from_the_epoch_given() {
    let mut d = Desk::new(vec![queue("support", &["ann"])], &["ann"]);
    d.advance(Duration::from_millis(1500));
    d.login("ann", 1);
    let out = d.take();
    let since = Desk::page(&out, "ann")
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::State {
                state: PageState::Available,
                since,
                ..
            } => Some(since),
            _ => None,
        })
        .next_back()
        .expect("available state");
    assert_eq!(since, 1500);
}

fn booked(entry: &str, number: &str) -> BookedCallback {
    BookedCallback {
        entry: entry.into(),
        number: number.into(),
        queue: Some("support".into()),
        attempts: 0,
        via: None,
        slot: "asap".into(),
        queued_since: None,
    }
}

#[test]
fn a_premium_number_keyed_in_by_a_caller_is_never_dialled() {
    // A caller keyed in an international premium number for their
    // callback (the flow books any dialable number): the desk's default
    // policy (mainland China numbers) gives it up before it is queued.
    let mut d = Desk::new(vec![queue("support", &["ann"])], &["ann"]);
    d.login("ann", 1);
    d.take();
    d.input(CoreInput::Booked {
        due: vec![booked("b1", "+882345678901"), booked("b2", "+2399912345")],
        cancelled: vec![],
    });
    let out = d.take();
    assert!(!out.iter().any(|o| matches!(o, DeskOutput::Dial(_))));
    assert!(Desk::page(&out, "ann").is_empty(), "no offer: {out:?}");
    let given_up: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            DeskOutput::Progress(p) if p.state == "abandoned" => {
                Some((p.entry.clone(), p.result.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        given_up,
        vec![
            ("b1".to_string(), Some("number not allowed".to_string())),
            ("b2".to_string(), Some("number not allowed".to_string()))
        ]
    );
    assert!(!d.core.holds("b1") && !d.core.holds("b2"));
    // The book polls again: still nothing.
    d.input(CoreInput::Booked {
        due: vec![booked("b1", "+882345678901")],
        cancelled: vec![],
    });
    assert!(d.take().is_empty());
}

#[test]
fn a_caller_id_outside_the_policy_overflows_to_voicemail_not_callback() {
    let mut q = queue("support", &["ann"]);
    q.overflow = Overflow::Callback;
    q.max_wait = Duration::from_secs(60);
    let mut d = Desk::new(vec![q], &["ann"]);
    d.input(CoreInput::Enqueue(info("c1", "support", "+882345678901")));
    d.take();
    d.advance(Duration::from_secs(60));
    assert_eq!(Desk::notices(&d.take(), "c1"), vec!["Overflow(Voicemail)"]);
    assert!(!d.core.holds("c1"));
}

#[test]
fn the_operator_allows_other_numbers_and_caps_legs_per_hour() {
    let mut q = queue("support", &["ann"]);
    // Ann's offers ring until she answers (the test moves the clock an hour).
    q.offer_timeout = Duration::from_secs(7200);
    let mut d = Desk::new(vec![q], &["ann"]);
    let policy = hotline_desk::DialPolicy::new(&[r"^\+1555[0-9]{7}$".into()], 1).unwrap();
    d.input(CoreInput::SetDialPolicy(policy));
    d.login("ann", 1);
    d.input(CoreInput::Booked {
        due: vec![
            booked("b1", "+15550100002"),
            booked("b2", "+15550100003"),
            booked("b3", "+8613800138000"),
        ],
        cancelled: vec![],
    });
    let out = d.take();
    assert!(out.iter().any(|o| matches!(o, DeskOutput::Progress(p)
        if p.entry == "b3" && p.state == "abandoned")));
    d.msg("ann", 1, answer("b1"));
    assert!(
        d.take()
            .iter()
            .any(|o| matches!(o, DeskOutput::Dial(r) if r.number == "+15550100002"))
    );
    d.input(CoreInput::CallbackEnded {
        entry: "b1".into(),
        attempt: 1,
        answered: true,
    });
    d.msg(
        "ann",
        1,
        ClientMsg::WrapUp {
            call: "b1".into(),
            disposition: "resolved".into(),
            notes: String::new(),
        },
    );
    d.take();
    // The second leg within the hour is over the cap of 1: not placed; the
    // entry waits for its retry with every try left (no leg, no attempt).
    d.msg("ann", 1, answer("b2"));
    let out = d.take();
    assert!(
        !out.iter().any(|o| matches!(o, DeskOutput::Dial(_))),
        "{out:?}"
    );
    assert_eq!(d.core.acd().call(&"b2".into()).map(|v| v.attempts), Some(0));
    d.msg(
        "ann",
        1,
        ClientMsg::WrapUp {
            call: "b2".into(),
            disposition: "no_answer".into(),
            notes: String::new(),
        },
    );
    // An hour after the first leg the second goes out.
    d.advance(Duration::from_secs(3600));
    d.take();
    d.msg("ann", 1, answer("b2"));
    assert!(
        d.take()
            .iter()
            .any(|o| matches!(o, DeskOutput::Dial(r) if r.number == "+15550100003"))
    );
}

/// Two bookings to one number within the hour, with a cap of one leg per
/// number: the second waits (its attempt fails like a busy line); a
/// booking to another number is dialled meanwhile.
#[test]
fn one_number_is_not_rung_past_its_hourly_cap() {
    let mut q = queue("support", &["ann"]);
    q.offer_timeout = Duration::from_secs(7200);
    let mut d = Desk::new(vec![q], &["ann"]);
    let policy = hotline_desk::DialPolicy::new(&[r"^\+1555[0-9]{7}$".into()], 100)
        .unwrap()
        .with_max_per_number(1);
    d.input(CoreInput::SetDialPolicy(policy));
    d.login("ann", 1);
    d.input(CoreInput::Booked {
        due: vec![
            booked("b1", "+15550100002"),
            booked("b2", "+15550100002"),
            booked("b3", "+15550100003"),
        ],
        cancelled: vec![],
    });
    d.take();
    let wrap = |d: &mut Desk, call: &str, disposition: &str| {
        d.msg(
            "ann",
            1,
            ClientMsg::WrapUp {
                call: call.into(),
                disposition: disposition.into(),
                notes: String::new(),
            },
        );
        d.take();
    };
    d.msg("ann", 1, answer("b1"));
    assert!(
        d.take()
            .iter()
            .any(|o| matches!(o, DeskOutput::Dial(r) if r.entry == "b1"))
    );
    d.input(CoreInput::CallbackEnded {
        entry: "b1".into(),
        attempt: 1,
        answered: true,
    });
    wrap(&mut d, "b1", "resolved");
    d.msg("ann", 1, answer("b2"));
    let out = d.take();
    assert!(
        !out.iter().any(|o| matches!(o, DeskOutput::Dial(_))),
        "{out:?}"
    );
    assert_eq!(d.core.acd().call(&"b2".into()).map(|v| v.attempts), Some(0));
    wrap(&mut d, "b2", "no_answer");
    d.msg("ann", 1, answer("b3"));
    assert!(
        d.take()
            .iter()
            .any(|o| matches!(o, DeskOutput::Dial(r) if r.number == "+15550100003"))
    );
}

#[test]
fn a_queue_with_a_survey_keeps_the_caller_when_the_agent_hangs_up() {
    let mut q = queue("support", &["ann"]);
    q.survey = true;
    let mut d = Desk::new(vec![q], &["ann"]);
    d.login("ann", 1);
    d.input(CoreInput::Enqueue(info("c1", "support", "1001")));
    d.msg("ann", 1, answer("c1"));
    d.take();
    d.msg("ann", 1, ClientMsg::Hangup { call: "c1".into() });
    let out = d.take();
    // The call is told to run the survey; the agent goes to wrap-up at once.
    assert_eq!(
        Desk::notices(&out, "c1"),
        vec!["AgentHungUp(ann, survey of support)"]
    );
    assert!(
        Desk::page(&out, "ann")
            .iter()
            .any(|m| matches!(m, ServerMsg::WrapUp { call, .. } if call == "c1"))
    );
}

/// A new cluster leader hears of a call bridged on another node
/// (`CoreInput::Restore`): its agent's page, connecting after, is told
/// it is on that call, the next caller goes to someone else, and when the
/// call ends the page is told and the agent wraps it up.
#[test]
fn a_restored_call_keeps_its_agent_until_it_ends() {
    let mut d = Desk::new(vec![queue("support", &["ann", "bob"])], &["ann", "bob"]);
    d.input(CoreInput::Restore {
        info: info("c1", "support", "1001"),
        agent: "ann".into(),
    });
    d.input(CoreInput::AgentConnected {
        agent: "ann".into(),
        conn: 7,
    });
    d.take();
    d.msg("ann", 7, ClientMsg::Hello {});
    let out = d.take();
    assert!(
        Desk::page(&out, "ann").iter().any(|m| matches!(
            m,
            ServerMsg::State {
                state: PageState::OnCall,
                ..
            }
        )),
        "{out:?}"
    );
    d.login("bob", 1);
    d.input(CoreInput::Enqueue(info("c2", "support", "1002")));
    let out = d.take();
    assert!(
        Desk::page(&out, "bob")
            .iter()
            .any(|m| matches!(m, ServerMsg::Offer { call, .. } if call == "c2")),
        "the next caller rings bob: {out:?}"
    );
    assert!(Desk::page(&out, "ann").is_empty(), "ann talks: {out:?}");
    d.input(CoreInput::CallEnded { call: "c1".into() });
    let out = d.take();
    let ann = Desk::page(&out, "ann");
    assert!(
        ann.iter()
            .any(|m| matches!(m, ServerMsg::Ended { call, by } if call == "c1" && by == "caller")),
        "{ann:?}"
    );
    assert!(
        ann.iter()
            .any(|m| matches!(m, ServerMsg::WrapUp { call, .. } if call == "c1")),
        "{ann:?}"
    );
}

#[test]
fn an_overflow_callback_read_again_goes_back_to_the_callers_place() {
    // After a restart or a change of cluster leader, the book hands the
    // desk an open overflow entry with when its caller queued: it
    // goes ahead of a caller who came later, not to the back.
    let mut d = Desk::new(vec![queue("support", &["ann"])], &["ann"]);
    d.advance(Duration::from_secs(100));
    d.input(CoreInput::Enqueue(info(
        "later",
        "support",
        "+8613900000002",
    )));
    let mut kept = booked("b1", "+8613800000001");
    kept.queued_since = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(30));
    let mut fresh = booked("b2", "+8613800000003");
    fresh.queued_since = None;
    d.input(CoreInput::Booked {
        due: vec![fresh, kept],
        cancelled: vec![],
    });
    let order: Vec<String> = d
        .core
        .acd()
        .queues()
        .flat_map(|q| q.waiting)
        .map(|c| (c.position, c.call.as_str().to_owned()))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_values()
        .collect();
    assert_eq!(order, ["b1", "later", "b2"]);
    d.login("ann", 1);
    let out = d.take();
    assert!(
        Desk::page(&out, "ann")
            .iter()
            .any(|m| matches!(m, ServerMsg::Offer { call, .. } if call == "b1")),
        "{out:?}"
    );
}
