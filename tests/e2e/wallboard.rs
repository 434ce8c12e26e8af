//! Issue 12, "Live: wallboard and supervisor", end to end: the live feed
//! (`GET /api/live`, Server-Sent Events; `/api/live/snapshot`) and the
//! wallboard page (`/admin/wallboard`) in headless Chromium, driven by
//! `tests/driver/admin.mjs`, while real SIPp callers are in the IVR and in
//! a queue.
//!
//! An admin signs in and opens the wallboard before any call. Caller A
//! stays silent at the menu (in the IVR), caller B keys 1 by SIP INFO and
//! waits in `support`, whose only agent is signed out. The feed then lists
//! A at node `ask` and B in `support` with nobody available, and the page
//! shows 1 in the IVR, 1 waiting (red: no agent available) and both calls.
//! Both hang up: the feed empties and its "today so far" (the reports'
//! summary from midnight) counts 2 offered, 1 sent to the queue, 1
//! abandoned in it — and the page's tile says 1 abandoned.

use std::time::Duration;

use hotline_e2e::browser::{self, AgentDriver, Chromium};
use hotline_e2e::script::{Step, scripted_caller};
use hotline_e2e::{Gateway, TempDir, poll_until};
use serde_json::{Value, json};

const TOKEN: &str = "wallboard-e2e-admin-token";
const PASSWORD: &str = "correct horse battery staple";
const PAGE_WAIT: Duration = Duration::from_secs(40);

const FLOW: &str = "\
flow: main
start: ask
nodes:
  ask:
    type: menu
    prompt: main-menu
    timeout: 40s
    retries: 0
    options:
      1: agent
    on_exhausted: agent
  agent:
    type: enqueue
    queue: support
";

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

fn snapshot(gw: &Gateway) -> Value {
    let (code, v) = api(gw, "GET", "/api/live/snapshot", None);
    assert_eq!(code, 200, "snapshot: {v}");
    v
}

fn cmd(drv: &mut AgentDriver, c: Value) -> Value {
    drv.cmd(c, PAGE_WAIT)
}

fn wait_text(drv: &mut AgentDriver, selector: &str, text: &str) {
    cmd(
        drv,
        json!({"op": "waitText", "page": "ada", "selector": selector, "text": text}),
    );
}

