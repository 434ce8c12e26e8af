//! The SIP edge under attack (docs/security.md): a trunk allow-list, a
//! per-source rate limit with bans, scanner User-Agents dropped.
//!
//! * A flood of ≥ 10,000 datagrams per second from 127.0.0.2 (fresh-Call-ID
//!   INVITEs with a scanner User-Agent and with an ordinary one, plus junk)
//!   while 100 SIPp calls from the trunk 127.0.0.1 all succeed: no call, no
//!   event, no database row from the flood, bounded gateway CPU, and the
//!   counters at `/sip-edge` show the refusals.
//! * A stranger's INVITE gets 403 (`--refuse-unknown reply`) or nothing
//!   (`drop`); 405/501 answers are logged at debug, not WARN.

use hotline_e2e::db::psql;
use hotline_e2e::rawsip::RawUac;
use hotline_e2e::{Gateway, Sipp, poll_until, rtp, unique_token};
use serde_json::Value;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The tests measure CPU: never two of them at once.
static SERIAL: Mutex<()> = Mutex::new(());

const TRUNK: &str = "e2e=127.0.0.1/32";
const FLOOD_FROM: &str = "127.0.0.2";
const STRANGER: &str = "127.0.0.3";
/// Datagrams per second the flood aims at (the brief asks for ≥ 10,000).
const FLOOD_RATE: u64 = 12_000;
const FLOOD_SECS: u64 = 10;
/// What the flood alone costs the gateway, in % of one core, measured over
/// `FLOOD_ALONE` before the calls start (debug build, 2 cores). Measured
/// here: 13-15 %; the same flood with bans, rate limit and scanner check
/// off (`--sip-rate 0 --sip-ban-after 0 --scanner-user-agents none`, every
/// datagram parsed and refused) 104 %. The bound fails if the
/// flood is handled per datagram beyond the ban lookup, and is not a
/// measure of the box's speed: the calls' own cost (24 % here for ~30
/// calls with recording, debug logs) is not in it.
const FLOOD_BOUND_PCT: f64 = 35.0;
const FLOOD_ALONE: Duration = Duration::from_secs(4);
/// The whole gateway over the flood window with ~30 calls: it must not be
/// saturated (measured 34-44 % here; 111 % with the defences off; before the edge policy the flood
/// took every RTP port).
const CPU_BOUND_PCT: f64 = 85.0;

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The gateway's `/sip-edge` counters.
fn edge(gw: &Gateway) -> Value {
    let (code, body) = gw.http_get("/sip-edge").expect("GET /sip-edge");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn counter(v: &Value, name: &str) -> u64 {
    v[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {v}"))
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/pid/stat");
    // Fields after the parenthesised command name: state is [0], utime [11], stime [12].
    let rest = stat.rsplit_once(") ").map(|x| x.1).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn flood_invite(gw: SocketAddr, port: u16, call_id: &str, ua: &str) -> String {
    let sdp = format!(
        "v=0\r\no=x 1 1 IN IP4 {FLOOD_FROM}\r\ns=-\r\nc=IN IP4 {FLOOD_FROM}\r\nt=0 0\r\n\
         m=audio 40000 RTP/AVP 0\r\n"
    );
    format!(
        "INVITE sip:100@{gw} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {FLOOD_FROM}:{port};branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"100\" <sip:100@{FLOOD_FROM}>;tag={call_id}\r\n\
         To: <sip:100@{gw}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:100@{FLOOD_FROM}:{port}>\r\n\
         User-Agent: {ua}\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// What the flood sender did.
struct Flood {
    sent: u64,
    send_errors: u64,
    elapsed: Duration,
}

/// Sends from `FLOOD_FROM` at `FLOOD_RATE` (batches every 5 ms on an
/// absolute schedule) until `stop`: a third fresh-Call-ID INVITEs with a
/// scanner User-Agent, a third with an ordinary one, a third junk.
fn flood(gw: SocketAddr, stop: Arc<AtomicBool>) -> Flood {
    let sock = UdpSocket::bind((FLOOD_FROM, 0)).expect("bind 127.0.0.2 (loopback)");
    let port = sock.local_addr().expect("local addr").port();
    let run = unique_token("flood");
    let tick = Duration::from_millis(5);
    let per_tick = FLOOD_RATE * tick.as_millis() as u64 / 1000;
    let start = Instant::now();
    let (mut sent, mut send_errors, mut i) = (0u64, 0u64, 0u64);
    let mut next = start;
    let mut junk = vec![0u8; 300];
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..per_tick {
            i += 1;
            let call_id = format!("flood-{run}-{i}");
            let data = match i % 3 {
                0 => flood_invite(gw, port, &call_id, "friendly-scanner").into_bytes(),
                1 => flood_invite(gw, port, &call_id, "Z 5.6.1 v2.10.20.5").into_bytes(),
                _ => {
                    for (k, b) in junk.iter_mut().enumerate() {
                        *b = ((i as usize).wrapping_mul(2_654_435_761) >> (k % 24)) as u8;
                    }
                    junk.clone()
                }
            };
            match sock.send_to(&data, gw) {
                Ok(_) => sent += 1,
                Err(_) => send_errors += 1,
            }
        }
        next += tick;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    Flood {
        sent,
        send_errors,
        elapsed: start.elapsed(),
    }
}

#[test]
fn a_flood_from_a_stranger_costs_nothing_and_the_trunk_still_gets_through() {
    let _serial = serial();
    let gw = Gateway::start_with("sip-flood", &["--trunk", TRUNK]);
    let pid = gw.pid().expect("gateway pid");
    let tck = clock_ticks_per_sec();

    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = stop.clone();
        let addr = gw.sip_addr();
        std::thread::spawn(move || flood(addr, stop))
    };
    // The flood has reached the gateway (and been refused) before we measure.
    poll_until(Duration::from_secs(10), || {
        (counter(&edge(&gw), "messages") > 0).then_some(())
    })
    .expect("the flood never reached the gateway");
    // The flood alone, before any call.
    let (f0, ft) = (cpu_ticks(pid), Instant::now());
    std::thread::sleep(FLOOD_ALONE);
    let flood_pct = (cpu_ticks(pid) - f0) as f64 / tck / ft.elapsed().as_secs_f64() * 100.0;
    let cpu0 = cpu_ticks(pid);
    let t0 = Instant::now();

    // 100 real calls from the trunk: 10 per second, at most 30 at once
    // (the test's RTP range has 50 ports); each ~3 s (tone, digit, read-back).
    let pcap = gw.dir().join("tone_5_tone.pcap");
    rtp::write_caller_pcap(&pcap, &rtp::tone_digit_tone('5'));
    let sipp = Sipp::new("uac_digit_gateway_bye.xml", &gw)
        .var("PCAP", pcap.to_str().expect("utf-8 path"))
        .arg("-m")
        .arg("100")
        .arg("-r")
        .arg("10")
        .arg("-l")
        .arg("30")
        .timeout(Duration::from_secs(55))
        .spawn();
    let token = sipp
        .call_id()
        .strip_suffix("-1")
        .expect("SIPp Call-IDs end in -<n>")
        .to_string();

    // The flood window: FLOOD_SECS of flood while the calls run.
    while t0.elapsed() < Duration::from_secs(FLOOD_SECS) {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let cpu1 = cpu_ticks(pid);
    let window = t0.elapsed();
    let flood = flooder.join().expect("flood thread");
    let stats = edge(&gw);

    let run = sipp.wait();
    let rate = flood.sent as f64 / flood.elapsed.as_secs_f64();
    let cpu_pct = (cpu1 - cpu0) as f64 / tck / window.as_secs_f64() * 100.0;
    eprintln!(
        "flood: {} datagrams in {:.1} s = {rate:.0}/s ({} send errors); gateway CPU: the \
         flood alone {flood_pct:.1} %, flood and calls over {:.1} s {cpu_pct:.1} % of one \
         core; SIPp exit {:?}; /sip-edge: {stats}",
        flood.sent,
        flood.elapsed.as_secs_f64(),
        flood.send_errors,
        window.as_secs_f64(),
        run.exit_code
    );

    // Every real call succeeded ...
    run.assert_success();
    let ended = poll_until(Duration::from_secs(20), || {
        let n = gw
            .all_events()
            .iter()
            .filter(|e| e.kind() == "call_ended" && e.sip_call_id().starts_with(&token))
            .count();
        (n >= 100).then_some(n)
    });
    assert_eq!(
        ended,
        Some(100),
        "SIPp's 100 calls did not all end in the event log"
    );
    // ... while the flood was at least 10,000 datagrams per second ...
    assert!(
        rate >= 10_000.0,
        "the flood reached only {rate:.0} datagrams/s"
    );
    // ... and cost no call: no event, no database row.
    let events = gw.all_events();
    let from_flood: Vec<_> = events
        .iter()
        .filter(|e| {
            e.sip_call_id().starts_with("flood-")
                || e.data()["source"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(FLOOD_FROM))
        })
        .collect();
    assert!(
        from_flood.is_empty(),
        "{} events from the flood, e.g. {}",
        from_flood.len(),
        from_flood[0]
    );
    let rows = poll_until(Duration::from_secs(20), || {
        let r = psql(
            &gw.data_dir(),
            "SELECT count(*) FILTER (WHERE source LIKE '127.0.0.2:%' OR sip_call_id LIKE 'flood-%'), \
             count(*) FROM calls",
        );
        let n: Vec<u64> = r
            .first()?
            .iter()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        (n.get(1) == Some(&100)).then_some(n)
    })
    .expect("100 call rows in the database");
    assert_eq!(rows[0], 0, "call rows from the flood");
    // The refusals are counted: the source was banned (a scanner User-Agent
    // bans at once) and nearly everything after that dropped at the door.
    let refused = [
        "dropped_banned",
        "rate_limited",
        "refused_unknown",
        "dropped_scanner",
        "dropped_unusable",
    ]
    .iter()
    .map(|k| counter(&stats, k))
    .sum::<u64>();
    assert!(counter(&stats, "bans") >= 1, "{stats}");
    assert!(
        counter(&stats, "dropped_banned") >= flood.sent / 2,
        "banned drops: {stats}"
    );
    assert!(
        refused + counter(&stats, "from_trunks") >= counter(&stats, "messages"),
        "every message from the flood is refused: {stats}"
    );
    // Bounded CPU: the flood is dropped after a hash lookup (receiving
    // ~12,000 datagrams a second in batches), and the gateway beside it
    // spends its time on the ~30 concurrent calls, far from saturated.
    assert!(
        flood_pct < FLOOD_BOUND_PCT,
        "the flood alone cost the gateway {flood_pct:.1} % of one core (bound {FLOOD_BOUND_PCT} %)"
    );
    assert!(
        cpu_pct < CPU_BOUND_PCT,
        "gateway CPU {cpu_pct:.1} % of one core during flood and calls (bound {CPU_BOUND_PCT} %)"
    );
}

/// Sends `msg` from `from` and returns the first SIP status line seen within `wait`.
fn ask(from: &str, gw: SocketAddr, msg: &str, wait: Duration) -> Option<String> {
    let sock = UdpSocket::bind((from, 0)).expect("bind loopback address");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    sock.send_to(msg.as_bytes(), gw).expect("send");
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65_535];
    while Instant::now() < deadline {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some(line) = text.lines().next().filter(|l| l.starts_with("SIP/2.0 ")) {
                if !line.starts_with("SIP/2.0 1") {
                    return Some(line.to_string());
                }
            }
        }
    }
    None
}

fn stranger_invite(gw: SocketAddr, call_id: &str) -> String {
    flood_invite(gw, 5060, call_id, "Zoiper rv2.10").replace(FLOOD_FROM, STRANGER)
}

#[test]
fn strangers_get_403_or_nothing_and_405_501_are_not_warnings() {
    let _serial = serial();
    // --refuse-unknown reply (the default).
    let gw = Gateway::start_with("sip-refuse-reply", &["--trunk", TRUNK]);
    let cid = unique_token("stranger");
    let status = ask(
        STRANGER,
        gw.sip_addr(),
        &stranger_invite(gw.sip_addr(), &cid),
        Duration::from_secs(3),
    );
    assert_eq!(status.as_deref(), Some("SIP/2.0 403 Forbidden"));
    // The trunk's odd requests: answered, counted, logged at debug only.
    let mut uac = RawUac::new(gw.sip_addr());
    let odd = [("REGISTER", 405), ("FROBNICATE", 501)];
    let mut odd_ids = Vec::new();
    for (method, code) in odd {
        let cid = unique_token(&method.to_ascii_lowercase());
        uac.send(
            uac.simple_request(method, &cid, &format!("z9hG4bK{}", unique_token("b")))
                .as_bytes(),
        );
        let r = uac.recv_final(&cid, method, Duration::from_secs(3));
        assert_eq!(
            r.as_ref().and_then(|m| m.status()),
            Some(code),
            "{method}: {r:?}"
        );
        odd_ids.push(cid);
    }
    let stats = poll_until(Duration::from_secs(5), || {
        let s = edge(&gw);
        (counter(&s, "not_implemented") >= 1).then_some(s)
    })
    .expect("counters");
    assert_eq!(counter(&stats, "refused_unknown"), 1, "{stats}");
    assert_eq!(counter(&stats, "method_not_allowed"), 1, "{stats}");
    assert_eq!(counter(&stats, "not_implemented"), 1, "{stats}");
    assert!(gw.all_events().iter().all(|e| e.sip_call_id() != cid));
    let log = std::fs::read_to_string(gw.log_path()).unwrap_or_default();
    let debug_lines = log
        .lines()
        .filter(|l| l.contains("method not served"))
        .collect::<Vec<_>>();
    assert_eq!(debug_lines.len(), 2, "one debug line per 405/501:\n{log}");
    assert!(
        debug_lines.iter().all(|l| l.contains("DEBUG")),
        "{debug_lines:#?}"
    );
    let warned = log
        .lines()
        .filter(|l| {
            l.contains("WARN") && (l.contains("bad request") || l.contains("method not served"))
        })
        .collect::<Vec<_>>();
    assert!(warned.is_empty(), "405/501 logged at WARN: {warned:#?}");
    assert!(
        log.contains("SIP trunk allowed"),
        "the trunk is logged at start"
    );
    drop(gw);

    // --refuse-unknown drop: nothing at all, though the INVITE arrived.
    let gw = Gateway::start_with(
        "sip-refuse-drop",
        &["--trunk", TRUNK, "--refuse-unknown", "drop"],
    );
    let cid = unique_token("stranger");
    let status = ask(
        STRANGER,
        gw.sip_addr(),
        &stranger_invite(gw.sip_addr(), &cid),
        Duration::from_secs(2),
    );
    assert_eq!(status, None, "drop mode answered");
    poll_until(Duration::from_secs(5), || {
        (counter(&edge(&gw), "refused_unknown") == 1).then_some(())
    })
    .unwrap_or_else(|| panic!("the INVITE was not counted: {}", edge(&gw)));
    // The trunk is answered as ever.
    let cid = unique_token("options");
    uac = RawUac::new(gw.sip_addr());
    uac.send(
        uac.simple_request("OPTIONS", &cid, &format!("z9hG4bK{}", unique_token("o")))
            .as_bytes(),
    );
    let r = uac.recv_final(&cid, "OPTIONS", Duration::from_secs(3));
    assert_eq!(r.as_ref().and_then(|m| m.status()), Some(200), "{r:?}");
    assert!(gw.all_events().is_empty(), "a refused INVITE left events");
}

#[test]
fn without_trunks_the_gateway_warns_that_it_answers_anyone() {
    let _serial = serial();
    let gw = Gateway::start("sip-open");
    let log = std::fs::read_to_string(gw.log_path()).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("no --trunk configured")),
        "no open-mode warning:\n{log}"
    );
    // Open: a call from another loopback address is taken.
    let cid = unique_token("open");
    let status = ask(
        STRANGER,
        gw.sip_addr(),
        &stranger_invite(gw.sip_addr(), &cid),
        Duration::from_secs(10),
    );
    assert_eq!(status.as_deref(), Some("SIP/2.0 200 OK"));
    gw.wait_event(&cid, "call_started", Duration::from_secs(10));
}

/// An operator sees a ban and lifts it (`GET /api/edge/bans`, `DELETE
/// /api/edge/bans/{ip}`, audited): a source banned for a scanner
/// User-Agent is dropped without a word until the ban is lifted, then
/// answered at once.
#[test]
fn an_operator_lists_and_lifts_a_ban() {
    let _serial = serial();
    const TOKEN: &str = "edge-t0k3n";
    let auth = format!("Bearer {TOKEN}");
    let gw = Gateway::start_with("sip-unban", &["--trunk", TRUNK, "--admin-token", TOKEN]);
    let api = |method: &str, path: &str| {
        gw.http_request(method, path, &[("Authorization", &auth)], None)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    };
    let bans = || -> Value {
        let (code, body) = api("GET", "/api/edge/bans");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    assert_eq!(bans()["bans"], serde_json::json!([]));
    // A TCP connection from the source-to-be-banned, open before the ban.
    let mut early = tcp_from(STRANGER, gw.sip_addr());
    let before = tcp_answer(&mut early, &stranger_options(&unique_token("early")));
    assert!(
        matches!(&before, TcpReply::Answer(l) if l.starts_with("SIP/2.0 ")),
        "answered over TCP before the ban: {before:?}"
    );

    // A scanner's INVITE: dropped, and its source banned at once.
    let scan = flood_invite(
        gw.sip_addr(),
        5060,
        &unique_token("scan"),
        "friendly-scanner",
    )
    .replace(FLOOD_FROM, STRANGER);
    assert_eq!(
        ask(STRANGER, gw.sip_addr(), &scan, Duration::from_secs(1)),
        None
    );
    let listed = poll_until(Duration::from_secs(5), || {
        let b = bans();
        (b["bans"].as_array().is_some_and(|a| !a.is_empty())).then_some(b)
    })
    .unwrap_or_else(|| panic!("no ban listed: {}", edge(&gw)));
    assert_eq!(listed["bans"][0]["ip"], STRANGER, "{listed}");
    let left = listed["bans"][0]["remaining_secs"].as_u64().unwrap_or(0);
    assert!(left > 0 && left <= 600, "{listed}");
    // Banned: even an ordinary INVITE from there gets nothing, its open
    // TCP connection is closed at its next message, and a new one at once.
    let plain = || stranger_invite(gw.sip_addr(), &unique_token("after"));
    assert_eq!(
        ask(STRANGER, gw.sip_addr(), &plain(), Duration::from_secs(1)),
        None
    );
    assert_eq!(
        tcp_answer(&mut early, &stranger_options(&unique_token("late"))),
        TcpReply::Closed,
        "the open connection after the ban"
    );
    let mut fresh = tcp_from(STRANGER, gw.sip_addr());
    assert_eq!(
        tcp_answer(&mut fresh, &stranger_options(&unique_token("fresh"))),
        TcpReply::Closed,
        "a new connection during the ban"
    );

    // Not an address; not banned.
    assert_eq!(api("DELETE", "/api/edge/bans/not-an-ip").0, 400);
    assert_eq!(api("DELETE", "/api/edge/bans/127.0.0.9").0, 404);
    // Lifted: answered at once (a stranger's INVITE gets 403), and listed no more.
    let (code, body) = api("DELETE", &format!("/api/edge/bans/{STRANGER}"));
    assert_eq!(code, 204, "{body}");
    assert_eq!(bans()["bans"], serde_json::json!([]));
    let status = ask(STRANGER, gw.sip_addr(), &plain(), Duration::from_secs(3));
    assert!(
        status
            .as_deref()
            .is_some_and(|s| s.starts_with("SIP/2.0 403")),
        "{status:?}"
    );
    let mut again = tcp_from(STRANGER, gw.sip_addr());
    let after = tcp_answer(&mut again, &stranger_options(&unique_token("again")));
    assert!(
        matches!(&after, TcpReply::Answer(l) if l.starts_with("SIP/2.0 ")),
        "TCP answered again after the lift: {after:?}"
    );
    assert_eq!(
        api("DELETE", &format!("/api/edge/bans/{STRANGER}")).0,
        404,
        "already lifted"
    );
    // Who lifted it is in the audit log.
    let (code, body) = api("GET", "/api/audit");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("edge_unban") && body.contains(STRANGER),
        "no audit entry: {body}"
    );
}

/// A ban outlives a restart: the gateway saves its bans (`edge_bans`) and
/// restores them with their time left, so a deploy does not welcome a
/// scanner back; a ban lifted by an operator stays lifted after one.
#[test]
fn a_ban_outlives_a_restart() {
    let _serial = serial();
    const TOKEN: &str = "edge-t0k3n";
    let auth = format!("Bearer {TOKEN}");
    let mut gw = Gateway::start_with(
        "sip-ban-restart",
        &["--trunk", TRUNK, "--admin-token", TOKEN],
    );
    let bans = |gw: &Gateway| -> Value {
        let (code, body) = gw
            .http_request("GET", "/api/edge/bans", &[("Authorization", &auth)], None)
            .unwrap_or_else(|e| panic!("GET /api/edge/bans: {e}"));
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    // What the database holds for the stranger (empty: nothing saved).
    let saved = |gw: &Gateway| {
        psql(
            &gw.data_dir(),
            &format!("SELECT ip FROM edge_bans WHERE ip = '{STRANGER}' AND until > now()"),
        )
    };
    let scan = flood_invite(
        gw.sip_addr(),
        5060,
        &unique_token("scan"),
        "friendly-scanner",
    )
    .replace(FLOOD_FROM, STRANGER);
    assert_eq!(
        ask(STRANGER, gw.sip_addr(), &scan, Duration::from_secs(1)),
        None
    );
    poll_until(Duration::from_secs(10), || {
        (!saved(&gw).is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("ban not saved: {}\n{}", bans(&gw), gw.log_tail()));

    gw.restart();
    let listed = bans(&gw);
    assert_eq!(listed["bans"][0]["ip"], STRANGER, "restored: {listed}");
    let left = listed["bans"][0]["remaining_secs"].as_u64().unwrap_or(0);
    assert!(left > 0 && left <= 600, "{listed}");
    let sip = gw.sip_addr();
    let plain = || stranger_invite(sip, &unique_token("after"));
    assert_eq!(
        ask(STRANGER, sip, &plain(), Duration::from_secs(1)),
        None,
        "still banned after the restart"
    );

    // Lifted by hand, then restarted: it stays lifted.
    let (code, body) = gw
        .http_request(
            "DELETE",
            &format!("/api/edge/bans/{STRANGER}"),
            &[("Authorization", &auth)],
            None,
        )
        .unwrap_or_else(|e| panic!("DELETE: {e}"));
    assert_eq!(code, 204, "{body}");
    poll_until(Duration::from_secs(10), || {
        saved(&gw).is_empty().then_some(())
    })
    .unwrap_or_else(|| panic!("the lift not saved:\n{}", gw.log_tail()));
    gw.restart();
    assert_eq!(bans(&gw)["bans"], serde_json::json!([]));
    let status = ask(STRANGER, sip, &plain(), Duration::from_secs(3));
    assert!(
        status
            .as_deref()
            .is_some_and(|s| s.starts_with("SIP/2.0 403")),
        "{status:?}"
    );
}

/// A TCP connection to the gateway's SIP port from the loopback address `from`.
fn tcp_from(from: &str, gw: SocketAddr) -> std::net::TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a TCP socket");
    let local: SocketAddr = format!("{from}:0").parse().expect("an address");
    s.bind(&local.into()).expect("bind the loopback address");
    s.connect_timeout(&gw.into(), Duration::from_secs(2))
        .expect("connect to the gateway's SIP port");
    let s: std::net::TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    s
}

/// An OPTIONS from `STRANGER` over TCP.
fn stranger_options(call_id: &str) -> String {
    format!(
        "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/TCP {STRANGER}:5060;branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{STRANGER}>;tag=p1\r\n\
         To: <sip:probe@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// What became of a message sent on a TCP connection.
#[derive(Debug, PartialEq)]
enum TcpReply {
    /// The status line of the answer.
    Answer(String),
    /// The gateway closed the connection (end of stream or reset).
    Closed,
    /// Nothing within the read timeout (3 s), the connection still open.
    Silent,
}

/// Sends `msg` on `conn` and reports what came back.
fn tcp_answer(conn: &mut std::net::TcpStream, msg: &str) -> TcpReply {
    use std::io::{ErrorKind, Read, Write};
    if conn.write_all(msg.as_bytes()).is_err() {
        return TcpReply::Closed;
    }
    let mut buf = vec![0u8; 8192];
    let mut got = Vec::new();
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return TcpReply::Closed,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return TcpReply::Silent;
            }
            Err(_) => return TcpReply::Closed,
        }
        let text = String::from_utf8_lossy(&got);
        if let Some(line) = text.lines().next().filter(|_| text.contains("\r\n")) {
            return TcpReply::Answer(line.to_string());
        }
    }
}
