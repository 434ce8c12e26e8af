//! Issue 11, the admin console in Firefox: headless Debian `firefox-esr`
//! driven by `tests/driver/firefox.mjs` (puppeteer-core over WebDriver
//! BiDi) against the real gateway, PostgreSQL and SIPp. The Chromium tests
//! (admin_flows, admin_calls, admin_pages) go deeper; this one walks every
//! page once in the other engine.
//!
//! After one SIPp call (a tone, 1 in the menu, hung up on; recorded), an
//! admin signs in on /admin. Flows: the list shows the entry flow; its
//! editor shows the text and the SVG graph; a broken reference typed in
//! shows its error at line:column at once, and restoring the text clears
//! it. Calls: the search finds the call by its caller, and its page shows
//! the timeline and an audio element as long as the recording (within
//! 0.2 s). Prompts, Agents, Queues, Audit and Voicemail render. Any page
//! error or console error fails the test.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hotline_e2e::browser::{self, AgentDriver};
use hotline_e2e::events::dump;
use hotline_e2e::flows::flows_dir;
use hotline_e2e::rtp::{self, CallerAudio};
use hotline_e2e::script::{Step, scripted_caller};
use hotline_e2e::{Gateway, poll_until};
use serde_json::{Value, json};

const FIREFOX: &str = "/usr/bin/firefox-esr";
const TOKEN: &str = "admin-firefox-e2e-admin-token";
const PASSWORD: &str = "correct horse battery staple";
const CALLER: &str = "+15550100091";
const PAGE_WAIT: Duration = Duration::from_secs(40);
const CALL_END_WAIT: Duration = Duration::from_secs(20);

/// A menu whose key 1 thanks the caller and hangs up.
const FLOW: &str = "# e2e: the admin console in Firefox\n\
flow: main\n\
languages: [en]\n\
start: menu\n\
nodes:\n  \
  menu:\n    \
    type: menu\n    \
    prompt: main-menu\n    \
    options:\n      \
      1: thanks\n    \
    timeout: 20s\n    \
    retries: 0\n    \
    on_exhausted: thanks\n  \
  thanks:\n    \
    type: hangup\n    \
    prompt: thank-you\n    \
    outcome: self_served\n";

