//! Issue 4 end to end: call records in the gateway's embedded PostgreSQL
//! (`<data-dir>/pg`), read back with `psql` over its unix socket.

use hotline_e2e::db::psql;
use hotline_e2e::events::{count, find};
use hotline_e2e::gateway::hotline_bin;
use hotline_e2e::rtp;
use hotline_e2e::{Gateway, Sipp, Transport, poll_until, ports, send_signal, wav};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn one(data_dir: &Path, sql: &str) -> String {
    let rows = psql(data_dir, sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows[0][0].clone()
}

#[test]
fn a_menu_call_has_one_complete_record() {
    let gw = Gateway::start("records_menu");
    let pcap = gw.dir().join("tone_5_tone.pcap");
    rtp::write_caller_pcap(&pcap, &rtp::tone_digit_tone('5'));
    let run = Sipp::new("uac_digit_gateway_bye.xml", &gw)
        .transport(Transport::Udp)
        .var("PCAP", pcap.to_str().unwrap())
        .run();
    run.assert_success();
    let log = gw.wait_call_ended(&run.call_id, Duration::from_secs(15));
    let data = gw.data_dir();
    let sip = run.call_id.replace('\'', "''");
    let row = poll_until(Duration::from_secs(10), || {
        psql(
            &data,
            &format!(
                "SELECT id, started_at <= answered_at AND answered_at <= ended_at, ended_by, outcome, \
                        coalesce(issue_type, ''), events, complete, hangup_cause, \
                        extract(epoch FROM ended_at - answered_at) * 1000, recording_id \
                 FROM calls WHERE sip_call_id = '{sip}' AND complete"
            ),
        )
        .pop()
    })
    .unwrap_or_else(|| panic!("no complete calls row; log:\n{}", gw.log_tail()));
    assert_eq!(
        one(
            &data,
            &format!("SELECT count(*) FROM calls WHERE sip_call_id = '{sip}'")
        ),
        "1"
    );
    assert_eq!(
        row[1], "t",
        "started_at <= answered_at <= ended_at: {row:?}"
    );
    assert_eq!(row[2], "gateway");
    assert_eq!(row[3], "self_served");
    assert_eq!(
        row[5],
        log.len().to_string(),
        "every event of the log is in call_events"
    );
    assert_eq!(row[6], "t");
    assert_eq!(row[7], find(&log, "hangup").data_str("cause"));
    let id = &row[0];
    // The ordered path, `at` non-decreasing, every digit.
    let evs = psql(
        &data,
        &format!(
            "SELECT seq, kind, at, coalesce(data->>'digit', '') FROM call_events WHERE call_id = '{id}' ORDER BY seq"
        ),
    );
    let seqs: Vec<String> = evs.iter().map(|e| e[0].clone()).collect();
    assert_eq!(
        seqs,
        (0..log.len()).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    let kinds: Vec<&str> = evs.iter().map(|e| e[1].as_str()).collect();
    let log_kinds: Vec<&str> = log.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, log_kinds);
    assert_eq!(
        one(
            &data,
            &format!(
                "SELECT bool_and(at >= prev) FROM (SELECT at, lag(at, 1, at) OVER (ORDER BY seq) AS prev FROM call_events WHERE call_id = '{id}') t"
            )
        ),
        "t"
    );
    let digits: Vec<&str> = evs
        .iter()
        .filter(|e| e[1] == "digit")
        .map(|e| e[3].as_str())
        .collect();
    assert_eq!(digits, ["5"]);
    assert_eq!(count(&log, "digit"), 1);
    // The recording row points at the WAV, as long as answered -> ended.
    let rec = psql(
        &data,
        &format!(
            "SELECT path, duration_ms, channels, sample_rate, sha256 FROM recordings WHERE call_id = '{id}' AND id = '{}'",
            row[9]
        ),
    );
    assert_eq!(rec.len(), 1, "{rec:?}");
    let path = PathBuf::from(&rec[0][0]);
    let stats = wav::analyze(&path).unwrap_or_else(|e| panic!("{e}"));
    let talk_ms: f64 = row[8].parse().unwrap();
    assert!(
        (stats.duration_ms - talk_ms).abs() <= 100.0,
        "WAV {} ms vs answered->ended {talk_ms} ms",
        stats.duration_ms
    );
    assert_eq!((rec[0][2].as_str(), rec[0][3].as_str()), ("2", "8000"));
    assert_eq!(rec[0][4].len(), 64, "sha256 recorded");
}

/// `hotline serve` on a given data dir, outside the harness (to restart on
/// the same data dir after a SIGKILL).
/// `node` by `--node-name`, or else by `HOTLINE_NODE` (both are the
/// contract; neither is the host name: the records and crash recovery must
/// agree on the node whatever it is, issue 10's node-name defect).
fn spawn_gateway(data_dir: &Path, log: &Path, node: Node) -> (Child, u16, u16) {
    spawn_gateway_with(data_dir, log, node, &[])
}

/// As [`spawn_gateway`], with more flags.
fn spawn_gateway_with(
    data_dir: &Path,
    log: &Path,
    node: Node,
    extra: &[&str],
) -> (Child, u16, u16) {
    let (sip, http) = (ports::free_port(), ports::free_port());
    let rtp = ports::rtp_range();
    let root = hotline_e2e::workspace_root();
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(hotline_bin())
        .arg("serve")
        .args(["--sip-listen", &format!("127.0.0.1:{sip}")])
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .args(["--rtp-ports", &format!("{}-{}", rtp.0, rtp.1)])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--sounds-dir")
        .arg(root.join("sounds"))
        .args(["--drain-timeout-secs", "2"])
        .args(extra)
        .args(match node {
            Node::Flag(n) => vec!["--node-name", n],
            Node::Env(_) => vec![],
        })
        .envs(match node {
            Node::Flag(_) => vec![],
            Node::Env(n) => vec![("HOTLINE_NODE", n)],
        })
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let ok = poll_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", http)).ok()
    });
    assert!(ok.is_some(), "gateway did not come up");
    (child, sip, http)
}

