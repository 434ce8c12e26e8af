//! Issue 3 end to end: IVR flows in YAML on the real gateway, driven by SIPp.
//!
//! * the hotline's own flow (`ivr-flows/main.yaml`, copied with business
//!   hours that do not depend on the wall clock): a subscription refund and a
//!   purchase order status (looked up in the seeded database);
//! * editing a flow while a call is in it (the call keeps its version, new
//!   calls get the new one, an invalid edit is refused with file:line:column);
//! * after-hours voicemail (caller audio and RFC 4733 digits from a pcap);
//! * transfer by REFER.
//!
//! Multi-digit paths send SIP INFO (application/dtmf-relay) at chosen pauses
//! through `tests/sipp/uac_ivr_script.xml`, whose body is generated here by
//! `script()`; the voicemail and transfer tests send RFC 4733 digits.

use hotline_e2e::events::{Event, assert_in_order, count, find};
use hotline_e2e::gateway::hotline_bin;
use hotline_e2e::rtp::{self, CallerAudio};
use hotline_e2e::{Gateway, Sipp, TempDir, assert_call_log_well_formed, poll_until, wav};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const CALL_END_WAIT: Duration = Duration::from_secs(20);
/// Every SIPp run is killed after this (its own `-timeout` is 60 s).
const SIPP_LIMIT: Duration = Duration::from_secs(75);

// ---------------------------------------------------------------- SIPp script

/// One step of the caller in `uac_ivr_script.xml`, after the ACK.
enum Step {
    /// Wait this many milliseconds.
    Pause(u32),
    /// A key as SIP INFO (application/dtmf-relay), answered 200.
    Info(char),
    /// Start playing caller audio (a pcap, see `rtp::write_caller_pcap`) in
    /// the background; the script goes on at once.
    Audio(String),
    /// Wait (up to this many ms) for the gateway's BYE, answer 200, linger.
    AwaitBye(u32),
}

/// The scenario body for `{{SCRIPT}}`: CSeq numbers continue from the INVITE's 1.
fn script(caller: &str, steps: &[Step]) -> String {
    let from = format!(
        "From: \"e2e caller\" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]"
    );
    let contact = format!("Contact: <sip:{caller}@[local_ip]:[local_port];transport=[transport]>");
    let mut cseq = 1;
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Pause(ms) => out.push_str(&format!("  <pause milliseconds=\"{ms}\"/>\n\n")),
            Step::Info(key) => {
                cseq += 1;
                out.push_str(&format!(
                    r#"  <send retrans="500">
    <![CDATA[
      INFO sip:hotline@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {from}
      To: <sip:hotline@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      {contact}
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={key}
      Duration=160
    ]]>
  </send>

  <recv response="200"/>

"#
                ));
            }
            Step::Audio(pcap) => out.push_str(&format!(
                "  <nop>\n    <action>\n      <exec play_pcap_audio=\"{pcap}\"/>\n    </action>\n  </nop>\n\n"
            )),
            Step::AwaitBye(ms) => out.push_str(&format!(
                r#"  <recv request="BYE" timeout="{ms}"/>

  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      {contact}
      Content-Length: 0

    ]]>
  </send>

  <!-- Linger so a retransmitted BYE (lost 200) is answered again. -->
  <pause milliseconds="500"/>

"#
            )),
        }
    }
    out
}

/// SIPp as caller `caller` (the From user; `sipp` is the seeded "Demo Caller").
fn caller(gw: &Gateway, caller: &str, steps: &[Step]) -> Sipp {
    Sipp::new("uac_ivr_script.xml", gw)
        .var("CALLER", caller)
        .var("SCRIPT", script(caller, steps))
        .timeout(SIPP_LIMIT)
}

fn write_pcap(gw: &Gateway, name: &str, parts: &[CallerAudio]) -> String {
    let path: PathBuf = gw.dir().join(name);
    rtp::write_caller_pcap(&path, parts);
    path.to_str().expect("utf-8 temp path").to_string()
}

fn tone(ms: u32) -> CallerAudio {
    CallerAudio::Tone { hz: 440.0, ms }
}

fn digit(d: char) -> CallerAudio {
    CallerAudio::Digit {
        digit: d,
        packets: 6,
    }
}

