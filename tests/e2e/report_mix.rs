//! Issue 12, "Service quality reports", end to end with a known mix of
//! calls: real SIPp callers, one agent in headless Chromium on the real
//! `/agent` page (`tests/driver/agents.mjs`), and a flow of our own whose
//! paths are explicit:
//!
//! ```text
//! menu ─1→ info (play, outcome: self_served) → bye (hangup)
//!      ─2→ agent (enqueue support)
//!      ─3→ leave-message (voicemail) → bye
//! ```
//!
//! The mix, nine calls, each from its own number:
//!
//! | call | what the caller does | counts as |
//! |---|---|---|
//! | `self1`, `self2` | keys 1, hears the answer, the flow hangs up | self-served |
//! | `ivr_gone` | hangs up at the menu | abandoned in the IVR |
//! | `message` | keys 3, leaves a message, the flow hangs up | voicemail |
//! | `short` | keys 2, hangs up 1.5 s later (no agent available) | abandoned in queue, short |
//! | `long` | keys 2, hangs up 9 s later (no agent available) | abandoned in queue |
//! | `late` | keys 2; the agent goes available only once the live feed shows the call waiting past the queue's service level (15 s); answered; keys 2 in the survey | answered beyond the SL, CSAT 2 |
//! | `prompt` | keys 2, the agent (available) answers at once; keys 5 in the survey | answered within the SL, CSAT 5 |
//! | `leaver` | keys 2, answered at once, hangs up during the survey's question | answered within the SL, survey offered, no response |
//!
//! The agent hangs up each answered call (so the queue's survey starts)
//! and wraps it up `resolved`: at once, but the late call only once its
//! survey is over (some seconds of after-call work, for the handle time).
//! The score callers cannot see when the survey starts: from 8 s on, their
//! audio keys the score by RFC 4733 every 2 s (a key while queued or
//! talking does nothing; the first one over the survey's question is the
//! score, the next ends the comment).
//!
//! Also checked: the summary filtered by `queue=support` (the five queued
//! calls), and that a range ending before the test holds none of them.
//!
//! The test then computes every figure of docs/metrics.md by hand — the
//! counts from the mix above, the times (waits, talk, wrap-up) from the
//! calls' events — and asserts that `GET /api/reports/summary` (JSON and
//! CSV), `GET /api/reports/agents` (the agent's row), the live feed's
//! `today.figures` (`GET /api/live/snapshot`) and the IVR funnel
//! (`GET /api/reports/funnel?flow=main`, JSON and CSV) show exactly them.
//!
//! A missing `/usr/bin/chromium`, `node` or `sipp` fails the test, unless
//! `HOTLINE_ALLOW_SKIP=1` (CI never sets it): then it skips, saying so.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotline_e2e::browser::{self, AgentDriver, Chromium};
use hotline_e2e::events::{Event, assert_in_order, count, dump, find};
use hotline_e2e::rtp::{self, CallerAudio};
use hotline_e2e::script::{Step, scripted_caller};
use hotline_e2e::sipp::SippProcess;
use hotline_e2e::{Gateway, db, poll_until};
use serde_json::{Value, json};

const TOKEN: &str = "r3p0rt-m1x";
const PASSWORD: &str = "correct horse battery";
/// The queue's service-level threshold, seconds.
const SL_SECS: u64 = 15;
/// The late call is answered once it has waited at least this long.
const LATE_WAIT_SECS: u64 = SL_SECS + 3;
/// When the survey leaver hangs up (ms after keying 2): well after the
/// agent's prompt answer and hang-up, well within the survey's question
/// (6.5 s, 5 s for a key, once more: about 25 s).
const LEAVER_AFTER_MS: u32 = 20_000;
const PAGE_WAIT: Duration = Duration::from_secs(40);
const CALL_END_WAIT: Duration = Duration::from_secs(120);
const SIPP_LIMIT: Duration = Duration::from_secs(240);
const FLOW_NAME: &str = "main";

const FLOW: &str = "\
flow: main
start: menu
nodes:
  menu:
    type: menu
    prompt: main-menu
    timeout: 40s
    retries: 0
    options:
      1: info
      2: agent
      3: leave-message
    on_exhausted: bye
  info:
    type: play
    prompt: course-access-help
    outcome: self_served
    next: bye
  bye:
    type: hangup
    prompt: goodbye
  agent:
    type: enqueue
    queue: support
  leave-message:
    type: voicemail
    prompt: leave-message
    max_seconds: 5
    next: bye
";

