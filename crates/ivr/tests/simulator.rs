//! The simulator (and through it the interpreter) on a flow using every node
//! kind: menus, retries, gather, branches, hours with a fake clock, language,
//! lookups that succeed, fail and time out, say, enqueue, transfer,
//! voicemail, callback, hangup.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use hotline_ivr::interp::Action;
use hotline_ivr::sim::{FixtureAnswer, Fixtures, SimOptions, Transcript, simulate};
use hotline_ivr::{Flow, LoadOptions, TransferMethod, load_file};

fn flow() -> Arc<Flow> {
    Arc::new(
        load_file(
            Path::new("tests/fixtures/all-kinds.yaml"),
            &LoadOptions::default(),
        )
        .expect("valid flow"),
    )
}

/// Monday 10:00 in Shanghai: open.
const OPEN: &str = "2026-12-21T10:00:00+08:00";
const CLOSED: &str = "2026-12-21T20:00:00+08:00";
const HOLIDAY: &str = "2026-12-25T10:00:00+08:00";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn fixtures() -> Fixtures {
    Fixtures::parse(
        r#"
subscriber_by_caller_id:
  "+8613800000000": { name: Li Lei, renews_on: 2027-03-01 }
order_by_number:
  "123456": { status: paid, amount: 250 }
  "222222": { error: database unavailable }
  "333333": timeout
webhook:
  "http://crm.test/vip": { level: gold }
"#,
    )
    .unwrap()
}

fn run(digits: &str, when: &str) -> Transcript {
    run_with(digits, when, fixtures())
}

fn run_with(digits: &str, when: &str, fixtures: Fixtures) -> Transcript {
    let opts = SimOptions {
        digits: digits.into(),
        at: at(when),
        fixtures,
        ..SimOptions::default()
    };
    let t = simulate(flow(), &opts).unwrap();
    println!("{}", t.render());
    t
}

#[test]
fn menu_choice_branch_and_say_date() {
    let t = run("1 1", OPEN);
    assert_eq!(
        t.nodes(),
        [
            "hello",
            "lang",
            "hours",
            "who",
            "menu",
            "renewal",
            "say-renewal",
            "bye"
        ]
    );
    assert!(t.prompts().ends_with(&[
        "en/renews-on".to_string(),
        "en/months/3".into(),
        "en/ordinals/1".into(),
        "en/numbers/2".into(),
        "en/numbers/thousand".into(),
        "en/numbers/20".into(),
        "en/numbers/7".into(),
        "en/goodbye".into(),
    ]));
    assert_eq!(
        t.records("issue_type")[0].1["issue_type"],
        "subscription.renewal"
    );
    assert_eq!(t.outcome().as_deref(), Some("self_served"));
    assert_eq!(t.effects().last(), Some(&Action::Hangup));
}

#[test]
fn language_switch_resolves_prompts_in_chinese() {
    let t = run("2 1", OPEN);
    assert_eq!(t.records("language_set")[0].1["language"], "zh");
    let prompts = t.prompts();
    // The language question names its prompts per language; the rest follow the choice.
    assert_eq!(prompts[..3], ["en/hello", "en/english", "zh/chinese"]);
    assert!(prompts.contains(&"zh/menu".to_string()));
    assert!(prompts.contains(&"zh/date/year".to_string()));
}

#[test]
fn silence_times_out_retries_then_exhausts_to_agent() {
    let t = run("1", OPEN);
    // menu: timeout, again+menu, timeout, out of retries, global 0 target (agent).
    assert_eq!(t.records("timeout").len(), 2);
    assert_eq!(t.records("exhausted").len(), 1);
    assert_eq!(t.nodes().last().unwrap(), "agent");
    let again = t.prompts().iter().filter(|p| *p == "en/again").count();
    assert_eq!(again, 1);
    assert!(
        matches!(t.effects().last(), Some(Action::Enqueue { queue, priority: 2, .. }) if queue == "support")
    );
}

#[test]
fn invalid_digit_says_sorry_then_accepts_and_global_zero_reaches_agent() {
    let t = run("1 7 0", OPEN);
    assert_eq!(t.records("invalid")[0].1["input"], "7");
    assert!(t.prompts().contains(&"en/sorry".to_string()));
    assert_eq!(t.nodes().last().unwrap(), "agent");
}

#[test]
fn gather_lookup_say_digits_and_compare() {
    let t = run("1 2 123456", OPEN);
    assert_eq!(
        t.nodes()[5..],
        [
            "order",
            "find-order",
            "say-order",
            "order-branch",
            "big",
            "bye"
        ]
    );
    assert_eq!(t.records("input").last().unwrap().1["input"], "123456");
    let lookups = t.records("lookup");
    assert_eq!(lookups[1].1["ok"], true);
    assert!(t.prompts().contains(&"en/digits/6".to_string()));
}

