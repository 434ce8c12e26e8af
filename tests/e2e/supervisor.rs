//! Issue 12 end to end: a supervisor listens to, whispers to and barges
//! into an agent's live call from their own browser.
//!
//! The gateway runs the main flow (always open); a SIPp caller plays
//! 440 Hz and queues for `support` (captured with tcpdump: what the caller
//! receives). Agent `a1` answers in one headless Chromium whose microphone
//! plays 1 kHz (`/agent?raw-audio`); supervisor `sue` signs in to the admin
//! console in a second Chromium whose microphone plays 1.7 kHz (each
//! Chromium has one fake microphone), opens the Supervisor page and
//! clicks Listen, Whisper, Barge on the call. Both pages are driven by
//! `tests/driver/agents.mjs` (one driver per browser).
//!
//! * Listen: the supervisor's page hears the caller's and the agent's tones;
//!   the agent does not hear the supervisor's, nor does the caller (its
//!   received RTP while listening).
//! * Whisper: the agent hears the supervisor; the caller's received RTP does
//!   not carry it.
//! * Barge: both hear it.
//! * Stop, and Listen again from the same page (a new peer connection).
//! * The agent hangs up: the monitor ends (`monitor_stopped`, reason
//!   `call_ended`) and the supervisor's page says so.
//!
//! The record has `monitor_started` / `monitor_mode` / `monitor_stopped`
//! in order, before `hangup`. Waits poll (the pages' states, the events);
//! nothing sleeps to synchronise.

use hotline_e2e::browser::{self, AgentDriver, Chromium};
use hotline_e2e::events::{Event, assert_in_order, assert_well_formed, dump, find};
use hotline_e2e::rtp::{self, CallerAudio, PT_PCMU, RtpPacket, ulaw_decode};
use hotline_e2e::script::{Step, scripted_caller};
use hotline_e2e::sipp::SippProcess;
use hotline_e2e::{Gateway, TempDir, flows, poll_until, wav};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "t0k3n";
const PASSWORD: &str = "correct horse battery";
const CALLER_HZ: f64 = 440.0;
const AGENT_HZ: f64 = 1000.0;
const SUPERVISOR_HZ: f64 = 1700.0;
const PAGE_WAIT: Duration = Duration::from_secs(40);
const CALL_END_WAIT: Duration = Duration::from_secs(20);
/// Share of a 200 ms block's energy at a frequency above which the tone is
/// "in" the audio (a lone tone is 0.5, two equal tones 0.25 each), and
/// below which it is absent (leakage and noise stay far under it).
const PRESENT: f64 = 0.03;
const ABSENT: f64 = 0.005;

