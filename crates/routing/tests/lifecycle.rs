//! Offers, timeouts, wrap-up, overflow, disconnects and admin changes over
//! the life of calls, on a fake clock.

mod common;

use common::*;
use hotline_routing::{
    AcdAction, AcdError, AgentConfig, AgentLostPolicy, AgentState, OfferOutcome, Overflow,
    QueueConfig, REASON_NO_ANSWER, REASON_NOT_READY, Strategy,
};

fn support(members: &[&str]) -> QueueConfig {
    QueueConfig {
        strategy: Strategy::LongestIdle,
        members: members.iter().map(|m| a(m)).collect(),
        offer_timeout: secs(15),
        wrap_up: secs(30),
        max_wait: secs(120),
        overflow: Overflow::Voicemail,
        ..QueueConfig::new("support")
    }
}

#[test]
fn login_is_not_ready_until_the_agent_says_so() {
    let mut b = Bench::new(vec![support(&["x"])], &["x"]);
    assert_eq!(b.state("x"), AgentState::Offline);
    assert_eq!(
        b.acd.set_available(&a("x"), b.now),
        Err(AcdError::NotLoggedIn(a("x")))
    );
    b.acd.agent_login(&a("x"), b.now).unwrap();
    let away = AgentState::Away {
        reason: REASON_NOT_READY.into(),
    };
    assert_eq!(b.state("x"), away);
    b.enqueue("c1", "support", 0, None);
    assert!(offers(&b.drain()).is_empty());
    // Logging in again (a reconnect) keeps the state.
    b.acd.agent_login(&a("x"), b.now).unwrap();
    assert_eq!(b.state("x"), away);
    b.acd.set_available(&a("x"), b.now).unwrap();
    assert_eq!(offers(&b.drain()), [("c1".into(), "x".into())]);
    assert_eq!(
        b.acd.agent_login(&a("nobody"), b.now),
        Err(AcdError::UnknownAgent(a("nobody")))
    );
}

