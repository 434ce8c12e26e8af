//! Issue 13, recordings and personal data, end to end: a real SIPp call to
//! the real gateway, then `hotline erase --caller` on its data dir, and a
//! recording sealed at rest served decrypted by the admin API (with Range)
//! and refused, like by `hotline recordings verify`, once a byte on disk
//! is flipped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use hotline_e2e::db::psql;
use hotline_e2e::gateway::hotline_bin;
use hotline_e2e::{Gateway, Sipp, Transport, poll_until, rtp};

const NUMBER: &str = "+8613800138000";
const TOKEN: &str = "privacy-test-admin-token";

/// One call from `NUMBER` that is answered, recorded and ended; returns
/// (call id, recording path, sha256, bytes) once its records are complete.
fn call_and_wait(gw: &Gateway) -> (String, String, String, u64) {
    let pcap = gw.dir().join("tone_5_tone.pcap");
    rtp::write_caller_pcap(&pcap, &rtp::tone_digit_tone('5'));
    let run = Sipp::new("uac_numbered_caller.xml", gw)
        .transport(Transport::Udp)
        .var("PCAP", pcap.to_str().unwrap())
        .var("CALLER", NUMBER)
        .run();
    run.assert_success();
    let sip = run.call_id.replace('\'', "''");
    let row = poll_until(Duration::from_secs(20), || {
        psql(
            &gw.data_dir(),
            &format!(
                "SELECT c.id, r.path, coalesce(r.sha256, ''), r.bytes FROM calls c \
                 JOIN recordings r ON r.id = c.recording_id \
                 WHERE c.sip_call_id = '{sip}' AND c.complete"
            ),
        )
        .pop()
    })
    .unwrap_or_else(|| panic!("no complete call with a recording; log:\n{}", gw.log_tail()));
    assert_eq!(row[2].len(), 64, "sha256 recorded: {row:?}");
    (
        row[0].clone(),
        row[1].clone(),
        row[2].clone(),
        row[3].parse().unwrap(),
    )
}

fn hotline(args: &[&str]) -> Output {
    let out = Command::new("timeout")
        .arg("120")
        .arg(hotline_bin())
        .args(args)
        .output()
        .expect("run hotline");
    eprintln!(
        "[e2e] hotline {}:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn one(data: &Path, sql: &str) -> String {
    let rows = psql(data, sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows[0][0].clone()
}

#[test]
fn erase_caller_after_a_real_call_deletes_masks_audits_once() {
    let gw = Gateway::start("privacy_erase");
    let data = gw.data_dir();
    let data_arg = data.to_str().unwrap();
    let (id, wav, _, _) = call_and_wait(&gw);
    assert!(Path::new(&wav).exists());
    let log = std::fs::read_to_string(gw.events_path()).unwrap();
    assert!(log.contains(NUMBER), "the event log has the number before");
    assert!(log.contains("Erin Example"));

    // --dry-run lists and changes nothing.
    let dry = hotline(&[
        "erase",
        "--caller",
        NUMBER,
        "--dry-run",
        "--data-dir",
        data_arg,
    ]);
    assert!(dry.status.success());
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(text.contains(&wav) && text.contains("would"), "{text}");
    assert!(Path::new(&wav).exists());
    assert_eq!(
        one(
            &data,
            &format!("SELECT caller FROM calls WHERE id = '{id}'")
        ),
        NUMBER
    );

    // The erasure, while the gateway runs (and appends to its event log).
    let out = hotline(&["erase", "--caller", NUMBER, "--data-dir", data_arg]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("audit entry"), "{text}");
    assert!(!Path::new(&wav).exists(), "recording file deleted");
    assert_eq!(
        one(
            &data,
            &format!("SELECT deleted_reason FROM recordings WHERE call_id = '{id}'")
        ),
        "erase"
    );
    let masked = "*".repeat(NUMBER.len());
    assert_eq!(
        one(
            &data,
            &format!("SELECT caller || '|' || caller_name FROM calls WHERE id = '{id}'")
        ),
        format!("{masked}|************")
    );
    assert_eq!(
        one(
            &data,
            &format!(
                "SELECT count(*) FROM call_events WHERE call_id = '{id}' \
                 AND (strpos(data::text, '{NUMBER}') > 0 OR strpos(data::text, 'Erin Example') > 0)"
            )
        ),
        "0"
    );
    let log = std::fs::read_to_string(gw.events_path()).unwrap();
    assert!(!log.contains(NUMBER), "event log masked");
    assert!(!log.contains("Erin Example"), "display name masked");
    for line in log.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("event log line no longer JSON ({e}): {line}"));
    }
    let audit = psql(
        &data,
        "SELECT actor, subject, details->>'recordings_deleted' FROM audit_log WHERE action = 'erase_caller'",
    );
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(audit[0][0].starts_with("cli:"), "{audit:?}");
    assert!(
        !audit[0][1].contains(NUMBER),
        "the audit log does not keep the number"
    );
    assert_eq!(audit[0][2], "1");

    // Again: nothing to do, nothing changed, no second audit entry.
    let before = std::fs::read(gw.events_path()).unwrap();
    let again = hotline(&["erase", "--caller", NUMBER, "--data-dir", data_arg]);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to erase"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(std::fs::read(gw.events_path()).unwrap(), before);
    assert_eq!(
        one(
            &data,
            "SELECT count(*) FROM audit_log WHERE action = 'erase_caller'"
        ),
        "1"
    );
    // The gateway is still up.
    assert_eq!(gw.http_get("/healthz").map(|r| r.0).unwrap_or(0), 200);
}