/// What each call of the mix is, by the test's design.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    SelfServed,
    IvrAbandon,
    Voicemail,
    ShortAbandon,
    LongAbandon,
    Answered { within_sl: bool, score: Option<u8> },
}

impl Kind {
    fn queued(self) -> bool {
        matches!(
            self,
            Kind::ShortAbandon | Kind::LongAbandon | Kind::Answered { .. }
        )
    }
    fn answered(self) -> bool {
        matches!(self, Kind::Answered { .. })
    }
    fn abandoned_in_queue(self) -> bool {
        matches!(self, Kind::ShortAbandon | Kind::LongAbandon)
    }
}

/// One finished call: its design and the times its events give.
#[derive(Debug)]
struct Call {
    name: &'static str,
    kind: Kind,
    /// `enqueued` → `agent_answered`, or → `hangup` for an abandon (s).
    wait: Option<f64>,
    /// `agent_answered` → `survey_started` (the agent's hang-up), s.
    talk: Option<f64>,
    /// The `wrap_up` event's seconds.
    wrap_up: Option<f64>,
}

fn secs_between(a: &Event, b: &Event) -> f64 {
    (b.at_us() - a.at_us()) as f64 / 1e6
}

impl Call {
    fn from_events(name: &'static str, kind: Kind, evs: &[Event]) -> Call {
        let has = |k: &str| count(evs, k) > 0;
        let mut c = Call {
            name,
            kind,
            wait: None,
            talk: None,
            wrap_up: None,
        };
        if kind.queued() {
            assert_eq!(count(evs, "enqueued"), 1, "{name}: {}", dump(evs));
            let queued = find(evs, "enqueued");
            if kind.answered() {
                assert_eq!(count(evs, "agent_answered"), 1, "{name}: {}", dump(evs));
                let answered = find(evs, "agent_answered");
                c.wait = Some(secs_between(queued, answered));
                c.talk = Some(secs_between(answered, find(evs, "survey_started")));
                c.wrap_up = find(evs, "wrap_up").data()["seconds"].as_f64();
                assert!(c.wrap_up.is_some(), "{name}: {}", dump(evs));
            } else {
                c.wait = Some(secs_between(queued, find(evs, "hangup")));
            }
        } else {
            assert!(
                !has("enqueued"),
                "{name} was not to be queued: {}",
                dump(evs)
            );
        }
        // The mix is what the test meant it to be.
        match kind {
            Kind::ShortAbandon => assert!(c.wait < Some(5.0), "{name}: {c:?}"),
            Kind::LongAbandon => assert!(c.wait > Some(5.0), "{name}: {c:?}"),
            Kind::Answered { within_sl, .. } => assert_eq!(
                c.wait.is_some_and(|w| w <= SL_SECS as f64),
                within_sl,
                "{name}'s wait against the {SL_SECS} s service level: {c:?}"
            ),
            _ => {}
        }
        c
    }
}