#[test]
fn every_agent_state_change_is_emitted_with_its_time() {
    let mut b = Bench::new(vec![support(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    b.accept("x", "c1");
    b.acd.call_ended(&c("c1"), b.now);
    b.advance(secs(30));
    b.drain();
    let states: Vec<&str> = b
        .log
        .iter()
        .filter_map(|x| match x {
            AcdAction::AgentState { agent, state, .. } if agent.as_str() == "x" => {
                Some(state.name())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            "away",
            "available",
            "ringing",
            "on_call",
            "wrap_up",
            "available"
        ]
    );
    let last_at = b.log.iter().rev().find_map(|x| match x {
        AcdAction::AgentState { at, .. } => Some(*at),
        _ => None,
    });
    assert_eq!(last_at, Some(b.now));
    assert_eq!(b.acd.agent(&a("x")).unwrap().since, Some(b.now));
}

#[test]
fn an_unanswered_offer_times_out_the_agent_goes_away_and_the_call_moves_on() {
    let mut b = Bench::new(vec![support(&["x", "y"])], &["x", "y"]);
    b.ready(&["x", "y"]);
    b.enqueue("c1", "support", 0, None);
    let acts = b.drain();
    let expires = acts.iter().find_map(|x| match x {
        AcdAction::Offer { expires, .. } => Some(*expires),
        _ => None,
    });
    assert_eq!(expires, Some(b.now + secs(15)));
    assert_eq!(b.acd.poll_timeout(), expires);

    b.advance(secs(14));
    assert!(b.drain().is_empty(), "nothing before the timeout");
    b.skip_to_next_timer();
    let acts = b.drain();
    assert!(acts.contains(&AcdAction::OfferTimedOut {
        call: c("c1"),
        agent: a("x")
    }));
    assert_eq!(
        outcomes(&acts),
        [("c1".into(), "x".into(), OfferOutcome::Timeout)]
    );
    assert_eq!(offers(&acts), [("c1".into(), "y".into())]);
    assert_eq!(
        b.state("x"),
        AgentState::Away {
            reason: REASON_NO_ANSWER.into()
        }
    );
    // The late click on the expired offer is refused and changes nothing.
    assert_eq!(
        b.acd.accept(&a("x"), &c("c1"), b.now),
        Err(AcdError::NoLiveOffer {
            agent: a("x"),
            call: c("c1")
        })
    );
    assert!(b.drain().is_empty());
}

#[test]
fn an_accept_after_expiry_is_refused_even_before_the_shell_handles_the_timer() {
    let mut b = Bench::new(vec![support(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    b.drain();
    b.now += secs(15);
    assert!(b.acd.accept(&a("x"), &c("c1"), b.now).is_err());
    let acts = b.drain();
    assert_eq!(
        outcomes(&acts),
        [("c1".into(), "x".into(), OfferOutcome::Timeout)]
    );
    assert!(!acts.iter().any(|x| matches!(x, AcdAction::Connect { .. })));
}

#[test]
fn the_only_agent_who_timed_out_gets_the_call_again_when_back() {
    let mut b = Bench::new(vec![support(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    b.advance(secs(15));
    assert_eq!(offers(&b.drain()), [("c1".into(), "x".into())]);
    b.acd.set_available(&a("x"), b.now).unwrap();
    assert_eq!(offers(&b.drain()), [("c1".into(), "x".into())]);
}

#[test]
fn a_decline_moves_the_call_on_and_the_decliner_is_not_rung_again_while_others_are_busy() {
    let mut b = Bench::new(vec![support(&["x", "y"])], &["x", "y"]);
    b.ready(&["x", "y"]);
    b.enqueue("c0", "support", 0, None);
    b.accept("x", "c0"); // x busy
    b.enqueue("c1", "support", 0, None);
    assert_eq!(offers(&b.drain()).last(), Some(&("c1".into(), "y".into())));
    b.acd.decline(&a("y"), &c("c1"), b.now).unwrap();
    let acts = b.drain();
    assert_eq!(
        outcomes(&acts),
        [("c1".into(), "y".into(), OfferOutcome::Declined)]
    );
    assert!(
        offers(&acts).is_empty(),
        "x still to try: y is not rung again"
    );
    assert_eq!(b.state("y"), AgentState::Available);
    // A second decline of the same offer is refused.
    assert!(b.acd.decline(&a("y"), &c("c1"), b.now).is_err());
    // x finishes: x gets c1.
    b.acd.agent_hung_up(&a("x"), &c("c0"), b.now).unwrap();
    b.acd.wrap_up_done(&a("x"), b.now).unwrap();
    assert_eq!(offers(&b.drain()), [("c1".into(), "x".into())]);
    // x declines too: the round is over, so y is rung again.
    b.acd.decline(&a("x"), &c("c1"), b.now).unwrap();
    assert_eq!(offers(&b.drain()), [("c1".into(), "y".into())]);
}

#[test]
fn two_agents_three_callers_the_third_waits_then_gets_the_first_agent_out_of_wrap_up() {
    let mut b = Bench::new(vec![support(&["x", "y"])], &["x", "y"]);
    b.ready(&["x", "y"]);
    b.enqueue("c1", "support", 0, None);
    b.enqueue("c2", "support", 0, None);
    b.enqueue("c3", "support", 0, None);
    let acts = b.drain();
    // Each call to one agent at a time.
    assert_eq!(
        offers(&acts),
        [("c1".into(), "x".into()), ("c2".into(), "y".into())]
    );
    assert_eq!(b.acd.position(&c("c3")), Some(3));
    b.accept("x", "c1");
    b.accept("y", "c2");
    let acts = b.drain();
    // A call ringing an agent still counts as waiting ahead of c3, but is
    // not told its place while it rings (c2 rang y when x took c1).
    assert_eq!(positions(&acts), [("c3".into(), 2), ("c3".into(), 1)]);
    assert_eq!(b.acd.position(&c("c3")), Some(1));
    // No call finished yet: no estimate (no made-up figure).
    assert_eq!(b.acd.estimated_wait(&c("c3")), None);

    b.advance(secs(60));
    b.acd.call_ended(&c("c2"), b.now); // y's caller hangs up first
    b.advance(secs(5));
    b.acd.call_ended(&c("c1"), b.now);
    assert!(matches!(b.state("y"), AgentState::WrapUp { .. }));
    assert!(offers(&b.drain()).is_empty(), "nobody free during wrap-up");
    b.skip_to_next_timer(); // y's wrap-up ends
    assert_eq!(b.state("y"), AgentState::Ringing { call: c("c3") });
    assert_eq!(offers(&b.drain()), [("c3".into(), "y".into())]);
    b.accept("y", "c3");
    assert_eq!(b.acd.position(&c("c3")), None);
}

#[test]
fn estimated_wait_follows_the_queues_handle_times() {
    let mut b = Bench::new(vec![support(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    b.accept("x", "c1");
    b.advance(secs(90));
    b.acd.agent_hung_up(&a("x"), &c("c1"), b.now).unwrap();
    b.advance(secs(30)); // wrap-up: handle time 120 s
    let view = b.acd.queue(&q("support")).unwrap();
    assert_eq!(view.average_handle_time, Some(secs(120)));
    b.acd.set_away(&a("x"), "break", b.now).unwrap();
    b.enqueue("c2", "support", 0, None);
    b.enqueue("c3", "support", 0, None);
    // Nobody staffed: position × handle time.
    assert_eq!(b.acd.estimated_wait(&c("c3")), Some(secs(240)));
    let acts = b.drain();
    assert!(acts.contains(&AcdAction::Position {
        call: c("c3"),
        position: 2,
        estimated_wait: Some(secs(240))
    }));
    // Two agents staffed share the queue: half the wait.
    let mut b = Bench::new(vec![support(&["x", "y"])], &["x", "y"]);
    b.ready(&["x", "y"]);
    b.enqueue("c1", "support", 0, None);
    b.enqueue("c2", "support", 0, None);
    b.accept("x", "c1");
    b.accept("y", "c2");
    b.advance(secs(100));
    b.acd.agent_hung_up(&a("x"), &c("c1"), b.now).unwrap();
    b.acd.agent_hung_up(&a("y"), &c("c2"), b.now).unwrap();
    b.skip_to_next_timer(); // wrap-up ends: handle times known
    b.enqueue("c3", "support", 0, None);
    b.enqueue("c4", "support", 0, None);
    b.enqueue("c5", "support", 0, None);
    let aht = b
        .acd
        .queue(&q("support"))
        .unwrap()
        .average_handle_time
        .unwrap();
    assert_eq!(b.acd.estimated_wait(&c("c5")), Some(aht * 3 / 2));
}

/// Issue 9 #3: the caller whose call is being offered to an agent hears no
/// position prompt, and no estimate is made up before the queue has one.
#[test]
fn no_position_while_an_offer_is_out_and_no_estimate_without_history() {
    let mut b = Bench::new(vec![support(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    let acts = b.drain();
    assert_eq!(offers(&acts), [("c1".into(), "x".into())]);
    assert!(positions(&acts).is_empty(), "{acts:?}");
    // The next caller waits behind it and is told so, without an estimate.
    b.enqueue("c2", "support", 0, None);
    let acts = b.drain();
    assert!(acts.contains(&AcdAction::Position {
        call: c("c2"),
        position: 2,
        estimated_wait: None
    }));
}

#[test]
fn positions_are_announced_when_they_change() {
    let mut b = Bench::new(vec![support(&["x"])], &["x"]);
    b.acd.agent_login(&a("x"), b.now).unwrap();
    b.enqueue("c1", "support", 0, None);
    b.enqueue("c2", "support", 0, None);
    b.enqueue("c3", "support", 0, None);
    assert_eq!(
        positions(&b.drain()),
        [("c1".into(), 1), ("c2".into(), 2), ("c3".into(), 3)]
    );
    b.acd.call_ended(&c("c1"), b.now);
    assert_eq!(positions(&b.drain()), [("c2".into(), 1), ("c3".into(), 2)]);
    // A higher-priority arrival pushes the others back.
    b.enqueue("vip", "support", 9, None);
    assert_eq!(
        positions(&b.drain()),
        [("vip".into(), 1), ("c2".into(), 2), ("c3".into(), 3)]
    );
    let view = b.acd.queue(&q("support")).unwrap();
    let order: Vec<&str> = view.waiting.iter().map(|w| w.call.as_str()).collect();
    assert_eq!(order, ["vip", "c2", "c3"]);
}

#[test]
fn a_call_waiting_past_max_wait_overflows_and_leaves() {
    let mut b = Bench::new(vec![support(&["x"])], &["x"]);
    b.enqueue("c1", "support", 0, None);
    assert_eq!(b.acd.poll_timeout(), Some(b.now + secs(120)));
    b.advance(secs(119));
    assert!(b.acd.call(&c("c1")).is_some());
    b.advance(secs(1));
    let acts = b.drain();
    assert!(acts.contains(&AcdAction::Overflow {
        call: c("c1"),
        target: Overflow::Voicemail
    }));
    assert!(b.acd.call(&c("c1")).is_none());
    assert_eq!(b.acd.poll_timeout(), None);
}

#[test]
fn overflow_while_ringing_withdraws_the_offer() {
    let mut qc = support(&["x"]);
    qc.max_wait = secs(10);
    qc.overflow = Overflow::Hangup;
    let mut b = Bench::new(vec![qc], &["x"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    b.drain();
    b.advance(secs(10));
    let acts = b.drain();
    assert_eq!(withdrawals(&acts), [("c1".into(), "x".into())]);
    assert!(acts.contains(&AcdAction::Overflow {
        call: c("c1"),
        target: Overflow::Hangup
    }));
    assert_eq!(b.state("x"), AgentState::Available);
}

#[test]
fn overflow_to_another_queue_keeps_the_callers_place() {
    let mut first = support(&["x"]);
    first.max_wait = secs(30);
    first.overflow = Overflow::Queue(q("backup"));
    let backup = QueueConfig {
        members: vec![a("y")],
        max_wait: secs(60),
        overflow: Overflow::Hangup,
        ..QueueConfig::new("backup")
    };
    let mut b = Bench::new(vec![first, backup], &["x", "y"]);
    b.enqueue("early", "support", 0, None);
    b.advance(secs(10));
    b.enqueue("late", "backup", 0, None);
    b.advance(secs(20));
    let acts = b.drain();
    assert!(acts.contains(&AcdAction::Overflow {
        call: c("early"),
        target: Overflow::Queue(q("backup"))
    }));
    let view = b.acd.call(&c("early")).unwrap();
    assert_eq!(view.queue, q("backup"));
    assert_eq!(view.position, Some(1), "arrived before `late`");
    assert_eq!(view.deadline, b.now + secs(60));
    b.ready(&["y"]);
    assert_eq!(offers(&b.log).first(), Some(&("early".into(), "y".into())));
}

#[test]
fn overflow_cycles_and_missing_targets_end_in_hangup() {
    let mut ping = support(&[]);
    ping.name = q("ping");
    ping.max_wait = secs(1);
    ping.overflow = Overflow::Queue(q("pong"));
    let mut pong = ping.clone();
    pong.name = q("pong");
    pong.overflow = Overflow::Queue(q("ping"));
    let mut lost = ping.clone();
    lost.name = q("lost");
    lost.overflow = Overflow::Queue(q("nowhere"));
    let mut b = Bench::new(vec![ping, pong, lost], &[]);
    b.enqueue("c1", "ping", 0, None);
    b.enqueue("c2", "lost", 0, None);
    for _ in 0..10 {
        b.advance(secs(1));
    }
    let acts = b.drain();
    for call in ["c1", "c2"] {
        assert!(acts.contains(&AcdAction::Overflow {
            call: c(call),
            target: Overflow::Hangup
        }));
    }
    assert_eq!(b.acd.calls().count(), 0);
}

#[test]
fn the_caller_hangs_up_while_ringing_the_offer_is_withdrawn_and_the_agent_is_free() {
    let mut b = Bench::new(vec![support(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    b.drain();
    b.advance(secs(3));
    b.acd.call_ended(&c("c1"), b.now);
    b.check();
    let acts = b.drain();
    assert_eq!(withdrawals(&acts), [("c1".into(), "x".into())]);
    assert_eq!(
        outcomes(&acts),
        [("c1".into(), "x".into(), OfferOutcome::Withdrawn)]
    );
    assert_eq!(b.state("x"), AgentState::Available);
    assert!(b.acd.accept(&a("x"), &c("c1"), b.now).is_err());
    // Ending it again is harmless.
    b.acd.call_ended(&c("c1"), b.now);
    assert!(b.drain().is_empty());
}

#[test]
fn the_agent_disconnects_while_ringing_the_call_is_offered_to_the_next() {
    let mut b = Bench::new(vec![support(&["x", "y"])], &["x", "y"]);
    b.ready(&["x", "y"]);
    b.enqueue("c1", "support", 0, None);
    b.drain();
    b.acd.agent_disconnected(&a("x"), b.now);
    b.check();
    let acts = b.drain();
    assert_eq!(withdrawals(&acts), [("c1".into(), "x".into())]);
    assert_eq!(offers(&acts), [("c1".into(), "y".into())]);
    assert_eq!(b.state("x"), AgentState::Offline);
}

#[test]
fn the_agent_disconnects_mid_call_and_the_call_is_requeued_at_the_front() {
    let mut b = Bench::new(vec![support(&["x", "y"])], &["x", "y"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    b.accept("x", "c1");
    b.advance(secs(5));
    b.enqueue("c2", "support", 0, None);
    b.drain();
    b.acd.agent_disconnected(&a("x"), b.now);
    b.check();
    let acts = b.drain();
    assert!(acts.contains(&AcdAction::AgentLost {
        call: c("c1"),
        agent: a("x"),
        requeued: true
    }));
    assert_eq!(b.state("x"), AgentState::Offline);
    assert_eq!(b.acd.position(&c("c1")), Some(1));
    assert_eq!(b.acd.call(&c("c1")).unwrap().deadline, b.now + secs(120));
    assert!(positions(&acts).contains(&("c1".into(), 1)));
    b.ready(&["y"]);
    assert_eq!(offers(&b.log).last(), Some(&("c1".into(), "y".into())));
}

#[test]
fn the_agent_disconnects_mid_call_and_the_call_is_released_by_policy() {
    let mut qc = support(&["x"]);
    qc.on_agent_lost = AgentLostPolicy::Release;
    let mut b = Bench::new(vec![qc], &["x"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    b.accept("x", "c1");
    b.drain();
    b.acd.agent_logout(&a("x"), b.now).unwrap();
    let acts = b.drain();
    assert!(acts.contains(&AcdAction::AgentLost {
        call: c("c1"),
        agent: a("x"),
        requeued: false
    }));
    assert!(b.acd.call(&c("c1")).is_none());
}

#[test]
fn away_while_busy_applies_after_wrap_up_and_ringing_away_declines() {
    let mut b = Bench::new(vec![support(&["x", "y"])], &["x", "y"]);
    b.ready(&["x", "y"]);
    b.enqueue("c1", "support", 0, None);
    b.accept("x", "c1");
    b.acd.set_away(&a("x"), "lunch", b.now).unwrap();
    assert_eq!(b.state("x"), AgentState::OnCall { call: c("c1") });
    b.acd.agent_hung_up(&a("x"), &c("c1"), b.now).unwrap();
    b.advance(secs(30));
    assert_eq!(
        b.state("x"),
        AgentState::Away {
            reason: "lunch".into()
        }
    );

    b.enqueue("c2", "support", 0, None);
    b.drain();
    b.acd.set_away(&a("y"), "coffee", b.now).unwrap();
    assert_eq!(
        outcomes(&b.drain()),
        [("c2".into(), "y".into(), OfferOutcome::Declined)]
    );
    assert_eq!(b.acd.position(&c("c2")), Some(1));
}

#[test]
fn wrap_up_ends_by_timer_or_early_and_zero_wrap_up_skips_it() {
    let mut b = Bench::new(vec![support(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    b.accept("x", "c1");
    b.acd.call_ended(&c("c1"), b.now);
    let until = b.now + secs(30);
    assert_eq!(
        b.state("x"),
        AgentState::WrapUp {
            call: c("c1"),
            until
        }
    );
    assert_eq!(b.acd.poll_timeout(), Some(until));
    b.acd.wrap_up_done(&a("x"), b.now).unwrap();
    assert_eq!(b.state("x"), AgentState::Available);
    assert_eq!(
        b.acd.wrap_up_done(&a("x"), b.now),
        Err(AcdError::NotInWrapUp(a("x")))
    );

    let mut qc = support(&["x"]);
    qc.wrap_up = secs(0);
    b.acd.upsert_queue(qc, b.now);
    b.enqueue("c2", "support", 0, None);
    b.accept("x", "c2");
    b.acd.agent_hung_up(&a("x"), &c("c2"), b.now).unwrap();
    assert_eq!(b.state("x"), AgentState::Available);
}

#[test]
fn refused_inputs_change_nothing() {
    let mut b = Bench::new(vec![support(&["x", "y"])], &["x", "y"]);
    b.ready(&["x", "y"]);
    b.enqueue("c1", "support", 0, None);
    b.drain();
    let before: Vec<_> = b.acd.agents().collect();
    assert!(b.acd.accept(&a("y"), &c("c1"), b.now).is_err());
    assert!(b.acd.decline(&a("y"), &c("c1"), b.now).is_err());
    assert!(b.acd.accept(&a("x"), &c("nope"), b.now).is_err());
    assert!(b.acd.agent_hung_up(&a("x"), &c("c1"), b.now).is_err());
    assert_eq!(
        b.acd.enqueue(c("c1"), &q("support"), 0, None, b.now),
        Err(AcdError::AlreadyQueued(c("c1")))
    );
    assert_eq!(
        b.acd.enqueue(c("c9"), &q("nope"), 0, None, b.now),
        Err(AcdError::UnknownQueue(q("nope")))
    );
    assert!(b.drain().is_empty());
    assert_eq!(before, b.acd.agents().collect::<Vec<_>>());
}

#[test]
fn removing_an_agent_on_a_call_lets_the_call_finish() {
    let mut b = Bench::new(vec![support(&["x", "y"])], &["x", "y"]);
    b.ready(&["x", "y"]);
    b.enqueue("c1", "support", 0, None);
    b.accept("x", "c1");
    b.acd.remove_agent(&a("x"), b.now).unwrap();
    b.check();
    let view = b.acd.agent(&a("x")).unwrap();
    assert!(view.removed);
    assert_eq!(view.call, Some(c("c1")));
    assert_eq!(b.acd.call(&c("c1")).unwrap().agent, Some(a("x")));
    // No new offers for a removed agent.
    b.acd.agent_hung_up(&a("x"), &c("c1"), b.now).unwrap();
    b.check();
    assert!(b.acd.agent(&a("x")).is_none());
    let acts = b.drain();
    assert!(matches!(
        acts.iter()
            .rev()
            .find(|x| matches!(x, AcdAction::AgentState { .. })),
        Some(AcdAction::AgentState {
            state: AgentState::Offline,
            ..
        })
    ));
}

#[test]
fn removing_a_ringing_agent_reoffers_and_readding_cancels_a_pending_removal() {
    let mut b = Bench::new(vec![support(&["x", "y"])], &["x", "y"]);
    b.ready(&["x", "y"]);
    b.enqueue("c1", "support", 0, None);
    b.drain();
    b.acd.remove_agent(&a("x"), b.now).unwrap();
    b.check();
    let acts = b.drain();
    assert_eq!(withdrawals(&acts), [("c1".into(), "x".into())]);
    assert_eq!(offers(&acts), [("c1".into(), "y".into())]);
    assert!(b.acd.agent(&a("x")).is_none());
    assert_eq!(
        b.acd.remove_agent(&a("x"), b.now),
        Err(AcdError::UnknownAgent(a("x")))
    );

    b.accept("y", "c1");
    b.acd.remove_agent(&a("y"), b.now).unwrap();
    b.acd
        .upsert_agent(AgentConfig::new("y", "Yan").with_skills(["billing"]), b.now);
    let view = b.acd.agent(&a("y")).unwrap();
    assert!(!view.removed);
    assert_eq!(view.name, "Yan");
    b.acd.call_ended(&c("c1"), b.now);
    assert!(matches!(b.state("y"), AgentState::WrapUp { .. }));
}

#[test]
fn a_removed_agent_who_disconnects_mid_call_does_not_orphan_it() {
    let mut b = Bench::new(vec![support(&["x", "y"])], &["x", "y"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    b.accept("x", "c1");
    b.acd.remove_agent(&a("x"), b.now).unwrap();
    b.acd.agent_disconnected(&a("x"), b.now);
    b.check();
    assert!(b.acd.agent(&a("x")).is_none());
    assert_eq!(b.acd.position(&c("c1")), Some(1));
}

#[test]
fn removing_a_queue_overflows_its_calls_and_spares_connected_ones() {
    let mut b = Bench::new(vec![support(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    b.accept("x", "c1");
    b.enqueue("c2", "support", 0, None);
    b.drain();
    b.acd.remove_queue(&q("support"), b.now).unwrap();
    b.check();
    let acts = b.drain();
    assert!(acts.contains(&AcdAction::Overflow {
        call: c("c2"),
        target: Overflow::Voicemail
    }));
    assert_eq!(b.acd.call(&c("c1")).unwrap().agent, Some(a("x")));
    // Wrap-up was fixed at connect time.
    b.acd.call_ended(&c("c1"), b.now);
    assert!(matches!(b.state("x"), AgentState::WrapUp { .. }));
    assert_eq!(
        b.acd.remove_queue(&q("support"), b.now),
        Err(AcdError::UnknownQueue(q("support")))
    );
}

#[test]
fn a_queue_leaving_ring_all_keeps_one_offer_per_call() {
    let mut qc = support(&["x", "y"]);
    qc.strategy = Strategy::RingAll;
    let mut b = Bench::new(vec![qc.clone()], &["x", "y"]);
    b.ready(&["x", "y"]);
    b.enqueue("c1", "support", 0, None);
    assert_eq!(offers(&b.drain()).len(), 2);
    qc.strategy = Strategy::RoundRobin;
    b.acd.upsert_queue(qc, b.now);
    b.check();
    assert_eq!(withdrawals(&b.drain()).len(), 1);
    assert_eq!(b.acd.call(&c("c1")).unwrap().offered_to.len(), 1);
}

#[test]
fn adding_a_member_at_run_time_serves_a_waiting_call() {
    let mut b = Bench::new(vec![support(&[])], &[]);
    b.enqueue("c1", "support", 0, None);
    b.acd.upsert_agent(AgentConfig::new("z", "Zed"), b.now);
    b.ready(&["z"]);
    assert!(offers(&b.log).is_empty(), "not a member yet");
    b.acd.upsert_queue(support(&["z"]), b.now);
    assert_eq!(offers(&b.drain()), [("c1".into(), "z".into())]);
    let view = b.acd.queues().next().unwrap();
    assert_eq!(view.members, [a("z")]);
    assert_eq!(view.waiting.len(), 1);
    assert_eq!(view.waiting[0].offered_to, [a("z")]);
}

/// A call already bridged elsewhere (a cluster's new ACD leader hears of
/// it from the call's node) enters on its agent: the agent is on it, is
/// offered nothing else, and wraps up when it ends; a busy agent refuses it.
#[test]
fn a_restored_call_keeps_its_agent_busy_until_it_ends() {
    let mut b = Bench::new(vec![support(&["x", "y"])], &["x", "y"]);
    // x's page is not back yet: restored while offline.
    b.acd
        .restore_on_call(c("talk"), &q("support"), 0, None, &a("x"), b.now)
        .unwrap();
    b.check();
    assert_eq!(b.state("x"), AgentState::OnCall { call: c("talk") });
    b.acd.agent_login(&a("x"), b.now).unwrap();
    assert_eq!(
        b.state("x"),
        AgentState::OnCall { call: c("talk") },
        "login keeps the call"
    );
    b.ready(&["y"]);
    b.enqueue("next", "support", 0, None);
    assert_eq!(
        offers(&b.drain()),
        [("next".into(), "y".into())],
        "not x: x talks"
    );
    assert_eq!(
        b.acd
            .restore_on_call(c("other"), &q("support"), 0, None, &a("y"), b.now),
        Err(AcdError::AgentBusy(a("y"))),
        "y rings"
    );
    assert_eq!(
        b.acd
            .restore_on_call(c("talk"), &q("support"), 0, None, &a("y"), b.now),
        Err(AcdError::AgentBusy(a("y")))
    );
    b.check();
    b.acd.call_ended(&c("talk"), b.now);
    assert!(
        matches!(b.state("x"), AgentState::WrapUp { call, .. } if call == c("talk")),
        "{:?}",
        b.state("x")
    );
    b.check();
}

#[test]
fn a_rejoining_call_takes_the_place_its_wait_gives_it_and_keeps_its_deadline() {
    let mut b = Bench::new(vec![support(&["x"])], &["x"]);
    b.advance(secs(100));
    b.enqueue("new", "support", 0, None);
    // Heard of late (a new cluster leader): waited 60 s on its node.
    b.acd
        .rejoin(c("old"), &q("support"), 0, None, secs(60), b.now)
        .unwrap();
    b.check();
    let positions = |b: &Bench| {
        let mut p: Vec<(String, usize)> = ["old", "new"]
            .iter()
            .map(|id| {
                (
                    id.to_string(),
                    b.acd.call(&c(id)).unwrap().position.unwrap(),
                )
            })
            .collect();
        p.sort_by_key(|(_, n)| *n);
        p
    };
    assert_eq!(positions(&b), [("old".into(), 1), ("new".into(), 2)]);
    // A higher priority still goes first, however long the other waited.
    b.acd
        .rejoin(c("vip"), &q("support"), 5, None, secs(1), b.now)
        .unwrap();
    assert_eq!(b.acd.call(&c("vip")).unwrap().position, Some(1));
    // Max wait (120 s) counts from when it first queued: 60 s left.
    b.drain();
    b.advance(secs(59));
    assert!(b.acd.call(&c("old")).is_some());
    b.advance(secs(1));
    assert!(b.drain().contains(&AcdAction::Overflow {
        call: c("old"),
        target: Overflow::Voicemail
    }));
    assert!(b.acd.call(&c("new")).is_some(), "the newer call waits on");
    b.ready(&["x"]);
    assert_eq!(b.state("x"), AgentState::Ringing { call: c("vip") });
    b.check();
}
