//! Issue 15–17 end to end: the agent's desk in a real browser, at two
//! screen sizes, with the keyboard only.
//!
//! The gateway runs `ivr-flows/main.yaml` (open all day); one agent and the
//! `subscriptions` queue are made through the admin API. A SIPp caller (the
//! seeded "Demo Caller") presses 1 (English), 1 (subscriptions), 3 (refund):
//! issue type `subscription.refund`, queued. Headless Debian `chromium`,
//! driven by `tests/driver/desk.mjs` (playwright-core over CDP), is the
//! agent's page:
//!
//! * the overview lists the queue with the caller waiting and the wait;
//! * the offer card: Answer inside the viewport, unscrolled, at 1280×800
//!   and 390×844; the issue type in words; the lookups as fields, no JSON;
//! * Tab reaches Answer, Hold, Hang up and the wrap-up's controls, each
//!   with a visible focus style; Enter/Space/arrows do the rest; hold is a
//!   state with its own timer; the call's microphone meter moves;
//! * wrap-up: Save is disabled until an outcome is chosen; the code lands in
//!   the `calls` row; the overview then lists the call with its label.
//!
//! Screenshots go to the test's temp dir and to
//! `$CARGO_TARGET_DIR/test-artifacts/agent-desk/` (CI keeps them).
//! A missing `/usr/bin/chromium` or `node` fails the test unless
//! `HOTLINE_ALLOW_SKIP=1` (CI never sets it).

use hotline_e2e::browser::{self, Chromium};
use hotline_e2e::rtp::{self, CallerAudio};
use hotline_e2e::script::{Step, scripted_caller};
use hotline_e2e::{Gateway, TempDir, db, flows, poll_until};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "t0k3n";
const PASSWORD: &str = "correct horse battery";
const AGENT: &str = "ada";
const QUEUE: &str = "subscriptions";
/// A driver command that waits on the page.
const PAGE_WAIT: Duration = Duration::from_secs(40);
const DESKTOP: (u32, u32) = (1280, 800);
const PHONE: (u32, u32) = (390, 844);

// ---------------------------------------------------------------- driver

/// `tests/driver/desk.mjs`, as `browser::AgentDriver` runs `agents.mjs`:
/// one JSON command a line in, one `REPLY {json}` line back.
struct DeskDriver {
    child: Child,
    stdin: Option<ChildStdin>,
    replies: mpsc::Receiver<Value>,
    log: Arc<Mutex<Vec<String>>>,
    next_id: u64,
}

impl DeskDriver {
    fn start(base: &str, browser: &Chromium) -> DeskDriver {
        let mut child = Command::new("node")
            .arg(browser::driver_dir().join("desk.mjs"))
            .arg(base)
            .arg(&browser.cdp)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start node: {e}"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, replies) = mpsc::channel();
        let stdout = child.stdout.take().expect("driver stdout");
        let stderr = child.stderr.take().expect("driver stderr");
        let out_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(j) = line.strip_prefix("REPLY ") {
                    let v = serde_json::from_str(j)
                        .unwrap_or_else(|e| json!({"ok": false, "error": format!("{j}: {e}")}));
                    let _ = tx.send(v);
                } else {
                    out_log.lock().unwrap().push(line);
                }
            }
        });
        let err_log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                err_log.lock().unwrap().push(format!("STDERR {line}"));
            }
        });
        let stdin = child.stdin.take();
        DeskDriver {
            child,
            stdin,
            replies,
            log,
            next_id: 1,
        }
    }

    fn log_tail(&self, max: usize) -> String {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(max)..].join("\n")
    }

    /// Runs `cmd`, panicking with the driver's log unless it succeeds.
    fn cmd(&mut self, mut cmd: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        cmd["id"] = json!(id);
        let stdin = self.stdin.as_mut().expect("driver stdin");
        stdin
            .write_all(format!("{cmd}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write to the driver");
        let deadline = Instant::now() + PAGE_WAIT + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.replies.recv_timeout(left) {
                Ok(v) if v["id"] == json!(id) => {
                    if v["ok"] == json!(true) {
                        return v;
                    }
                    panic!("{cmd} failed: {v}\n--- driver ---\n{}", self.log_tail(60));
                }
                Ok(_) => continue,
                Err(_) => panic!("{cmd}: no reply\n--- driver ---\n{}", self.log_tail(60)),
            }
        }
    }
}

