//! Issue 12, the admin console's Reports page and IVR funnel end to end, in
//! headless Debian `chromium` (driven by `tests/driver/reports.mjs`,
//! playwright-core over CDP) against the real gateway, PostgreSQL and SIPp.
//!
//! Three SIPp callers go through the shipped flow (`ivr-flows/main.yaml`,
//! open all day): two choose English, purchases, course access — an
//! answer the flow marks self-served — and then "that's all", and the
//! gateway says goodbye; one chooses English and hangs up in the main menu.
//! An admin signs in and opens Reports for the default range (the last 7
//! days to today in the report zone): the summary shows 3 offered, 2
//! self-served, 1 abandoned in the IVR; the stacked chart has those bars;
//! the summary's CSV link answers text/csv with the same row. The funnel of
//! `main` shows 3 calls reaching the start node, the edges' counts, the main
//! menu as the worst drop-off, and a node's numbers on a click. Filtered
//! to the issue type `purchase` as one bucket, the report (and its CSV)
//! counts only the two self-served calls, and the filters are in the
//! address. Any page error or console error fails the test.

use std::time::Duration;

use hotline_e2e::browser::{self, AgentDriver, Chromium};
use hotline_e2e::events::{Event, dump};
use hotline_e2e::flows::{flows_dir, main_flow_with_hours};
use hotline_e2e::script::{Step, scripted_caller};
use hotline_e2e::{Gateway, poll_until};
use serde_json::{Value, json};

const TOKEN: &str = "admin-reports-e2e-admin-token";
const PASSWORD: &str = "correct horse battery staple";
const PAGE_WAIT: Duration = Duration::from_secs(40);
const CALL_END_WAIT: Duration = Duration::from_secs(20);

fn api(gw: &Gateway, method: &str, path: &str) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let (code, text) = gw
        .http_request(method, path, &[("Authorization", &auth)], None)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn cmd(drv: &mut AgentDriver, c: Value) -> Value {
    drv.cmd(c, PAGE_WAIT)
}

fn wait_selector(drv: &mut AgentDriver, selector: &str) {
    cmd(
        drv,
        json!({"op": "waitSelector", "page": "ada", "selector": selector}),
    );
}

