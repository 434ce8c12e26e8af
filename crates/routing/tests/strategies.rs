//! Each strategy's choice of agent, and the order calls are served in.

mod common;

use common::*;
use hotline_routing::{AcdAction, AgentConfig, AgentState, OfferOutcome, QueueConfig, Strategy};

fn queue(strategy: Strategy, members: &[&str]) -> QueueConfig {
    QueueConfig {
        strategy,
        members: members.iter().map(|m| a(m)).collect(),
        ..QueueConfig::new("support")
    }
}

#[test]
fn longest_idle_picks_the_agent_idle_longest() {
    let mut b = Bench::new(
        vec![queue(Strategy::LongestIdle, &["x", "y", "z"])],
        &["x", "y", "z"],
    );
    // y became available first, then z, then x.
    b.ready(&["y", "z", "x"]);
    b.enqueue("c1", "support", 0, None);
    assert_eq!(offers(&b.drain()), [("c1".into(), "y".into())]);
    b.enqueue("c2", "support", 0, None);
    assert_eq!(offers(&b.drain()), [("c2".into(), "z".into())]);

    // y finishes a call (no wrap-up in this test): now the most recently idle.
    b.accept("y", "c1");
    b.acd.wrap_up_done(&a("y"), b.now).unwrap_err();
    b.acd.agent_hung_up(&a("y"), &c("c1"), b.now).unwrap();
    b.acd.wrap_up_done(&a("y"), b.now).unwrap();
    b.drain();
    b.enqueue("c3", "support", 0, None);
    assert_eq!(offers(&b.drain()), [("c3".into(), "x".into())]);
}

#[test]
fn a_declined_offer_keeps_the_agents_idle_rank() {
    let mut b = Bench::new(vec![queue(Strategy::LongestIdle, &["x", "y"])], &["x", "y"]);
    b.ready(&["x", "y"]);
    b.enqueue("c1", "support", 0, None);
    assert_eq!(offers(&b.drain()), [("c1".into(), "x".into())]);
    b.acd.decline(&a("x"), &c("c1"), b.now).unwrap();
    assert_eq!(offers(&b.drain()), [("c1".into(), "y".into())]);
    // x is still the longest idle for the next call.
    b.enqueue("c2", "support", 0, None);
    assert_eq!(offers(&b.drain()), [("c2".into(), "x".into())]);
}

#[test]
fn round_robin_rotates_through_members_in_order() {
    let mut b = Bench::new(
        vec![queue(Strategy::RoundRobin, &["x", "y", "z"])],
        &["x", "y", "z"],
    );
    // Readiness order must not matter for round robin.
    b.ready(&["z", "y", "x"]);
    let mut got = Vec::new();
    for i in 0..6 {
        let call = format!("c{i}");
        b.enqueue(&call, "support", 0, None);
        let o = offers(&b.drain());
        assert_eq!(o.len(), 1);
        got.push(o[0].1.clone());
        // The caller gives up at once, so every member is free for the next call.
        b.acd.call_ended(&c(&call), b.now);
        b.drain();
    }
    assert_eq!(got, ["x", "y", "z", "x", "y", "z"]);
}

#[test]
fn round_robin_skips_busy_members_and_continues_after_the_one_chosen() {
    let mut b = Bench::new(
        vec![queue(Strategy::RoundRobin, &["x", "y", "z"])],
        &["x", "y", "z"],
    );
    b.ready(&["x", "y", "z"]);
    b.acd.set_away(&a("y"), "lunch", b.now).unwrap();
    b.enqueue("c1", "support", 0, None);
    b.enqueue("c2", "support", 0, None);
    assert_eq!(
        offers(&b.drain()),
        [("c1".into(), "x".into()), ("c2".into(), "z".into())]
    );
    b.acd.set_available(&a("y"), b.now).unwrap();
    b.enqueue("c3", "support", 0, None);
    assert_eq!(offers(&b.drain()), [("c3".into(), "y".into())]);
}

#[test]
fn ring_all_offers_everyone_free_and_withdraws_the_rest_on_first_accept() {
    let mut b = Bench::new(
        vec![queue(Strategy::RingAll, &["x", "y", "z"])],
        &["x", "y", "z"],
    );
    b.ready(&["x", "y", "z"]);
    b.enqueue("c1", "support", 0, None);
    let mut o = offers(&b.drain());
    o.sort();
    assert_eq!(
        o,
        [
            ("c1".into(), "x".into()),
            ("c1".into(), "y".into()),
            ("c1".into(), "z".into())
        ]
    );
    b.accept("y", "c1");
    let acts = b.drain();
    let mut w = withdrawals(&acts);
    w.sort();
    assert_eq!(w, [("c1".into(), "x".into()), ("c1".into(), "z".into())]);
    assert!(acts.contains(&AcdAction::Connect {
        call: c("c1"),
        agent: a("y")
    }));
    let mut out = outcomes(&acts);
    out.sort();
    assert_eq!(
        out,
        [
            ("c1".into(), "x".into(), OfferOutcome::Withdrawn),
            ("c1".into(), "y".into(), OfferOutcome::Accepted),
            ("c1".into(), "z".into(), OfferOutcome::Withdrawn)
        ]
    );
    // The loser's late click is refused and changes nothing.
    let err = b.acd.accept(&a("x"), &c("c1"), b.now).unwrap_err();
    assert!(matches!(err, hotline_routing::AcdError::NoLiveOffer { .. }));
    assert!(b.drain().is_empty());
    assert_eq!(b.state("x"), AgentState::Available);
    assert_eq!(b.state("y"), AgentState::OnCall { call: c("c1") });
}

