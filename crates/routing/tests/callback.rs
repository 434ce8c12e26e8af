//! Callback entries: a caller overflowing to (or asking for) a callback keeps
//! their place, is called back when their turn comes, and is retried or given
//! up by the queue's callback policy. On a fake clock.

mod common;

use common::*;
use hotline_routing::{
    AcdAction, AcdError, AgentLostPolicy, AgentState, OfferOutcome, Overflow, QueueConfig, Strategy,
};

/// Overflow to a callback after 60 s; 3 attempts, 120 s apart.
fn callbacks(members: &[&str]) -> QueueConfig {
    QueueConfig {
        strategy: Strategy::LongestIdle,
        members: members.iter().map(|m| a(m)).collect(),
        offer_timeout: secs(15),
        wrap_up: secs(30),
        max_wait: secs(60),
        overflow: Overflow::Callback,
        callback_attempts: 3,
        callback_retry: secs(120),
        ..QueueConfig::new("support")
    }
}

fn abandoned(actions: &[AcdAction]) -> Vec<(String, u32)> {
    actions
        .iter()
        .filter_map(|x| match x {
            AcdAction::CallbackAbandoned { call, attempts } => Some((call.0.clone(), *attempts)),
            _ => None,
        })
        .collect()
}

/// Connects `agent` (free, the only one) to callback entry `call`.
fn connect_callback(b: &mut Bench, agent: &str, call: &str) {
    assert_eq!(
        b.state(agent),
        AgentState::Ringing { call: c(call) },
        "{agent} rings for {call}"
    );
    b.accept(agent, call);
    assert!(b.acd.call(&c(call)).unwrap().callback);
    b.drain();
}

#[test]
fn the_defaults_try_a_callback_three_times_two_minutes_apart() {
    let qc = QueueConfig::new("q");
    assert_eq!(qc.callback_attempts, 3);
    assert_eq!(qc.callback_retry, secs(120));
}

#[test]
fn max_wait_overflow_to_a_callback_keeps_the_callers_place() {
    let mut b = Bench::new(vec![callbacks(&["x"])], &["x"]);
    b.acd.agent_login(&a("x"), b.now).unwrap(); // away: nobody answers
    b.enqueue("A", "support", 0, None);
    b.advance(secs(5));
    b.enqueue("B", "support", 0, None);
    b.drain();

    b.advance(secs(55)); // A's max wait
    let acts = b.drain();
    assert_eq!(
        acts,
        [AcdAction::Overflow {
            call: c("A"),
            target: Overflow::Callback
        }],
        "A stays in place: nobody's position changes"
    );
    let view = b.acd.call(&c("A")).unwrap();
    assert!(view.callback);
    assert_eq!(view.attempts, 0);
    assert_eq!(view.retry_after, None);
    assert_eq!(view.queued_at, b.t0);
    assert_eq!(view.position, Some(1));
    assert_eq!(b.acd.position(&c("B")), Some(2));
    // No call finished in this queue: no estimate to give.
    assert_eq!(b.acd.estimated_wait(&c("B")), None);

    // The caller's original leg hangs up: the entry stays.
    b.acd.call_ended(&c("A"), b.now);
    b.check();
    assert!(b.drain().is_empty());
    assert!(b.acd.call(&c("A")).unwrap().callback);
    // It never overflows again: only B's max wait is timed.
    assert_eq!(b.acd.poll_timeout(), Some(b.t0 + secs(65)));

    // A later arrival queues behind both.
    b.enqueue("C", "support", 0, None);
    assert_eq!(positions(&b.drain()), [("C".into(), 3)]);
    let view = b.acd.queue(&q("support")).unwrap();
    let waiting: Vec<(&str, bool, Option<usize>)> = view
        .waiting
        .iter()
        .map(|w| (w.call.as_str(), w.callback, w.position))
        .collect();
    assert_eq!(
        waiting,
        [
            ("A", true, Some(1)),
            ("B", false, Some(2)),
            ("C", false, Some(3))
        ]
    );

    // An agent frees: A is offered first, and connected as usual.
    b.acd.set_available(&a("x"), b.now).unwrap();
    assert_eq!(offers(&b.drain()), [("A".into(), "x".into())]);
    b.accept("x", "A");
    let acts = b.drain();
    assert!(acts.contains(&AcdAction::Connect {
        call: c("A"),
        agent: a("x")
    }));
    assert_eq!(positions(&acts), [("B".into(), 1), ("C".into(), 2)]);
    assert_eq!(b.state("x"), AgentState::OnCall { call: c("A") });
    assert_eq!(b.acd.call(&c("A")).unwrap().position, None);

    // The customer was reached and the conversation is over.
    b.advance(secs(2));
    b.acd.callback_done(&c("A"), b.now);
    b.check();
    assert!(b.acd.call(&c("A")).is_none());
    assert!(matches!(b.state("x"), AgentState::WrapUp { call, .. } if call == c("A")));
    // No position was ever announced for A once it was a callback entry.
    let overflow_at = b
        .log
        .iter()
        .position(|x| matches!(x, AcdAction::Overflow { .. }))
        .unwrap();
    assert!(
        !positions(&b.log[overflow_at..])
            .iter()
            .any(|(call, _)| call == "A")
    );
}