/// The trimmed texts of every element matching `selector`.
fn texts(drv: &mut AgentDriver, selector: &str) -> Vec<String> {
    cmd(
        drv,
        json!({"op": "texts", "page": "ada", "selector": selector}),
    )["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["text"].as_str().unwrap_or_default().trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// One attribute of every element matching `selector`.
fn attrs(drv: &mut AgentDriver, selector: &str, attr: &str) -> Vec<String> {
    cmd(
        drv,
        json!({"op": "texts", "page": "ada", "selector": selector, "attrs": [attr]}),
    )["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i[attr].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn count(drv: &mut AgentDriver, selector: &str) -> u64 {
    cmd(
        drv,
        json!({"op": "count", "page": "ada", "selector": selector}),
    )["count"]
        .as_u64()
        .unwrap_or(0)
}

/// The summary table's shown value of `figure`.
fn figure(drv: &mut AgentDriver, figure: &str) -> String {
    let t = texts(
        drv,
        &format!("#reports-summary tr[data-figure=\"{figure}\"] td.value"),
    );
    assert_eq!(t.len(), 1, "one row for {figure}: {t:?}");
    t[0].clone()
}

/// Fails when the browser has reported a page error or a console error.
fn no_errors(drv: &mut AgentDriver, after: &str) {
    let errors = cmd(drv, json!({"op": "errors"}))["errors"].clone();
    assert_eq!(
        errors,
        json!([]),
        "the browser reported errors by {after}\n--- driver log ---\n{}",
        drv.log_tail(60)
    );
}

/// The ids of the nodes a call entered, in order.
fn nodes(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind() == "node_entered")
        .map(|e| e.raw["node"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// A call from `number` with keys as SIP INFO at chosen pauses; its events
/// once it has ended.
fn call(gw: &Gateway, number: &str, steps: &[Step]) -> Vec<Event> {
    let run = scripted_caller(gw, number, steps)
        .timeout(Duration::from_secs(75))
        .run();
    run.assert_success();
    gw.wait_call_ended(&run.call_id, CALL_END_WAIT)
}

/// English (1 over the hello), purchases (2), course access (1), whose
/// answer plays to its end (the flow marks it self-served), then 2 at
/// "anything else" for goodbye; the gateway hangs up.
fn self_served_call(gw: &Gateway, number: &str) -> Vec<Event> {
    let events = call(
        gw,
        number,
        &[
            Step::Pause(1000),
            Step::Info('1'),
            Step::Pause(1500),
            Step::Info('2'),
            Step::Pause(1500),
            Step::Info('1'),
            Step::Pause(9000),
            Step::Info('2'),
            Step::AwaitBye(30_000),
        ],
    );
    assert_eq!(
        nodes(&events),
        [
            "welcome",
            "choose-language",
            "office-hours",
            "find-subscriber",
            "main-menu",
            "purchase-menu",
            "course-access",
            "anything-else",
            "goodbye"
        ],
        "{}",
        dump(&events)
    );
    events
}

/// English, then the caller hangs up while the main menu plays.
fn hang_up_call(gw: &Gateway, number: &str) -> Vec<Event> {
    let events = call(
        gw,
        number,
        &[
            Step::Pause(1000),
            Step::Info('1'),
            Step::Pause(4000),
            Step::Bye,
        ],
    );
    assert_eq!(
        nodes(&events).last().map(String::as_str),
        Some("main-menu"),
        "{}",
        dump(&events)
    );
    events
}

/// The sum of numbers shown as text.
fn total(shown: &[String]) -> u64 {
    shown
        .iter()
        .map(|s| {
            s.parse::<u64>()
                .unwrap_or_else(|_| panic!("not a count: {s:?}"))
        })
        .sum()
}

/// The value of column `name` in the first data row of a CSV text.
fn csv_field(csv: &str, name: &str) -> String {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let i = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    row.get(i).copied().unwrap_or_default().to_owned()
}

#[test]
fn an_admin_reads_the_reports_and_the_ivr_funnel_of_real_calls() {
    let test = "an_admin_reads_the_reports_and_the_ivr_funnel_of_real_calls";
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
    let flows = flows_dir("admin_reports_flows", &main_flow_with_hours("00:00-24:00"));
    let token_file = flows.path().join("admin-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let gw = Gateway::start_with(
        "admin_reports",
        &[
            "--entry-flow",
            "main",
            "--flows-dir",
            flows.path().to_str().expect("utf-8 temp path"),
            "--admin-token-file",
            token_file.to_str().expect("utf-8 temp path"),
        ],
    );
    gw.seed_demo();
    let auth = format!("Bearer {TOKEN}");
    let body = json!({"id": "ada", "name": "Ada Admin", "password": PASSWORD, "role": "admin"})
        .to_string();
    let (code, text) = gw
        .http_request(
            "POST",
            "/api/agents",
            &[("Authorization", &auth)],
            Some(&body),
        )
        .expect("POST /api/agents");
    assert_eq!(code, 201, "create ada: {text}");

    // The calls: two self-served, one hang-up in the main menu.
    self_served_call(&gw, "+15550100081");
    self_served_call(&gw, "+15550100082");
    hang_up_call(&gw, "+15550100083");

    // The API agrees once every call's record is complete (what the page
    // must show).
    let figures = poll_until(Duration::from_secs(20), || {
        let (code, v) = api(&gw, "GET", "/api/reports/summary");
        assert_eq!(code, 200, "{v}");
        let f = v["figures"].clone();
        (f["offered"] == 3 && f["self_served"] == 2 && f["abandoned_in_ivr"] == 1).then_some(v)
    })
    .unwrap_or_else(|| {
        panic!(
            "the report never showed 3 calls: {}\n{}",
            api(&gw, "GET", "/api/reports/summary").1,
            gw.log_tail()
        )
    });
    let tz = figures["tz"].as_str().expect("tz").to_owned();
    eprintln!("summary: {figures}");

    let mic = gw.dir().join("mic.wav");
    browser::write_tone_wav(&mic, 440.0, 1, 1000.0);
    let chromium = Chromium::start(&mic, gw.dir());
    let base = format!("http://127.0.0.1:{}", gw.http_port);
    let mut drv = AgentDriver::start_script("reports.mjs", &base, &chromium);
    cmd(
        &mut drv,
        json!({"op": "open", "page": "ada", "user": "ada", "password": PASSWORD, "hash": "#reports"}),
    );

    // ---- the summary, for the default range (the last 7 days to today)
    wait_selector(
        &mut drv,
        "#reports-summary tr[data-figure=\"offered\"] td.value",
    );
    assert_eq!(figure(&mut drv, "offered"), "3");
    assert_eq!(figure(&mut drv, "answered_by_gateway"), "3");
    assert_eq!(figure(&mut drv, "self_served"), "2");
    assert_eq!(figure(&mut drv, "abandoned_in_ivr"), "1");
    assert_eq!(figure(&mut drv, "containment_rate"), "66.7 %");
    assert_eq!(figure(&mut drv, "answered_by_agent"), "0");
    // Every figure of docs/metrics.md has its row.
    assert_eq!(count(&mut drv, "#reports-summary tbody tr"), 39);
    // The zone is shown, and is the report's.
    assert_eq!(attrs(&mut drv, "#reports-range", "data-tz"), [tz.as_str()]);
    let shown = texts(&mut drv, "#reports-range");
    assert!(shown[0].contains(&tz), "{shown:?}");
    assert_eq!(count(&mut drv, "#reports-tz"), 1, "a time zone field");

    // ---- the stacked chart: 2 self-served on 1 abandoned (today's bar, or
    // two if the calls straddled midnight in the report's zone)
    let bars = count(&mut drv, "#chart-outcomes rect.bar");
    assert!(bars >= 2, "{bars} bars");
    let seg = |drv: &mut AgentDriver, key: &str| -> Vec<String> {
        attrs(
            drv,
            &format!("#chart-outcomes rect.bar.seg-{key}"),
            "data-value",
        )
    };
    assert_eq!(total(&seg(&mut drv, "self_served")), 2);
    assert_eq!(total(&seg(&mut drv, "abandoned_in_ivr")), 1);
    assert_eq!(count(&mut drv, "#chart-outcomes rect.bar.seg-other"), 0);
    for chart in ["#chart-service", "#chart-csat", "#chart-agents"] {
        assert_eq!(count(&mut drv, chart), 1, "{chart} is drawn");
    }
    // The series has one bucket per day of the 7, with the calls.
    let offered = texts(
        &mut drv,
        "#reports-series tbody td[data-figure=\"offered\"]",
    );
    assert_eq!(offered.len(), 7, "{offered:?}");
    assert_eq!(total(&offered), 3, "{offered:?}");

    // ---- the CSV link: the same query as text/csv
    let csv = cmd(
        &mut drv,
        json!({"op": "fetchLink", "page": "ada", "selector": "#reports-summary-csv"}),
    );
    assert_eq!(csv["status"], 200, "{csv}");
    assert!(
        csv["contentType"]
            .as_str()
            .unwrap_or_default()
            .starts_with("text/csv"),
        "{csv}"
    );
    let href = csv["href"].as_str().unwrap_or_default();
    assert!(
        href.starts_with("/api/reports/summary?") && href.contains("format=csv"),
        "{href}"
    );
    let body = csv["body"].as_str().unwrap_or_default();
    assert_eq!(body.lines().count(), 2, "a header and one row: {body}");
    assert_eq!(csv_field(body, "offered"), "3", "{body}");
    assert_eq!(csv_field(body, "self_served"), "2", "{body}");
    assert_eq!(csv_field(body, "abandoned_in_ivr"), "1", "{body}");
    let series_csv = cmd(
        &mut drv,
        json!({"op": "fetchLink", "page": "ada", "selector": "#reports-series-csv"}),
    );
    let series_body = series_csv["body"].as_str().unwrap_or_default();
    assert_eq!(
        series_body.lines().count(),
        8,
        "a header and 7 days: {series_body}"
    );
    assert_eq!(count(&mut drv, "#reports-agents-csv"), 1);
    no_errors(&mut drv, "the Reports page");

    // ---- the funnel of `main` for the same range
    cmd(
        &mut drv,
        json!({"op": "go", "page": "ada", "selector": "#reports-funnel-link"}),
    );
    let start = "#funnel-graph g.node.start .funnel-reached";
    wait_selector(&mut drv, start);
    assert_eq!(
        attrs(&mut drv, "#funnel-graph g.node.start", "data-node"),
        ["welcome"]
    );
    assert_eq!(texts(&mut drv, start), ["3"], "the start node's reached");
    assert_eq!(attrs(&mut drv, "#funnel-range", "data-calls"), ["3"]);
    let node_fig = |drv: &mut AgentDriver, node: &str, class: &str| -> Vec<String> {
        texts(
            drv,
            &format!("#funnel-graph g.node[data-node=\"{node}\"] .{class}"),
        )
    };
    assert_eq!(node_fig(&mut drv, "main-menu", "funnel-reached"), ["3"]);
    assert_eq!(node_fig(&mut drv, "main-menu", "funnel-hung-up"), ["1"]);
    assert_eq!(node_fig(&mut drv, "main-menu", "funnel-self-served"), ["2"]);
    assert_eq!(node_fig(&mut drv, "course-access", "funnel-reached"), ["2"]);
    assert_eq!(node_fig(&mut drv, "after-hours", "funnel-reached"), ["0"]);
    let edge = |drv: &mut AgentDriver, from: &str, to: &str| -> Vec<String> {
        texts(
            drv,
            &format!("#funnel-graph .edge-count[data-from=\"{from}\"][data-to=\"{to}\"]"),
        )
    };
    assert_eq!(edge(&mut drv, "welcome", "choose-language"), ["3 calls"]);
    assert_eq!(edge(&mut drv, "main-menu", "purchase-menu"), ["2 calls"]);
    assert_eq!(edge(&mut drv, "anything-else", "goodbye"), ["2 calls"]);
    assert_eq!(edge(&mut drv, "main-menu", "subscription-menu"), ["0"]);
    // The worst drop-off: the main menu, where the third caller gave up.
    assert_eq!(
        attrs(&mut drv, "#funnel-worst li", "data-node"),
        ["main-menu"]
    );
    // A click on a node shows its numbers.
    cmd(
        &mut drv,
        json!({"op": "click", "page": "ada",
               "selector": "#funnel-graph g.node[data-node=\"main-menu\"]"}),
    );
    wait_selector(&mut drv, "#funnel-node dl[data-node=\"main-menu\"]");
    assert_eq!(texts(&mut drv, "#funnel-node .reached"), ["3 calls"]);
    let hung = texts(&mut drv, "#funnel-node .hung-up");
    assert_eq!(hung, ["1 call (33.3 %)"]);
    let nodes_csv = cmd(
        &mut drv,
        json!({"op": "fetchLink", "page": "ada", "selector": "#funnel-nodes-csv"}),
    );
    assert_eq!(nodes_csv["status"], 200, "{nodes_csv}");
    let nodes_body = nodes_csv["body"].as_str().unwrap_or_default();
    assert!(
        nodes_body.lines().any(|l| l.starts_with("welcome,3,0,2,")),
        "{nodes_body}"
    );
    no_errors(&mut drv, "the funnel");

    // ---- the filters: purchases only (the caller who hung up in the main
    // menu had no issue type yet), the whole range as one bucket; kept in
    // the address
    cmd(
        &mut drv,
        json!({"op": "go", "page": "ada", "selector": "#nav a[data-page=\"reports\"]"}),
    );
    wait_selector(&mut drv, "#reports-form");
    cmd(
        &mut drv,
        json!({"op": "fill", "page": "ada", "selector": "#reports-issue-type", "value": "purchase"}),
    );
    cmd(
        &mut drv,
        json!({"op": "select", "page": "ada", "selector": "#reports-granularity", "value": "none"}),
    );
    cmd(
        &mut drv,
        json!({"op": "click", "page": "ada", "selector": "#reports-submit"}),
    );
    let filtered = poll_until(Duration::from_secs(20), || {
        let rows = count(&mut drv, "#reports-series tbody tr");
        let offered = texts(
            &mut drv,
            "#reports-summary tr[data-figure=\"offered\"] td.value",
        );
        (rows == 1 && offered == ["2"]).then_some(offered)
    });
    assert!(
        filtered.is_some(),
        "the filtered report: {:?}\n{}",
        texts(&mut drv, "#reports-summary tbody tr"),
        drv.log_tail(40)
    );
    assert_eq!(figure(&mut drv, "self_served"), "2");
    assert_eq!(figure(&mut drv, "abandoned_in_ivr"), "0");
    let hash = cmd(&mut drv, json!({"op": "location", "page": "ada"}))["hash"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        hash.starts_with("#reports/")
            && hash.contains("issue_type=purchase")
            && hash.contains("granularity=none"),
        "{hash}"
    );
    let csv = cmd(
        &mut drv,
        json!({"op": "fetchLink", "page": "ada", "selector": "#reports-summary-csv"}),
    );
    let body = csv["body"].as_str().unwrap_or_default();
    assert!(
        csv["href"]
            .as_str()
            .unwrap_or_default()
            .contains("issue_type=purchase"),
        "{csv}"
    );
    assert_eq!(csv_field(body, "offered"), "2", "{body}");
    no_errors(&mut drv, "the filtered report");
}