// ---------------------------------------------------------------- flows

/// `ivr-flows/main.yaml` with the office hours replaced: `weekly` becomes
/// `daily: <hours>` and the holidays go, so the test does not depend on the
/// wall clock ("00:00-24:00": open all day; "closed": never open).
fn main_flow_with_hours(hours: &str) -> String {
    let path = hotline_e2e::workspace_root().join("ivr-flows/main.yaml");
    let text = std::fs::read_to_string(&path).expect("read ivr-flows/main.yaml");
    assert_eq!(
        text.matches("type: hours").count(),
        1,
        "main.yaml has one hours node"
    );
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = text.lines().collect();
    let hours_at = lines
        .iter()
        .position(|l| l.trim() == "type: hours")
        .unwrap();
    let (mut weekly, mut holidays) = (false, false);
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        i += 1;
        if i > hours_at && !weekly && l.trim() == "weekly:" {
            // The schedule's day lines are indented below `weekly:`.
            let indent = indent_of(l);
            out.push(l.to_owned());
            out.push(format!("{}  daily: {hours}", " ".repeat(indent)));
            while i < lines.len() && indent_of(lines[i]) > indent {
                i += 1;
            }
            weekly = true;
        } else if weekly && !holidays && l.trim_start().starts_with("holidays:") {
            holidays = true;
        } else {
            out.push(l.to_owned());
        }
    }
    assert!(
        weekly && holidays,
        "main.yaml's hours node has weekly and holidays"
    );
    out.join("\n") + "\n"
}

/// A flows dir holding `main.yaml` with `text`.
/// The file must pass `hotline flows check` (else calls would silently get
/// the built-in flow).
fn flows_dir(label: &str, text: &str) -> TempDir {
    let dir = TempDir::new(label);
    let file = dir.path().join("main.yaml");
    write_atomically(&file, text);
    let out = Command::new("timeout")
        .arg("20")
        .arg(hotline_bin())
        .args(["flows", "check", "--sounds-dir"])
        .arg(hotline_e2e::workspace_root().join("sounds"))
        .arg(&file)
        .output()
        .expect("run hotline flows check");
    assert!(
        out.status.success(),
        "{} does not pass `hotline flows check`:\n{}{}\n{text}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// Replace a file in one step (the gateway polls the dir every 2 s and must
/// never see half a file).
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

/// A gateway running the entry flow `main` from `flows`.
fn ivr_gateway(label: &str, flows: &Path, extra: &[&str]) -> Gateway {
    let flows = flows.to_str().expect("utf-8 temp path");
    let mut args = vec!["--entry-flow", "main", "--flows-dir", flows];
    args.extend_from_slice(extra);
    Gateway::start_with(label, &args)
}

// ---------------------------------------------------------------- checks

fn assert_well_formed(events: &[Event]) {
    let problems = assert_call_log_well_formed(events);
    assert!(problems.is_empty(), "event log problems:\n{problems:#?}");
}

fn dump(events: &[Event]) -> String {
    events.iter().map(|e| format!("  {e}\n")).collect()
}

/// The ids of the nodes entered, in order.
fn nodes(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind() == "node_entered")
        .map(|e| e.raw["node"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// The prompts started, in order (`en/hello`, …).
fn prompts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind() == "prompt_started")
        .map(|e| e.data_str("prompt").to_owned())
        .collect()
}

fn assert_nodes(events: &[Event], want: &[&str]) {
    assert_eq!(
        nodes(events),
        want,
        "nodes entered; events:\n{}",
        dump(events)
    );
}

fn assert_prompts(events: &[Event], want: &[&str]) {
    assert_eq!(
        prompts(events),
        want,
        "prompts played; events:\n{}",
        dump(events)
    );
    assert_eq!(
        count(events, "prompt_missing"),
        0,
        "a prompt the flow names is missing; events:\n{}",
        dump(events)
    );
}

fn issue_types(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind() == "issue_type")
        .map(|e| e.data_str("issue_type").to_owned())
        .collect()
}

/// The accepted inputs (menu keys, gathered digits), in order.
fn inputs(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind() == "input")
        .map(|e| e.data_str("input").to_owned())
        .collect()
}