/// Two SIPp calls (SIPp's built-in caller, no audio) to `127.0.0.1:sip`
/// that hang up after `hold_ms`, in the background.
fn two_long_calls(dir: &Path, sip: u16, hold_ms: u32, timeout_secs: u32) -> Child {
    Command::new("sipp")
        .args(["-sn", "uac", "-m", "2", "-r", "2", "-nostdin"])
        .args([
            "-d",
            &hold_ms.to_string(),
            "-timeout",
            &timeout_secs.to_string(),
        ])
        .arg(format!("127.0.0.1:{sip}"))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp")
}

/// How a test gateway is given its node name.
#[derive(Clone, Copy)]
enum Node {
    Flag(&'static str),
    Env(&'static str),
}

const CRASH_NODE: &str = "crash-test-node";

#[test]
fn a_crash_leaves_no_open_call() {
    let dir = hotline_e2e::TempDir::new("records_crash");
    let data = dir.path().join("data");
    // A lease far longer than the test: the other node below must leave
    // these calls to the crash node's own recovery, whatever CI's pace.
    let (mut gw, sip, _) = spawn_gateway_with(
        &data,
        &dir.path().join("gw1.log"),
        Node::Flag(CRASH_NODE),
        &["--node-lease-secs", "600"],
    );
    // Two calls that stay up for 20 s.
    let mut sipp = two_long_calls(dir.path(), sip, 20000, 40);
    let answered = poll_until(Duration::from_secs(10), || {
        (one(
            &data,
            "SELECT count(*) FROM calls WHERE answered_at IS NOT NULL",
        ) == "2")
            .then_some(())
    });
    assert!(answered.is_some(), "two answered calls recorded");
    // Let both recordings hold over a second of audio (the recorder rewrites
    // the WAV header once a second; the data runs ahead of it).
    let wavs = poll_until(Duration::from_secs(10), || {
        let sizes: Vec<u64> = std::fs::read_dir(data.join("recordings"))
            .ok()?
            .filter_map(|e| e.ok()?.metadata().ok().map(|m| m.len()))
            .collect();
        (sizes.len() == 2 && sizes.iter().all(|&b| b > 44 + 8000 * 4 * 3 / 2)).then_some(())
    });
    assert!(wavs.is_some(), "two recordings with 1.5 s of audio each");
    send_signal(gw.id(), "KILL");
    let _ = gw.wait();
    assert_eq!(
        one(&data, "SELECT count(*) FROM calls WHERE NOT complete"),
        "2"
    );

    // Another node on the same database (here: the same data dir) starts
    // and recovers: the dead node's calls are not its own, it leaves them.
    let other_log = dir.path().join("gw-other.log");
    let (mut other, _, _) = spawn_gateway(&data, &other_log, Node::Env("other-node"));
    let recovered = poll_until(Duration::from_secs(20), || {
        let log = std::fs::read_to_string(&other_log).ok()?;
        log.lines()
            .find(|l| l.contains("start-up recovery done") && l.contains("node=other-node"))
            .map(str::to_owned)
    })
    .expect("the other node logs its recovery");
    assert!(recovered.contains("interrupted=0"), "{recovered}");
    assert_eq!(
        one(&data, "SELECT count(*) FROM calls WHERE NOT complete"),
        "2",
        "another node's recovery leaves the dead node's calls open"
    );
    send_signal(other.id(), "TERM");
    assert!(other.wait().unwrap().success());

    let (mut gw, _, _) = spawn_gateway(&data, &dir.path().join("gw2.log"), Node::Env(CRASH_NODE));
    let closed = poll_until(Duration::from_secs(10), || {
        let rows = psql(
            &data,
            "SELECT ended_by, hangup_cause, complete FROM calls ORDER BY started_at",
        );
        (rows.len() == 2 && rows.iter().all(|r| r[2] == "t")).then_some(rows)
    })
    .expect("the interrupted calls are closed after restart");
    for r in &closed {
        assert_eq!((r[0].as_str(), r[1].as_str()), ("gateway", "interrupted"));
    }
    assert_eq!(
        one(&data, "SELECT string_agg(DISTINCT node, ',') FROM calls"),
        CRASH_NODE,
        "calls are recorded under --node-name"
    );
    // Issue 9 #10: each interrupted call has its recordings row (the WAV the
    // crash left plays), and its talk time is the length of that audio.
    let recs = psql(
        &data,
        "SELECT r.path, r.duration_ms, r.channels, \
                round(c.talk_seconds * 1000)::bigint, c.recording_id = r.id \
           FROM calls c JOIN recordings r ON r.call_id = c.id ORDER BY c.started_at",
    );
    assert_eq!(
        recs.len(),
        2,
        "a recordings row per interrupted call: {recs:?}"
    );
    for r in &recs {
        let path = PathBuf::from(&r[0]);
        assert!(path.is_absolute(), "stored path {path:?} is absolute");
        let stats = wav::analyze(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (dur, talk): (f64, f64) = (r[1].parse().unwrap(), r[3].parse().unwrap());
        assert!(dur >= 1500.0, "recording of {dur} ms");
        assert!(
            (stats.duration_ms - dur).abs() <= 20.0,
            "row says {dur} ms, the WAV holds {} ms",
            stats.duration_ms
        );
        assert!(
            (talk - dur).abs() <= 100.0,
            "talk {talk} ms vs audio {dur} ms"
        );
        assert_eq!((r[2].as_str(), r[4].as_str()), ("2", "t"), "{r:?}");
    }
    let spool = data.join("spool");
    let left = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "spool drained");
    let _ = sipp.kill();
    let _ = sipp.wait();
    send_signal(gw.id(), "TERM");
    let status = gw.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        !data.join("pg/postmaster.pid").exists(),
        "embedded PostgreSQL stopped"
    );
}

#[test]
fn a_dead_nodes_calls_are_closed_by_another_node_once_its_lease_expires() {
    // Two nodes on one database (one data dir, so one embedded PostgreSQL),
    // both with 3 s leases renewed every second.
    let dir = hotline_e2e::TempDir::new("records_lease");
    let data = dir.path().join("data");
    let lease = ["--node-lease-secs", "3"];
    let (mut a, sip_a, _) = spawn_gateway_with(
        &data,
        &dir.path().join("node-a.log"),
        Node::Flag("lease-node-a"),
        &lease,
    );
    let mut sipp = two_long_calls(dir.path(), sip_a, 30000, 60);
    let answered = poll_until(Duration::from_secs(10), || {
        (one(
            &data,
            "SELECT count(*) FROM calls WHERE answered_at IS NOT NULL AND NOT complete",
        ) == "2")
            .then_some(())
    });
    assert!(answered.is_some(), "two calls up on node A");
    let b_log = dir.path().join("node-b.log");
    let (mut b, _, _) = spawn_gateway_with(&data, &b_log, Node::Env("lease-node-b"), &lease);
    let b_leased = poll_until(Duration::from_secs(20), || {
        (one(
            &data,
            "SELECT count(*) FROM node_leases WHERE node = 'lease-node-b'",
        ) == "1")
            .then_some(())
    });
    assert!(b_leased.is_some(), "node B takes its lease");
    // Nothing of a live node is touched: for twice A's lease, with B looking
    // every second, A's calls stay open (A renews its lease).
    let touched = poll_until(Duration::from_secs(6), || {
        (one(&data, "SELECT count(*) FROM calls WHERE complete") != "0").then_some(())
    });
    assert!(touched.is_none(), "a live node's calls were closed");

    send_signal(a.id(), "KILL");
    let _ = a.wait();
    // Within A's lease (3 s) and B's next look (1 s), with CI's slack.
    let closed = poll_until(Duration::from_secs(20), || {
        let rows = psql(
            &data,
            "SELECT node, ended_by, hangup_cause FROM calls WHERE complete ORDER BY started_at",
        );
        (rows.len() == 2).then_some(rows)
    })
    .unwrap_or_else(|| {
        panic!(
            "node A's calls not closed by node B; B's log:\n{}",
            hotline_e2e::file_tail(&b_log, 30)
        )
    });
    for r in &closed {
        assert_eq!(
            (r[0].as_str(), r[1].as_str(), r[2].as_str()),
            ("lease-node-a", "gateway", "interrupted"),
            "{closed:?}"
        );
    }
    let b_said = std::fs::read_to_string(&b_log).unwrap();
    assert!(
        b_said.lines().any(|l| l.contains("lease expired")
            && l.contains("dead_node=lease-node-a")
            && l.contains("calls=2")),
        "node B logs the take-over:\n{b_said}"
    );
    assert_eq!(
        one(&data, "SELECT string_agg(node, ',') FROM node_leases"),
        "lease-node-b",
        "A's lease is gone, B's stays"
    );
    // A clean stop gives the lease up.
    send_signal(b.id(), "TERM");
    assert!(b.wait().unwrap().success());
    let _ = sipp.kill();
    let _ = sipp.wait();
    let (mut b2, _, _) = spawn_gateway_with(&data, &b_log, Node::Env("lease-node-c"), &lease);
    let left = poll_until(Duration::from_secs(20), || {
        let n = one(
            &data,
            "SELECT string_agg(node, ',' ORDER BY node) FROM node_leases",
        );
        (n == "lease-node-c").then_some(n)
    });
    assert!(left.is_some(), "B released its lease at its clean stop");
    send_signal(b2.id(), "TERM");
    assert!(b2.wait().unwrap().success());
}

#[test]
fn a_database_outage_during_sixty_calls_loses_nothing() {
    let gw = Gateway::start("records_outage");
    let data = gw.data_dir();
    let pg = data.join("pg");
    let mut sipp = Command::new("sipp")
        .args([
            "-sn", "uac", "-m", "60", "-r", "10", "-d", "500", "-timeout", "60", "-nostdin",
        ])
        .arg(gw.sip_addr().to_string())
        .current_dir(gw.dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // Stop PostgreSQL (fast shutdown) under the running gateway...
    let pid: u32 = std::fs::read_to_string(pg.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    send_signal(pid, "INT");
    poll_until(Duration::from_secs(10), || {
        (!pg.join("postmaster.pid").exists()).then_some(())
    })
    .expect("PostgreSQL stopped");
    std::thread::sleep(Duration::from_millis(2000));
    // ... and start it again, as the gateway would.
    let st = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(Path::new(&one_line("pg_config", "--bindir")).join("pg_ctl"))
        .arg("start")
        .arg("-D")
        .arg(&pg)
        .args(["-w", "-s", "-l"])
        .arg(pg.join("postgres.log"))
        .arg("-o")
        .arg(format!(
            "-c listen_addresses='' -c unix_socket_directories='{}'",
            pg.display()
        ))
        .current_dir(&pg)
        .status()
        .unwrap();
    assert!(st.success(), "pg_ctl start");
    let sipp_ok = sipp.wait().unwrap();
    assert!(sipp_ok.success(), "all 60 SIPp calls completed: {sipp_ok}");

    // Every call in the JSON log has exactly one complete row with all its events.
    let ended = poll_until(Duration::from_secs(20), || {
        let log = gw.all_events();
        (count(&log, "call_ended") == 60).then_some(log)
    })
    .expect("60 calls ended in the event log");
    let done = poll_until(Duration::from_secs(30), || {
        (one(&data, "SELECT count(*) FROM calls WHERE complete") == "60").then_some(())
    });
    assert!(
        done.is_some(),
        "60 complete calls rows; log:\n{}",
        gw.log_tail()
    );
    let mut per_call = std::collections::BTreeMap::<String, usize>::new();
    for e in &ended {
        *per_call.entry(e.call_id().to_owned()).or_default() += 1;
    }
    let rows = psql(
        &data,
        "SELECT c.id, c.events, (SELECT count(*) FROM call_events e WHERE e.call_id = c.id), c.last_seq FROM calls c",
    );
    assert_eq!(rows.len(), 60, "one row per call");
    for r in &rows {
        let want = per_call[&r[0]];
        assert_eq!(
            (
                r[1].parse::<usize>().unwrap(),
                r[2].parse::<usize>().unwrap(),
                r[3].parse::<usize>().unwrap() + 1
            ),
            (want, want, want),
            "call {}",
            r[0]
        );
    }
    assert_eq!(
        one(&data, "SELECT count(*) FROM call_events"),
        ended.len().to_string(),
        "none missing, none doubled"
    );
    let spooled = std::fs::read_to_string(gw.log_path())
        .unwrap()
        .contains("spooling");
    eprintln!("outage: events spooled during the outage: {spooled}");
    assert!(spooled, "the outage was noticed (events went to the spool)");
    assert_eq!(
        std::fs::read_dir(data.join("spool")).unwrap().count(),
        0,
        "spool drained"
    );
}

fn one_line(cmd: &str, arg: &str) -> String {
    let out = Command::new(cmd).arg(arg).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