/// Every figure of docs/metrics.md over `calls`, as the test computes them.
fn expected_figures(calls: &[&Call]) -> BTreeMap<&'static str, Value> {
    let n = |f: &dyn Fn(&Call) -> bool| calls.iter().filter(|c| f(c)).count() as i64;
    let ratio = |a: i64, b: i64| {
        if b == 0 {
            Value::Null
        } else {
            json!(a as f64 / b as f64)
        }
    };
    let mean = |xs: Vec<f64>| {
        if xs.is_empty() {
            Value::Null
        } else {
            json!(xs.iter().sum::<f64>() / xs.len() as f64)
        }
    };
    let offered = calls.len() as i64;
    let self_served = n(&|c| c.kind == Kind::SelfServed);
    let queued = n(&|c| c.kind.queued());
    let answered = n(&|c| c.kind.answered());
    let short = n(&|c| c.kind == Kind::ShortAbandon);
    let within = n(&|c| {
        matches!(
            c.kind,
            Kind::Answered {
                within_sl: true,
                ..
            }
        )
    });
    let scores: Vec<u8> = calls
        .iter()
        .filter_map(|c| match c.kind {
            Kind::Answered { score, .. } => score,
            _ => None,
        })
        .collect();
    // Every answered call is wrapped up `resolved`; callers all differ.
    let resolved = self_served + answered;
    let answer_waits: Vec<f64> = calls
        .iter()
        .filter(|c| c.kind.answered())
        .filter_map(|c| c.wait)
        .collect();
    let over_waits: Vec<f64> = calls
        .iter()
        .filter(|c| c.kind.answered() || c.kind.abandoned_in_queue())
        .filter_map(|c| c.wait)
        .collect();
    let handled: Vec<&&Call> = calls.iter().filter(|c| c.kind.answered()).collect();
    let talk: Vec<f64> = handled.iter().filter_map(|c| c.talk).collect();
    let wrap: Vec<f64> = handled.iter().filter_map(|c| c.wrap_up).collect();
    let aht: Vec<f64> = talk.iter().zip(&wrap).map(|(t, w)| t + w).collect();
    let csat = |k: u8| json!(scores.iter().filter(|&&s| s == k).count());
    let mut f = BTreeMap::new();
    f.insert("offered", json!(offered));
    f.insert("answered_by_gateway", json!(offered));
    f.insert("self_served", json!(self_served));
    f.insert("containment_rate", ratio(self_served, offered));
    f.insert("sent_to_queue", json!(queued));
    f.insert("answered_by_agent", json!(answered));
    f.insert(
        "abandoned_in_queue",
        json!(n(&|c| c.kind.abandoned_in_queue())),
    );
    f.insert("short_abandons", json!(short));
    f.insert(
        "abandoned_in_ivr",
        json!(n(&|c| c.kind == Kind::IvrAbandon)),
    );
    f.insert("ended_in_ivr", json!(0));
    f.insert("voicemail", json!(n(&|c| c.kind == Kind::Voicemail)));
    f.insert("callback_requested", json!(0));
    f.insert("callback_completed", json!(0));
    f.insert("callback_failed", json!(0));
    f.insert("transferred", json!(0));
    f.insert("failed", json!(0));
    f.insert("answered_within_sl", json!(within));
    f.insert("service_level", ratio(within, queued - short));
    f.insert("asa_secs", mean(answer_waits));
    f.insert("avg_wait_secs", mean(over_waits.clone()));
    f.insert(
        "max_wait_secs",
        over_waits
            .iter()
            .copied()
            .reduce(f64::max)
            .map_or(Value::Null, |m| json!(m)),
    );
    f.insert("aht_secs", mean(aht));
    f.insert("avg_talk_secs", mean(talk));
    f.insert("avg_wrap_up_secs", mean(wrap));
    f.insert("offers_declined", json!(0));
    f.insert("offers_timed_out", json!(0));
    f.insert("resolved", json!(resolved));
    f.insert("resolution_rate", ratio(resolved, answered + self_served));
    f.insert("first_contact_resolved", json!(resolved));
    f.insert("fcr_rate", ratio(resolved, resolved));
    f.insert("surveys_offered", json!(answered));
    f.insert("csat_responses", json!(scores.len()));
    f.insert("csat_response_rate", ratio(scores.len() as i64, answered));
    f.insert(
        "csat_avg",
        mean(scores.iter().map(|&s| f64::from(s)).collect()),
    );
    for k in 1..=5 {
        let key: &'static str = ["csat_1", "csat_2", "csat_3", "csat_4", "csat_5"][k - 1];
        f.insert(key, csat(k as u8));
    }
    f
}

/// `got` (an object of figures) holds exactly `want`: counts equal, rates
/// within 1e-9, times within 1 ms (the rows keep microseconds), nulls
/// null; and no figure the test does not know. `skip`: keys besides the
/// figures (the agent table's `agent`, `occupancy`).
fn assert_figures(what: &str, got: &Value, want: &BTreeMap<&'static str, Value>, skip: &[&str]) {
    let wrong = figure_diffs(got, want, skip);
    assert!(
        wrong.is_empty(),
        "{what} differs from the mix:\n{}\n--- got: {got}\n--- want: {}",
        wrong.join("\n"),
        json!(want)
    );
}

/// What [`assert_figures`] finds wrong, one line each.
fn figure_diffs(got: &Value, want: &BTreeMap<&'static str, Value>, skip: &[&str]) -> Vec<String> {
    let Some(obj) = got.as_object() else {
        return vec![format!("not an object: {got}")];
    };
    let mut wrong = Vec::new();
    for (k, w) in want {
        let g = obj.get(*k).unwrap_or(&Value::Null);
        let ok = match (g, w) {
            (Value::Null, Value::Null) => true,
            (g, w) if w.is_i64() || w.is_u64() => g.as_i64() == w.as_i64(),
            (g, w) => match (g.as_f64(), w.as_f64()) {
                (Some(g), Some(w)) => {
                    let tol = if k.ends_with("_secs") { 1e-3 } else { 1e-9 };
                    (g - w).abs() <= tol
                }
                _ => false,
            },
        };
        if !ok {
            wrong.push(format!("  {k}: got {g}, want {w}"));
        }
    }
    for k in obj.keys() {
        if !want.contains_key(k.as_str()) && !skip.contains(&k.as_str()) {
            wrong.push(format!(
                "  {k}: a figure this test does not check ({})",
                obj[k]
            ));
        }
    }
    wrong
}