#[test]
fn gather_refuses_bad_input_then_finish_key_and_inter_digit_timeout() {
    // 0123 fails the pattern, 12 is too short (finish key), then 123456 is fine.
    let t = run("1 2 0123# 12# 123456#", OPEN);
    let invalid: Vec<_> = t
        .records("invalid")
        .iter()
        .map(|(_, d)| d["input"].clone())
        .collect();
    assert_eq!(invalid, ["0123", "12"]);
    // retries: 1, so the second invalid input exhausts the gather.
    assert_eq!(t.nodes().last().unwrap(), "agent");

    // Four digits and silence: the inter-digit timeout completes the input.
    let t = run("1 2 1234", OPEN);
    assert_eq!(t.records("input").last().unwrap().1["input"], "1234");
    assert!(t.nodes().contains(&"find-order".to_string()));
}

#[test]
fn lookup_not_found_failed_and_timed_out() {
    let t = run("1 2 999999", OPEN);
    assert_eq!(t.records("lookup")[1].1["found"], false);
    assert_eq!(t.nodes().last().unwrap(), "bye");

    let t = run("1 2 222222", OPEN);
    assert_eq!(t.records("lookup")[1].1["error"], "database unavailable");
    assert!(t.nodes().contains(&"failed".to_string()));

    let t = run("1 2 333333", OPEN);
    assert_eq!(t.records("lookup")[1].1["error"], "timeout");
    assert!(t.nodes().contains(&"failed".to_string()));
}

#[test]
fn webhook_answer_leads_to_transfer() {
    let t = run("1 3", OPEN);
    assert!(t.effects().iter().any(|a| matches!(a, Action::Lookup { params, .. } if params.get("caller").and_then(|v| v.as_str()) == Some("+8613800000000"))));
    assert_eq!(
        t.effects().last(),
        Some(&Action::Transfer {
            target: "sip:vip@pbx.example".into(),
            method: TransferMethod::Invite
        })
    );
    assert_eq!(t.ended, "transferred");

    let mut fx = fixtures();
    fx.webhooks.insert(
        "http://crm.test/vip".into(),
        FixtureAnswer::Error("HTTP 500".into()),
    );
    let t = run_with("1 3", OPEN, fx);
    assert!(t.nodes().contains(&"failed".to_string()));
}

#[test]
fn set_variables_and_branch_on_them() {
    let t = run("1 4", OPEN);
    assert_eq!(t.nodes()[5..], ["set-flag", "flag-branch", "bye"]);
}

#[test]
fn business_hours_closed_offers_callback() {
    let t = run("1 2", CLOSED);
    assert_eq!(t.records("hours")[0].1["state"], "closed");
    assert_eq!(
        t.effects()[0],
        Action::CallbackRequested {
            number: "+8613800000000".into(),
            slot: "evening".into(),
            queue: Some("support".into()),
            // `evening` has no time: asap, i.e. the next opening.
            due_at: at("2026-12-22T09:00:00+08:00"),
        }
    );
    assert_eq!(t.outcome().as_deref(), Some("self_served"));
    assert!(
        t.records("outcome")
            .iter()
            .any(|(_, d)| d["outcome"] == "callback")
    );
}

/// `--force-hours open` (issue 9 #9): the open path at 20:00, said so in
/// the event; and `closed` in office hours.
#[test]
fn forced_hours_override_the_clock_and_say_so() {
    let forced = |digits: &str, when: &str, f| {
        let opts = SimOptions {
            digits: digits.into(),
            at: at(when),
            fixtures: fixtures(),
            forced_hours: Some(f),
            ..SimOptions::default()
        };
        simulate(flow(), &opts).unwrap()
    };
    let t = forced("1 2", CLOSED, hotline_ivr::ForcedHours::Open);
    let (_, hours) = &t.records("hours")[0];
    assert_eq!(
        (hours["state"].as_str(), hours["forced"].as_bool()),
        (Some("open"), Some(true))
    );
    assert_eq!(t.nodes(), run("1 2", OPEN).nodes());
    let t = forced("1 2", OPEN, hotline_ivr::ForcedHours::Closed);
    assert_eq!(t.records("hours")[0].1["state"], "closed");
    assert_eq!(t.nodes(), run("1 2", CLOSED).nodes());
    // Without forcing, the event carries no `forced`.
    assert!(
        run("1 2", OPEN).records("hours")[0]
            .1
            .get("forced")
            .is_none()
    );
}

