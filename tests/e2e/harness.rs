//! Self-tests of the harness that need no gateway: pcap generation is readable by
//! tcpdump/tshark and playable by SIPp.

use hotline_e2e::pcap::read_udp;
use hotline_e2e::rtp::{self, CallerAudio, PT_EVENT, parse_rtp};
use hotline_e2e::{TempDir, events, ports};
use std::process::Command;

#[test]
fn generated_pcap_parses_with_tcpdump() {
    if !hotline_e2e::require_tool(
        "tcpdump",
        "apt-get install tcpdump",
        "generated_pcap_parses_with_tcpdump",
    ) {
        return;
    }
    let dir = TempDir::new("pcap-selftest");
    let path = dir.path().join("tone_digit.pcap");
    rtp::write_caller_pcap(&path, &rtp::tone_digit_tone('5'));
    let ours = read_udp(&path).expect("our reader");
    assert_eq!(ours.len(), 209);
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&path)
        .output()
        .expect("run tcpdump -r");
    assert!(
        out.status.success(),
        "tcpdump -r failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 209, "{text}");
    assert!(
        lines[0].contains("127.0.0.1.6000 > 127.0.0.1.6002: UDP, length 172"),
        "{}",
        lines[0]
    );
}

#[test]
fn generated_pcap_decodes_as_rtp_event_with_tshark() {
    if !hotline_e2e::require_tool(
        "tshark",
        "apt-get install tshark",
        "generated_pcap_decodes_as_rtp_event_with_tshark",
    ) {
        return;
    }
    let dir = TempDir::new("pcap-tshark");
    let path = dir.path().join("digit.pcap");
    rtp::write_caller_pcap(
        &path,
        &[
            CallerAudio::Tone { hz: 440.0, ms: 100 },
            CallerAudio::Digit {
                digit: '#',
                packets: 5,
            },
        ],
    );
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&path)
        .args([
            "-d",
            "udp.port==6002,rtp",
            "-T",
            "fields",
            "-e",
            "rtp.p_type",
            "-e",
            "rtpevent.event_id",
            "-e",
            "rtpevent.end_of_event",
        ])
        .output()
        .expect("run tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(
        rows.len(),
        5 + 8,
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(rows[0].starts_with('0'), "{text}");
    assert!(rows[5].starts_with("101\t11"), "{text}");
    let pkts: Vec<_> = read_udp(&path)
        .unwrap()
        .iter()
        .filter_map(parse_rtp)
        .collect();
    assert_eq!(
        pkts.iter().filter(|p| p.payload_type == PT_EVENT).count(),
        8
    );
}

#[test]
fn ports_are_distinct() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..20 {
        assert!(seen.insert(ports::free_port()));
    }
    let m = ports::free_media_port();
    assert_eq!(m % 2, 0);
    assert!(!seen.contains(&m));
    let (a, b) = ports::rtp_range();
    let (c, d) = ports::rtp_range();
    assert!(b < c || d < a, "{a}-{b} overlaps {c}-{d}");
}

#[test]
fn event_log_checks() {
    let line = |seq: u32, kind: &str, at: &str| {
        format!(
            r#"{{"call_id":"c1","sip_call_id":"x","seq":{seq},"at":"{at}","kind":"{kind}","node":null,"data":{{}}}}"#
        )
    };
    let dir = TempDir::new("events-selftest");
    let p = dir.path().join("call-events.jsonl");
    let text = format!(
        "{}\n{}\n{}\n{{\"partial",
        line(0, "call_started", "2026-11-25T13:00:00.1Z"),
        line(1, "answered", "2026-11-25T13:00:00.2Z"),
        line(3, "call_ended", "2026-11-25T13:00:00.15Z"),
    );
    std::fs::write(&p, text).unwrap();
    let evs = events::read_events(&p).unwrap();
    assert_eq!(evs.len(), 3);
    let problems = events::assert_call_log_well_formed(&evs);
    assert_eq!(problems.len(), 2, "{problems:#?}");

    // A log that stops before `call_ended` (or goes on after it) is not a
    // finished call.
    let unfinished = format!(
        "{}\n{}\n",
        line(0, "call_started", "2026-11-25T13:00:00.1Z"),
        line(1, "answered", "2026-11-25T13:00:00.2Z"),
    );
    std::fs::write(&p, unfinished).unwrap();
    let problems = events::assert_call_log_well_formed(&events::read_events(&p).unwrap());
    assert_eq!(
        problems,
        [
            "call c1: 0 call_ended events, expected 1",
            "call c1: last event is not call_ended"
        ],
        "{problems:#?}"
    );
    let after_end = format!(
        "{}\n{}\n{}\n",
        line(0, "call_started", "2026-11-25T13:00:00.1Z"),
        line(1, "call_ended", "2026-11-25T13:00:00.2Z"),
        line(2, "hangup", "2026-11-25T13:00:00.3Z"),
    );
    std::fs::write(&p, after_end).unwrap();
    let problems = events::assert_call_log_well_formed(&events::read_events(&p).unwrap());
    assert_eq!(
        problems,
        ["call c1: last event is not call_ended"],
        "{problems:#?}"
    );
}

/// The digit scenario, the pcap generator, SIPp's pcap playback and the tcpdump
/// capture, end to end against a SIPp stand-in for the gateway.
#[test]
fn uac_scenario_against_sipp_stand_in() {
    use hotline_e2e::{Sipp, package_root};
    let dir = TempDir::new("sipp-selftest");
    let pcap = dir.path().join("tone.pcap");
    rtp::write_caller_pcap(&pcap, &rtp::tone_digit_tone('3'));
    let uas_xml = std::fs::read_to_string(package_root().join("sipp/selftest_uas.xml"))
        .unwrap()
        .replace("{{PCAP}}", pcap.to_str().unwrap());
    let uas_path = dir.path().join("selftest_uas.xml");
    std::fs::write(&uas_path, uas_xml).unwrap();
    let uas_port = ports::free_port();
    let uas_media = ports::free_media_port();
    let mut uas = Command::new("sipp")
        .current_dir(dir.path())
        .arg("-sf")
        .arg(&uas_path)
        .args(["-m", "1", "-i", "127.0.0.1", "-p", &uas_port.to_string()])
        .args([
            "-mp",
            &uas_media.to_string(),
            "-t",
            "u1",
            "-nostdin",
            "-trace_err",
        ])
        .args(["-timeout", "30s", "-timeout_error"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn sipp uas");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let run = Sipp::against("uac_digit_gateway_bye.xml", uas_port, dir.path())
        .var("PCAP", pcap.to_str().unwrap())
        .capture()
        .timeout(std::time::Duration::from_secs(30))
        .run();
    let uas_status = uas.wait().unwrap();
    run.assert_success();
    assert!(uas_status.success(), "SIPp UAS failed: {uas_status}");
    let got = run.rtp_received();
    let stats = rtp::stream_stats(&got);
    assert!(stats.pcmu_packets >= 50, "{stats:?}");
    assert!((stats.median_gap_ms - 20.0).abs() < 5.0, "{stats:?}");
    assert!(stats.rms > 1000.0, "{stats:?}");
    assert!(
        got.iter()
            .any(|p| p.payload_type == PT_EVENT && p.payload[0] == 3)
    );
    assert!(run.sip_received().iter().any(|m| m.starts_with("BYE ")));
}