fn api_raw(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let auth = format!("Bearer {TOKEN}");
    let body = body.map(|b| b.to_string());
    gw.http_request(method, path, &[("Authorization", &auth)], body.as_deref())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// An admin API call that must succeed (2xx); its JSON answer.
fn api(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> Value {
    let (code, text) = api_raw(gw, method, path, body.clone());
    assert!(
        (200..300).contains(&code),
        "{method} {path} {body:?} → {code}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
}

/// A CSV answer (must be 200, text/csv): its rows of fields (no field of
/// these reports needs quoting).
fn csv(gw: &Gateway, path: &str) -> Vec<Vec<String>> {
    let (code, text) = api_raw(gw, "GET", path, None);
    assert_eq!(code, 200, "GET {path}: {text}");
    assert!(
        !text.contains('"'),
        "GET {path}: unexpected quoting: {text}"
    );
    text.split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

/// A JSON value as its CSV field.
fn csv_field(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The CSV's one-row-per-object table says what the JSON objects say, in
/// the same order, column for column. `moving`: columns that change with
/// the clock between two requests (an agent's occupancy runs to now): a
/// number in both, nothing more.
fn assert_csv_matches(what: &str, rows: &[Vec<String>], objects: &[Value], moving: &[&str]) {
    let (header, body) = rows
        .split_first()
        .unwrap_or_else(|| panic!("{what}: an empty CSV"));
    assert_eq!(body.len(), objects.len(), "{what}: {rows:?} vs {objects:?}");
    for (row, obj) in body.iter().zip(objects) {
        let obj = obj.as_object().expect("an object");
        let mut keys: Vec<&String> = obj.keys().collect();
        keys.sort();
        let mut columns: Vec<&String> = header.iter().collect();
        columns.sort();
        assert_eq!(columns, keys, "{what}: the CSV's columns");
        assert_eq!(row.len(), header.len(), "{what}: {row:?}");
        for (col, field) in header.iter().zip(row) {
            if moving.contains(&col.as_str()) {
                assert!(
                    field.parse::<f64>().is_ok() && obj[col].is_number(),
                    "{what}: column {col} of {row:?} vs {obj:?}"
                );
                continue;
            }
            assert_eq!(
                field,
                &csv_field(&obj[col]),
                "{what}: column {col} of {row:?} vs {obj:?}"
            );
        }
    }
}

/// `secs` since the Unix epoch as RFC 3339 UTC (`2026-12-03T07:20:30Z`).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days to civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn agent_state(gw: &Gateway, agent: &str) -> String {
    let v = api(gw, "GET", "/api/agents/states", None);
    v["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["agent"] == agent)
        .and_then(|s| s["state"].as_str())
        .unwrap_or("unknown")
        .to_owned()
}

fn wait_agent_state(gw: &Gateway, agent: &str, state: &str) {
    poll_until(Duration::from_secs(15), || {
        (agent_state(gw, agent) == state).then_some(())
    })
    .unwrap_or_else(|| panic!("agent {agent} not `{state}`:\n{}", gw.log_tail()));
}

fn tone(ms: u32) -> CallerAudio {
    CallerAudio::Tone { hz: 440.0, ms }
}

/// Audio that keys `score` by RFC 4733 every 2 s from 8 s on, for ~2 min.
fn keying(score: char) -> Vec<CallerAudio> {
    let mut audio = vec![tone(8_000)];
    for _ in 0..55 {
        audio.push(CallerAudio::Digit {
            digit: score,
            packets: 6,
        });
        audio.push(tone(2_000));
    }
    audio
}

/// A caller from `number` whose audio (a pcap played from the ACK on) is
/// `audio`, keying `key` by SIP INFO after 1.5 s, then `then`.
fn caller(
    gw: &Gateway,
    number: &str,
    audio: &[CallerAudio],
    key: char,
    then: Vec<Step>,
) -> SippProcess {
    let pcap: PathBuf = gw
        .dir()
        .join(format!("{}.pcap", hotline_e2e::unique_token(number)));
    rtp::write_caller_pcap(&pcap, audio);
    let mut steps = vec![
        Step::Audio(pcap.to_str().expect("utf-8 temp path").to_owned()),
        Step::Pause(1500),
        Step::Info(key),
    ];
    steps.extend(then);
    scripted_caller(gw, number, &steps)
        .timeout(SIPP_LIMIT)
        .spawn()
}

/// The live feed's next state.
fn snapshot(gw: &Gateway) -> Value {
    api(gw, "GET", "/api/live/snapshot", None)
}

/// The agent answers the offer on the page and hangs up once the audio is
/// connected (the caller stays for the survey).
fn answer_and_hang_up(gw: &Gateway, drv: &mut AgentDriver, sip_call_id: &str) {
    drv.cmd(json!({"op": "waitOffer", "page": "a1"}), PAGE_WAIT);
    drv.cmd(json!({"op": "answer", "page": "a1"}), PAGE_WAIT);
    gw.wait_event(sip_call_id, "agent_connected", PAGE_WAIT);
    drv.cmd(json!({"op": "hangup", "page": "a1"}), PAGE_WAIT);
    gw.wait_event(sip_call_id, "survey_started", PAGE_WAIT);
}

/// The agent wraps up `resolved` and is available again.
fn wrap_up(gw: &Gateway, drv: &mut AgentDriver) {
    drv.cmd(
        json!({"op": "wrapUp", "page": "a1", "disposition": "resolved", "notes": ""}),
        PAGE_WAIT,
    );
    drv.cmd(
        json!({"op": "waitState", "page": "a1", "state": "available"}),
        PAGE_WAIT,
    );
    wait_agent_state(gw, "a1", "available");
}

/// Waits for the end of the call (and of its SIPp caller); its events.
fn finished(gw: &Gateway, name: &str, sipp: SippProcess) -> Vec<Event> {
    let id = sipp.call_id().to_owned();
    let evs = gw.wait_call_ended(&id, CALL_END_WAIT);
    let run = sipp.wait();
    assert!(
        run.succeeded(),
        "{name}'s SIPp caller failed:\n{}\n--- events:\n{}",
        run.logs(),
        dump(&evs)
    );
    evs
}

fn outcome_of(evs: &[Event]) -> Option<String> {
    evs.iter()
        .rfind(|e| e.kind() == "outcome")
        .map(|e| e.data_str("outcome").to_owned())
}

fn score_of(evs: &[Event]) -> Option<u64> {
    evs.iter()
        .find(|e| e.kind() == "survey_answered")
        .and_then(|e| e.data()["score"].as_u64())
}

#[test]
fn reports_show_exactly_a_known_mix_of_calls() {
    let test = "reports_show_exactly_a_known_mix_of_calls";
    let Some(_one_at_a_time) = browser::browser_test(test) else {
        return;
    };
    if !hotline_e2e::require_tool("sipp", "apt-get install sip-tester", test) {
        return;
    }
    assert!(
        browser::ensure_driver(),
        "npm install of playwright-core in {}",
        browser::driver_dir().display()
    );
    let t0 = Instant::now();
    let start_secs = now_secs() - 2;
    let from = rfc3339(start_secs);
    assert_eq!(
        hotline_e2e::parse_rfc3339_micros(&from),
        Some(start_secs as i64 * 1_000_000),
        "{from}"
    );
    let flows = hotline_e2e::flows::flows_dir("report_mix_flows", FLOW);
    let gw = Gateway::start_with(
        "report_mix",
        &[
            "--entry-flow",
            FLOW_NAME,
            "--flows-dir",
            flows.path().to_str().expect("utf-8 temp path"),
            "--admin-token",
            TOKEN,
        ],
    );
    api(
        &gw,
        "POST",
        "/api/agents",
        Some(json!({"id": "a1", "name": "Ada Agent", "password": PASSWORD})),
    );
    let q = api(
        &gw,
        "POST",
        "/api/queues",
        Some(
            json!({"name": "support", "max_wait_secs": 120, "wrap_up_secs": 60,
                    "members": ["a1"]}),
        ),
    );
    assert_eq!(q["survey"], false, "{q}");
    // The settings under test, as the admin page sets them.
    let q = api(
        &gw,
        "PUT",
        "/api/queues/support",
        Some(json!({"survey": true, "service_level_secs": SL_SECS})),
    );
    assert_eq!(
        (q["survey"].as_bool(), q["service_level_secs"].as_u64()),
        (Some(true), Some(SL_SECS)),
        "{q}"
    );

    // The agent's page, signed in but not available yet.
    let mic = gw.dir().join("agent-mic.wav");
    browser::write_tone_wav(&mic, 1000.0, 30, 12_000.0);
    let chromium = Chromium::start(&mic, gw.dir());
    let mut drv = AgentDriver::start(&format!("http://127.0.0.1:{}", gw.http_port), &chromium);
    drv.cmd(
        json!({"op": "open", "page": "a1", "agent": "a1", "password": PASSWORD, "raw": true}),
        PAGE_WAIT,
    );
    assert_ne!(agent_state(&gw, "a1"), "available");

    // 1. The IVR calls and the queue abandons, all at once (no agent is
    //    available: the queued ones wait until their callers hang up).
    let await_bye = || vec![Step::AwaitBye(60_000)];
    let self1 = caller(&gw, "+8613800000101", &[tone(30_000)], '1', await_bye());
    let self2 = caller(&gw, "+8613800000102", &[tone(30_000)], '1', await_bye());
    let message = caller(&gw, "+8613800000103", &[tone(30_000)], '3', await_bye());
    let ivr_gone = scripted_caller(&gw, "+8613800000104", &[Step::Pause(4_000), Step::Bye])
        .timeout(SIPP_LIMIT)
        .spawn();
    let short = caller(
        &gw,
        "+8613800000105",
        &[tone(10_000)],
        '2',
        vec![Step::Pause(1_500), Step::Bye],
    );
    let long = caller(
        &gw,
        "+8613800000106",
        &[tone(20_000)],
        '2',
        vec![Step::Pause(9_000), Step::Bye],
    );
    let mut calls = Vec::new();
    let evs = finished(&gw, "self1", self1);
    assert_eq!(
        outcome_of(&evs).as_deref(),
        Some("self_served"),
        "{}",
        dump(&evs)
    );
    calls.push(Call::from_events("self1", Kind::SelfServed, &evs));
    let evs = finished(&gw, "self2", self2);
    assert_eq!(
        outcome_of(&evs).as_deref(),
        Some("self_served"),
        "{}",
        dump(&evs)
    );
    calls.push(Call::from_events("self2", Kind::SelfServed, &evs));
    let evs = finished(&gw, "message", message);
    assert_in_order(
        &evs,
        &[
            ("voicemail_started", &[]),
            ("outcome", &[("outcome", "voicemail")]),
            ("node_entered", &[]),
            ("call_ended", &[]),
        ],
    );
    calls.push(Call::from_events("message", Kind::Voicemail, &evs));
    let evs = finished(&gw, "ivr_gone", ivr_gone);
    assert_eq!(outcome_of(&evs), None, "{}", dump(&evs));
    assert_eq!(find(&evs, "hangup").data_str("ended_by"), "caller");
    calls.push(Call::from_events("ivr_gone", Kind::IvrAbandon, &evs));
    let evs = finished(&gw, "short", short);
    calls.push(Call::from_events("short", Kind::ShortAbandon, &evs));
    let evs = finished(&gw, "long", long);
    calls.push(Call::from_events("long", Kind::LongAbandon, &evs));
    eprintln!("IVR calls and abandons done at {:?}", t0.elapsed());

    // 2. The late call: the agent goes available only once the live feed
    //    shows it waiting past the service level.
    let late = caller(
        &gw,
        "+8613800000107",
        &keying('2'),
        '2',
        vec![Step::AwaitBye(200_000)],
    );
    let late_id = late.call_id().to_owned();
    poll_until(Duration::from_secs(60), || {
        let s = snapshot(&gw);
        s["calls"].as_array().into_iter().flatten().find(|c| {
            c["caller"] == "+8613800000107"
                && c["phase"] == "queue"
                && c["phase_s"].as_u64() >= Some(LATE_WAIT_SECS)
        })?;
        Some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the late call never waited {LATE_WAIT_SECS} s: {}\n{}",
            snapshot(&gw),
            gw.format_events(&late_id)
        )
    });
    drv.cmd(json!({"op": "available", "page": "a1"}), PAGE_WAIT);
    answer_and_hang_up(&gw, &mut drv, &late_id);
    // This one's after-call work lasts the survey (the record waits for it).
    gw.wait_event(&late_id, "survey_ended", CALL_END_WAIT);
    wrap_up(&gw, &mut drv);
    let evs = finished(&gw, "late", late);
    assert_eq!(score_of(&evs), Some(2), "{}", dump(&evs));
    calls.push(Call::from_events(
        "late",
        Kind::Answered {
            within_sl: false,
            score: Some(2),
        },
        &evs,
    ));

    // 3. Answered at once (the agent is available), rated 5.
    let prompt = caller(
        &gw,
        "+8613800000108",
        &keying('5'),
        '2',
        vec![Step::AwaitBye(200_000)],
    );
    let prompt_id = prompt.call_id().to_owned();
    answer_and_hang_up(&gw, &mut drv, &prompt_id);
    wrap_up(&gw, &mut drv);
    let evs = finished(&gw, "prompt", prompt);
    assert_eq!(score_of(&evs), Some(5), "{}", dump(&evs));
    calls.push(Call::from_events(
        "prompt",
        Kind::Answered {
            within_sl: true,
            score: Some(5),
        },
        &evs,
    ));

    // 4. Answered at once; the caller hangs up during the survey's question.
    let leaver = caller(
        &gw,
        "+8613800000109",
        &[tone(LEAVER_AFTER_MS + 10_000)],
        '2',
        vec![Step::Pause(LEAVER_AFTER_MS), Step::Bye],
    );
    let leaver_id = leaver.call_id().to_owned();
    answer_and_hang_up(&gw, &mut drv, &leaver_id);
    wrap_up(&gw, &mut drv);
    let evs = finished(&gw, "leaver", leaver);
    assert_in_order(
        &evs,
        &[
            ("survey_started", &[("via", "queue")]),
            ("survey_ended", &[("reason", "hangup")]),
            ("call_ended", &[]),
        ],
    );
    assert_eq!(score_of(&evs), None, "{}", dump(&evs));
    calls.push(Call::from_events(
        "leaver",
        Kind::Answered {
            within_sl: true,
            score: None,
        },
        &evs,
    ));
    eprintln!("all nine calls done at {:?}", t0.elapsed());
    for c in &calls {
        eprintln!(
            "  {}: {:?}, wait {:?}, talk {:?}, wrap-up {:?}",
            c.name, c.kind, c.wait, c.talk, c.wrap_up
        );
    }

    // Every row is written and complete.
    let data = gw.data_dir();
    poll_until(Duration::from_secs(30), || {
        let rows = db::psql(&data, "SELECT count(*) FROM calls WHERE complete");
        (rows.first().map(|r| r[0].as_str()) == Some("9")).then_some(())
    })
    .unwrap_or_else(|| panic!("not 9 complete calls rows; log:\n{}", gw.log_tail()));
    let to = rfc3339(now_secs() + 2);
    let range = format!("from={from}&to={to}");

    // The summary, JSON and CSV.
    let all: Vec<&Call> = calls.iter().collect();
    let want = expected_figures(&all);
    let summary = api(&gw, "GET", &format!("/api/reports/summary?{range}"), None);
    eprintln!("summary: {summary}");
    let figures = &summary["figures"];
    assert_figures("the summary", figures, &want, &[]);
    // By hand, the headline figures once more.
    assert_eq!(figures["offered"], 9);
    assert_eq!(figures["sent_to_queue"], 5);
    assert_eq!(figures["answered_within_sl"], 2);
    assert_eq!(figures["service_level"], 0.5, "2 / (5 - 1)");
    assert_eq!(figures["csat_avg"], 3.5);
    let rows = csv(&gw, &format!("/api/reports/summary?{range}&format=csv"));
    assert_csv_matches(
        "the summary's CSV",
        &rows,
        std::slice::from_ref(figures),
        &[],
    );

    // Filtered by queue: the five queued calls.
    let queued: Vec<&Call> = calls.iter().filter(|c| c.kind.queued()).collect();
    let by_queue = api(
        &gw,
        "GET",
        &format!("/api/reports/summary?{range}&queue=support"),
        None,
    );
    assert_figures(
        "the summary of queue support",
        &by_queue["figures"],
        &expected_figures(&queued),
        &[],
    );

    // The agent table: the agent's three calls.
    let agents = api(&gw, "GET", &format!("/api/reports/agents?{range}"), None);
    eprintln!("agents: {agents}");
    let list = agents["agents"].as_array().expect("agents");
    assert_eq!(list.len(), 1, "{agents}");
    let a1 = &list[0];
    assert_eq!(a1["agent"], "a1", "{a1}");
    let answered: Vec<&Call> = calls.iter().filter(|c| c.kind.answered()).collect();
    assert_figures(
        "a1's row",
        a1,
        &expected_figures(&answered),
        &["agent", "occupancy"],
    );
    let occupancy = a1["occupancy"].as_f64().unwrap_or(-1.0);
    assert!(occupancy > 0.0 && occupancy <= 1.0, "a1's occupancy: {a1}");
    let rows = csv(&gw, &format!("/api/reports/agents?{range}&format=csv"));
    assert_csv_matches("the agents' CSV", &rows, list, &["occupancy"]);

    // The IVR funnel.
    let funnel = api(
        &gw,
        "GET",
        &format!("/api/reports/funnel?{range}&flow={FLOW_NAME}"),
        None,
    );
    eprintln!("funnel: {funnel}");
    assert_eq!(funnel["calls"], 9, "{funnel}");
    let nodes = funnel["nodes"].as_array().expect("nodes");
    // (node, reached, hung up, self-served below)
    let want_nodes: [(&str, i64, i64, i64); 5] = [
        ("menu", 9, 1, 2),
        ("agent", 5, 2, 0),
        ("bye", 3, 0, 2),
        ("info", 2, 0, 2),
        ("leave-message", 1, 0, 0),
    ];
    let mut got_nodes: Vec<(String, i64, i64, i64)> = nodes
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap_or_default().to_owned(),
                n["reached"].as_i64().unwrap_or(-1),
                n["hung_up"].as_i64().unwrap_or(-1),
                n["self_served_below"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    got_nodes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let want_nodes: Vec<(String, i64, i64, i64)> = want_nodes
        .iter()
        .map(|&(n, r, h, s)| (n.to_owned(), r, h, s))
        .collect();
    assert_eq!(got_nodes, want_nodes, "{funnel}");
    for n in nodes {
        let rate = n["hung_up"].as_f64().unwrap() / n["reached"].as_f64().unwrap();
        assert_eq!(n["drop_rate"].as_f64(), Some(rate), "{n}");
    }
    let mut edges: Vec<(String, String, i64)> = funnel["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap_or_default().to_owned(),
                e["to"].as_str().unwrap_or_default().to_owned(),
                e["calls"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    edges.sort();
    let want_edges: Vec<(String, String, i64)> = [
        ("info", "bye", 2),
        ("leave-message", "bye", 1),
        ("menu", "agent", 5),
        ("menu", "info", 2),
        ("menu", "leave-message", 1),
    ]
    .iter()
    .map(|&(a, b, n)| (a.to_owned(), b.to_owned(), n))
    .collect();
    assert_eq!(edges, want_edges, "{funnel}");
    let worst: Vec<&str> = funnel["worst"]
        .as_array()
        .expect("worst")
        .iter()
        .filter_map(|n| n["node"].as_str())
        .collect();
    assert_eq!(worst, ["agent", "menu"], "{funnel}");
    let rows = csv(
        &gw,
        &format!("/api/reports/funnel?{range}&flow={FLOW_NAME}&format=csv"),
    );
    assert_csv_matches("the funnel's CSV", &rows, nodes, &[]);
    let rows = csv(
        &gw,
        &format!("/api/reports/funnel?{range}&flow={FLOW_NAME}&format=csv&table=edges"),
    );
    assert_csv_matches(
        "the funnel's edges CSV",
        &rows,
        funnel["edges"].as_array().expect("edges"),
        &[],
    );

    // The live feed's "today so far": the same figures (read again at most
    // every 5 s after call events, at least once a minute). Compared with
    // the hand-made ones, not the summary's bits: from midnight, whole hours
    // come from the rollup, whose sums may round a time differently.
    let day_began = snapshot(&gw)["today"]["from"]
        .as_str()
        .and_then(hotline_e2e::parse_rfc3339_micros);
    assert!(
        day_began.is_some_and(|d| d <= start_secs as i64 * 1_000_000),
        "the report zone's day began during the test (run it again): {}",
        snapshot(&gw)["today"]
    );
    let polled = Instant::now();
    let live = poll_until(Duration::from_secs(90), || {
        let s = snapshot(&gw);
        (s["calls_active"] == 0 && figure_diffs(&s["today"]["figures"], &want, &[]).is_empty())
            .then_some(s)
    })
    .unwrap_or_else(|| {
        let s = snapshot(&gw);
        panic!(
            "the live feed's today never showed the mix:\n{}\n--- feed: {s}",
            figure_diffs(&s["today"]["figures"], &want, &[]).join("\n")
        )
    });
    eprintln!("live today matched after {:?}", polled.elapsed());
    let support = live["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["queue"] == "support"))
        .unwrap_or_else(|| panic!("no support queue: {live}"));
    assert_eq!(support["service_level_secs"], SL_SECS, "{support}");
    assert_eq!(support["waiting"], 0, "{support}");

    // A range that ends before the first call holds none of them.
    let before = api(
        &gw,
        "GET",
        &format!(
            "/api/reports/summary?from={}&to={from}",
            rfc3339(now_secs() - 86_400)
        ),
        None,
    );
    assert_eq!(before["figures"]["offered"], 0, "{before}");
    eprintln!("{test}: {:?}", t0.elapsed());
}
