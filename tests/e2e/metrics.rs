//! Issue 12, "Prometheus": `GET /metrics` after real SIPp calls parses with
//! Prometheus' own checker (`promtool check metrics`), its counters match
//! the calls made and never go down between scrapes; the sample Prometheus
//! config, alert rules and Grafana dashboard in `deploy/` are valid and name
//! only metrics that docs/operations.md lists.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use hotline_e2e::db::psql;
use hotline_e2e::{Gateway, Sipp, Transport, poll_until, rtp, workspace_root};

const PROMTOOL: &str = "apt-get install prometheus (it ships promtool)";

/// One sample line's series (`name{labels}`) and value.
type Samples = BTreeMap<String, f64>;

fn parse(text: &str) -> Samples {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(s: &Samples, series: &str) -> f64 {
    *s.get(series)
        .unwrap_or_else(|| panic!("no series {series} in:\n{}", dump(s)))
}

/// Sum of every series of `name` whose labels include all of `labels`.
fn sum(s: &Samples, name: &str, labels: &[&str]) -> f64 {
    s.iter()
        .filter(|(k, _)| {
            let (n, l) = k.split_once('{').unwrap_or((k, ""));
            n == name && labels.iter().all(|want| l.contains(want))
        })
        .map(|(_, v)| v)
        .sum()
}

fn dump(s: &Samples) -> String {
    s.iter().map(|(k, v)| format!("{k} {v}\n")).collect()
}

fn scrape(gw: &Gateway) -> String {
    let (code, body) = gw.http_get("/metrics").expect("GET /metrics");
    assert_eq!(code, 200, "{body}");
    body
}

fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write to promtool");
        }
    }
    let out = child.wait_with_output().expect("promtool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Metric names (`hotline_…`) listed in docs/operations.md's "Metrics" table.
fn documented() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(workspace_root().join("docs/operations.md"))
        .expect("docs/operations.md");
    let section = doc
        .split("\n## Metrics")
        .nth(1)
        .expect("a \"## Metrics\" section in docs/operations.md");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter(|l| l.starts_with("| `hotline_"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_string))
        .collect()
}

/// `hotline_…` names in `text`, histogram suffixes taken off.
fn names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("hotline_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_string();
        out.insert(base);
    }
    out
}