impl Drop for DeskDriver {
    fn drop(&mut self) {
        drop(self.stdin.take()); // EOF: the driver exits on its own
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- helpers

fn admin(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> Value {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let body = body.map(|b| b.to_string());
    let (code, text) = gw
        .http_request(method, path, &[("Authorization", &auth)], body.as_deref())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert!(
        (200..300).contains(&code),
        "{method} {path} → {code}: {text}"
    );
    if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    }
}

/// Where CI keeps screenshots: `$CARGO_TARGET_DIR/test-artifacts/agent-desk/`
/// (the target dir is found from this test binary when the variable is unset).
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // <target>/debug/deps/agent_desk-…
            std::env::current_exe()
                .ok()
                .and_then(|e| e.ancestors().nth(3).map(Path::to_path_buf))
        })
        .expect("a target dir");
    let dir = target.join("test-artifacts").join("agent-desk");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A screenshot of the viewport, into `tmp` and the artifacts dir.
fn screenshot(drv: &mut DeskDriver, tmp: &Path, name: &str) -> PathBuf {
    let path = tmp.join(name);
    drv.cmd(json!({"op": "screenshot", "path": path}));
    let kept = artifacts_dir().join(name);
    std::fs::copy(&path, &kept).unwrap_or_else(|e| panic!("copy {name}: {e}"));
    eprintln!("screenshot {}", kept.display());
    kept
}

fn viewport(drv: &mut DeskDriver, (w, h): (u32, u32)) {
    drv.cmd(json!({"op": "viewport", "width": w, "height": h}));
}

/// #id lies wholly inside the viewport, and the page is not scrolled.
fn assert_in_view(drv: &mut DeskDriver, id: &str, size: (u32, u32)) -> Value {
    let b = drv.cmd(json!({"op": "box", "target": id}));
    let f = |k: &str| b[k].as_f64().unwrap_or(f64::NAN);
    assert_eq!(b["visible"], true, "#{id} at {size:?}: {b}");
    assert_eq!(f("scrollY"), 0.0, "the page is not scrolled: {b}");
    assert_eq!(
        (f("vw"), f("vh")),
        (f64::from(size.0), f64::from(size.1)),
        "{b}"
    );
    assert!(
        f("top") >= 0.0 && f("left") >= 0.0 && f("bottom") <= f("vh") && f("right") <= f("vw"),
        "#{id} is not inside the {size:?} viewport without scrolling: {b}"
    );
    b
}

/// Tab (from nothing focused) reaches #id, and the focus shows: an outline
/// or a box shadow, and `:focus-visible`.
fn tab_to(drv: &mut DeskDriver, id: &str) -> Value {
    let r = drv.cmd(json!({"op": "tabTo", "target": id}));
    let f = &r["focus"];
    assert_eq!(f["id"], id, "{r}");
    let outline = f["outlineStyle"].as_str().unwrap_or("none") != "none"
        && f["outlineWidth"].as_str().unwrap_or("0px") != "0px";
    let shadow = f["boxShadow"].as_str().unwrap_or("none") != "none";
    assert!(outline || shadow, "#{id} has focus but shows none: {r}");
    assert_eq!(f["focusVisible"], true, "#{id}: {r}");
    eprintln!("Tab ×{} → #{id} ({})", r["presses"], f["outlineStyle"]);
    r
}

fn page_value(drv: &mut DeskDriver, expr: &str) -> Value {
    drv.cmd(json!({"op": "evaluate", "expr": expr}))["value"].clone()
}

// ---------------------------------------------------------------- the test