/// A raw HTTP/1.1 GET: (status, headers lowercased, body bytes).
fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let addr: SocketAddr = ([127, 0, 0, 1], gw.http_port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
        gw.http_port
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&buf[..split]).to_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = buf[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn a_sealed_recording_is_served_decrypted_with_range_and_a_flipped_byte_is_caught() {
    let keys = hotline_e2e::TempDir::new("privacy_keys");
    let key: PathBuf = keys.path().join("recording.key");
    std::fs::write(&key, format!("{}\n", "5a".repeat(32))).unwrap();
    let key_arg = key.to_str().unwrap();
    let gw = Gateway::start_with(
        "privacy_sealed",
        &["--recording-key-file", key_arg, "--admin-token", TOKEN],
    );
    let (id, path, sha, bytes) = call_and_wait(&gw);

    // On disk: sealed, no plain WAV left.
    assert!(path.ends_with(".wav.enc"), "{path}");
    let on_disk = std::fs::read(&path).unwrap();
    assert!(!on_disk.starts_with(b"RIFF"), "not a readable WAV on disk");
    assert!(hound::WavReader::open(&path).is_err());
    assert!(!Path::new(path.trim_end_matches(".enc")).exists());
    assert!(on_disk.len() as u64 > bytes);

    // The API: token required, unknown calls 404, the WAV decrypted.
    let url = format!("/api/calls/{id}/recording");
    let auth = format!("Bearer {TOKEN}");
    assert_eq!(get(&gw, &url, &[]).0, 401);
    assert_eq!(
        get(
            &gw,
            "/api/calls/00000000-0000-4000-8000-000000000000/recording",
            &[("Authorization", &auth)]
        )
        .0,
        404
    );
    let (status, head, wav) = get(&gw, &url, &[("Authorization", &auth)]);
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: audio/wav"), "{head}");
    assert!(head.contains("accept-ranges: bytes"), "{head}");
    assert_eq!(wav.len() as u64, bytes);
    assert!(wav.starts_with(b"RIFF"));
    assert_eq!(sha256_hex(&wav), sha, "the served WAV is the recorded one");
    let reader = hound::WavReader::new(std::io::Cursor::new(&wav)).unwrap();
    assert_eq!(reader.spec().channels, 2);

    let (status, head, part) = get(
        &gw,
        &url,
        &[("Authorization", &auth), ("Range", "bytes=100-70099")],
    );
    assert_eq!(status, 206, "{head}");
    assert!(
        head.contains(&format!("content-range: bytes 100-70099/{bytes}")),
        "{head}"
    );
    assert_eq!(part, wav[100..70100]);
    let (status, _, tail) = get(
        &gw,
        &url,
        &[("Authorization", &auth), ("Range", "bytes=-10")],
    );
    assert_eq!(status, 206);
    assert_eq!(tail, wav[wav.len() - 10..]);
    let (status, head, _) = get(
        &gw,
        &url,
        &[
            ("Authorization", &auth),
            ("Range", &format!("bytes={bytes}-")),
        ],
    );
    assert_eq!(status, 416, "{head}");

    let data = gw.data_dir();
    let data_arg = data.to_str().unwrap();
    let ok = hotline(&[
        "recordings",
        "verify",
        "--data-dir",
        data_arg,
        "--recording-key-file",
        key_arg,
    ]);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("1 recordings verified, 0 failed"));
    let nokey = hotline(&["recordings", "verify", "--data-dir", data_arg]);
    assert!(
        !nokey.status.success(),
        "a sealed file cannot be verified without its key"
    );

    // One flipped byte in the middle of the sealed file.
    let mut flipped = on_disk.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    std::fs::write(&path, &flipped).unwrap();
    let (status, _, body) = get(&gw, &url, &[("Authorization", &auth)]);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("checksum"), "{body}");
    let bad = hotline(&[
        "recordings",
        "verify",
        "--data-dir",
        data_arg,
        "--recording-key-file",
        key_arg,
    ]);
    assert!(!bad.status.success());
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(text.contains("MISMATCH") && text.contains(&id), "{text}");
}