#[test]
fn metrics_match_the_calls_and_pass_promtool() {
    let test = "metrics_match_the_calls_and_pass_promtool";
    if !hotline_e2e::require_tool("sipp", "apt-get install sip-tester", test)
        || !hotline_e2e::require_tool("promtool", PROMTOOL, test)
    {
        return;
    }
    let gw = Gateway::start("metrics");
    let before = parse(&scrape(&gw));
    assert_eq!(
        value(&before, "hotline_calls_total{outcome=\"self_served\"}"),
        0.0
    );

    // Three callers self-served by the built-in flow (a digit, its answer,
    // the gateway hangs up).
    const CALLS: usize = 3;
    let pcap = gw.dir().join("tone_5_tone.pcap");
    rtp::write_caller_pcap(&pcap, &rtp::tone_digit_tone('5'));
    for _ in 0..CALLS {
        Sipp::new("uac_digit_gateway_bye.xml", &gw)
            .transport(Transport::Udp)
            .var("PCAP", pcap.to_str().unwrap())
            .run()
            .assert_success();
    }
    let data = gw.data_dir();
    poll_until(Duration::from_secs(20), || {
        let rows = psql(
            &data,
            "SELECT count(*) FROM calls WHERE complete AND outcome = 'self_served'",
        );
        (rows[0][0] == CALLS.to_string()).then_some(())
    })
    .unwrap_or_else(|| panic!("the calls' records did not appear; log:\n{}", gw.log_tail()));

    // The counter moves right after the records' commit; the call actors
    // leave the active count as they finish.
    let text = poll_until(Duration::from_secs(10), || {
        let text = scrape(&gw);
        let s = parse(&text);
        (s.get("hotline_calls_total{outcome=\"self_served\"}") == Some(&(CALLS as f64))
            && s.get("hotline_calls_active") == Some(&0.0))
        .then_some(text)
    })
    .unwrap_or_else(|| panic!("counters did not reach the calls:\n{}", scrape(&gw)));

    let (ok, out) = promtool(&["check", "metrics"], Some(&text));
    assert!(ok, "promtool check metrics:\n{out}\n--- scraped:\n{text}");

    let s = parse(&text);
    let n = CALLS as f64;
    assert_eq!(
        sum(&s, "hotline_calls_total", &[]),
        n,
        "only self-served calls"
    );
    assert_eq!(value(&s, "hotline_calls_started_total"), n);
    assert!(
        sum(
            &s,
            "hotline_sip_requests_total",
            &["direction=\"in\"", "method=\"INVITE\""]
        ) >= n,
        "{}",
        dump(&s)
    );
    assert!(
        sum(
            &s,
            "hotline_sip_requests_total",
            &["direction=\"in\"", "method=\"ACK\""]
        ) >= n
    );
    assert!(
        sum(
            &s,
            "hotline_sip_responses_total",
            &["direction=\"out\"", "method=\"INVITE\"", "code=\"200\""]
        ) >= n
    );
    assert!(
        sum(
            &s,
            "hotline_sip_responses_total",
            &["direction=\"out\"", "method=\"INVITE\"", "code=\"100\""]
        ) >= n
    );
    // The gateway hung up: its BYEs, answered 200 by SIPp.
    assert!(
        sum(
            &s,
            "hotline_sip_requests_total",
            &["direction=\"out\"", "method=\"BYE\""]
        ) >= n
    );
    assert!(
        sum(
            &s,
            "hotline_sip_responses_total",
            &["direction=\"in\"", "method=\"BYE\"", "code=\"200\""]
        ) >= n
    );
    // One INVITE→200 observation per call; every one under +Inf.
    assert_eq!(value(&s, "hotline_sip_invite_answer_seconds_count"), n);
    assert_eq!(
        value(&s, "hotline_sip_invite_answer_seconds_bucket{le=\"+Inf\"}"),
        n
    );
    assert!(value(&s, "hotline_sip_invite_answer_seconds_sum") > 0.0);
    assert!(value(&s, "hotline_writer_batch_seconds_count") >= 1.0);
    assert!(value(&s, "hotline_writer_events_total{path=\"written\"}") > 0.0);
    assert_eq!(value(&s, "hotline_db_errors_total{op=\"write\"}"), 0.0);
    assert_eq!(value(&s, "hotline_spool_segments"), 0.0);
    assert_eq!(value(&s, "hotline_spool_bytes"), 0.0);
    // Caller audio in, prompts out (the caller's pcap: ~1.5 s of audio).
    assert!(value(&s, "hotline_rtp_packets_received_total") >= 50.0 * n);
    assert!(value(&s, "hotline_rtp_packets_sent_total") >= 50.0 * n);
    assert!(value(&s, "hotline_prompt_cache_prompts") > 0.0);
    // No caller number, Call-ID or address in any label.
    for series in s.keys() {
        assert!(!series.contains("127.0.0.1"), "{series}");
        assert!(!series.contains('@'), "{series}");
    }

    // Counters never go backwards.
    let later = parse(&scrape(&gw));
    let monotonic = |k: &str| {
        let name = k.split('{').next().unwrap_or(k);
        name.ends_with("_total")
            || name.ends_with("_count")
            || name.ends_with("_sum")
            || name.ends_with("_bucket")
    };
    for (k, v) in s.iter().filter(|(k, _)| monotonic(k)) {
        let after = later
            .get(k)
            .unwrap_or_else(|| panic!("{k} disappeared between scrapes"));
        assert!(after >= v, "{k} went down: {v} -> {after}");
    }

    // Every documented metric is exposed (the queue gauges need a queue:
    // this gateway has none), and nothing undocumented is.
    let docs = documented();
    let exposed = names_in(&text);
    for name in &docs {
        if !name.starts_with("hotline_queue_") {
            assert!(exposed.contains(name), "{name} is documented, not exposed");
        }
    }
    for name in &exposed {
        assert!(docs.contains(name), "{name} is exposed, not documented");
    }
}

