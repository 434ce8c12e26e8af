//! `outcome:` on play, say and hangup (issue 9 #2, docs/call-events.md
//! "Outcomes"): a node that answers the caller's question makes the call
//! self-served once its prompts are done, not when it starts, and an
//! outcome the call record does not know is refused at its line:column.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hotline_ivr::interp::Action;
use hotline_ivr::{CallVars, Event, Interpreter, LoadOptions, load_str};

const FLOW: &str = "\
flow: answers
languages: [en]
start: menu
nodes:
  menu:
    type: menu
    prompt: menu
    options:
      1: answer
      2: say-it
    on_exhausted: bye
  answer:
    type: play
    prompt: answer
    outcome: self_served
    next: bye
  say-it:
    type: say
    value: '42'
    as: number
    outcome: self_served
    next: bye
  bye:
    type: hangup
    prompt: bye
";

fn outcomes(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Record {
                kind: "outcome",
                data,
                ..
            } => Some(data["outcome"].to_string()),
            _ => None,
        })
        .collect()
}

/// Presses `key` in the menu; returns the interpreter with the answer playing.
fn at_answer(key: char) -> (Interpreter, Instant) {
    let flow = load_str("answers.yaml".as_ref(), FLOW, &LoadOptions::default()).unwrap();
    let mut it = Interpreter::new(Arc::new(flow), CallVars::default());
    let t0 = Instant::now();
    let mut seen = it.handle(t0, Utc::now(), Event::Started);
    seen.extend(it.handle(t0, Utc::now(), Event::PromptFinished { interrupted: false }));
    seen.extend(it.handle(t0 + Duration::from_secs(1), Utc::now(), Event::Digit(key)));
    assert!(outcomes(&seen).is_empty(), "not yet: {seen:?}");
    (it, t0)
}

#[test]
fn the_answer_counts_once_it_has_been_heard() {
    for key in ['1', '2'] {
        let (mut it, t0) = at_answer(key);
        let done = it.handle(
            t0 + Duration::from_secs(3),
            Utc::now(),
            Event::PromptFinished { interrupted: false },
        );
        assert_eq!(outcomes(&done), ["\"self_served\""], "key {key}: {done:?}");
    }
}

#[test]
fn hanging_up_during_the_answer_is_not_self_served() {
    for key in ['1', '2'] {
        let (mut it, t0) = at_answer(key);
        let gone = it.handle(t0 + Duration::from_secs(2), Utc::now(), Event::Hangup);
        assert!(outcomes(&gone).is_empty(), "key {key}: {gone:?}");
    }
}

#[test]
fn an_unknown_outcome_is_an_error_at_its_position() {
    let text = FLOW.replacen("outcome: self_served", "outcome: self-served", 1);
    let errs = load_str("answers.yaml".as_ref(), &text, &LoadOptions::default()).unwrap_err();
    let shown = errs.to_string();
    assert!(
        shown.contains("answers.yaml:15:14")
            && shown.contains("`outcome` must be one of self_served"),
        "{shown}"
    );
}
