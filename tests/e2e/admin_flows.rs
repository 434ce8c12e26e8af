//! Issue 11, the admin console's Flows pages end to end, in headless
//! Debian `chromium` (driven by `tests/driver/flows.mjs`, playwright-core
//! over CDP) against the real gateway, PostgreSQL and SIPp.
//!
//! An admin signs in on /admin, opens the entry flow, breaks it (a menu key
//! to a node that does not exist) and sees the error at its line and column
//! (listed, marked in the gutter, a click puts the cursor there); fixes it
//! with a new node, which the graph draws (a click on it jumps to its
//! line); saves; simulates in the page (the path holds the new node, its
//! prompt is playable); publishes — the next SIPp call takes the new path
//! (its call_events). A second admin who opened v1 saves late: 409, the
//! page shows who saved what and the diff. A supervisor's forced publish
//! is refused (403). The admin compares two versions, rolls back in the
//! page, and the next call takes the old path.

use std::path::Path;
use std::time::{Duration, Instant};

use hotline_e2e::browser::{self, AgentDriver, Chromium};
use hotline_e2e::events::{Event, dump, find};
use hotline_e2e::flows::flows_dir;
use hotline_e2e::script::{Step, scripted_caller};
use hotline_e2e::{Gateway, poll_until};
use serde_json::{Value, json};

const TOKEN: &str = "admin-flows-e2e-admin-token";
const PASSWORD: &str = "correct horse battery staple";
const PAGE_WAIT: Duration = Duration::from_secs(40);
const CALL_END_WAIT: Duration = Duration::from_secs(20);

/// The entry flow: a menu whose key 1 goes to `target`; `extra` adds nodes.
fn flow(target: &str, extra: &str) -> String {
    format!(
        "# e2e: the admin console's Flows pages\n\
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
             prompt: goodbye\n    \
             outcome: self_served\n{extra}"
    )
}

/// The node the fix adds: thanks, then hang up.
const THANKS: &str =
    "  thanks:\n    type: hangup\n    prompt: thank-you\n    outcome: self_served\n";

/// Line and column (from 1) of the first `needle` in `text`.
fn pos_of(text: &str, needle: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find_map(|(i, l)| l.find(needle).map(|c| (i + 1, c + 1)))
        .unwrap_or_else(|| panic!("{needle:?} not in the flow"))
}

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

fn add_user(gw: &Gateway, id: &str, name: &str, role: &str) {
    let (code, v) = api(
        gw,
        "POST",
        "/api/agents",
        Some(json!({ "id": id, "name": name, "password": PASSWORD, "role": role })),
    );
    assert_eq!(code, 201, "create {id}: {v}");
}

/// Runs `change` (a click in the page) and waits until the gateway has
/// loaded `want` for new calls.
fn until_live(gw: &Gateway, want: &str, change: impl FnOnce()) -> Duration {
    let before = gw.loaded_flow_versions().len();
    let t0 = Instant::now();
    change();
    poll_until(Duration::from_secs(10), || {
        gw.loaded_flow_versions()[before..]
            .iter()
            .any(|v| v == want)
            .then_some(())
    })
    .unwrap_or_else(|| panic!("{want} not live within 10 s; log:\n{}", gw.log_tail()));
    t0.elapsed()
}

/// A call that presses 1: its events once it has ended.
fn call_pressing_one(gw: &Gateway) -> Vec<Event> {
    let run = scripted_caller(
        gw,
        "caller",
        &[Step::Pause(1000), Step::Info('1'), Step::AwaitBye(15_000)],
    )
    .timeout(Duration::from_secs(75))
    .run();
    run.assert_success();
    gw.wait_call_ended(&run.call_id, CALL_END_WAIT)
}

fn prompts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind() == "prompt_started")
        .map(|e| e.data_str("prompt").to_owned())
        .collect()
}

