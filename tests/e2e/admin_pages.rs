//! Issue 11, the admin console's Agents, Queues and Prompts pages end to
//! end, in headless Debian `chromium` (driven by `tests/driver/admin.mjs`,
//! playwright-core over CDP) against the real gateway and PostgreSQL.
//!
//! An admin signs in on /admin, creates an agent and edits it on the Agents
//! page, creates a queue with that agent as its member on the Queues page
//! (the API shows both as typed); on the Prompts page uploads a 44.1 kHz
//! stereo WAV (the file input set with DevTools' `DOM.setFileInputFiles`),
//! and the list shows the prompt with its new duration, stored as 8 kHz
//! mono under the gateway's sounds dir (a copy of the repo's), playable in
//! the page. A supervisor sees the same pages with every change disabled.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hotline_e2e::browser::{self, AgentDriver, Chromium};
use hotline_e2e::{Gateway, TempDir};
use serde_json::{Value, json};

const TOKEN: &str = "admin-pages-e2e-admin-token";
const PASSWORD: &str = "correct horse battery staple";
const PAGE_WAIT: Duration = Duration::from_secs(40);

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

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn cmd(drv: &mut AgentDriver, c: Value) -> Value {
    drv.cmd(c, PAGE_WAIT)
}

fn click(drv: &mut AgentDriver, page: &str, selector: &str) {
    cmd(
        drv,
        json!({"op": "click", "page": page, "selector": selector}),
    );
}

fn fill(drv: &mut AgentDriver, page: &str, selector: &str, value: &str) {
    cmd(
        drv,
        json!({"op": "fill", "page": page, "selector": selector, "value": value}),
    );
}

fn select(drv: &mut AgentDriver, page: &str, selector: &str, value: &str) {
    cmd(
        drv,
        json!({"op": "select", "page": page, "selector": selector, "value": value}),
    );
}

fn wait_text(drv: &mut AgentDriver, page: &str, selector: &str, text: &str) -> String {
    let r = cmd(
        drv,
        json!({"op": "waitText", "page": page, "selector": selector, "text": text}),
    );
    r["text"].as_str().unwrap_or_default().to_owned()
}

fn disabled(drv: &mut AgentDriver, page: &str, selector: &str) -> bool {
    cmd(
        drv,
        json!({"op": "isDisabled", "page": page, "selector": selector}),
    )["disabled"]
        == json!(true)
}

/// A 44.1 kHz stereo 16-bit WAV of `secs` seconds of a 330 Hz tone.
fn write_cd_wav(path: &Path, secs: f64) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create WAV");
    for i in 0..(44_100.0 * secs) as u32 {
        let s = (2.0 * std::f64::consts::PI * 330.0 * f64::from(i) / 44_100.0).sin() * 8000.0;
        w.write_sample(s as i16).unwrap();
        w.write_sample((s / 2.0) as i16).unwrap();
    }
    w.finalize().expect("finalize WAV");
}

