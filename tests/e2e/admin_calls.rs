//! Issue 11, the admin console's Calls pages end to end, in headless
//! Debian `chromium` (driven by `tests/driver/calls.mjs`, playwright-core
//! over CDP) against the real gateway, PostgreSQL and SIPp.
//!
//! A SIPp caller with a number plays a tone through a menu, presses 1 and
//! is hung up on; the call leaves a stereo recording. An admin signs in on
//! /admin, searches the Calls page by the caller's number (the filter is
//! kept in the URL), opens the call: its page has the caller, the IVR path
//! and every event of the call's timeline; the recording's two waveforms
//! are drawn; the audio element plays (not paused, its time advancing) and
//! its duration is the recording row's, within 0.2 s; the playhead follows.

use std::time::{Duration, Instant};

use hotline_e2e::browser::{self, AgentDriver, Chromium};
use hotline_e2e::events::dump;
use hotline_e2e::flows::flows_dir;
use hotline_e2e::rtp::{self, CallerAudio};
use hotline_e2e::script::{Step, scripted_caller};
use hotline_e2e::{Gateway, poll_until};
use serde_json::{Value, json};

const TOKEN: &str = "admin-calls-e2e-admin-token";
const PASSWORD: &str = "correct horse battery staple";
const CALLER: &str = "+15550100077";
/// The caller who leaves a voicemail.
const VM_CALLER: &str = "+15550100078";
const PAGE_WAIT: Duration = Duration::from_secs(40);
const CALL_END_WAIT: Duration = Duration::from_secs(20);

/// A menu whose key 1 thanks the caller and hangs up, and key 2 takes a
/// voicemail of at most 5 s.
const FLOW: &str = "# e2e: the admin console's Calls pages\n\
flow: main\n\
languages: [en]\n\
start: menu\n\
nodes:\n  \
  menu:\n    \
    type: menu\n    \
    prompt: main-menu\n    \
    options:\n      \
      1: thanks\n      \
      2: message\n    \
    timeout: 20s\n    \
    retries: 0\n    \
    on_exhausted: thanks\n  \
  thanks:\n    \
    type: hangup\n    \
    prompt: thank-you\n    \
    outcome: self_served\n  \
  message:\n    \
    type: voicemail\n    \
    prompt: leave-message\n    \
    max_seconds: 5\n    \
    next: message-thanks\n  \
  message-thanks:\n    \
    type: hangup\n    \
    prompt: thank-you\n";

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

fn items(drv: &mut AgentDriver, page: &str, selector: &str, attrs: &[&str]) -> Vec<Value> {
    let r = drv.cmd(
        json!({"op": "texts", "page": page, "selector": selector, "attrs": attrs}),
        PAGE_WAIT,
    );
    r["items"].as_array().cloned().unwrap_or_default()
}

fn wait_selector(drv: &mut AgentDriver, page: &str, selector: &str) {
    drv.cmd(
        json!({"op": "waitSelector", "page": page, "selector": selector}),
        PAGE_WAIT,
    );
}

fn audio(drv: &mut AgentDriver) -> Value {
    drv.cmd(
        json!({"op": "audio", "page": "ada", "selector": "#call-audio"}),
        PAGE_WAIT,
    )
}

fn canvases(drv: &mut AgentDriver) -> Vec<Value> {
    let r = drv.cmd(
        json!({"op": "canvases", "page": "ada", "selector": "#call-recording canvas.waveform"}),
        PAGE_WAIT,
    );
    r["items"].as_array().cloned().unwrap_or_default()
}

/// A caller from `number` playing a tone, pressing `key` in the menu and
/// waiting for the gateway's BYE: the call's events once it has ended.
fn call_pressing(gw: &Gateway, number: &str, key: char) -> Vec<hotline_e2e::events::Event> {
    let pcap = gw.dir().join(format!("caller-{key}.pcap"));
    rtp::write_caller_pcap(
        &pcap,
        &[CallerAudio::Tone {
            hz: 440.0,
            ms: 20_000,
        }],
    );
    let run = scripted_caller(
        gw,
        number,
        &[
            Step::Audio(pcap.to_str().expect("utf-8 temp path").to_owned()),
            Step::Pause(2500),
            Step::Info(key),
            Step::AwaitBye(30_000),
        ],
    )
    .timeout(Duration::from_secs(75))
    .run();
    run.assert_success();
    gw.wait_call_ended(&run.call_id, CALL_END_WAIT)
}