#[test]
fn overflow_while_ringing_withdraws_the_offer_before_the_callback_is_offered() {
    let mut qc = callbacks(&["x"]);
    qc.max_wait = secs(10);
    let mut b = Bench::new(vec![qc], &["x"]);
    b.ready(&["x"]);
    b.enqueue("c1", "support", 0, None);
    b.drain();
    b.advance(secs(10));
    let acts = b.drain();
    assert_eq!(withdrawals(&acts), [("c1".into(), "x".into())]);
    assert_eq!(
        outcomes(&acts),
        [("c1".into(), "x".into(), OfferOutcome::Withdrawn)]
    );
    let at = |pred: &dyn Fn(&AcdAction) -> bool| acts.iter().position(pred).unwrap();
    let withdrawn = at(&|x| matches!(x, AcdAction::Withdraw { .. }));
    let overflow = at(&|x| {
        *x == AcdAction::Overflow {
            call: c("c1"),
            target: Overflow::Callback,
        }
    });
    let offered = at(&|x| matches!(x, AcdAction::Offer { .. }));
    assert!(withdrawn < overflow && overflow < offered);
    // The free agent is offered the callback entry straight away.
    assert_eq!(offers(&acts), [("c1".into(), "x".into())]);
    assert!(b.acd.call(&c("c1")).unwrap().callback);
}

#[test]
fn a_callback_entry_never_overflows() {
    let mut b = Bench::new(vec![callbacks(&["x"])], &["x"]);
    b.enqueue("c1", "support", 0, None);
    b.acd.request_callback(&c("c1"), b.now).unwrap();
    b.drain();
    assert_eq!(b.acd.poll_timeout(), None);
    b.advance(secs(6000));
    assert!(b.drain().is_empty());
    assert_eq!(b.acd.position(&c("c1")), Some(1));
}