#[test]
fn the_wallboard_shows_callers_in_the_ivr_and_waiting_then_today() {
    let test = "the_wallboard_shows_callers_in_the_ivr_and_waiting_then_today";
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
    let work = TempDir::new("wallboard_work");
    let token_file = work.path().join("admin-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let flows = hotline_e2e::flows::flows_dir("wallboard_flows", FLOW);
    let gw = Gateway::start_with(
        "wallboard",
        &[
            "--entry-flow",
            "main",
            "--flows-dir",
            flows.path().to_str().expect("UTF-8 path"),
            "--admin-token-file",
            token_file.to_str().expect("UTF-8 path"),
        ],
    );
    for (path, body) in [
        (
            "/api/agents",
            json!({"id": "ada", "name": "Ada Admin", "password": PASSWORD, "role": "admin"}),
        ),
        (
            "/api/agents",
            json!({"id": "a1", "name": "Al Agent", "password": PASSWORD}),
        ),
        (
            "/api/queues",
            json!({"name": "support", "max_wait_secs": 90, "service_level_secs": 30, "members": ["a1"]}),
        ),
    ] {
        let (code, v) = api(&gw, "POST", path, Some(body));
        assert_eq!(code, 201, "POST {path}: {v}");
    }
    let (_, q) = api(&gw, "GET", "/api/queues/support", None);
    assert_eq!(q["service_level_secs"], 30, "the queue setting: {q}");

    // The wallboard is open before any call.
    let mic = gw.dir().join("mic.wav");
    browser::write_tone_wav(&mic, 440.0, 1, 1000.0);
    let chromium = Chromium::start(&mic, gw.dir());
    let base = format!("http://127.0.0.1:{}", gw.http_port);
    let mut drv = AgentDriver::start_script("admin.mjs", &base, &chromium);
    cmd(
        &mut drv,
        json!({"op": "open", "page": "ada", "user": "ada", "password": PASSWORD}),
    );
    cmd(
        &mut drv,
        json!({"op": "goto", "page": "ada", "path": "/admin/wallboard"}),
    );
    wait_text(&mut drv, "#wb-status", "Live");
    wait_text(&mut drv, "#t-ivr .n", "0");

    // A stays at the menu; B keys 1 and waits in the queue.
    let a = scripted_caller(&gw, "+8613800000001", &[Step::Pause(14_000), Step::Bye])
        .timeout(Duration::from_secs(60))
        .spawn();
    let b = scripted_caller(
        &gw,
        "+8613800000002",
        &[
            Step::Pause(1_500),
            Step::Info('1'),
            Step::Pause(12_000),
            Step::Bye,
        ],
    )
    .timeout(Duration::from_secs(60))
    .spawn();

    let live = poll_until(Duration::from_secs(20), || {
        let s = snapshot(&gw);
        (s["in_ivr"] == 1 && s["waiting"] == 1).then_some(s)
    })
    .unwrap_or_else(|| panic!("the feed never had one caller in each: {}", snapshot(&gw)));
    let calls = live["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 2, "{live}");
    let by = |caller: &str| -> &Value {
        calls
            .iter()
            .find(|c| c["caller"] == caller)
            .unwrap_or_else(|| panic!("no live call of {caller}: {live}"))
    };
    let ca = by("+8613800000001");
    assert_eq!(
        (
            ca["phase"].as_str(),
            ca["node"].as_str(),
            ca["flow"].as_str()
        ),
        (Some("ivr"), Some("ask"), Some("main")),
        "{ca}"
    );
    let cb = by("+8613800000002");
    assert_eq!(
        (cb["phase"].as_str(), cb["queue"].as_str()),
        (Some("queue"), Some("support")),
        "{cb}"
    );
    let support = live["queues"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["queue"] == "support"))
        .unwrap_or_else(|| panic!("no support queue: {live}"));
    assert_eq!(support["waiting"], 1, "{support}");
    assert_eq!(support["agents_available"], 0, "{support}");
    assert_eq!(support["service_level_secs"], 30, "{support}");
    let a1 = live["agents"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["agent"] == "a1"))
        .unwrap_or_else(|| panic!("no agent a1: {live}"));
    assert_eq!(a1["state"], "offline", "{a1}");
    assert_eq!(live["service_level_target"], 0.8);

    // The page, pushed the same: the tiles and the live calls.
    wait_text(&mut drv, "#t-ivr .n", "1");
    wait_text(&mut drv, "#t-waiting .n", "1");
    let tiles = cmd(
        &mut drv,
        json!({"op": "texts", "page": "ada", "selector": "#t-waiting", "attrs": ["class"]}),
    );
    let class = tiles["items"][0]["class"].as_str().unwrap_or_default();
    assert!(
        class.contains("bad"),
        "callers waiting with no agent available is red: {tiles}"
    );
    let rows = cmd(
        &mut drv,
        json!({"op": "texts", "page": "ada", "selector": "#wb-calls tbody tr", "attrs": ["data-phase"]}),
    );
    let mut phases: Vec<&str> = rows["items"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["data-phase"].as_str())
        .collect();
    phases.sort_unstable();
    assert_eq!(phases, ["ivr", "queue"], "{rows}");
    let text: Vec<&str> = rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["text"].as_str())
        .collect();
    assert!(
        text.iter()
            .any(|t| t.contains("+8613800000001") && t.contains("IVR: ask")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("+8613800000002") && t.contains("support")),
        "{text:?}"
    );

    // Both hang up: the board empties, today's figures count them.
    a.wait().assert_success();
    b.wait().assert_success();
    let after = poll_until(Duration::from_secs(30), || {
        let s = snapshot(&gw);
        let f = &s["today"]["figures"];
        (s["calls_active"] == 0 && f["offered"] == 2 && f["abandoned_in_queue"] == 1).then_some(s)
    })
    .unwrap_or_else(|| panic!("today's figures never counted both: {}", snapshot(&gw)));
    let f = &after["today"]["figures"];
    assert_eq!(f["sent_to_queue"], 1, "{f}");
    assert_eq!(f["answered_by_agent"], 0, "{f}");
    assert_eq!(after["today"]["tz"], "Asia/Shanghai");
    wait_text(&mut drv, "#t-abandoned .n", "1");
    wait_text(&mut drv, "#t-ivr .n", "0");
    wait_text(&mut drv, "#t-waiting .n", "0");

    // Signed out (no cookie, no token): the feed is refused.
    let (code, _) = gw
        .http_request("GET", "/api/live/snapshot", &[], None)
        .expect("request");
    assert_eq!(code, 401);
}