#[test]
fn the_retention_job_in_serve_removes_a_backdated_call_and_keeps_a_recent_one() {
    let mut gw = Gateway::start_with(
        "privacy_retention",
        &[
            "--retain-recordings-days",
            "30",
            "--mask-callers-after-days",
            "30",
        ],
    );
    let (old, old_wav, _, _) = call_and_wait(&gw);
    let (recent, recent_wav, _, _) = call_and_wait(&gw);
    let data = gw.data_dir();
    // The first call is made 40 days old; the job runs at the next start.
    psql(
        &data,
        &format!(
            "UPDATE calls SET started_at = started_at - interval '40 days' WHERE id = '{old}'"
        ),
    );
    gw.restart();
    let masked = "*".repeat(NUMBER.len());
    poll_until(Duration::from_secs(30), || {
        (one(
            &data,
            &format!("SELECT caller FROM calls WHERE id = '{old}'"),
        ) == masked)
            .then_some(())
    })
    .unwrap_or_else(|| panic!("old caller not masked; log:\n{}", gw.log_tail()));
    assert!(!Path::new(&old_wav).exists(), "old recording deleted");
    assert_eq!(
        one(
            &data,
            &format!("SELECT deleted_reason FROM recordings WHERE call_id = '{old}'")
        ),
        "retention"
    );
    assert!(Path::new(&recent_wav).exists(), "recent recording kept");
    assert_eq!(
        one(
            &data,
            &format!("SELECT caller FROM calls WHERE id = '{recent}'")
        ),
        NUMBER
    );
    let log = std::fs::read_to_string(gw.events_path()).unwrap();
    for line in log.lines() {
        if line.contains(&old) {
            assert!(!line.contains(NUMBER), "{line}");
        }
    }
    assert!(
        log.lines()
            .any(|l| l.contains(&recent) && l.contains(NUMBER)),
        "the recent call keeps its number in the event log"
    );
    poll_until(Duration::from_secs(10), || {
        gw.log_tail()
            .contains("retention pass removed old personal data")
            .then_some(())
    })
    .expect("the pass is logged");
    assert_eq!(
        one(
            &data,
            "SELECT details->>'recordings_deleted' FROM audit_log WHERE action = 'retention'"
        ),
        "1"
    );
}