fn gateway() -> (Gateway, TempDir) {
    let flows = flows::flows_dir(
        "supervisor_flows",
        &flows::main_flow_with_hours("00:00-24:00"),
    );
    let gw = Gateway::start_with(
        "supervisor",
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
    (gw, flows)
}

fn admin(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> Value {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let body = body.map(|b| b.to_string());
    let (code, text) = gw
        .http_request(method, path, &[("Authorization", &auth)], body.as_deref())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    assert!(
        (200..300).contains(&code),
        "{method} {path} {body:?} → {code}: {text}"
    );
    if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    }
}

fn agent_state(gw: &Gateway, agent: &str) -> Value {
    admin(gw, "GET", "/api/agents/states", None)["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["agent"] == agent)
        .cloned()
        .unwrap_or(Value::Null)
}

/// A caller playing [`CALLER_HZ`] who queues (1: English, 0: an agent) and
/// waits for the gateway's BYE; tcpdump captures what it receives.
fn queued_caller(gw: &Gateway) -> SippProcess {
    let pcap = gw
        .dir()
        .join(format!("{}.pcap", hotline_e2e::unique_token("caller")));
    rtp::write_caller_pcap(
        &pcap,
        &[CallerAudio::Tone {
            hz: CALLER_HZ,
            ms: 60_000,
        }],
    );
    let steps = vec![
        Step::Audio(pcap.to_str().expect("utf-8 temp path").to_owned()),
        Step::Pause(1000),
        Step::Info('1'),
        Step::Pause(1500),
        Step::Info('0'),
        Step::AwaitBye(70_000),
    ];
    scripted_caller(gw, "sipp", &steps)
        .capture()
        .timeout(Duration::from_secs(100))
        .spawn()
}

/// A Chromium whose microphone plays `hz`, and a driver for it.
fn browser_with_mic(gw: &Gateway, name: &str, hz: f64) -> (Chromium, AgentDriver) {
    let dir = gw.dir().join(name);
    std::fs::create_dir_all(&dir).expect("browser dir");
    let mic = dir.join("mic.wav");
    browser::write_tone_wav(&mic, hz, 30, 12_000.0);
    let chromium = Chromium::start(&mic, &dir);
    let driver = AgentDriver::start(&format!("http://127.0.0.1:{}", gw.http_port), &chromium);
    (chromium, driver)
}

/// Per 200 ms block: the share of its energy at `hz` (Goertzel power over
/// mean square; a lone sine gives 0.5).
fn tone_shares(samples: &[i16], rate: u32, hz: f64) -> Vec<f64> {
    samples
        .chunks_exact(rate as usize / 5)
        .map(|b| {
            let ms = rtp::rms(b).powi(2);
            if ms < 100.0 {
                0.0
            } else {
                wav::tone_power(b, rate, hz) / ms
            }
        })
        .collect()
}

/// Share of blocks where `hz` is present.
fn present(shares: &[f64]) -> f64 {
    shares.iter().filter(|s| **s >= PRESENT).count() as f64 / shares.len().max(1) as f64
}

/// What a page's audio element plays for 2 s, as 8 kHz samples.
fn heard(drv: &mut AgentDriver, page: &str, audio: &str) -> (Vec<i16>, u32) {
    let v = drv.cmd(
        json!({"op": "hear", "page": page, "ms": 2000, "audio": audio}),
        PAGE_WAIT,
    );
    let rate = v["rate"].as_u64().expect("hear: rate") as u32;
    let samples = v["samples"]
        .as_array()
        .expect("hear: samples")
        .iter()
        .map(|x| x.as_i64().expect("hear: a sample") as i16)
        .collect();
    (samples, rate)
}

/// Asserts which of the three tones `page` hears (in ≥ 80 % of the blocks)
/// and which it does not (in ≤ 10 %).
fn assert_tones(drv: &mut AgentDriver, page: &str, audio: &str, what: &str, want: &[(f64, bool)]) {
    let (samples, rate) = heard(drv, page, audio);
    for &(hz, on) in want {
        let shares = tone_shares(&samples, rate, hz);
        let p = present(&shares);
        let shown: Vec<String> = shares.iter().map(|s| format!("{s:.3}")).collect();
        eprintln!(
            "{what}: {page} hears {hz} Hz in {:.0}% of blocks ({shown:?})",
            p * 100.0
        );
        if on {
            assert!(p >= 0.8, "{what}: {page} should hear {hz} Hz: {shown:?}");
        } else {
            assert!(
                p <= 0.1,
                "{what}: {page} should not hear {hz} Hz: {shown:?}"
            );
        }
    }
}

/// The caller's received audio between two instants (µs since the epoch).
fn caller_received(pkts: &[RtpPacket], from_us: i64, to_us: i64) -> Vec<i16> {
    pkts.iter()
        .filter(|p| p.payload_type == PT_PCMU)
        .filter(|p| (from_us..to_us).contains(&(p.ts_us as i64)))
        .flat_map(|p| p.payload.iter().map(|&c| ulaw_decode(c)))
        .collect()
}

fn event_where<'e>(evs: &'e [Event], kind: &str, key: &str, value: &str) -> &'e Event {
    evs.iter()
        .find(|e| e.kind() == kind && e.data()[key] == value)
        .unwrap_or_else(|| panic!("no {kind} with {key} {value}:\n{}", dump(evs)))
}

#[test]
fn supervisor_listens_whispers_and_barges() {
    let test = "supervisor_listens_whispers_and_barges";
    let Some(_one_at_a_time) = browser::playwright_test(test) else {
        return;
    };
    let (gw, _flows) = gateway();
    staff(&gw);
    monitor_the_call(&gw, &gw);
}