#[test]
fn an_admin_manages_agents_queues_and_prompts_in_the_console() {
    let test = "an_admin_manages_agents_queues_and_prompts_in_the_console";
    let Some(_one_at_a_time) = browser::playwright_test(test) else {
        return;
    };
    // The gateway's own sounds dir: uploads must not touch the repo's.
    let work = TempDir::new("admin_pages_work");
    let sounds = work.path().join("sounds");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(hotline_e2e::workspace_root().join("sounds"))
        .arg(&sounds)
        .status()
        .expect("run cp");
    assert!(copied.success(), "copy the sounds dir");
    let token_file = work.path().join("admin-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let gw = Gateway::start_with(
        "admin_pages",
        &[
            "--sounds-dir",
            path_str(&sounds),
            "--admin-token-file",
            path_str(&token_file),
        ],
    );
    for (id, name, role) in [
        ("ada", "Ada Admin", "admin"),
        ("sue", "Sue Supervisor", "supervisor"),
    ] {
        let (code, v) = api(
            &gw,
            "POST",
            "/api/agents",
            Some(json!({ "id": id, "name": name, "password": PASSWORD, "role": role })),
        );
        assert_eq!(code, 201, "create {id}: {v}");
    }

    let mic = gw.dir().join("mic.wav");
    browser::write_tone_wav(&mic, 440.0, 1, 1000.0);
    let chromium = Chromium::start(&mic, gw.dir());
    let base = format!("http://127.0.0.1:{}", gw.http_port);
    let mut drv = AgentDriver::start_script("admin.mjs", &base, &chromium);

    // Agents: Ada creates Carol, then renames her.
    cmd(
        &mut drv,
        json!({"op": "open", "page": "ada", "user": "ada", "password": PASSWORD, "hash": "#agents"}),
    );
    wait_text(
        &mut drv,
        "ada",
        "#agents tr[data-agent=\"sue\"] .role",
        "supervisor",
    );
    fill(&mut drv, "ada", "#agent-new-id", "carol");
    fill(&mut drv, "ada", "#agent-new-name", "Carol Agent");
    fill(&mut drv, "ada", "#agent-new-password", PASSWORD);
    select(&mut drv, "ada", "#agent-new-role", "agent");
    fill(&mut drv, "ada", "#agent-new-skills", "billing, refunds");
    click(&mut drv, "ada", "#agent-create-submit");
    wait_text(&mut drv, "ada", "#agents-status", "Created carol");
    let state = wait_text(
        &mut drv,
        "ada",
        "#agents tr[data-agent=\"carol\"] .state",
        "offline",
    );
    assert_eq!(state, "offline");
    click(
        &mut drv,
        "ada",
        "#agents tr[data-agent=\"carol\"] button.edit",
    );
    fill(&mut drv, "ada", "#agent-edit-name", "Carol Lee");
    fill(&mut drv, "ada", "#agent-edit-skills", "billing");
    click(&mut drv, "ada", "#agent-edit-save");
    wait_text(
        &mut drv,
        "ada",
        "#agents tr[data-agent=\"carol\"] .name",
        "Carol Lee",
    );
    let (code, carol) = api(&gw, "GET", "/api/agents/carol", None);
    assert_eq!(code, 200, "{carol}");
    assert_eq!(carol["name"], "Carol Lee");
    assert_eq!(carol["skills"], json!(["billing"]));
    assert_eq!(carol["role"], "agent");
    assert_eq!(carol["active"], true);
    // A duplicate id: the API's error, inline.
    fill(&mut drv, "ada", "#agent-new-id", "carol");
    fill(&mut drv, "ada", "#agent-new-name", "Another Carol");
    fill(&mut drv, "ada", "#agent-new-password", PASSWORD);
    click(&mut drv, "ada", "#agent-create-submit");
    let err = wait_text(&mut drv, "ada", "#agents-error", "already exists");
    assert!(!err.is_empty());

    // Queues: a round-robin queue with Carol as its member.
    cmd(
        &mut drv,
        json!({"op": "go", "page": "ada", "hash": "#queues"}),
    );
    click(&mut drv, "ada", "#queue-new");
    fill(&mut drv, "ada", "#queue-name", "e2e-billing");
    select(&mut drv, "ada", "#queue-strategy", "round_robin");
    fill(&mut drv, "ada", "#queue-max-wait-secs", "45");
    fill(&mut drv, "ada", "#queue-overflow", "hangup");
    fill(&mut drv, "ada", "#queue-wrap-up-secs", "7");
    fill(
        &mut drv,
        "ada",
        "#queue-issue-skills",
        r#"{"billing.refund": "billing"}"#,
    );
    select(&mut drv, "ada", "#queue-member-pick", "carol");
    click(&mut drv, "ada", "#queue-member-add");
    wait_text(&mut drv, "ada", "#queue-members", "carol");
    click(&mut drv, "ada", "#queue-save");
    wait_text(&mut drv, "ada", "#queues-status", "Created e2e-billing");
    wait_text(
        &mut drv,
        "ada",
        "#queues tr[data-queue=\"e2e-billing\"] .members",
        "carol",
    );
    let (code, q) = api(&gw, "GET", "/api/queues/e2e-billing", None);
    assert_eq!(code, 200, "{q}");
    assert_eq!(q["strategy"], "round_robin", "{q}");
    assert_eq!(q["max_wait_secs"], 45, "{q}");
    assert_eq!(q["overflow"], "hangup", "{q}");
    assert_eq!(q["wrap_up_secs"], 7, "{q}");
    assert_eq!(
        q["issue_skills"],
        json!({"billing.refund": "billing"}),
        "{q}"
    );
    assert_eq!(q["members"], json!(["carol"]), "{q}");

    // Prompts: upload a CD-quality stereo file as en/e2e-upload.
    let upload = work.path().join("e2e upload.wav");
    write_cd_wav(&upload, 2.0);
    cmd(
        &mut drv,
        json!({"op": "go", "page": "ada", "hash": "#prompts"}),
    );
    wait_text(
        &mut drv,
        "ada",
        "#prompts tr[data-prompt=\"main-menu\"] th",
        "main-menu",
    );
    let chosen = cmd(
        &mut drv,
        json!({"op": "setFile", "page": "ada", "selector": "#prompt-file", "path": path_str(&upload)}),
    );
    assert_eq!(chosen["files"][0]["name"], "e2e upload.wav", "{chosen}");
    fill(&mut drv, "ada", "#prompt-lang", "en");
    fill(&mut drv, "ada", "#prompt-name", "e2e-upload");
    click(&mut drv, "ada", "#prompt-upload-submit");
    let status = wait_text(
        &mut drv,
        "ada",
        "#prompt-upload-status",
        "Uploaded en/e2e-upload",
    );
    assert!(status.contains("2.00 s"), "{status}");
    let cell = "#prompts tr[data-prompt=\"e2e-upload\"] td[data-lang=\"en\"]";
    let text = wait_text(&mut drv, "ada", cell, "8000 Hz");
    assert!(text.contains("mono"), "{text}");
    let items = cmd(
        &mut drv,
        json!({"op": "texts", "page": "ada", "selector": cell, "attrs": ["data-duration-ms"]}),
    );
    let shown: i64 = items["items"][0]["data-duration-ms"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap();
    assert!((shown - 2000).abs() <= 20, "page shows {shown} ms");
    // Missing in zh: marked.
    wait_text(
        &mut drv,
        "ada",
        "#prompts tr[data-prompt=\"e2e-upload\"] td[data-lang=\"zh\"]",
        "missing",
    );
    // The browser plays it: its decoded length.
    let played = cmd(
        &mut drv,
        json!({"op": "audioDuration", "page": "ada", "selector": format!("{cell} audio")}),
    );
    let secs = played["duration"].as_f64().unwrap_or(0.0);
    assert!((secs - 2.0).abs() <= 0.02, "audio element: {secs} s");

    let (code, list) = api(&gw, "GET", "/api/prompts", None);
    assert_eq!(code, 200, "{list}");
    let row = list["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "e2e-upload")
        .unwrap_or_else(|| panic!("e2e-upload not listed: {list}"));
    assert_eq!(row["files"]["en"]["sample_rate"], 8000, "{row}");
    assert_eq!(row["files"]["en"]["channels"], 1, "{row}");
    assert_eq!(row["missing"], json!(["zh"]), "{row}");
    let stored = hound::WavReader::open(sounds.join("en/e2e-upload.wav")).expect("stored WAV");
    assert_eq!(
        (stored.spec().sample_rate, stored.spec().channels),
        (8000, 1)
    );
    let (_, audit) = api(&gw, "GET", "/api/audit?limit=50", None);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "ada")
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "agent_create",
        "agent_update",
        "queue_create",
        "prompt_upload",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }

    // A supervisor reads everything and can change nothing.
    cmd(
        &mut drv,
        json!({"op": "open", "page": "sue", "user": "sue", "password": PASSWORD, "hash": "#prompts"}),
    );
    wait_text(
        &mut drv,
        "sue",
        "#prompts tr[data-prompt=\"e2e-upload\"] th",
        "e2e-upload",
    );
    assert!(disabled(&mut drv, "sue", "#prompt-upload-submit"));
    assert!(disabled(&mut drv, "sue", "#prompt-file"));
    cmd(
        &mut drv,
        json!({"op": "go", "page": "sue", "hash": "#agents"}),
    );
    wait_text(
        &mut drv,
        "sue",
        "#agents tr[data-agent=\"carol\"] .name",
        "Carol Lee",
    );
    assert!(disabled(&mut drv, "sue", "#agent-create-submit"));
    cmd(
        &mut drv,
        json!({"op": "go", "page": "sue", "hash": "#queues"}),
    );
    wait_text(
        &mut drv,
        "sue",
        "#queues tr[data-queue=\"e2e-billing\"] .members",
        "carol",
    );
    assert!(disabled(&mut drv, "sue", "#queue-new"));

    // Ada deletes the queue (confirmed) and it is gone.
    cmd(
        &mut drv,
        json!({"op": "go", "page": "ada", "hash": "#queues"}),
    );
    click(
        &mut drv,
        "ada",
        "#queues tr[data-queue=\"e2e-billing\"] button.delete",
    );
    wait_text(&mut drv, "ada", "#queues-status", "Deleted e2e-billing");
    let (code, _) = api(&gw, "GET", "/api/queues/e2e-billing", None);
    assert_eq!(code, 404);
}