/// Rows of a query on the gateway's embedded database (tab-separated fields).
fn psql(data_dir: &Path, sql: &str) -> Vec<Vec<String>> {
    let out = Command::new("timeout")
        .arg("20")
        .arg("psql")
        .arg(format!(
            "host={} user=hotline dbname=hotline",
            data_dir.join("pg").display()
        ))
        .args([
            "-X",
            "-A",
            "-t",
            "-F",
            "\t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql (postgresql-client) is installed");
    assert!(
        out.status.success(),
        "psql failed: {}\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

/// The call's complete `calls` row: flow, flow_version, language, issue_type,
/// outcome, queue, ended_by, hangup_cause (NULLs as "").
fn calls_row(gw: &Gateway, sip_call_id: &str) -> Vec<String> {
    let sip = sip_call_id.replace('\'', "''");
    let sql = format!(
        "SELECT coalesce(flow, ''), coalesce(flow_version, ''), coalesce(language, ''), \
                coalesce(issue_type, ''), coalesce(outcome, ''), coalesce(queue, ''), \
                coalesce(ended_by, ''), coalesce(hangup_cause, '') \
           FROM calls WHERE sip_call_id = '{sip}' AND complete"
    );
    let data = gw.data_dir();
    poll_until(Duration::from_secs(10), || psql(&data, &sql).pop()).unwrap_or_else(|| {
        panic!(
            "no complete calls row for {sip_call_id}; log:\n{}",
            gw.log_tail()
        )
    })
}

/// The gateway log without ANSI colours.
fn gateway_log(gw: &Gateway) -> String {
    let raw = std::fs::read_to_string(gw.log_path()).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Versions reported by the reload loop's "flow loaded" lines (not the
/// start-up "entry flow loaded").
fn reloaded_versions(gw: &Gateway) -> Vec<String> {
    gateway_log(gw)
        .lines()
        .filter(|l| l.contains("flow loaded") && !l.contains("entry flow loaded"))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("version="))
                .map(str::to_owned)
        })
        .collect()
}

// ---------------------------------------------------------------- tests

/// English, subscriptions, refund: the flow sets `subscription.refund` and
/// queues the call for `subscriptions`; no agent answers within the stand-in
/// queue's 3 s, so the gateway apologises and hangs up.
#[test]
fn subscription_refund_path_is_queued_for_subscriptions() {
    let flows = flows_dir("ivr_refund_flows", &main_flow_with_hours("00:00-24:00"));
    let gw = ivr_gateway("ivr_refund", flows.path(), &["--queue-max-wait-secs", "3"]);
    gw.seed_demo();
    // Keys over the prompts (barge-in): 1 during the hello goes to the
    // language question, then 1 (subscriptions), 3 (refund).
    let run = caller(
        &gw,
        "sipp",
        &[
            Step::Pause(1000),
            Step::Info('1'),
            Step::Pause(1500),
            Step::Info('1'),
            Step::Pause(1500),
            Step::Info('3'),
            Step::AwaitBye(30_000),
        ],
    )
    .run();
    run.assert_success();
    let evs = gw.wait_call_ended(&run.call_id, CALL_END_WAIT);
    assert_well_formed(&evs);
    assert_nodes(
        &evs,
        &[
            "welcome",
            "choose-language",
            "office-hours",
            "find-subscriber",
            "main-menu",
            "subscription-menu",
            "subscription-refund",
            "queue-subscriptions",
        ],
    );
    assert_prompts(
        &evs,
        &[
            "en/hello",
            "en/for-english",
            "zh/for-chinese",
            "en/main-menu",
            "en/subscription-menu",
            "en/refund-connecting",
            "en/hold-music",
            "en/no-agents",
        ],
    );
    assert_eq!(inputs(&evs), ["1", "1", "3"], "{}", dump(&evs));
    assert_eq!(
        issue_types(&evs),
        ["subscription", "subscription.refund"],
        "{}",
        dump(&evs)
    );
    assert_in_order(
        &evs,
        &[
            ("flow_started", &[("flow", "main"), ("language", "en")]),
            ("digit", &[("digit", "1"), ("transport", "info")]),
            ("language_set", &[("language", "en")]),
            ("hours", &[("state", "open")]),
            (
                "lookup",
                &[
                    ("lookup", "subscriber_by_caller_id"),
                    ("ok", "true"),
                    ("found", "true"),
                ],
            ),
            ("input", &[("input", "1")]),
            ("input", &[("input", "3")]),
            ("issue_type", &[("issue_type", "subscription.refund")]),
            ("enqueued", &[("queue", "subscriptions"), ("priority", "5")]),
            ("queue_timeout", &[("queue", "subscriptions")]),
            ("hangup", &[("ended_by", "gateway")]),
            ("call_ended", &[]),
        ],
    );
    // The seeded subscriber was found by the caller id.
    let lookup = find(&evs, "lookup");
    assert_eq!(
        lookup.data()["result"]["name"].as_str(),
        Some("Demo Caller"),
        "{lookup}"
    );
    assert_eq!(
        count(&evs, "invalid") + count(&evs, "timeout"),
        0,
        "{}",
        dump(&evs)
    );
    // Queued, never answered by an agent: the record calls it `abandoned`
    // (docs/call-events.md, `call_ended`).
    let row = calls_row(&gw, &run.call_id);
    assert_eq!(
        row,
        [
            "main",
            find(&evs, "flow_started").data_str("version"),
            "en",
            "subscription.refund",
            "abandoned",
            "subscriptions",
            "gateway",
            "queue_timeout"
        ],
        "calls row"
    );
    assert_eq!(find(&evs, "hangup").data_str("cause"), "queue_timeout");
}

/// Purchases, order status, `10001#`: the order is found in the seeded
/// database, its number is read back digit by digit, the `paid` branch is
/// taken; then 2 ("that's all") says goodbye and hangs up.
#[test]
fn purchase_order_status_path_reads_the_paid_order() {
    let flows = flows_dir("ivr_order_flows", &main_flow_with_hours("00:00-24:00"));
    let gw = ivr_gateway("ivr_order", flows.path(), &[]);
    gw.seed_demo();
    let mut steps = vec![
        Step::Pause(1000),
        Step::Info('1'), // English (over the hello)
        Step::Pause(1500),
        Step::Info('2'), // purchases
        Step::Pause(1500),
        Step::Info('2'), // order status
        Step::Pause(1500),
    ];
    for key in "10001#".chars() {
        steps.push(Step::Info(key));
        steps.push(Step::Pause(300));
    }
    // "order one zero zero zero one" (~5.5 s), "paid" (~2.5 s), then the
    // anything-else menu (5.2 s prompt, 6 s timeout): 2 lands in it.
    steps.push(Step::Pause(11_000));
    steps.push(Step::Info('2'));
    steps.push(Step::AwaitBye(20_000));
    let run = caller(&gw, "sipp", &steps).run();
    run.assert_success();
    let evs = gw.wait_call_ended(&run.call_id, CALL_END_WAIT);
    assert_well_formed(&evs);
    assert_nodes(
        &evs,
        &[
            "welcome",
            "choose-language",
            "office-hours",
            "find-subscriber",
            "main-menu",
            "purchase-menu",
            "order-number",
            "find-order",
            "say-order",
            "order-status",
            "status-paid",
            "anything-else",
            "goodbye",
        ],
    );
    assert_prompts(
        &evs,
        &[
            "en/hello",
            "en/for-english",
            "zh/for-chinese",
            "en/main-menu",
            "en/purchase-menu",
            "en/enter-order",
            "en/order",
            "en/digits/1",
            "en/digits/0",
            "en/digits/0",
            "en/digits/0",
            "en/digits/1",
            "en/status-paid",
            "en/anything-else",
            "en/thank-you",
        ],
    );
    assert_eq!(
        inputs(&evs),
        ["1", "2", "2", "10001", "2"],
        "{}",
        dump(&evs)
    );
    assert_eq!(
        issue_types(&evs),
        ["purchase", "purchase.order_status"],
        "{}",
        dump(&evs)
    );
    let lookups: Vec<&Event> = evs.iter().filter(|e| e.kind() == "lookup").collect();
    assert_eq!(lookups.len(), 2, "{}", dump(&evs));
    let order = lookups[1];
    assert_eq!(order.raw["node"].as_str(), Some("find-order"), "{order}");
    assert_eq!(order.data()["ok"], true, "{order}");
    assert_eq!(order.data()["found"], true, "{order}");
    let result = &order.data()["result"];
    assert_eq!(result["order_number"], "A-10001", "{order}");
    assert_eq!(result["status"], "paid", "{order}");
    assert_eq!(result["course"], "Rust for Telephony", "{order}");
    assert_in_order(
        &evs,
        &[
            ("input", &[("input", "10001"), ("into", "order_number")]),
            ("lookup", &[("lookup", "order_by_number"), ("ok", "true")]),
            ("prompt_started", &[("prompt", "en/status-paid")]),
            ("input", &[("input", "2")]),
            ("outcome", &[("outcome", "self_served")]),
            (
                "hangup",
                &[("ended_by", "gateway"), ("cause", "flow_ended")],
            ),
            ("call_ended", &[]),
        ],
    );
    let hashes = evs
        .iter()
        .filter(|e| e.kind() == "digit" && e.data_str("digit") == "#")
        .count();
    assert_eq!(hashes, 1, "{}", dump(&evs));
    let row = calls_row(&gw, &run.call_id);
    assert_eq!(
        row,
        [
            "main",
            find(&evs, "flow_started").data_str("version"),
            "en",
            "purchase.order_status",
            "self_served",
            "",
            "gateway",
            "flow_ended"
        ],
        "calls row"
    );
}

/// A one-menu flow: 1 says `{bye}` and hangs up. `{target}` is where 1 goes.
fn small_flow(target: &str, bye: &str) -> String {
    format!(
        "# e2e: hot reload\n\
         flow: main\n\
         languages: [en]\n\
         start: menu\n\
         nodes:\n  \
           menu:\n    \
             type: menu\n    \
             prompt: main-menu\n    \
             options:\n      \
               1: {target}\n    \
             timeout: 20s\n    \
             retries: 0\n    \
             on_exhausted: done\n  \
           done:\n    \
             type: hangup\n    \
             prompt: {bye}\n    \
             outcome: self_served\n"
    )
}

/// Editing the flow while a call waits in its menu: that call finishes on
/// the version it started with, the next call gets the new one, and an
/// invalid edit is refused (file:line:column in the log) with the last good
/// version staying live.
#[test]
fn editing_a_flow_mid_call_keeps_the_call_on_its_version() {
    let flows = flows_dir("ivr_reload_flows", &small_flow("done", "goodbye"));
    let flow_file = flows.path().join("main.yaml");
    let gw = ivr_gateway("ivr_reload", flows.path(), &[]);
    let press_one = |wait_ms: u32| {
        caller(
            &gw,
            "caller",
            &[
                Step::Pause(wait_ms),
                Step::Info('1'),
                Step::AwaitBye(15_000),
            ],
        )
    };

    // Call A waits 8 s in the menu; the flow changes meanwhile.
    let a = press_one(8000).spawn();
    let a_id = a.call_id().to_owned();
    let started = gw.wait_event(&a_id, "flow_started", Duration::from_secs(10));
    let version_a = started.data_str("version").to_owned();
    let loaded_before = reloaded_versions(&gw).len();
    write_atomically(&flow_file, &small_flow("done", "thank-you"));
    let version_b = poll_until(Duration::from_secs(5), || {
        reloaded_versions(&gw).get(loaded_before).cloned()
    })
    .unwrap_or_else(|| {
        panic!(
            "no `flow loaded` within 5 s of the edit; log:\n{}",
            gw.log_tail()
        )
    });
    assert_ne!(version_b, version_a, "the edit made a new version");
    assert_eq!(
        count(&gw.events_for(&a_id), "digit"),
        0,
        "the reload must happen before call A presses its key (timing); events:\n{}",
        gw.format_events(&a_id)
    );
    let run_a = a.wait();
    run_a.assert_success();
    let evs_a = gw.wait_call_ended(&a_id, CALL_END_WAIT);
    assert_well_formed(&evs_a);
    assert_nodes(&evs_a, &["menu", "done"]);
    assert_prompts(&evs_a, &["en/main-menu", "en/goodbye"]);
    assert_eq!(find(&evs_a, "flow_started").data_str("version"), version_a);

    // Call B, after the edit: the new version.
    let run_b = press_one(1000).run();
    run_b.assert_success();
    let evs_b = gw.wait_call_ended(&run_b.call_id, CALL_END_WAIT);
    assert_well_formed(&evs_b);
    assert_eq!(find(&evs_b, "flow_started").data_str("version"), version_b);
    assert_nodes(&evs_b, &["menu", "done"]);
    assert_prompts(&evs_b, &["en/main-menu", "en/thank-you"]);

    // An invalid edit (1 goes nowhere) is refused; the last good version stays.
    let broken = small_flow("nowhere", "thank-you");
    let (line, col) = broken
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("nowhere").map(|c| (i + 1, c + 1)))
        .unwrap();
    write_atomically(&flow_file, &broken);
    let refused = poll_until(Duration::from_secs(5), || {
        gateway_log(&gw)
            .lines()
            .find(|l| l.contains("flow refused"))
            .map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no `flow refused` within 5 s; log:\n{}", gw.log_tail()));
    let at = format!("{}:{line}:{col}:", flow_file.display());
    assert!(
        refused.contains(&at) && refused.contains("nowhere"),
        "expected the error at {at} naming `nowhere`, got: {refused}"
    );
    let run_c = press_one(1000).run();
    run_c.assert_success();
    let evs_c = gw.wait_call_ended(&run_c.call_id, CALL_END_WAIT);
    assert_eq!(find(&evs_c, "flow_started").data_str("version"), version_b);
    assert_prompts(&evs_c, &["en/main-menu", "en/thank-you"]);
    assert_eq!(
        calls_row(&gw, &run_c.call_id)[1],
        version_b,
        "calls.flow_version"
    );
}

/// After hours (a schedule that is never open): the after-hours menu, 1 for
/// a message, the beep, the caller speaks (a tone) and ends with #. The
/// message is a mono WAV as long as what the caller said. Digits are RFC 4733.
#[test]
fn after_hours_voicemail_records_the_message() {
    let flows = flows_dir("ivr_voicemail_flows", &main_flow_with_hours("closed"));
    let gw = ivr_gateway("ivr_voicemail", flows.path(), &[]);
    // 1 over the hello (English), 1 over the after-hours menu; the greeting
    // (2.6 s) and the beep (0.5 s) follow; # about 4 s into the message.
    let pcap = write_pcap(
        &gw,
        "voicemail.pcap",
        &[
            tone(1000),
            digit('1'),
            tone(1500),
            digit('1'),
            tone(7200),
            digit('#'),
            tone(2000),
        ],
    );
    // Alice, a known caller; nothing depends on it after hours.
    let run = caller(
        &gw,
        "+15550100001",
        &[Step::Audio(pcap), Step::AwaitBye(30_000)],
    )
    .run();
    run.assert_success();
    let evs = gw.wait_call_ended(&run.call_id, CALL_END_WAIT);
    assert_well_formed(&evs);
    assert_nodes(
        &evs,
        &[
            "welcome",
            "choose-language",
            "office-hours",
            "after-hours",
            "voicemail",
            "message-thanks",
        ],
    );
    assert_prompts(
        &evs,
        &[
            "en/hello",
            "en/for-english",
            "zh/for-chinese",
            "en/after-hours",
            "en/leave-message",
            "en/beep",
            "en/thank-you",
        ],
    );
    assert_in_order(
        &evs,
        &[
            ("digit", &[("digit", "1"), ("transport", "rfc4733")]),
            ("hours", &[("state", "closed")]),
            ("input", &[("input", "1")]),
            ("prompt_finished", &[("prompt", "en/beep")]),
            ("voicemail_started", &[]),
            ("digit", &[("digit", "#"), ("transport", "rfc4733")]),
            ("voicemail", &[]),
            ("outcome", &[("outcome", "voicemail")]),
            ("hangup", &[("ended_by", "gateway")]),
            ("call_ended", &[]),
        ],
    );
    assert_eq!(count(&evs, "digit"), 3, "{}", dump(&evs));
    let started = find(&evs, "voicemail_started");
    let done = find(&evs, "voicemail");
    assert_eq!(started.data_str("path"), done.data_str("path"));
    let path = PathBuf::from(done.data_str("path"));
    assert!(path.is_file(), "voicemail file missing: {done}");
    let stats = wav::analyze(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((stats.channels, stats.sample_rate), (1, 8000), "{stats:?}");
    // What the caller recorded: from the start of the capture to their #.
    let hash_at = evs
        .iter()
        .find(|e| e.kind() == "digit" && e.data_str("digit") == "#")
        .unwrap()
        .at_us();
    let spoken_ms = (hash_at - started.at_us()) as f64 / 1000.0;
    assert!(
        (stats.duration_ms - spoken_ms).abs() <= 300.0,
        "voicemail WAV {:.0} ms, caller spoke {spoken_ms:.0} ms ({stats:?})",
        stats.duration_ms
    );
    assert!(
        (2500.0..=6000.0).contains(&stats.duration_ms),
        "about 4 s expected: {stats:?}"
    );
    let reported = done.data()["duration_ms"].as_f64().unwrap_or(-1.0);
    assert!(
        (reported - stats.duration_ms).abs() <= 100.0,
        "voicemail event says {reported} ms, file has {:.0} ms",
        stats.duration_ms
    );
    assert!(
        stats.rms[0] > 1000.0,
        "voicemail is (nearly) silent: {stats:?}"
    );
    let row = calls_row(&gw, &run.call_id);
    assert_eq!(row[4], "voicemail", "calls row {row:?}");
    assert_eq!(row[3], "", "no issue type after hours: {row:?}");
}

/// A flow whose menu option 1 transfers by REFER.
const TRANSFER_FLOW: &str = "\
flow: main
languages: [en]
start: menu
nodes:
  menu:
    type: menu
    prompt: main-menu
    options:
      1: to-billing
    timeout: 15s
    retries: 0
    on_exhausted: bye
  to-billing:
    type: transfer
    issue_type: subscription.billing
    to: sip:billing@10.0.0.5
    method: refer
  bye:
    type: hangup
    prompt: goodbye
";

/// 1 transfers the caller: REFER (Refer-To checked by SIPp) → 202 → NOTIFY
/// `SIP/2.0 200 OK` → the gateway hangs up as `transferred`.
#[test]
fn transfer_by_refer() {
    let flows = flows_dir("ivr_transfer_flows", TRANSFER_FLOW);
    let gw = ivr_gateway("ivr_transfer", flows.path(), &[]);
    let pcap = write_pcap(&gw, "press1.pcap", &[tone(1000), digit('1'), tone(6000)]);
    let run = Sipp::new("uac_ivr_refer.xml", &gw)
        .var("PCAP", pcap)
        .var("REFER_TO_RE", r"sip:billing@10\.0\.0\.5")
        .timeout(SIPP_LIMIT)
        .run();
    run.assert_success();
    let evs = gw.wait_call_ended(&run.call_id, CALL_END_WAIT);
    assert_well_formed(&evs);
    assert_nodes(&evs, &["menu", "to-billing"]);
    assert_prompts(&evs, &["en/main-menu"]);
    assert_in_order(
        &evs,
        &[
            ("digit", &[("digit", "1"), ("transport", "rfc4733")]),
            ("issue_type", &[("issue_type", "subscription.billing")]),
            (
                "transfer",
                &[("target", "sip:billing@10.0.0.5"), ("method", "refer")],
            ),
            ("transfer_accepted", &[("target", "sip:billing@10.0.0.5")]),
            ("transfer_completed", &[("code", "200")]),
            (
                "hangup",
                &[("ended_by", "gateway"), ("cause", "transferred")],
            ),
            ("call_ended", &[]),
        ],
    );
    assert_eq!(count(&evs, "transfer_failed"), 0, "{}", dump(&evs));
    let row = calls_row(&gw, &run.call_id);
    assert_eq!(
        row[3..],
        [
            "subscription.billing",
            "transferred",
            "",
            "gateway",
            "transferred"
        ],
        "calls row {row:?}"
    );
}