/// Issue 15: the supervisor's console is on node B, the caller and the
/// agent's page on node A (which leads the ACD): the console's offer goes
/// to A by the desks' mail, A's hub answers it and A's call takes the leg;
/// the answer and the statuses come back by mail. Everything the one-node
/// test asserts holds: who hears whom in each mode, the call's record.
#[test]
fn a_supervisor_on_another_node_listens_whispers_and_barges() {
    let test = "a_supervisor_on_another_node_listens_whispers_and_barges";
    let Some(_one_at_a_time) = browser::playwright_test(test) else {
        return;
    };
    let (a, flows) = gateway();
    staff(&a);
    let url = format!(
        "postgres://hotline@localhost/hotline?host={}",
        a.data_dir().join("pg").display()
    );
    let b = Gateway::start_with(
        "supervisor_b",
        &[
            "--entry-flow",
            "main",
            "--flows-dir",
            flows.path().to_str().expect("utf-8 temp path"),
            "--admin-token",
            ADMIN_TOKEN,
            "--node-name",
            "node-b",
            "--database-url",
            &url,
        ],
    );
    poll_until(Duration::from_secs(15), || {
        b.log_tail()
            .contains("this node's desk follows the ACD leader")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("node B's desk never followed A:\n{}", b.log_tail()));
    monitor_the_call(&a, &b);
}

/// Agent a1 and supervisor sue, and the support queue.
fn staff(gw: &Gateway) {
    admin(
        gw,
        "POST",
        "/api/agents",
        Some(json!({"id": "a1", "name": "Ada Agent", "password": PASSWORD})),
    );
    admin(
        gw,
        "POST",
        "/api/agents",
        Some(
            json!({"id": "sue", "name": "Sue Supervisor", "password": PASSWORD, "role": "supervisor"}),
        ),
    );
    admin(
        gw,
        "POST",
        "/api/queues",
        Some(
            json!({"name": "support", "offer_timeout_secs": 30, "wrap_up_secs": 30,
                    "max_wait_secs": 90, "members": ["a1"]}),
        ),
    );
}

/// The supervisor monitors a call: the caller, the agent's page and the
/// call are on `gw`, the supervisor's console on `console`.
fn monitor_the_call(gw: &Gateway, console: &Gateway) {
    let started = Instant::now();
    let (_agent_browser, mut agent) = browser_with_mic(gw, "agent-browser", AGENT_HZ);
    let (_sup_browser, mut sup) = browser_with_mic(console, "supervisor-browser", SUPERVISOR_HZ);
    eprintln!("browsers up in {:?}", started.elapsed());
    agent.cmd(
        json!({"op": "open", "page": "a1", "agent": "a1", "password": PASSWORD}),
        PAGE_WAIT,
    );
    agent.cmd(json!({"op": "available", "page": "a1"}), PAGE_WAIT);
    sup.cmd(
        json!({"op": "openSupervisor", "page": "sue", "user": "sue", "password": PASSWORD}),
        PAGE_WAIT,
    );

    let sipp = queued_caller(gw);
    let sip_call_id = sipp.call_id().to_owned();
    agent.cmd(
        json!({"op": "waitOffer", "page": "a1", "timeout": 30_000}),
        PAGE_WAIT,
    );
    agent.cmd(json!({"op": "answer", "page": "a1"}), PAGE_WAIT);
    let call = poll_until(Duration::from_secs(5), || {
        let s = agent_state(gw, "a1");
        (s["state"] == "on_call")
            .then(|| s["call"].as_str().map(str::to_owned))
            .flatten()
    })
    .unwrap_or_else(|| panic!("a1 not on a call: {}", gw.log_tail()));

    // Listen: the supervisor hears both sides; nobody hears the supervisor.
    sup.cmd(
        json!({"op": "monitor", "page": "sue", "call": call, "mode": "listen"}),
        PAGE_WAIT,
    );
    gw.wait_event(&sip_call_id, "monitor_started", Duration::from_secs(5));
    assert_tones(
        &mut sup,
        "sue",
        "monitor-audio",
        "listen",
        &[(CALLER_HZ, true), (AGENT_HZ, true), (SUPERVISOR_HZ, false)],
    );
    assert_tones(
        &mut agent,
        "a1",
        "remote-audio",
        "listen",
        &[(CALLER_HZ, true), (SUPERVISOR_HZ, false)],
    );
    let stats = sup.cmd(json!({"op": "monitorStats", "page": "sue"}), PAGE_WAIT);
    eprintln!("supervisor page stats: {stats}");
    assert!(
        stats["stats"]["packetsReceived"].as_u64().unwrap_or(0) > 50,
        "{stats}"
    );

    // Whisper: the agent hears the supervisor, the caller does not.
    sup.cmd(
        json!({"op": "monitor", "page": "sue", "call": call, "mode": "whisper"}),
        PAGE_WAIT,
    );
    assert_tones(
        &mut agent,
        "a1",
        "remote-audio",
        "whisper",
        &[(CALLER_HZ, true), (SUPERVISOR_HZ, true)],
    );
    assert_tones(
        &mut sup,
        "sue",
        "monitor-audio",
        "whisper",
        &[(CALLER_HZ, true), (AGENT_HZ, true)],
    );

    // Barge: everyone hears everyone.
    sup.cmd(
        json!({"op": "monitor", "page": "sue", "call": call, "mode": "barge"}),
        PAGE_WAIT,
    );
    assert_tones(
        &mut agent,
        "a1",
        "remote-audio",
        "barge",
        &[(CALLER_HZ, true), (SUPERVISOR_HZ, true)],
    );
    // Let the caller's capture hold 2 s of barge (polled on the pages'
    // clock: the agent's page hears another 2 s).
    heard(&mut agent, "a1", "remote-audio");

    // Stop, then Listen again (a new peer connection from the same page).
    sup.cmd(json!({"op": "monitorStop", "page": "sue"}), PAGE_WAIT);
    poll_until(Duration::from_secs(5), || {
        gw.events_for(&sip_call_id)
            .iter()
            .any(|e| e.kind() == "monitor_stopped" && e.data()["reason"] == "supervisor")
            .then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "no monitor_stopped (supervisor):\n{}",
            gw.format_events(&sip_call_id)
        )
    });
    sup.cmd(
        json!({"op": "monitor", "page": "sue", "call": call, "mode": "listen"}),
        PAGE_WAIT,
    );

    // The agent hangs up: the monitor ends with the call.
    agent.cmd(json!({"op": "hangup", "page": "a1"}), PAGE_WAIT);
    let done = sup.cmd(
        json!({"op": "waitMonitor", "page": "sue", "state": "idle"}),
        PAGE_WAIT,
    );
    eprintln!("supervisor page after the hang-up: {done}");
    assert!(
        done["status"].as_str().unwrap_or("").contains("call ended"),
        "{done}"
    );
    agent.cmd(
        json!({"op": "wrapUp", "page": "a1", "disposition": "resolved", "notes": ""}),
        PAGE_WAIT,
    );
    let run = sipp.wait();
    run.assert_success();

    let evs = gw.wait_call_ended(&sip_call_id, CALL_END_WAIT);
    assert_well_formed(&evs);
    assert_in_order(
        &evs,
        &[
            ("agent_connected", &[("agent_id", "a1")]),
            (
                "monitor_started",
                &[("supervisor_id", "sue"), ("mode", "listen")],
            ),
            (
                "monitor_mode",
                &[("supervisor_id", "sue"), ("mode", "whisper")],
            ),
            (
                "monitor_mode",
                &[("supervisor_id", "sue"), ("mode", "barge")],
            ),
            (
                "monitor_stopped",
                &[("supervisor_id", "sue"), ("reason", "supervisor")],
            ),
            (
                "monitor_started",
                &[("supervisor_id", "sue"), ("mode", "listen")],
            ),
            (
                "monitor_stopped",
                &[("supervisor_id", "sue"), ("reason", "call_ended")],
            ),
            ("hangup", &[("ended_by", "agent")]),
            ("call_ended", &[]),
        ],
    );

    // What the caller received, per mode (a margin of 300 ms either side
    // of each switch).
    let pkts = run.rtp_received();
    let margin = 300_000;
    let listen_at = find(&evs, "monitor_started").at_us();
    let whisper_at = event_where(&evs, "monitor_mode", "mode", "whisper").at_us();
    let barge_at = event_where(&evs, "monitor_mode", "mode", "barge").at_us();
    let stopped_at = event_where(&evs, "monitor_stopped", "reason", "supervisor").at_us();
    for (mode, from, to, hears) in [
        ("listen", listen_at, whisper_at, false),
        ("whisper", whisper_at, barge_at, false),
        ("barge", barge_at, stopped_at, true),
    ] {
        let samples = caller_received(&pkts, from + margin, to - margin);
        assert!(
            samples.len() >= 8000,
            "{mode}: the caller received {} samples",
            samples.len()
        );
        let sup_shares = tone_shares(&samples, 8000, SUPERVISOR_HZ);
        let agent_shares = tone_shares(&samples, 8000, AGENT_HZ);
        let (p, a) = (present(&sup_shares), present(&agent_shares));
        eprintln!(
            "{mode}: the caller's RTP ({:.1} s) carries the supervisor in {:.0}%, the agent in {:.0}% of blocks",
            samples.len() as f64 / 8000.0,
            p * 100.0,
            a * 100.0
        );
        assert!(
            a >= 0.8,
            "{mode}: the caller hears the agent: {agent_shares:?}"
        );
        if hears {
            assert!(
                p >= 0.8,
                "{mode}: the caller should hear the supervisor: {sup_shares:?}"
            );
        } else {
            let loud = sup_shares.iter().filter(|s| **s > ABSENT).count();
            assert!(
                loud <= sup_shares.len() / 10,
                "{mode}: the caller must not hear the supervisor: {sup_shares:?}"
            );
        }
    }
}