#[test]
fn agent_desk_overview_offer_layout_and_keyboard_only_call() {
    let test = "agent_desk_overview_offer_layout_and_keyboard_only_call";
    if let Some(why) = browser::missing_browser_tools() {
        assert!(
            std::env::var_os("HOTLINE_ALLOW_SKIP").is_some_and(|v| v == "1"),
            "{test} needs a browser: {why} (set HOTLINE_ALLOW_SKIP=1 to skip instead)"
        );
        eprintln!("SKIPPED {test}: {why} (HOTLINE_ALLOW_SKIP=1)");
        return;
    }
    if !hotline_e2e::require_tool("sipp", "apt-get install sip-tester", test) {
        return;
    }

    // The gateway, one agent, one queue (no demo queues or agents).
    let flows = flows::flows_dir(
        "agent_desk_flows",
        &flows::main_flow_with_hours("00:00-24:00"),
    );
    let gw = Gateway::start_with(
        "agent_desk",
        &[
            "--entry-flow",
            "main",
            "--flows-dir",
            flows.path().to_str().expect("utf-8 temp path"),
            "--admin-token",
            ADMIN_TOKEN,
        ],
    );
    gw.seed_demo();
    for q in admin(&gw, "GET", "/api/queues", None)
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = q["name"].as_str().expect("queue name");
        admin(&gw, "DELETE", &format!("/api/queues/{name}"), None);
    }
    for a in admin(&gw, "GET", "/api/agents", None)
        .as_array()
        .into_iter()
        .flatten()
    {
        let id = a["id"].as_str().expect("agent id");
        admin(&gw, "DELETE", &format!("/api/agents/{id}"), None);
    }
    admin(
        &gw,
        "POST",
        "/api/agents",
        Some(json!({"id": AGENT, "name": "Ada Agent", "password": PASSWORD})),
    );
    admin(
        &gw,
        "POST",
        "/api/queues",
        Some(
            json!({"name": QUEUE, "strategy": "longest_idle", "offer_timeout_secs": 60,
                    "wrap_up_secs": 120, "max_wait_secs": 300, "members": [AGENT]}),
        ),
    );

    let tmp = TempDir::new("agent_desk_shots");
    assert!(
        browser::ensure_driver(),
        "npm install of playwright-core in {}",
        browser::driver_dir().display()
    );
    let mic = gw.dir().join("agent-mic.wav");
    browser::write_tone_wav(&mic, 1000.0, 60, 12_000.0);
    let chromium = Chromium::start(&mic, gw.dir());
    let mut drv = DeskDriver::start(&format!("http://127.0.0.1:{}", gw.http_port), &chromium);

    // The agent logs in (not available yet) at desktop size.
    drv.cmd(json!({"op": "open", "agent": AGENT, "password": PASSWORD,
                   "width": DESKTOP.0, "height": DESKTOP.1}));

    // A caller with a subscription refund question reaches the queue.
    let pcap = gw.dir().join("caller.pcap");
    rtp::write_caller_pcap(
        &pcap,
        &[CallerAudio::Tone {
            hz: 440.0,
            ms: 60_000,
        }],
    );
    let sipp = scripted_caller(
        &gw,
        "sipp",
        &[
            Step::Audio(pcap.to_str().expect("utf-8 temp path").to_owned()),
            Step::Pause(1000),
            Step::Info('1'), // English
            Step::Pause(1500),
            Step::Info('1'), // subscriptions
            Step::Pause(1500),
            Step::Info('3'), // refund → queue `subscriptions`
            Step::AwaitBye(90_000),
        ],
    )
    .timeout(Duration::from_secs(120))
    .spawn();
    let sip_call_id = sipp.call_id().to_owned();

    // Overview: the queue, one caller waiting, a wait that has begun.
    let ov = drv.cmd(
        json!({"op": "waitQueue", "queue": QUEUE, "waiting": 1, "longestOver": 0,
                            "timeout": 30_000}),
    );
    eprintln!("overview: {ov}");
    let q = &ov["queues"][0];
    assert_eq!(q["name"], QUEUE, "{ov}");
    assert_eq!(q["waiting"], 1, "{ov}");
    assert!(q["longestS"].as_u64().unwrap_or(0) > 0, "{ov}");
    assert_eq!(ov["calls"], json!([]), "no calls yet today: {ov}");
    screenshot(&mut drv, tmp.path(), "01-overview-1280x800.png");
    viewport(&mut drv, PHONE);
    screenshot(&mut drv, tmp.path(), "02-overview-390x844.png");
    viewport(&mut drv, DESKTOP);

    // Available: the offer card.
    drv.cmd(json!({"op": "available"}));
    let offer = drv.cmd(json!({"op": "waitOffer", "timeout": 30_000}));
    eprintln!("offer card: {offer}");
    assert_eq!(offer["issueCode"], "subscription.refund", "{offer}");
    let issue = offer["issue"].as_str().unwrap_or_default();
    assert_eq!(
        issue, "Subscription › Refund",
        "the issue type in words: {offer}"
    );
    let text = offer["text"].as_str().unwrap_or_default();
    assert!(
        !text.contains("subscription.refund"),
        "the dotted code is not shown: {text}"
    );
    for raw in ["{", "}", "\":", "[object", "null"] {
        assert!(
            !text.contains(raw),
            "raw data ({raw:?}) on the card: {text}"
        );
    }
    assert_eq!(offer["preformatted"], 0, "{offer}");
    let headings: Vec<String> = offer["headings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h.as_str().map(str::to_lowercase))
        .collect();
    assert!(
        !headings.iter().any(|h| h.contains("vars")),
        "no variables dump: {headings:?}"
    );
    let fields = offer["fields"].as_array().cloned().unwrap_or_default();
    assert!(
        fields.contains(&json!(["Customer", "Demo Caller"])),
        "the lookup's customer as a readable field: {fields:?}"
    );
    assert_eq!(
        offer["focused"], "answer",
        "the offer puts focus on Answer: {offer}"
    );

    assert_in_view(&mut drv, "answer", DESKTOP);
    screenshot(&mut drv, tmp.path(), "03-offer-1280x800.png");
    viewport(&mut drv, PHONE);
    let phone_box = assert_in_view(&mut drv, "answer", PHONE);
    eprintln!("Answer at 390×844: {phone_box}");
    screenshot(&mut drv, tmp.path(), "04-offer-390x844.png");

    // Keyboard only from here: Tab to Answer, Enter.
    tab_to(&mut drv, "answer");
    drv.cmd(json!({"op": "press", "key": "Enter"}));
    drv.cmd(json!({"op": "waitSelector", "selector": "#call-status[data-status=\"connected\"]"}));
    // The microphone meter moves with the browser's (fake) microphone tone.
    let level = drv.cmd(json!({"op": "waitFor",
        "expr": "document.getElementById('call-mic-level').value > 0.01 && document.getElementById('call-mic-level').value"}));
    eprintln!("call mic level: {}", level["value"]);

    // Hold: a state with its own timer; Enter again resumes.
    tab_to(&mut drv, "hold");
    drv.cmd(json!({"op": "press", "key": "Enter"}));
    drv.cmd(json!({"op": "waitSelector", "selector": "#hold-state"}));
    let held = drv.cmd(json!({"op": "waitFor",
        "expr": "document.getElementById('hold-timer').textContent !== '0:00' && document.getElementById('hold-state').innerText"}));
    let held_text = held["value"].as_str().unwrap_or_default().to_owned();
    assert!(held_text.starts_with("On hold 0:0"), "hold state: {held}");
    assert_eq!(
        page_value(
            &mut drv,
            "document.getElementById('hold').getAttribute('aria-pressed')"
        ),
        "true"
    );
    screenshot(&mut drv, tmp.path(), "05-on-hold-390x844.png");
    drv.cmd(json!({"op": "press", "key": "Enter"})); // focus stayed on Hold: resume
    drv.cmd(json!({"op": "waitSelector", "selector": "#hold-state", "state": "hidden"}));

    // Hang up with Space.
    tab_to(&mut drv, "hangup");
    drv.cmd(json!({"op": "press", "key": " "}));
    drv.cmd(json!({"op": "waitSelector", "selector": "#wrapup:not([hidden])"}));

    // Wrap-up: nothing chosen, Save disabled until an outcome is.
    assert_eq!(
        page_value(
            &mut drv,
            "document.getElementById('wrapup-disposition').value"
        ),
        ""
    );
    assert_eq!(
        page_value(
            &mut drv,
            "document.getElementById('wrapup-submit').disabled"
        ),
        true
    );
    let options = page_value(
        &mut drv,
        "[...document.getElementById('wrapup-disposition').options].filter((o) => o.value).map((o) => o.textContent)",
    );
    assert!(
        options
            .as_array()
            .is_some_and(|o| o.contains(&json!("Refund issued"))
                && !o
                    .iter()
                    .any(|x| x.as_str().is_some_and(|s| s.contains('_')))),
        "outcomes in words: {options}"
    );
    screenshot(&mut drv, tmp.path(), "06-wrapup-390x844.png");
    viewport(&mut drv, DESKTOP);
    tab_to(&mut drv, "wrapup-disposition");
    drv.cmd(json!({"op": "arrowTo", "value": "refund"}));
    assert_eq!(
        page_value(
            &mut drv,
            "document.getElementById('wrapup-submit').disabled"
        ),
        false
    );
    let r = drv.cmd(json!({"op": "tabTo", "target": "wrapup-notes", "fromStart": false, "max": 3}));
    assert_eq!(r["focus"]["id"], "wrapup-notes", "{r}");
    drv.cmd(json!({"op": "type", "text": "Refunded the May renewal"}));
    let r =
        drv.cmd(json!({"op": "tabTo", "target": "wrapup-submit", "fromStart": false, "max": 3}));
    assert_eq!(r["focus"]["focusVisible"], true, "{r}");
    assert!(
        r["focus"]["outlineStyle"] != "none" || r["focus"]["boxShadow"] != "none",
        "{r}"
    );
    drv.cmd(json!({"op": "press", "key": "Enter"}));
    drv.cmd(json!({"op": "waitSelector", "selector": "#wrapup", "state": "hidden"}));

    // The record: the disposition code, the agent, the issue type.
    let sip = sip_call_id.replace('\'', "''");
    let sql = format!(
        "SELECT coalesce(disposition, ''), coalesce(agent_id, ''), coalesce(issue_type, ''), \
                coalesce(notes, '') FROM calls WHERE sip_call_id = '{sip}' AND complete"
    );
    let data = gw.data_dir();
    let row = poll_until(Duration::from_secs(20), || db::psql(&data, &sql).pop())
        .unwrap_or_else(|| panic!("no complete calls row; log:\n{}", gw.log_tail()));
    assert_eq!(
        row,
        vec![
            "refund",
            AGENT,
            "subscription.refund",
            "Refunded the May renewal"
        ],
        "{row:?}"
    );

    // The overview lists the call under today's calls, with its label.
    let ov = drv.cmd(json!({"op": "waitCallListed", "disposition": "refund", "timeout": 30_000}));
    eprintln!("overview after: {ov}");
    let call = &ov["calls"][0];
    assert_eq!(call["outcome"], "Refund issued", "{ov}");
    let row_text = call["text"].as_str().unwrap_or_default();
    assert!(
        row_text.contains("sipp")
            && row_text.contains(QUEUE)
            && row_text.contains("Subscription › Refund"),
        "{ov}"
    );
    assert_eq!(ov["queues"][0]["waiting"], 0, "{ov}");
    screenshot(&mut drv, tmp.path(), "07-overview-after-1280x800.png");
    viewport(&mut drv, PHONE);
    screenshot(&mut drv, tmp.path(), "08-overview-after-390x844.png");

    let run = sipp.wait();
    run.assert_success();
    drop(drv);
    drop(chromium);
}