#[test]
fn an_admin_finds_a_call_opens_it_and_plays_its_recording() {
    let test = "an_admin_finds_a_call_opens_it_and_plays_its_recording";
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
    let flows = flows_dir("admin_calls_flows", FLOW);
    let token_file = flows.path().join("admin-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let gw = Gateway::start_with(
        "admin_calls",
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

    // The call: a tone all along, 1 after the menu starts; the gateway hangs up.
    let events = call_pressing(&gw, CALLER, '1');
    let kinds: Vec<String> = events.iter().map(|e| e.kind().to_owned()).collect();
    assert!(kinds.iter().any(|k| k == "recording"), "{}", dump(&events));

    // Its record, complete, with the recording row (what the page must match).
    let (call_id, detail) = poll_until(Duration::from_secs(15), || {
        let (code, v) = api(&gw, "GET", "/api/calls?caller=%2B15550100077", None);
        assert_eq!(code, 200, "{v}");
        let c = v["calls"].as_array()?.first()?.clone();
        if c["complete"] != true || c["recorded"] != true {
            return None;
        }
        let id = c["id"].as_str()?.to_owned();
        let (code, d) = api(&gw, "GET", &format!("/api/calls/{id}"), None);
        assert_eq!(code, 200, "{d}");
        (d["timeline"].as_array()?.len() == events.len()).then_some((id, d))
    })
    .unwrap_or_else(|| {
        panic!(
            "no complete recorded call from {CALLER}:\n{}",
            gw.log_tail()
        )
    });
    let rec_ms = detail["recording"]["duration_ms"]
        .as_f64()
        .expect("recording duration");
    assert!(rec_ms > 2000.0, "a recording of {rec_ms} ms");
    eprintln!(
        "call {call_id}: recording {rec_ms} ms, {} events",
        events.len()
    );

    // A second caller leaves a voicemail (2 in the menu, then 5 s of tone).
    let vm_events = call_pressing(&gw, VM_CALLER, '2');
    assert!(
        vm_events.iter().any(|e| e.kind() == "voicemail"),
        "{}",
        dump(&vm_events)
    );
    let vm = poll_until(Duration::from_secs(15), || {
        let (code, v) = api(&gw, "GET", "/api/voicemails", None);
        assert_eq!(code, 200, "{v}");
        v["voicemails"]
            .as_array()?
            .iter()
            .find(|x| x["caller"] == VM_CALLER)
            .cloned()
    })
    .unwrap_or_else(|| panic!("no voicemail from {VM_CALLER}:\n{}", gw.log_tail()));
    let vm_id = vm["id"].as_str().expect("voicemail id").to_owned();
    assert_eq!(vm["handled"], false, "{vm}");

    let mic = gw.dir().join("mic.wav");
    browser::write_tone_wav(&mic, 440.0, 1, 1000.0);
    let chromium = Chromium::start(&mic, gw.dir());
    let base = format!("http://127.0.0.1:{}", gw.http_port);
    let mut drv = AgentDriver::start_script("calls.mjs", &base, &chromium);

    // Ada signs in on the Calls page and searches by the caller's number.
    drv.cmd(
        json!({"op": "open", "page": "ada", "user": "ada", "password": PASSWORD, "hash": "#calls"}),
        PAGE_WAIT,
    );
    wait_selector(&mut drv, "ada", "#calls-search");
    drv.cmd(
        json!({"op": "fill", "page": "ada", "selector": "#calls-caller", "value": CALLER}),
        PAGE_WAIT,
    );
    drv.cmd(
        json!({"op": "click", "page": "ada", "selector": "#calls-submit"}),
        PAGE_WAIT,
    );
    let row_sel = format!("#calls-results tr[data-call=\"{call_id}\"]");
    wait_selector(&mut drv, "ada", &row_sel);
    let rows = items(&mut drv, "ada", "#calls-results tbody tr", &["data-call"]);
    assert_eq!(rows.len(), 1, "only this caller's call: {rows:?}");
    let cells = items(&mut drv, "ada", &format!("{row_sel} td"), &[]);
    let cell = |i: usize| cells[i]["text"].as_str().unwrap_or_default().to_owned();
    assert_eq!(cell(1), CALLER, "{cells:?}");
    assert_eq!(cell(3), "self_served", "{cells:?}");
    // The search is in the URL: it can be bookmarked.
    let hash = drv.cmd(json!({"op": "location", "page": "ada"}), PAGE_WAIT)["hash"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        hash.starts_with("#calls/") && hash.contains("caller=%2B15550100077"),
        "{hash}"
    );

    // A time range in the browser's zone: from an hour ago finds it, up
    // to an hour ago does not; the range is sent with the zone's offset.
    let local = |drv: &mut AgentDriver, minutes: i64| {
        drv.cmd(
            json!({"op": "localTime", "page": "ada", "minutes": minutes}),
            PAGE_WAIT,
        )["value"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let hour_ago = local(&mut drv, -60);
    drv.cmd(
        json!({"op": "fill", "page": "ada", "selector": "#calls-from", "value": hour_ago}),
        PAGE_WAIT,
    );
    drv.cmd(
        json!({"op": "click", "page": "ada", "selector": "#calls-submit"}),
        PAGE_WAIT,
    );
    drv.cmd(
        json!({"op": "waitText", "page": "ada", "selector": "#calls-status", "text": "Page 1"}),
        PAGE_WAIT,
    );
    wait_selector(&mut drv, "ada", &row_sel);
    let hash = drv.cmd(json!({"op": "location", "page": "ada"}), PAGE_WAIT)["hash"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let from_param = format!("from={}", hour_ago.replace(':', "%3A"));
    assert!(
        hash.contains(&from_param) && hash.contains("caller=%2B15550100077"),
        "{hash} has {from_param}: the zone's offset follows"
    );
    drv.cmd(
        json!({"op": "fill", "page": "ada", "selector": "#calls-from", "value": ""}),
        PAGE_WAIT,
    );
    drv.cmd(
        json!({"op": "fill", "page": "ada", "selector": "#calls-to", "value": hour_ago}),
        PAGE_WAIT,
    );
    drv.cmd(
        json!({"op": "click", "page": "ada", "selector": "#calls-submit"}),
        PAGE_WAIT,
    );
    drv.cmd(
        json!({"op": "waitText", "page": "ada", "selector": "#calls-status", "text": "No calls match."}),
        PAGE_WAIT,
    );
    drv.cmd(
        json!({"op": "go", "page": "ada", "hash": format!("#calls/caller=%2B15550100077")}),
        PAGE_WAIT,
    );
    wait_selector(&mut drv, "ada", &row_sel);

    // The call's page.
    drv.cmd(
        json!({"op": "go", "page": "ada", "selector": format!("{row_sel} a")}),
        PAGE_WAIT,
    );
    wait_selector(&mut drv, "ada", "#call-timeline");
    let caller = items(&mut drv, "ada", "#call-caller", &[]);
    assert!(
        caller[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains(CALLER),
        "{caller:?}"
    );
    let path = items(&mut drv, "ada", "#call-ivr-path li", &[]);
    let path: Vec<&str> = path.iter().filter_map(|p| p["text"].as_str()).collect();
    assert_eq!(path, ["menu", "thanks"], "the IVR path");
    // Every event, in order, with its kind.
    let shown = items(&mut drv, "ada", "#call-timeline tbody tr", &["data-kind"]);
    let shown: Vec<&str> = shown
        .iter()
        .filter_map(|r| r["data-kind"].as_str())
        .collect();
    assert_eq!(shown, kinds, "the timeline is the call's events");
    let nodes = items(
        &mut drv,
        "ada",
        "#call-timeline tr[data-kind=\"node_entered\"] td:nth-child(3)",
        &[],
    );
    assert!(
        nodes.iter().any(|n| n["text"] == "thanks"),
        "node_entered rows name their node: {nodes:?}"
    );
    let shown_ms = items(&mut drv, "ada", "#call-recording", &["data-duration-ms"]);
    assert_eq!(
        shown_ms[0]["data-duration-ms"].as_str(),
        Some(rec_ms.to_string().as_str()),
        "{shown_ms:?}"
    );

    // Both waveforms drawn from non-empty peaks.
    wait_selector(
        &mut drv,
        "ada",
        "#call-recording canvas.waveform[data-channel=\"agent\"]",
    );
    let drawn = canvases(&mut drv);
    let channels: Vec<&str> = drawn.iter().filter_map(|c| c["channel"].as_str()).collect();
    assert_eq!(channels, ["caller", "agent"], "{drawn:?}");
    for c in &drawn {
        assert!(c["peaks"].as_u64().unwrap_or(0) > 100, "peaks: {c}");
        assert!(c["drawn"].as_u64().unwrap_or(0) > 500, "drawn: {c}");
    }

    // The recording plays, with the row's duration.
    let meta = poll_until(Duration::from_secs(15), || {
        let a = audio(&mut drv);
        a["duration"].as_f64().map(|_| a)
    })
    .unwrap_or_else(|| panic!("no metadata: {}", audio(&mut drv)));
    let duration = meta["duration"].as_f64().unwrap();
    eprintln!("audio element: duration {duration:.3} s vs recording {rec_ms} ms");
    assert!(
        (duration - rec_ms / 1000.0).abs() <= 0.2,
        "audio duration {duration} s vs the recording row's {rec_ms} ms"
    );
    drv.cmd(
        json!({"op": "play", "page": "ada", "selector": "#call-audio"}),
        PAGE_WAIT,
    );
    let t0 = Instant::now();
    let first = poll_until(Duration::from_secs(10), || {
        let a = audio(&mut drv);
        (a["paused"] == false && a["currentTime"].as_f64().unwrap_or(0.0) > 0.2).then_some(a)
    })
    .unwrap_or_else(|| panic!("not playing: {}\n{}", audio(&mut drv), drv.log_tail(40)));
    let t1 = first["currentTime"].as_f64().unwrap();
    let later = poll_until(Duration::from_secs(10), || {
        let a = audio(&mut drv);
        (a["currentTime"].as_f64().unwrap_or(0.0) > t1 + 0.3).then_some(a)
    })
    .unwrap_or_else(|| panic!("time does not advance: {}", audio(&mut drv)));
    assert_eq!(later["error"], Value::Null, "{later}");
    eprintln!(
        "playing: currentTime {t1:.2} → {:.2} s within {:?}",
        later["currentTime"].as_f64().unwrap(),
        t0.elapsed()
    );
    // The playhead follows it on both waveforms.
    let heads = poll_until(Duration::from_secs(5), || {
        let c = canvases(&mut drv);
        c.iter()
            .all(|c| c["playhead"].as_u64().unwrap_or(0) > 10)
            .then_some(c)
    });
    assert!(heads.is_some(), "no playhead: {:?}", canvases(&mut drv));

    // Listening was audited, as Ada from the browser.
    let (code, log) = api(&gw, "GET", "/api/audit?limit=50", None);
    assert_eq!(code, 200, "{log}");
    let subject = format!("call {call_id}");
    assert!(
        log["entries"].as_array().into_iter().flatten().any(|e| {
            e["action"] == "recording_listen"
                && e["actor"] == "ada"
                && e["subject"] == subject.as_str()
        }),
        "{log}"
    );

    // Pages of one call, newest first: Next, then Back (the cursor stack).
    drv.cmd(
        json!({"op": "go", "page": "ada", "hash": "#calls/limit=1"}),
        PAGE_WAIT,
    );
    let vm_row = format!("#calls-results tr[data-call=\"{vm_id}\"]");
    wait_selector(&mut drv, "ada", &vm_row);
    drv.cmd(
        json!({"op": "click", "page": "ada", "selector": "#calls-next"}),
        PAGE_WAIT,
    );
    wait_selector(&mut drv, "ada", &row_sel);
    assert_eq!(
        items(&mut drv, "ada", "#calls-results tbody tr", &[]).len(),
        1,
        "one call a page"
    );
    drv.cmd(
        json!({"op": "click", "page": "ada", "selector": "#calls-back"}),
        PAGE_WAIT,
    );
    wait_selector(&mut drv, "ada", &vm_row);

    // The Voicemail page: the message, playable, then marked handled.
    drv.cmd(
        json!({"op": "go", "page": "ada", "hash": "#voicemail"}),
        PAGE_WAIT,
    );
    let vm_sel = format!("#voicemails tr[data-voicemail=\"{vm_id}\"]");
    wait_selector(&mut drv, "ada", &vm_sel);
    let cells = items(&mut drv, "ada", &format!("{vm_sel} td"), &[]);
    assert!(
        cells[1]["text"]
            .as_str()
            .unwrap_or_default()
            .contains(VM_CALLER),
        "{cells:?}"
    );
    let vm_audio = format!("{vm_sel} audio");
    drv.cmd(
        json!({"op": "play", "page": "ada", "selector": vm_audio}),
        PAGE_WAIT,
    );
    let state = |drv: &mut AgentDriver| {
        drv.cmd(
            json!({"op": "audio", "page": "ada", "selector": vm_audio}),
            PAGE_WAIT,
        )
    };
    let playing = poll_until(Duration::from_secs(10), || {
        let a = state(&mut drv);
        (a["paused"] == false && a["currentTime"].as_f64().unwrap_or(0.0) > 0.2).then_some(a)
    })
    .unwrap_or_else(|| panic!("voicemail not playing: {}", state(&mut drv)));
    let vm_secs = vm["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0;
    let d = playing["duration"].as_f64().unwrap_or(0.0);
    assert!(
        (d - vm_secs).abs() <= 0.2 && vm_secs > 1.0,
        "voicemail element {d} s vs its row's {vm_secs} s"
    );
    drv.cmd(
        json!({"op": "click", "page": "ada", "selector": format!("{vm_sel} input.handled")}),
        PAGE_WAIT,
    );
    let handled_row = format!("#voicemails tr.handled[data-voicemail=\"{vm_id}\"]");
    wait_selector(&mut drv, "ada", &handled_row);
    // It persists: listed as handled by Ada, no longer among the unhandled.
    let (_, v) = api(&gw, "GET", "/api/voicemails?handled=true", None);
    assert_eq!(v["voicemails"][0]["id"], vm_id.as_str(), "{v}");
    assert_eq!(v["voicemails"][0]["handled_by"], "ada", "{v}");
    drv.cmd(
        json!({"op": "go", "page": "ada", "hash": "#calls"}),
        PAGE_WAIT,
    );
    wait_selector(&mut drv, "ada", "#calls-search");
    drv.cmd(
        json!({"op": "go", "page": "ada", "hash": "#voicemail"}),
        PAGE_WAIT,
    );
    wait_selector(&mut drv, "ada", "#voicemails tbody tr");
    assert!(
        items(&mut drv, "ada", &vm_sel, &[]).is_empty(),
        "a handled voicemail is not listed as not handled"
    );
    drv.cmd(
        json!({"op": "select", "page": "ada", "selector": "#voicemail-filter", "value": "true"}),
        PAGE_WAIT,
    );
    wait_selector(&mut drv, "ada", &handled_row);

    let (_, log) = api(&gw, "GET", "/api/audit?limit=50", None);
    let vm_subject = format!("call {vm_id}");
    for action in ["voicemail_listen", "voicemail_handled"] {
        assert!(
            log["entries"].as_array().into_iter().flatten().any(|e| {
                e["action"] == action && e["actor"] == "ada" && e["subject"] == vm_subject.as_str()
            }),
            "{action}: {log}"
        );
    }
}