#[test]
fn ring_all_rings_members_who_become_free_while_it_rings() {
    let mut b = Bench::new(vec![queue(Strategy::RingAll, &["x", "y"])], &["x", "y"]);
    b.ready(&["x"]);
    b.acd.agent_login(&a("y"), b.now).unwrap();
    b.enqueue("c1", "support", 0, None);
    assert_eq!(offers(&b.drain()), [("c1".into(), "x".into())]);
    b.acd.set_available(&a("y"), b.now).unwrap();
    assert_eq!(offers(&b.drain()), [("c1".into(), "y".into())]);
    // x declines: y keeps ringing, x is not rung again meanwhile.
    b.acd.decline(&a("x"), &c("c1"), b.now).unwrap();
    assert!(offers(&b.drain()).is_empty());
    assert_eq!(b.acd.call(&c("c1")).unwrap().offered_to, [a("y")]);
}

#[test]
fn ring_all_serves_the_next_call_with_the_withdrawn_agents() {
    let mut b = Bench::new(vec![queue(Strategy::RingAll, &["x", "y"])], &["x", "y"]);
    b.ready(&["x", "y"]);
    b.enqueue("c1", "support", 0, None);
    b.enqueue("c2", "support", 0, None);
    assert_eq!(offers(&b.drain()).len(), 2, "both ring for c1; c2 waits");
    assert_eq!(b.acd.position(&c("c2")), Some(2));
    b.accept("x", "c1");
    let acts = b.drain();
    assert_eq!(withdrawals(&acts), [("c1".into(), "y".into())]);
    assert_eq!(offers(&acts), [("c2".into(), "y".into())]);
}

fn skills_queue() -> QueueConfig {
    let mut qc = queue(Strategy::SkillsPriority, &["gen", "bill", "both"]);
    qc.skills.insert("subscription".into(), "billing".into());
    qc.skills.insert("order.refund".into(), "refunds".into());
    qc
}

fn skilled_agents() -> Vec<AgentConfig> {
    vec![
        AgentConfig::new("gen", "General"),
        AgentConfig::new("bill", "Billing").with_skills(["billing"]),
        AgentConfig::new("both", "Both").with_skills(["billing", "refunds"]),
    ]
}

#[test]
fn skills_priority_offers_only_agents_with_the_required_skill() {
    let mut b = Bench::with_agents(vec![skills_queue()], skilled_agents());
    b.ready(&["gen", "bill", "both"]);
    b.enqueue("refund", "support", 0, Some("order.refund.partial"));
    assert_eq!(offers(&b.drain()), [("refund".into(), "both".into())]);
    b.enqueue("sub", "support", 0, Some("subscription.cancel"));
    assert_eq!(offers(&b.drain()), [("sub".into(), "bill".into())]);
    // No mapping for this issue type: anyone may take it.
    b.enqueue("other", "support", 0, Some("course.access"));
    assert_eq!(offers(&b.drain()), [("other".into(), "gen".into())]);
}

#[test]
fn skills_priority_waits_for_a_skilled_agent_rather_than_misroute() {
    let mut b = Bench::with_agents(vec![skills_queue()], skilled_agents());
    b.ready(&["gen"]);
    b.enqueue("sub", "support", 0, Some("subscription"));
    assert!(offers(&b.drain()).is_empty());
    b.ready(&["bill"]);
    assert!(offers(&b.log).contains(&("sub".into(), "bill".into())));
}

#[test]
fn higher_priority_is_served_first_then_longer_wait() {
    let mut b = Bench::with_agents(vec![skills_queue()], skilled_agents());
    b.acd.agent_login(&a("bill"), b.now).unwrap();
    b.enqueue("low-old", "support", 0, Some("subscription"));
    b.advance(secs(5));
    b.enqueue("high", "support", 5, Some("subscription"));
    b.advance(secs(5));
    b.enqueue("low-new", "support", 0, Some("subscription"));
    assert_eq!(b.acd.position(&c("high")), Some(1));
    assert_eq!(b.acd.position(&c("low-old")), Some(2));
    assert_eq!(b.acd.position(&c("low-new")), Some(3));
    b.drain();
    b.acd.set_available(&a("bill"), b.now).unwrap();
    assert_eq!(offers(&b.drain()), [("high".into(), "bill".into())]);
}

#[test]
fn priority_orders_calls_across_queues_sharing_an_agent() {
    let mut sales = queue(Strategy::LongestIdle, &["x"]);
    sales.name = q("sales");
    let mut vip = queue(Strategy::LongestIdle, &["x"]);
    vip.name = q("vip");
    let mut b = Bench::new(vec![sales, vip], &["x"]);
    b.acd.agent_login(&a("x"), b.now).unwrap();
    b.enqueue("s", "sales", 0, None);
    b.advance(secs(10));
    b.enqueue("v", "vip", 1, None);
    // Each is first in its own queue.
    assert_eq!(b.acd.position(&c("s")), Some(1));
    assert_eq!(b.acd.position(&c("v")), Some(1));
    b.drain();
    b.acd.set_available(&a("x"), b.now).unwrap();
    assert_eq!(offers(&b.drain()), [("v".into(), "x".into())]);
}