fn nodes(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind() == "node_entered")
        .map(|e| e.raw["node"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// The texts of every element matching `selector` on `page`.
fn texts(drv: &mut AgentDriver, page: &str, selector: &str) -> Vec<String> {
    items(drv, page, selector, &[])
        .iter()
        .map(|i| i["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn items(drv: &mut AgentDriver, page: &str, selector: &str, attrs: &[&str]) -> Vec<Value> {
    let r = drv.cmd(
        json!({"op": "texts", "page": page, "selector": selector, "attrs": attrs}),
        PAGE_WAIT,
    );
    r["items"].as_array().cloned().unwrap_or_default()
}

fn wait_text(drv: &mut AgentDriver, page: &str, selector: &str, text: &str) -> String {
    let r = drv.cmd(
        json!({"op": "waitText", "page": page, "selector": selector, "text": text}),
        PAGE_WAIT,
    );
    r["text"].as_str().unwrap_or_default().to_owned()
}

fn click(drv: &mut AgentDriver, page: &str, selector: &str) {
    drv.cmd(
        json!({"op": "click", "page": page, "selector": selector}),
        PAGE_WAIT,
    );
}

fn fill(drv: &mut AgentDriver, page: &str, selector: &str, value: &str) {
    drv.cmd(
        json!({"op": "fill", "page": page, "selector": selector, "value": value}),
        PAGE_WAIT,
    );
}

fn cursor(drv: &mut AgentDriver, page: &str) -> Value {
    drv.cmd(json!({"op": "cursor", "page": page}), PAGE_WAIT)
}

#[test]
fn an_admin_edits_simulates_publishes_and_rolls_back_a_flow_in_the_console() {
    let test = "an_admin_edits_simulates_publishes_and_rolls_back_a_flow_in_the_console";
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
    let v1_text = flow("done", "");
    let flows = flows_dir("admin_flows_flows", &v1_text);
    let token_file = flows.path().join("admin-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let gw = Gateway::start_with(
        "admin_flows",
        &[
            "--entry-flow",
            "main",
            "--flows-dir",
            path_str(flows.path()),
            "--admin-token-file",
            path_str(&token_file),
        ],
    );
    add_user(&gw, "ada", "Ada Admin", "admin");
    add_user(&gw, "bob", "Bob Admin", "admin");
    add_user(&gw, "sue", "Sue Supervisor", "supervisor");

    // The first call: the imported v1.
    let evs = call_pressing_one(&gw);
    assert_eq!(
        prompts(&evs),
        ["en/main-menu", "en/goodbye"],
        "{}",
        dump(&evs)
    );

    let mic = gw.dir().join("mic.wav");
    browser::write_tone_wav(&mic, 440.0, 1, 1000.0);
    let chromium = Chromium::start(&mic, gw.dir());
    let base = format!("http://127.0.0.1:{}", gw.http_port);
    let mut drv = AgentDriver::start_script("flows.mjs", &base, &chromium);

    // Ada signs in and finds the flow in the list.
    drv.cmd(
        json!({"op": "open", "page": "ada", "user": "ada", "password": PASSWORD, "hash": "#flows"}),
        PAGE_WAIT,
    );
    wait_text(
        &mut drv,
        "ada",
        "#flows tr[data-flow=\"main\"] .published",
        "v1",
    );
    let row = texts(&mut drv, "ada", "#flows tr[data-flow=\"main\"] td");
    assert_eq!(row[3], "import", "last editor: {row:?}");
    // Bob opens the editor on v1 now and saves only later (stale).
    drv.cmd(
        json!({"op": "open", "page": "bob", "user": "bob", "password": PASSWORD, "hash": "#flows/main"}),
        PAGE_WAIT,
    );
    wait_text(&mut drv, "bob", "#flow-loaded", "Editing main from v1");

    drv.cmd(
        json!({"op": "go", "page": "ada", "selector": "#flows tr[data-flow=\"main\"] a"}),
        PAGE_WAIT,
    );
    wait_text(&mut drv, "ada", "#flow-loaded", "Editing main from v1");
    wait_text(&mut drv, "ada", "#flow-validity", "Valid");
    drv.cmd(
        json!({"op": "waitSelector", "page": "ada", "selector": "#flow-graph [data-node=\"done\"]"}),
        PAGE_WAIT,
    );

    // Broken: key 1 goes to a node that does not exist.
    let broken = flow("thanks", "");
    let (line, col) = pos_of(&broken, "thanks");
    fill(&mut drv, "ada", "#flow-yaml", &broken);
    wait_text(&mut drv, "ada", "#flow-validity", "1 error(s)");
    let errors = texts(&mut drv, "ada", "#flow-errors li");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("{line}:{col} ")) && errors[0].contains("thanks"),
        "the error at {line}:{col}: {errors:?}"
    );
    let marked = items(&mut drv, "ada", "#flow-gutter div.bad", &["data-line"]);
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert_eq!(marked[0]["data-line"], line.to_string(), "{marked:?}");
    click(&mut drv, "ada", "#flow-errors li a");
    let at = cursor(&mut drv, "ada");
    assert_eq!(
        (
            at["line"].as_u64(),
            at["column"].as_u64(),
            at["focused"].as_bool()
        ),
        (Some(line as u64), Some(col as u64), Some(true)),
        "clicking the error puts the cursor on it: {at}"
    );

    // Published as it is: saved as draft v2, refused with the error at its place.
    click(&mut drv, "ada", "#flow-publish");
    wait_text(&mut drv, "ada", "#flow-status", "v2 cannot be published");
    let refused = texts(&mut drv, "ada", "#publish-errors li");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with(&format!("{line}:{col} ")),
        "{refused:?}"
    );
    let (_, list) = api(&gw, "GET", "/api/flows", None);
    assert_eq!(
        (list[0]["published"].as_i64(), list[0]["latest"].as_i64()),
        (Some(1), Some(2)),
        "{list}"
    );

    // Fixed: the new node; the graph draws it and a click on it jumps to its line.
    // (Below 40 lines of notes: the editor scrolls to reach it.)
    let notes: String = (1..=40).map(|i| format!("# note {i}\n")).collect();
    let fixed = flow("thanks", &format!("{notes}{THANKS}"));
    fill(&mut drv, "ada", "#flow-yaml", &fixed);
    wait_text(&mut drv, "ada", "#flow-validity", "Valid");
    assert!(texts(&mut drv, "ada", "#flow-errors li").is_empty());
    drv.cmd(
        json!({"op": "clickNode", "page": "ada", "node": "thanks"}),
        PAGE_WAIT,
    );
    let (thanks_line, _) = pos_of(&fixed, "  thanks:");
    let at = cursor(&mut drv, "ada");
    assert_eq!(at["line"].as_u64(), Some(thanks_line as u64), "{at}");
    assert_eq!(at["visible"], true, "{at}");
    assert!(at["scrollTop"].as_f64() > Some(0.0), "scrolled to it: {at}");
    assert_eq!(
        at["gutterScrollTop"], at["scrollTop"],
        "the line numbers scroll with the text: {at}"
    );
    let edges = items(
        &mut drv,
        "ada",
        "#flow-graph text.edge-label",
        &["data-from", "data-to"],
    );
    assert!(
        edges
            .iter()
            .any(|e| e["data-from"] == "menu" && e["data-to"] == "thanks" && e["text"] == "1"),
        "the edge menu -1-> thanks: {edges:?}"
    );

    // Saved as draft v3.
    fill(&mut drv, "ada", "#flow-comment", "1 says thank you");
    click(&mut drv, "ada", "#flow-save");
    wait_text(&mut drv, "ada", "#flow-status", "Saved draft v3");
    wait_text(
        &mut drv,
        "ada",
        "#flow-versions tr[data-version=\"3\"] .status",
        "draft",
    );

    // Simulated in the page: the new path and its playable prompt.
    fill(&mut drv, "ada", "#sim-digits", "1");
    click(&mut drv, "ada", "#sim-run");
    drv.cmd(
        json!({"op": "waitSelector", "page": "ada", "selector": "#sim-result:not([hidden])"}),
        PAGE_WAIT,
    );
    assert_eq!(texts(&mut drv, "ada", "#sim-path li"), ["menu", "thanks"]);
    let played = items(&mut drv, "ada", "#sim-prompts li", &["data-prompt"]);
    let played: Vec<&str> = played
        .iter()
        .map(|p| p["data-prompt"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(played, ["en/main-menu", "en/thank-you"]);
    let audio = items(&mut drv, "ada", "#sim-prompts audio", &["src"]);
    assert_eq!(
        audio.last().map(|a| a["src"].clone()),
        Some(json!("/api/prompts/en/thank-you")),
        "{audio:?}"
    );
    wait_text(&mut drv, "ada", "#sim-outcome", "self_served");

    // Bob's stale save: 409, who saved what, the diff; he loads v3.
    fill(&mut drv, "bob", "#flow-yaml", &flow("done", THANKS));
    click(&mut drv, "bob", "#flow-save");
    let who = wait_text(&mut drv, "bob", "#conflict-who", "v3 (draft) saved by ada");
    assert!(who.contains("you edited v1"), "{who}");
    let diff = texts(&mut drv, "bob", "#conflict-diff span.add");
    assert!(
        diff.iter().any(|l| l.contains("1: thanks")),
        "the diff adds the key: {diff:?}"
    );
    let (code, v) = api(&gw, "GET", "/api/flows/main/versions", None);
    assert_eq!(code, 200);
    assert_eq!(v.as_array().map(Vec::len), Some(3), "nothing saved: {v}");
    click(&mut drv, "bob", "#conflict-load");
    wait_text(&mut drv, "bob", "#flow-loaded", "Editing main from v3");

    // Sue, a supervisor, cannot publish: the button is disabled, and forced
    // it is refused by the server.
    drv.cmd(
        json!({"op": "open", "page": "sue", "user": "sue", "password": PASSWORD, "hash": "#flows/main/v3"}),
        PAGE_WAIT,
    );
    wait_text(&mut drv, "sue", "#flow-loaded", "Editing main from v3");
    let d = drv.cmd(
        json!({"op": "isDisabled", "page": "sue", "selector": "#flow-publish"}),
        PAGE_WAIT,
    );
    assert_eq!(d["disabled"], true, "{d}");
    drv.cmd(
        json!({"op": "force", "page": "sue", "selector": "#flow-publish"}),
        PAGE_WAIT,
    );
    wait_text(&mut drv, "sue", "#flow-status", "Refused (403)");
    assert!(
        items(&mut drv, "sue", "#flow-versions button.rollback", &[]).is_empty(),
        "supervisors get no rollback buttons"
    );
    let (_, list) = api(&gw, "GET", "/api/flows", None);
    assert_eq!(list[0]["published"], 1, "still v1: {list}");

    // Ada publishes v3: the next call takes the new path.
    let latency = until_live(&gw, "v3", || {
        click(&mut drv, "ada", "#flow-publish");
        wait_text(&mut drv, "ada", "#flow-status", "Published v3");
    });
    eprintln!("[admin_flows] publish click -> live: {latency:?}");
    let evs = call_pressing_one(&gw);
    assert_eq!(nodes(&evs), ["menu", "thanks"], "{}", dump(&evs));
    assert_eq!(
        prompts(&evs),
        ["en/main-menu", "en/thank-you"],
        "{}",
        dump(&evs)
    );
    assert_eq!(find(&evs, "flow_started").data_str("version"), "v3");

    // Any two versions compared, coloured.
    drv.cmd(
        json!({"op": "select", "page": "ada", "selector": "#diff-from", "value": "1"}),
        PAGE_WAIT,
    );
    drv.cmd(
        json!({"op": "select", "page": "ada", "selector": "#diff-to", "value": "3"}),
        PAGE_WAIT,
    );
    click(&mut drv, "ada", "#diff-show");
    wait_text(&mut drv, "ada", "#flow-diff", "main v3");
    let added = texts(&mut drv, "ada", "#flow-diff span.add");
    assert!(
        added.iter().any(|l| l.contains("1: thanks"))
            && added.iter().any(|l| l.contains("thanks:")),
        "{added:?}"
    );
    assert!(
        texts(&mut drv, "ada", "#flow-diff span.del")
            .iter()
            .any(|l| l.contains("1: done")),
        "the removed line"
    );

    // A row's Diff: that version against the one before.
    click(
        &mut drv,
        "ada",
        "#flow-versions tr[data-version=\"3\"] button.diff-prev",
    );
    wait_text(&mut drv, "ada", "#flow-diff", "main v2");
    assert!(
        texts(&mut drv, "ada", "#flow-diff span.file")
            .iter()
            .any(|l| l.contains("main v3")),
        "v2 -> v3"
    );

    // Rolled back in the page to v1 (as v4): the next call takes the old path.
    until_live(&gw, "v4", || {
        click(
            &mut drv,
            "ada",
            "#flow-versions tr[data-version=\"1\"] button.rollback",
        );
        wait_text(&mut drv, "ada", "#flow-status", "Rolled back: v4");
    });
    wait_text(
        &mut drv,
        "ada",
        "#flow-versions tr[data-version=\"4\"] .status",
        "published",
    );
    let row = texts(&mut drv, "ada", "#flow-versions tr[data-version=\"4\"] td");
    assert_eq!(
        (row[1].as_str(), row[2].as_str(), row[5].as_str()),
        ("published", "ada", "v1"),
        "{row:?}"
    );
    wait_text(&mut drv, "ada", "#flow-loaded", "Editing main from v4");
    let evs = call_pressing_one(&gw);
    assert_eq!(nodes(&evs), ["menu", "done"], "{}", dump(&evs));
    assert_eq!(
        prompts(&evs),
        ["en/main-menu", "en/goodbye"],
        "{}",
        dump(&evs)
    );
    assert_eq!(find(&evs, "flow_started").data_str("version"), "v4");

    // The list says so.
    drv.cmd(
        json!({"op": "go", "page": "ada", "hash": "#flows"}),
        PAGE_WAIT,
    );
    wait_text(
        &mut drv,
        "ada",
        "#flows tr[data-flow=\"main\"] .published",
        "v4",
    );
    drop(drv);
    drop(chromium);
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}