/// Issue 9 #1: a timed slot falls on the next open day; a caller ID that
/// is not a number (a SIP user name) is never booked.
#[test]
fn callback_slots_are_scheduled_and_only_dialable_numbers_booked() {
    let t = run("1 1", CLOSED);
    assert!(matches!(
        &t.effects()[0],
        Action::CallbackRequested { slot, due_at, .. }
            if slot == "morning" && *due_at == at("2026-12-22T09:30:00+08:00")
    ));
    let opts = SimOptions {
        digits: "1 1".into(),
        at: at(CLOSED),
        caller: "caller".into(),
        fixtures: fixtures(),
        ..SimOptions::default()
    };
    let t = simulate(flow(), &opts).unwrap();
    assert!(
        !t.effects()
            .iter()
            .any(|a| matches!(a, Action::CallbackRequested { .. })),
        "{:?}",
        t.effects()
    );
    let refused = t.records("callback_refused");
    assert_eq!(refused.len(), 1, "{:?}", t.nodes());
    assert_eq!(refused[0].1["number"], "caller");
    assert!(
        t.nodes().contains(&"voicemail".to_string()),
        "{:?}",
        t.nodes()
    );
}

/// A dialable number the operator does not allow (`--dial-allow`; here
/// mainland mobiles only) is not booked: the caller is not promised a
/// callback the desk would give up; the flow goes to `on_no_number`.
#[test]
fn a_number_outside_the_dial_rule_is_not_promised_a_callback() {
    let mobiles = regex::Regex::new(r"^(\+86)?1[3-9][0-9]{9}$").unwrap();
    let check = hotline_ivr::callback::DialCheck::new(move |n| mobiles.is_match(n));
    let opts = |caller: &str| SimOptions {
        digits: "1 1".into(),
        at: at(CLOSED),
        caller: caller.into(),
        fixtures: fixtures(),
        dial_check: Some(check.clone()),
        ..SimOptions::default()
    };
    let booked = |t: &Transcript| {
        t.effects()
            .iter()
            .any(|a| matches!(a, Action::CallbackRequested { .. }))
    };

    let t = simulate(flow(), &opts("+8613800000000")).unwrap();
    assert!(booked(&t), "a mainland mobile is booked: {:?}", t.nodes());
    assert!(t.records("callback_refused").is_empty());

    let t = simulate(flow(), &opts("+882345678901")).unwrap();
    assert!(!booked(&t), "{:?}", t.effects());
    let refused = t.records("callback_refused");
    assert_eq!(refused.len(), 1, "{:?}", t.nodes());
    assert_eq!(refused[0].1["number"], "+882345678901");
    assert_eq!(refused[0].1["reason"], "number not allowed (--dial-allow)");
    assert!(
        !t.records("outcome")
            .iter()
            .any(|(_, d)| d["outcome"] == "callback"),
        "no callback outcome"
    );
    assert!(
        t.nodes().contains(&"voicemail".to_string()),
        "on_no_number: {:?}",
        t.nodes()
    );
}

#[test]
fn business_hours_closed_silence_goes_to_voicemail_without_beep() {
    let t = run("1", CLOSED);
    assert!(t.effects().contains(&Action::RecordVoicemail {
        max_secs: 60,
        beep: false
    }));
    assert!(
        t.records("outcome")
            .iter()
            .any(|(_, d)| d["outcome"] == "voicemail")
    );
}

#[test]
fn holiday_goes_to_voicemail() {
    let t = run("1", HOLIDAY);
    assert_eq!(t.records("hours")[0].1["state"], "holiday");
    assert_eq!(t.nodes()[3], "holiday");
    assert!(t.effects().contains(&Action::RecordVoicemail {
        max_secs: 30,
        beep: true
    }));
}

#[test]
fn barge_in_key_during_the_welcome_answers_the_next_question() {
    let t = run("~2 1", OPEN);
    assert_eq!(t.records("language_set")[0].1["language"], "zh");
    // The language prompt was cut short by the key pressed over the welcome.
    assert!(t.nodes().contains(&"say-renewal".to_string()));
}

#[test]
fn flow_started_names_flow_and_version() {
    let t = run("1 1", OPEN);
    let (_, d) = &t.records("flow_started")[0];
    assert_eq!(d["flow"], "all-kinds");
    assert_eq!(d["version"].as_str().unwrap().len(), 12);
}

#[test]
fn survey_node_asks_for_a_score_then_goes_on() {
    let t = run("1 5 4", OPEN);
    assert_eq!(t.nodes()[t.nodes().len() - 3..], ["menu", "rate", "bye"]);
    let effects = t.effects();
    let survey = effects.iter().position(|a| *a == Action::Survey);
    assert!(survey.is_some(), "{}", t.render());
    assert_eq!(effects.last(), Some(&Action::Hangup));
    assert!(t.render().contains("caller presses 4"), "{}", t.render());
    // No key: the survey ends without a score and the flow still goes on.
    let t = run("1 5", OPEN);
    assert_eq!(t.nodes().last().unwrap(), "bye");
    assert!(t.unused_input.is_empty());
}