#[test]
fn deploy_prometheus_and_grafana_files_are_valid() {
    let test = "deploy_prometheus_and_grafana_files_are_valid";
    if !hotline_e2e::require_tool("promtool", PROMTOOL, test) {
        return;
    }
    let (ok, out) = promtool(
        &["check", "config", "deploy/prometheus/prometheus.yml"],
        None,
    );
    assert!(ok, "promtool check config:\n{out}");
    assert!(out.contains("1 rule files found"), "{out}");
    let (ok, out) = promtool(&["check", "rules", "deploy/prometheus/alerts.yml"], None);
    assert!(ok, "promtool check rules:\n{out}");

    let root = workspace_root();
    let dashboard = std::fs::read_to_string(root.join("deploy/grafana/hotline.json"))
        .expect("deploy/grafana/hotline.json");
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let panels = json["panels"].as_array().expect("panels");
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for want in [
        "Live calls",
        "Calls waiting per queue",
        "Agents per state",
        "Spool",
        "Database errors (1h)",
        "SIP requests per second",
        "INVITE → 200 latency",
    ] {
        assert!(titles.contains(&want), "no panel {want:?}: {titles:?}");
    }

    // Dashboard and alerts name only metrics the gateway documents.
    let docs = documented();
    let alerts =
        std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).expect("alerts.yml");
    for (file, text) in [("hotline.json", &dashboard), ("alerts.yml", &alerts)] {
        let names = names_in(text);
        assert!(!names.is_empty(), "{file} uses no hotline metric");
        for name in names {
            assert!(
                docs.contains(&name),
                "{file} uses {name}, which docs/operations.md does not list"
            );
        }
    }
}

/// A caller waiting in a queue whose one agent is offline shows in the
/// queue gauges (what the "no agent available" alert reads), and leaves
/// them when they hang up: an abandoned call.
#[test]
fn a_waiting_caller_shows_in_the_queue_gauges() {
    let test = "a_waiting_caller_shows_in_the_queue_gauges";
    if !hotline_e2e::require_tool("sipp", "apt-get install sip-tester", test) {
        return;
    }
    const TOKEN: &str = "m3tr1cs";
    let flows = hotline_e2e::flows::flows_dir(
        "metrics_queue_flows",
        "flow: main\nstart: wait\nnodes:\n  wait:\n    type: enqueue\n    queue: support\n",
    );
    let gw = Gateway::start_with(
        "metrics_queue",
        &[
            "--entry-flow",
            "main",
            "--flows-dir",
            flows.path().to_str().expect("utf-8 temp path"),
            "--admin-token",
            TOKEN,
        ],
    );
    let auth = format!("Bearer {TOKEN}");
    for (path, body) in [
        (
            "/api/agents",
            r#"{"id": "a1", "name": "Ada Agent", "password": "correct horse battery"}"#,
        ),
        (
            "/api/queues",
            r#"{"name": "support", "max_wait_secs": 90, "members": ["a1"]}"#,
        ),
    ] {
        let (code, text) = gw
            .http_request("POST", path, &[("Authorization", &auth)], Some(body))
            .expect("admin API");
        assert!((200..300).contains(&code), "POST {path}: {code} {text}");
    }

    let pcap = gw.dir().join("tone.pcap");
    rtp::write_caller_pcap(
        &pcap,
        &[rtp::CallerAudio::Tone {
            hz: 440.0,
            ms: 8000,
        }],
    );
    let caller = Sipp::new("uac_caller_bye.xml", &gw)
        .var("PCAP", pcap.to_str().unwrap())
        .var("PAUSE_MS", "6000")
        .spawn();
    let waiting = "hotline_queue_waiting_calls{queue=\"support\"}";
    let s = poll_until(Duration::from_secs(15), || {
        let s = parse(&scrape(&gw));
        (s.get(waiting) == Some(&1.0)).then_some(s)
    })
    .unwrap_or_else(|| panic!("the caller never showed as waiting:\n{}", scrape(&gw)));
    assert_eq!(
        value(&s, "hotline_queue_agents_available{queue=\"support\"}"),
        0.0
    );
    assert!(value(&s, "hotline_queue_longest_wait_seconds{queue=\"support\"}") < 15.0);
    assert_eq!(value(&s, "hotline_calls_active"), 1.0);

    caller.wait().assert_success();
    let s = poll_until(Duration::from_secs(15), || {
        let s = parse(&scrape(&gw));
        (s.get(waiting) == Some(&0.0)
            && s.get("hotline_calls_total{outcome=\"abandoned\"}") == Some(&1.0))
        .then_some(s)
    })
    .unwrap_or_else(|| panic!("the caller never left the queue:\n{}", scrape(&gw)));
    assert_eq!(
        value(&s, "hotline_queue_longest_wait_seconds{queue=\"support\"}"),
        0.0
    );
    assert_eq!(sum(&s, "hotline_calls_total", &[]), 1.0);
}