#[test]
fn request_callback_converts_in_place_and_refuses_what_it_cannot_convert() {
    let mut b = Bench::new(vec![callbacks(&["x"])], &["x"]);
    b.ready(&["x"]);
    assert_eq!(
        b.acd.request_callback(&c("nope"), b.now),
        Err(AcdError::UnknownCall(c("nope")))
    );
    b.enqueue("A", "support", 0, None);
    b.enqueue("B", "support", 0, None);
    b.drain();

    // B waits (x rings for A): it becomes a callback in place, silently.
    b.acd.request_callback(&c("B"), b.now).unwrap();
    b.check();
    assert!(b.drain().is_empty(), "no overflow: the shell asked");
    let view = b.acd.call(&c("B")).unwrap();
    assert!(view.callback);
    assert_eq!(view.position, Some(2));
    assert_eq!(
        b.acd.request_callback(&c("B"), b.now),
        Err(AcdError::AlreadyCallback(c("B")))
    );

    // A rings x: the offer is withdrawn, then A is offered as a callback.
    b.acd.request_callback(&c("A"), b.now).unwrap();
    b.check();
    let acts = b.drain();
    assert_eq!(withdrawals(&acts), [("A".into(), "x".into())]);
    assert_eq!(offers(&acts), [("A".into(), "x".into())]);
    assert!(positions(&acts).is_empty());

    // A connected callback (or call) cannot be converted.
    b.accept("x", "A");
    b.enqueue("C", "support", 0, None);
    b.drain();
    b.acd.set_available(&a("x"), b.now).unwrap(); // x is busy: a no-op
    assert_eq!(
        b.acd.request_callback(&c("A"), b.now),
        Err(AcdError::AlreadyCallback(c("A")))
    );
    b.acd.callback_done(&c("A"), b.now);
    b.acd.wrap_up_done(&a("x"), b.now).unwrap();
    assert_eq!(b.state("x"), AgentState::Ringing { call: c("B") });
    b.accept("x", "B");
    b.acd.callback_done(&c("B"), b.now);
    b.acd.wrap_up_done(&a("x"), b.now).unwrap();
    b.accept("x", "C");
    b.drain();
    assert_eq!(
        b.acd.request_callback(&c("C"), b.now),
        Err(AcdError::AlreadyConnected(c("C")))
    );
    assert!(b.drain().is_empty(), "refused inputs change nothing");
    assert!(!b.acd.call(&c("C")).unwrap().callback);
}

