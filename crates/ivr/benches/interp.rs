//! Hot path of the IVR: one interpreter step, `Interpreter::handle`, on a
//! small menu flow — a key answering a menu (the walk to the next menu and
//! its prompt) and a menu's timer firing a reprompt.
//! Run: `cargo bench -p hotline-ivr`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hotline_ivr::{Action, CallVars, Event, Flow, Interpreter, LoadOptions, load_str};

/// Two menus and a hangup, with the usual defaults (timeout, retries,
/// invalid / no-input prompts, 0 for an agent).
const FLOW: &str = r#"
flow: bench
languages: [en]
language: en
start: main-menu
defaults:
  timeout: 6s
  retries: 2
  invalid_prompt: sorry-invalid
  timeout_prompt: sorry-no-input
  options:
    0: goodbye
nodes:
  main-menu:
    type: menu
    prompt: main-menu
    options:
      1: subscription-menu
      2: goodbye
    on_exhausted: goodbye
  subscription-menu:
    type: menu
    issue_type: subscription
    prompt: subscription-menu
    options:
      1: goodbye
      9: main-menu
    on_exhausted: goodbye
  goodbye:
    type: hangup
    prompt: goodbye
    outcome: self_served
"#;

fn flow() -> Arc<Flow> {
    Arc::new(
        load_str("bench.yaml".as_ref(), FLOW, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("bench flow: {e}")),
    )
}

/// A fresh call, started and waiting for a key in the main menu (its prompt
/// played to the end, the no-input timer running).
fn at_menu(flow: &Arc<Flow>, t0: Instant, wall: DateTime<Utc>) -> Interpreter {
    let mut it = Interpreter::new(
        Arc::clone(flow),
        CallVars {
            caller: "+8613800000000".into(),
            callee: "800".into(),
            ..CallVars::default()
        },
    );
    let started = it.handle(t0, wall, Event::Started);
    assert!(started.iter().any(|a| matches!(a, Action::Play { .. })));
    it.handle(t0, wall, Event::PromptFinished { interrupted: false });
    assert!(it.awaiting_input(), "not waiting in the menu");
    assert_eq!(it.current_node(), Some("main-menu"));
    it
}

fn bench_interp(c: &mut Criterion) {
    let flow = flow();
    let t0 = Instant::now();
    let wall = Utc::now();

    // Sanity: the two steps measured do what their names say.
    {
        let mut it = at_menu(&flow, t0, wall);
        let out = it.handle(t0, wall, Event::Digit('1'));
        assert_eq!(it.current_node(), Some("subscription-menu"));
        assert!(out.iter().any(|a| matches!(a, Action::Play { .. })));
        let mut it = at_menu(&flow, t0, wall);
        let due = it.next_timeout().expect("a menu timer");
        let out = it.handle(due, wall, Event::TimerFired);
        assert_eq!(it.current_node(), Some("main-menu"));
        assert!(out.iter().any(|a| matches!(a, Action::Play { .. })));
    }

    c.bench_function(
        "interp: a digit answers a menu (next menu entered, its prompt played)",
        |b| {
            b.iter_batched(
                || at_menu(&flow, t0, wall),
                |mut it| {
                    let out = it.handle(t0, wall, black_box(Event::Digit('1')));
                    black_box(out);
                    it
                },
                BatchSize::SmallInput,
            )
        },
    );

    c.bench_function("interp: the menu timer fires a reprompt", |b| {
        b.iter_batched(
            || {
                let it = at_menu(&flow, t0, wall);
                let due = it.next_timeout().expect("a menu timer");
                (it, due)
            },
            |(mut it, due)| {
                let out = it.handle(due, wall, black_box(Event::TimerFired));
                black_box(out);
                it
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench_interp);
criterion_main!(benches);
