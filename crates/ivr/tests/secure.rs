//! `secure: true` on a gather: the span is marked for the shell
//! (`Action::SecureInput`), the digits never reach a record, the variable
//! still drives the flow, and later nodes cannot show it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hotline_ivr::{Action, CallVars, Event, Interpreter, LoadOptions, load_str};
use serde_json::Value;

const FLOW: &str = r#"
start: card
nodes:
  card:
    type: gather
    prompt: welcome
    into: pay.card
    min_digits: 4
    max_digits: 8
    secure: true
    retries: 1
    next: copy
    on_exhausted: bye
  copy:
    type: set
    vars:
      last4: "${pay.card}"
    next: check
  check:
    type: branch
    cases:
      - if: pay.card == "12345678"
        then: say-it
    else: bye
  say-it:
    type: say
    value: "${last4}"
    as: digits
    next: agent
  agent:
    type: enqueue
    queue: support
    data:
      card: "card ${pay.card}"
      caller: "${caller}"
  bye:
    type: hangup
"#;

fn start() -> (Interpreter, Instant, Vec<Action>) {
    let flow = load_str(Path::new("secure.yaml"), FLOW, &LoadOptions::default()).expect("valid");
    let mut it = Interpreter::new(
        Arc::new(flow),
        CallVars {
            caller: "+8613800000000".into(),
            ..CallVars::default()
        },
    );
    let t0 = Instant::now();
    let actions = it.handle(t0, Utc::now(), Event::Started);
    (it, t0, actions)
}

fn records<'a>(actions: &'a [Action], kind: &str) -> Vec<&'a Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Record { kind: k, data, .. } if *k == kind => Some(data),
            _ => None,
        })
        .collect()
}

fn secure_marks(actions: &[Action]) -> Vec<bool> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SecureInput { active } => Some(*active),
            _ => None,
        })
        .collect()
}

#[test]
fn secure_gather_masks_its_digits_and_the_flow_still_uses_them() {
    let (mut it, t0, mut all) = start();
    assert_eq!(secure_marks(&all), [true], "the span opens on entry");
    assert!(it.secure_input());
    // The span opens right after the gather is entered, before its prompt.
    let pos = |all: &[Action], f: &dyn Fn(&Action) -> bool| all.iter().position(f).unwrap();
    assert!(
        pos(&all, &|a| matches!(
            a,
            Action::Record {
                kind: "node_entered",
                ..
            }
        )) < pos(&all, &|a| matches!(a, Action::SecureInput { .. }))
    );
    for d in "12345678".chars() {
        all.extend(it.handle(t0, Utc::now(), Event::Digit(d)));
    }
    assert_eq!(
        secure_marks(&all),
        [true, false],
        "closed when the digits are in"
    );
    assert!(!it.secure_input());
    let input = records(&all, "input");
    assert_eq!(input.len(), 1);
    assert_eq!(input[0]["input"], "********");
    assert_eq!(input[0]["length"], 8);
    assert_eq!(input[0]["masked"], true);
    assert_eq!(input[0]["into"], "pay.card");
    // The branch saw the real value.
    let entered: Vec<&str> = all
        .iter()
        .filter_map(|a| match a {
            Action::Record {
                kind: "node_entered",
                node,
                ..
            } => node.as_deref(),
            _ => None,
        })
        .collect();
    // `say-it` has nothing it may play, so the flow goes on at once.
    assert_eq!(entered, ["card", "copy", "check", "say-it", "agent"]);
    assert_eq!(it.var("pay.card").as_deref(), Some("12345678"));
    // The copy is masked too; `say` refuses to speak it.
    assert!(it.is_masked("last4") && it.is_masked("pay") && it.is_masked("pay.card"));
    let errors = records(&all, "error");
    assert!(
        errors[0]["error"].as_str().unwrap().contains("masked"),
        "{errors:?}"
    );
    let plays: Vec<&Vec<String>> = all
        .iter()
        .filter_map(|a| match a {
            Action::Play { prompts, .. } => Some(prompts),
            _ => None,
        })
        .collect();
    assert!(
        plays
            .iter()
            .flat_map(|p| p.iter())
            .all(|p| !p.contains("digits/")),
        "no digit fragment played: {plays:?}"
    );
    // Nothing recorded so far shows the digits.
    let text = format!("{all:?}");
    assert!(
        !text.contains("12345678") && !text.contains("1234"),
        "{text}"
    );
    // The agent's card and the shown variables mask it.
    let card = all
        .iter()
        .find_map(|a| match a {
            Action::Enqueue { data, .. } => Some(data.clone()),
            _ => None,
        })
        .expect("enqueued");
    assert_eq!(card["card"], "card ********");
    assert_eq!(card["caller"], "+8613800000000");
    let shown = it.shown_vars();
    assert_eq!(shown["pay"]["card"], "********");
    assert_eq!(shown["last4"], "********");
    assert_eq!(shown["caller"], "+8613800000000");
}

#[test]
fn invalid_input_is_masked_and_a_timeout_or_hangup_ends_the_span() {
    let (mut it, t0, mut all) = start();
    all.extend(it.handle(t0, Utc::now(), Event::PromptFinished { interrupted: false }));
    for d in "12#".chars() {
        all.extend(it.handle(t0, Utc::now(), Event::Digit(d)));
    }
    let invalid = records(&all, "invalid");
    assert_eq!(invalid[0]["input"], "**");
    assert_eq!(invalid[0]["masked"], true);
    assert!(it.secure_input(), "a retry stays in the span");
    // Silence through the last try: exhausted, the span closes.
    all.extend(it.handle(t0, Utc::now(), Event::PromptFinished { interrupted: false }));
    let late = t0 + Duration::from_secs(6);
    all.extend(it.handle(late, Utc::now(), Event::TimerFired));
    assert_eq!(records(&all, "exhausted").len(), 1);
    assert_eq!(secure_marks(&all), [true, false]);

    // Hanging up mid-gather closes it as well.
    let (mut it, t0, _) = start();
    let _ = it.handle(t0, Utc::now(), Event::Digit('4'));
    let out = it.handle(t0, Utc::now(), Event::Hangup);
    assert_eq!(secure_marks(&out), [false]);
    assert!(!it.secure_input());
}

#[test]
fn type_ahead_is_not_taken_by_a_secure_gather() {
    let flow = load_str(
        Path::new("t.yaml"),
        r#"
start: hello
nodes:
  hello:
    type: play
    prompt: welcome
    barge_in: true
    next: card
  card:
    type: gather
    prompt: welcome
    into: card
    secure: true
    next: bye
    on_exhausted: bye
  bye:
    type: hangup
"#,
        &LoadOptions::default(),
    )
    .unwrap();
    let mut it = Interpreter::new(Arc::new(flow), CallVars::default());
    let t0 = Instant::now();
    let _ = it.handle(t0, Utc::now(), Event::Started);
    // A key over the barge-in greeting: shown as pressed, so not card input.
    let out = it.handle(t0, Utc::now(), Event::Digit('7'));
    assert_eq!(secure_marks(&out), [true]);
    assert!(records(&out, "input").is_empty());
    assert!(
        out.iter().any(|a| matches!(a, Action::Play { .. })),
        "the gather asks: {out:?}"
    );
}