#[test]
fn the_original_legs_hang_up_after_an_agent_accepted_does_not_end_the_callback() {
    let mut b = Bench::new(vec![callbacks(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.enqueue("A", "support", 0, None);
    b.acd.request_callback(&c("A"), b.now).unwrap();
    connect_callback(&mut b, "x", "A");
    // The gateway reports the caller's leg late, after the accept.
    b.acd.call_ended(&c("A"), b.now);
    b.check();
    assert!(b.drain().is_empty());
    assert_eq!(b.state("x"), AgentState::OnCall { call: c("A") });
    assert_eq!(b.acd.call(&c("A")).unwrap().agent, Some(a("x")));
    // The agent hanging up ends it like callback_done.
    b.acd.agent_hung_up(&a("x"), &c("A"), b.now).unwrap();
    assert!(b.acd.call(&c("A")).is_none());
    assert!(matches!(b.state("x"), AgentState::WrapUp { .. }));
}

#[test]
fn a_failed_callback_keeps_its_place_waits_out_the_retry_and_is_abandoned_after_the_last_attempt() {
    let mut b = Bench::new(vec![callbacks(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.enqueue("A", "support", 0, None);
    b.acd.request_callback(&c("A"), b.now).unwrap();
    connect_callback(&mut b, "x", "A");

    // Attempt 1: busy. x wraps up; A is back in its place, resting.
    b.advance(secs(10));
    let failed_at = b.now;
    b.acd.callback_failed(&c("A"), b.now);
    b.check();
    assert!(abandoned(&b.drain()).is_empty());
    assert_eq!(
        b.state("x"),
        AgentState::WrapUp {
            call: c("A"),
            until: failed_at + secs(30)
        }
    );
    let view = b.acd.call(&c("A")).unwrap();
    assert_eq!(view.agent, None);
    assert_eq!(view.attempts, 1);
    assert_eq!(view.retry_after, Some(failed_at + secs(120)));
    assert_eq!(view.position, Some(1));

    // B arrives behind A but is served while A rests.
    b.enqueue("B", "support", 0, None);
    assert_eq!(b.acd.position(&c("B")), Some(2));
    b.acd.wrap_up_done(&a("x"), b.now).unwrap();
    assert_eq!(offers(&b.drain()), [("B".into(), "x".into())]);
    b.accept("x", "B");
    b.acd.agent_hung_up(&a("x"), &c("B"), b.now).unwrap();
    b.acd.wrap_up_done(&a("x"), b.now).unwrap();
    b.check();
    assert!(
        offers(&b.drain()).is_empty(),
        "A is not offered before its retry"
    );
    assert_eq!(b.state("x"), AgentState::Available);

    // Offered exactly when the retry delay has passed.
    b.now = failed_at + secs(120) - secs(1);
    b.acd.handle_timeout(b.now);
    assert!(offers(&b.drain()).is_empty());
    b.skip_to_next_timer();
    assert_eq!(b.now, failed_at + secs(120));
    let acts = b.drain();
    assert!(acts.contains(&AcdAction::Offer {
        call: c("A"),
        agent: a("x"),
        queue: q("support"),
        expires: b.now + secs(15)
    }));
    assert_eq!(b.acd.call(&c("A")).unwrap().retry_after, None);

    // Attempt 2: no answer.
    connect_callback(&mut b, "x", "A");
    b.acd.callback_failed(&c("A"), b.now);
    assert_eq!(b.acd.call(&c("A")).unwrap().attempts, 2);
    b.skip_to_next_timer(); // x's wrap-up
    b.skip_to_next_timer(); // A's retry
    // Attempt 3, the last: given up.
    connect_callback(&mut b, "x", "A");
    b.acd.callback_failed(&c("A"), b.now);
    b.check();
    let acts = b.drain();
    assert_eq!(abandoned(&acts), [("A".into(), 3)]);
    let wrap_up = acts
        .iter()
        .position(|x| {
            matches!(
                x,
                AcdAction::AgentState {
                    state: AgentState::WrapUp { .. },
                    ..
                }
            )
        })
        .unwrap();
    let gone = acts
        .iter()
        .position(|x| matches!(x, AcdAction::CallbackAbandoned { .. }))
        .unwrap();
    assert!(wrap_up < gone, "the agent is let go first");
    assert!(b.acd.call(&c("A")).is_none());
    assert!(matches!(b.state("x"), AgentState::WrapUp { .. }));
}

#[test]
fn zero_callback_attempts_still_make_one() {
    let mut qc = callbacks(&["x"]);
    qc.callback_attempts = 0;
    let mut b = Bench::new(vec![qc], &["x"]);
    b.ready(&["x"]);
    b.enqueue("A", "support", 0, None);
    b.acd.request_callback(&c("A"), b.now).unwrap();
    connect_callback(&mut b, "x", "A");
    b.acd.callback_failed(&c("A"), b.now);
    assert_eq!(abandoned(&b.drain()), [("A".into(), 1)]);
}

#[test]
fn a_callback_due_when_a_wrap_up_ends_is_served_before_later_callers() {
    let mut qc = callbacks(&["x"]);
    qc.wrap_up = secs(120); // ends at the same instant as the retry delay
    qc.max_wait = secs(600);
    let mut b = Bench::new(vec![qc], &["x"]);
    b.ready(&["x"]);
    b.enqueue("A", "support", 0, None);
    b.acd.request_callback(&c("A"), b.now).unwrap();
    connect_callback(&mut b, "x", "A");
    b.acd.callback_failed(&c("A"), b.now);
    b.enqueue("B", "support", 0, None);
    b.drain();
    b.skip_to_next_timer();
    assert_eq!(offers(&b.drain()), [("A".into(), "x".into())]);
}

#[test]
fn an_agent_lost_on_a_callback_puts_it_back_without_counting_an_attempt() {
    let mut qc = callbacks(&["x", "y"]);
    qc.on_agent_lost = AgentLostPolicy::Release; // callbacks are requeued anyway
    let mut b = Bench::new(vec![qc], &["x", "y"]);
    b.ready(&["x"]);
    b.enqueue("A", "support", 0, None);
    b.acd.request_callback(&c("A"), b.now).unwrap();
    connect_callback(&mut b, "x", "A");
    b.acd.agent_disconnected(&a("x"), b.now);
    b.check();
    let acts = b.drain();
    assert!(acts.contains(&AcdAction::AgentLost {
        call: c("A"),
        agent: a("x"),
        requeued: true
    }));
    let lost_at = b.now;
    let view = b.acd.call(&c("A")).unwrap();
    assert_eq!(view.attempts, 0);
    assert_eq!(view.position, Some(1));
    assert_eq!(view.retry_after, Some(lost_at + secs(120)));
    // Its report of the dead leg changes nothing now.
    b.acd.callback_failed(&c("A"), b.now);
    b.acd.callback_done(&c("A"), b.now);
    assert!(b.drain().is_empty());
    assert_eq!(b.acd.call(&c("A")).unwrap().attempts, 0);

    b.ready(&["y"]);
    assert!(offers(&b.log).iter().all(|(_, agent)| agent != "y"));
    b.now = lost_at + secs(120);
    b.acd.handle_timeout(b.now);
    assert_eq!(offers(&b.drain()), [("A".into(), "y".into())]);
}

#[test]
fn cancel_callback_withdraws_and_removes_and_ignores_anything_else() {
    let mut b = Bench::new(vec![callbacks(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.acd.cancel_callback(&c("nope"), b.now);
    b.enqueue("A", "support", 0, None);
    b.drain();
    // A live call is not a callback: untouched.
    b.acd.cancel_callback(&c("A"), b.now);
    assert!(b.drain().is_empty());
    assert_eq!(b.state("x"), AgentState::Ringing { call: c("A") });

    // A callback ringing x.
    b.acd.request_callback(&c("A"), b.now).unwrap();
    b.drain();
    b.acd.cancel_callback(&c("A"), b.now);
    b.check();
    let acts = b.drain();
    assert_eq!(withdrawals(&acts), [("A".into(), "x".into())]);
    assert_eq!(
        outcomes(&acts),
        [("A".into(), "x".into(), OfferOutcome::Withdrawn)]
    );
    assert!(b.acd.call(&c("A")).is_none());
    assert_eq!(b.state("x"), AgentState::Available);

    // A callback x is on: x goes to wrap-up.
    b.enqueue("B", "support", 0, None);
    b.acd.request_callback(&c("B"), b.now).unwrap();
    connect_callback(&mut b, "x", "B");
    b.acd.cancel_callback(&c("B"), b.now);
    b.check();
    assert!(b.acd.call(&c("B")).is_none());
    assert!(matches!(b.state("x"), AgentState::WrapUp { .. }));
    b.acd.cancel_callback(&c("B"), b.now);
    assert!(abandoned(&b.drain()).is_empty());
}

#[test]
fn callback_done_and_failed_ignore_calls_that_are_not_connected_callbacks() {
    let mut b = Bench::new(vec![callbacks(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.enqueue("live", "support", 0, None);
    b.accept("x", "live");
    b.enqueue("cb", "support", 0, None);
    b.acd.request_callback(&c("cb"), b.now).unwrap();
    b.drain();
    for call in ["live", "cb", "nope"] {
        b.acd.callback_done(&c(call), b.now);
        b.acd.callback_failed(&c(call), b.now);
    }
    b.check();
    assert!(b.drain().is_empty());
    assert_eq!(b.state("x"), AgentState::OnCall { call: c("live") });
    assert_eq!(b.acd.call(&c("cb")).unwrap().attempts, 0);
}

#[test]
fn ring_all_offers_a_callback_to_everyone_free_and_the_first_accept_wins() {
    let mut qc = callbacks(&["x", "y"]);
    qc.strategy = Strategy::RingAll;
    let mut b = Bench::new(vec![qc], &["x", "y"]);
    b.acd.agent_login(&a("x"), b.now).unwrap();
    b.acd.agent_login(&a("y"), b.now).unwrap();
    b.enqueue("A", "support", 0, None);
    b.acd.request_callback(&c("A"), b.now).unwrap();
    b.ready(&["x", "y"]);
    assert_eq!(
        offers(&b.log),
        [("A".into(), "x".into()), ("A".into(), "y".into())]
    );
    b.accept("y", "A");
    let acts = b.drain();
    assert_eq!(withdrawals(&acts), [("A".into(), "x".into())]);
    assert!(acts.contains(&AcdAction::Connect {
        call: c("A"),
        agent: a("y")
    }));
    assert!(b.acd.accept(&a("x"), &c("A"), b.now).is_err());
}

#[test]
fn removing_a_queue_gives_up_its_callbacks_and_sends_its_callers_to_voicemail() {
    let mut b = Bench::new(vec![callbacks(&["x", "y"])], &["x", "y"]);
    b.ready(&["x", "y"]);
    // x and y are each on a callback; W waits as a callback, L live.
    for (call, agent) in [("X", "x"), ("Y", "y")] {
        b.enqueue(call, "support", 0, None);
        b.acd.request_callback(&c(call), b.now).unwrap();
        connect_callback(&mut b, agent, call);
    }
    b.enqueue("W", "support", 0, None);
    b.acd.request_callback(&c("W"), b.now).unwrap();
    b.enqueue("L", "support", 0, None);
    b.drain();

    b.acd.remove_queue(&q("support"), b.now).unwrap();
    b.check();
    let acts = b.drain();
    assert_eq!(abandoned(&acts), [("W".into(), 0)]);
    assert!(acts.contains(&AcdAction::Overflow {
        call: c("L"),
        target: Overflow::Voicemail
    }));
    assert_eq!(b.acd.calls().count(), 2, "connected callbacks carry on");

    // Failing with no queue to go back to: given up.
    b.acd.callback_failed(&c("X"), b.now);
    b.check();
    assert_eq!(abandoned(&b.drain()), [("X".into(), 1)]);
    assert!(matches!(b.state("x"), AgentState::WrapUp { .. }));
    // Losing the agent with no queue to go back to: released and given up.
    b.acd.agent_disconnected(&a("y"), b.now);
    b.check();
    let acts = b.drain();
    assert!(acts.contains(&AcdAction::AgentLost {
        call: c("Y"),
        agent: a("y"),
        requeued: false
    }));
    assert_eq!(abandoned(&acts), [("Y".into(), 0)]);
    assert_eq!(b.acd.calls().count(), 0);
}

/// A booked callback that is due (issue 9 #1) enters as a callback entry:
/// offered at once, never announced, never overflowing, and its earlier
/// attempts count towards the queue's limit.
#[test]
fn a_booked_callback_enters_as_a_callback_entry() {
    let mut b = Bench::new(vec![callbacks(&["x"])], &["x"]);
    b.ready(&["x"]);
    b.acd
        .enqueue_callback(c("K"), &q("support"), 2, b.now)
        .unwrap();
    b.check();
    let acts = b.drain();
    assert!(
        !acts.iter().any(|a| matches!(a, AcdAction::Position { .. })),
        "{acts:?}"
    );
    let view = b.acd.call(&c("K")).unwrap();
    assert!(view.callback);
    assert_eq!(view.attempts, 2);
    assert_eq!(
        b.acd.enqueue_callback(c("K"), &q("support"), 0, b.now),
        Err(AcdError::AlreadyQueued(c("K")))
    );
    assert!(matches!(
        b.acd.enqueue_callback(c("L"), &q("nope"), 0, b.now),
        Err(AcdError::UnknownQueue(_))
    ));
    // The one attempt left fails: abandoned after the third.
    connect_callback(&mut b, "x", "K");
    b.acd.callback_failed(&c("K"), b.now);
    b.check();
    assert_eq!(abandoned(&b.drain()), [("K".into(), 3)]);
    // Past any max wait it stays (callback entries never overflow).
    b.acd
        .enqueue_callback(c("M"), &q("support"), 0, b.now)
        .unwrap();
    b.advance(secs(600));
    b.check();
    assert!(b.acd.call(&c("M")).is_some());
}