fn api(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let body = body.map(|b| b.to_string());
    let (code, text) = gw
        .http_request(method, path, &[("Authorization", &auth)], body.as_deref())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Line and column (from 1) of the first `needle` in `text`.
fn pos_of(text: &str, needle: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find_map(|(i, l)| l.find(needle).map(|c| (i + 1, c + 1)))
        .unwrap_or_else(|| panic!("{needle:?} not in the flow"))
}

/// Whether this test can run: Firefox ESR and node. Without them it fails
/// unless `HOTLINE_ALLOW_SKIP=1` (which CI never sets).
fn require_firefox(test: &str) -> bool {
    let why = if !Path::new(FIREFOX).exists() {
        format!("{FIREFOX} is missing (apt-get install firefox-esr; tests/run does)")
    } else if Command::new("node").arg("--version").output().is_err() {
        "node is missing (apt-get install nodejs npm; tests/run does)".to_owned()
    } else {
        return true;
    };
    assert!(
        std::env::var_os("HOTLINE_ALLOW_SKIP").is_some_and(|v| v == "1"),
        "{test} needs Firefox: {why} (set HOTLINE_ALLOW_SKIP=1 to skip instead)"
    );
    eprintln!("SKIPPED {test}: {why} (HOTLINE_ALLOW_SKIP=1)");
    false
}

fn cmd(drv: &mut AgentDriver, c: Value) -> Value {
    drv.cmd(c, PAGE_WAIT)
}

fn go(drv: &mut AgentDriver, hash: &str) {
    cmd(drv, json!({"op": "go", "page": "ada", "hash": hash}));
}

fn wait_selector(drv: &mut AgentDriver, selector: &str) {
    cmd(
        drv,
        json!({"op": "waitSelector", "page": "ada", "selector": selector}),
    );
}

fn wait_text(drv: &mut AgentDriver, selector: &str, text: &str) -> String {
    let r = cmd(
        drv,
        json!({"op": "waitText", "page": "ada", "selector": selector, "text": text}),
    );
    r["text"].as_str().unwrap_or_default().to_owned()
}

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

/// Fails when the browser has reported a page error or a console error.
fn no_errors(drv: &mut AgentDriver, after: &str) {
    let errors = cmd(drv, json!({"op": "errors"}))["errors"].clone();
    assert_eq!(
        errors,
        json!([]),
        "Firefox reported errors by {after}\n--- driver log ---\n{}",
        drv.log_tail(60)
    );
}

#[test]
fn the_admin_console_works_in_firefox() {
    let test = "the_admin_console_works_in_firefox";
    if !require_firefox(test) {
        return;
    }
    if !hotline_e2e::require_tool("sipp", "apt-get install sip-tester", test) {
        return;
    }
    assert!(
        browser::ensure_driver(),
        "npm install of puppeteer-core in {}",
        browser::driver_dir().display()
    );
    let flows = flows_dir("admin_firefox_flows", FLOW);
    let token_file = flows.path().join("admin-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let gw = Gateway::start_with(
        "admin_firefox",
        &[
            "--entry-flow",
            "main",
            "--flows-dir",
            flows.path().to_str().expect("utf-8 temp path"),
            "--admin-token-file",
            token_file.to_str().expect("utf-8 temp path"),
        ],
    );
    let (code, v) = api(
        &gw,
        "POST",
        "/api/agents",
        Some(json!({"id": "ada", "name": "Ada Admin", "password": PASSWORD, "role": "admin"})),
    );
    assert_eq!(code, 201, "create ada: {v}");

    // One recorded call: a tone all along, 1 in the menu; the gateway hangs up.
    let pcap = gw.dir().join("caller.pcap");
    rtp::write_caller_pcap(
        &pcap,
        &[CallerAudio::Tone {
            hz: 440.0,
            ms: 20_000,
        }],
    );
    let run = scripted_caller(
        &gw,
        CALLER,
        &[
            Step::Audio(pcap.to_str().expect("utf-8 temp path").to_owned()),
            Step::Pause(2500),
            Step::Info('1'),
            Step::AwaitBye(30_000),
        ],
    )
    .timeout(Duration::from_secs(75))
    .run();
    run.assert_success();
    let events = gw.wait_call_ended(&run.call_id, CALL_END_WAIT);
    assert!(
        events.iter().any(|e| e.kind() == "recording"),
        "{}",
        dump(&events)
    );
    let (call_id, rec_ms) = poll_until(Duration::from_secs(15), || {
        let (code, v) = api(&gw, "GET", "/api/calls?caller=%2B15550100091", None);
        assert_eq!(code, 200, "{v}");
        let c = v["calls"].as_array()?.first()?.clone();
        if c["complete"] != true || c["recorded"] != true {
            return None;
        }
        let id = c["id"].as_str()?.to_owned();
        let (code, d) = api(&gw, "GET", &format!("/api/calls/{id}"), None);
        assert_eq!(code, 200, "{d}");
        (d["timeline"].as_array()?.len() == events.len())
            .then(|| d["recording"]["duration_ms"].as_f64())
            .flatten()
            .map(|ms| (id, ms))
    })
    .unwrap_or_else(|| {
        panic!(
            "no complete recorded call from {CALLER}:\n{}",
            gw.log_tail()
        )
    });
    assert!(rec_ms > 2000.0, "a recording of {rec_ms} ms");

    let base = format!("http://127.0.0.1:{}", gw.http_port);
    let mut drv = AgentDriver::start_node("firefox.mjs", &[base.as_str(), FIREFOX]);

    // Sign in, on the Flows list: the entry flow is there.
    let who = cmd(
        &mut drv,
        json!({"op": "open", "page": "ada", "user": "ada", "password": PASSWORD, "hash": "#flows"}),
    );
    assert!(
        who["whoami"].as_str().unwrap_or_default().contains("ada")
            || who["whoami"].as_str().unwrap_or_default().contains("Ada"),
        "{who}"
    );
    wait_selector(&mut drv, "#flows tr[data-flow=\"main\"]");
    no_errors(&mut drv, "the Flows list");

    // Its editor: the text and the graph.
    cmd(
        &mut drv,
        json!({"op": "go", "page": "ada", "selector": "#flows tr[data-flow=\"main\"] a"}),
    );
    wait_text(&mut drv, "#flow-loaded", "Editing main");
    wait_text(&mut drv, "#flow-validity", "Valid");
    wait_selector(&mut drv, "#flow-yaml");
    wait_selector(&mut drv, "#flow-graph [data-node=\"thanks\"]");
    let graph = cmd(
        &mut drv,
        json!({"op": "svg", "page": "ada", "selector": "#flow-graph svg"}),
    );
    assert!(
        graph["shapes"].as_u64() >= Some(2) && graph["width"].as_f64() > Some(0.0),
        "the graph draws its nodes: {graph}"
    );
    // A broken reference: its error at line:column as it is typed.
    let broken = FLOW.replace("1: thanks", "1: nowhere");
    let (line, col) = pos_of(&broken, "nowhere");
    cmd(
        &mut drv,
        json!({"op": "fill", "page": "ada", "selector": "#flow-yaml", "value": broken}),
    );
    wait_text(&mut drv, "#flow-validity", "1 error(s)");
    let errors = texts(&mut drv, "#flow-errors li");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("{line}:{col} ")) && errors[0].contains("nowhere"),
        "the error at {line}:{col}: {errors:?}"
    );
    // Restored: valid again, no error listed.
    cmd(
        &mut drv,
        json!({"op": "fill", "page": "ada", "selector": "#flow-yaml", "value": FLOW}),
    );
    wait_text(&mut drv, "#flow-validity", "Valid");
    assert!(texts(&mut drv, "#flow-errors li").is_empty());
    no_errors(&mut drv, "the flow editor");

    // Calls: the search form finds the call; its page plays the recording.
    go(&mut drv, "#calls");
    wait_selector(&mut drv, "#calls-search");
    cmd(
        &mut drv,
        json!({"op": "fill", "page": "ada", "selector": "#calls-caller", "value": CALLER}),
    );
    cmd(
        &mut drv,
        json!({"op": "click", "page": "ada", "selector": "#calls-submit"}),
    );
    let row = format!("#calls-results tr[data-call=\"{call_id}\"]");
    wait_selector(&mut drv, &row);
    cmd(
        &mut drv,
        json!({"op": "go", "page": "ada", "selector": format!("{row} a")}),
    );
    wait_selector(&mut drv, "#call-timeline");
    let shown = texts(&mut drv, "#call-timeline tbody tr");
    assert_eq!(shown.len(), events.len(), "every event: {shown:?}");
    let played = cmd(
        &mut drv,
        json!({"op": "audioDuration", "page": "ada", "selector": "#call-audio"}),
    );
    let secs = played["duration"].as_f64().unwrap_or(0.0);
    assert!(
        (secs * 1000.0 - rec_ms).abs() <= 200.0,
        "audio element {secs} s vs the recording's {rec_ms} ms"
    );
    no_errors(&mut drv, "the call's page");

    // The other pages render.
    for (hash, selector) in [
        ("#prompts", "#prompts tr[data-prompt=\"main-menu\"]"),
        ("#agents", "#agents tr[data-agent=\"ada\"]"),
        ("#queues", "#queue-new"),
        ("#audit", "#audit"),
        ("#voicemail", "#voicemail-filter"),
        ("#reports", "#chart-outcomes rect.bar"),
        ("#funnel", "#funnel-graph g.node.start .funnel-reached"),
    ] {
        go(&mut drv, hash);
        wait_selector(&mut drv, selector);
        no_errors(&mut drv, hash);
    }
}
