//! Call flows driven by SIPp against the real gateway: digits (RFC 4733 and INFO),
//! caller hang-up, CANCEL, hold/resume, over UDP and TCP; plus audio and recording.

use hotline_e2e::events::{self, Event, assert_in_order, assert_well_formed, count, find};
use hotline_e2e::rtp::{self, CallerAudio, stream_stats};
use hotline_e2e::{Gateway, Sipp, SippRun, Transport, wav};
use std::path::PathBuf;
use std::time::Duration;

const CALL_END_WAIT: Duration = Duration::from_secs(15);

fn write_pcap(gw: &Gateway, name: &str, parts: &[CallerAudio]) -> String {
    let path: PathBuf = gw.dir().join(name);
    rtp::write_caller_pcap(&path, parts);
    path.to_str().expect("utf-8 temp path").to_string()
}

fn tone(ms: u32) -> Vec<CallerAudio> {
    vec![CallerAudio::Tone { hz: 440.0, ms }]
}

/// The `recording` event's WAV: stereo, 16-bit, 8 kHz, as long as answered→hangup.
fn check_recording(events: &[Event]) -> wav::WavStats {
    let rec = find(events, "recording");
    let path = PathBuf::from(rec.data_str("path"));
    assert!(path.is_absolute(), "recording path not absolute: {rec}");
    assert!(path.is_file(), "recording file missing: {rec}");
    let stats = wav::analyze(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stats.channels, 2, "{stats:?}");
    assert_eq!(stats.sample_rate, 8000, "{stats:?}");
    assert_eq!(stats.bits_per_sample, 16, "{stats:?}");
    let answered = find(events, "answered").at_us();
    let hangup = find(events, "hangup").at_us();
    let call_ms = (hangup - answered) as f64 / 1000.0;
    assert!(
        (stats.duration_ms - call_ms).abs() <= 100.0,
        "recording is {:.0} ms but answered→hangup is {call_ms:.0} ms ({stats:?})",
        stats.duration_ms
    );
    if let Some(d) = rec.data()["duration_ms"].as_f64() {
        assert!(
            (d - stats.duration_ms).abs() <= 100.0,
            "recording event says {d} ms, file has {:.0} ms",
            stats.duration_ms
        );
    } else {
        panic!("recording event without numeric data.duration_ms: {rec}");
    }
    stats
}

/// Audio the gateway sent to SIPp: ≥ `min_packets` PCMU packets every ~20 ms, one
/// SSRC, clearly not silence.
fn check_gateway_audio(run: &SippRun, min_packets: usize) {
    let pkts = run.rtp_received();
    let stats = stream_stats(&pkts);
    assert!(
        stats.pcmu_packets >= min_packets,
        "expected ≥ {min_packets} PCMU packets from the gateway, got {stats:?}"
    );
    assert!(
        (15.0..=25.0).contains(&stats.median_gap_ms),
        "RTP not paced at 20 ms: {stats:?}"
    );
    assert!(
        stats.loud_packets >= min_packets / 2 && stats.rms > 300.0,
        "gateway audio is (nearly) silent: {stats:?}"
    );
    assert_eq!(
        stats.ssrcs.len(),
        1,
        "gateway changed SSRC mid-call: {stats:?}"
    );
    let mut seqs: Vec<u16> = pkts.iter().map(|p| p.seq).collect();
    let before = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        before,
        "duplicate RTP sequence numbers from the gateway"
    );
}

fn digit_call(transport: Transport, label: &str) {
    let gw = Gateway::start(label);
    let pcap = write_pcap(&gw, "tone_5_tone.pcap", &rtp::tone_digit_tone('5'));
    let run = Sipp::new("uac_digit_gateway_bye.xml", &gw)
        .transport(transport)
        .var("PCAP", pcap)
        .capture()
        .run();
    run.assert_success();
    let evs = gw.wait_call_ended(&run.call_id, CALL_END_WAIT);
    assert_well_formed(&evs);
    assert_in_order(
        &evs,
        &[
            ("call_started", &[]),
            ("answered", &[]),
            ("prompt_started", &[("prompt", "en/welcome")]),
            ("digit", &[("digit", "5"), ("transport", "rfc4733")]),
            ("prompt_started", &[("prompt", "en/you-pressed")]),
            ("prompt_started", &[("prompt", "en/digits/5")]),
            ("hangup", &[("ended_by", "gateway")]),
            ("recording", &[]),
            ("call_ended", &[]),
        ],
    );
    assert_eq!(
        count(&evs, "digit"),
        1,
        "one RFC 4733 event (with 3 end packets) must give exactly one digit"
    );
    assert_in_order(
        &evs,
        &[(
            "prompt_finished",
            &[("prompt", "en/welcome"), ("interrupted", "true")],
        )],
    );
    assert_eq!(evs.last().map(Event::kind), Some("call_ended"));
    let started = find(&evs, "call_started");
    let want = match transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
    };
    assert_eq!(
        started.data_str("transport").to_ascii_lowercase(),
        want,
        "call_started transport: {started}"
    );
    // Prompt audio reached SIPp: at least 1 s of welcome + "you pressed" + digit.
    check_gateway_audio(&run, 50);
    let rec = check_recording(&evs);
    assert!(
        rec.rms[0] > 1000.0,
        "caller channel (440 Hz tone) too quiet: {rec:?}"
    );
    assert!(
        rec.rms[1] > 300.0,
        "gateway channel (prompts) too quiet: {rec:?}"
    );
}

#[test]
fn rfc4733_digit_then_gateway_hangs_up_udp() {
    digit_call(Transport::Udp, "digit-udp");
}

#[test]
fn rfc4733_digit_then_gateway_hangs_up_tcp() {
    digit_call(Transport::Tcp, "digit-tcp");
}

#[test]
fn caller_hangs_up() {
    let gw = Gateway::start("caller-bye");
    let pcap = write_pcap(&gw, "tone.pcap", &tone(4000));
    let run = Sipp::new("uac_caller_bye.xml", &gw)
        .var("PCAP", pcap)
        .var("PAUSE_MS", "2000")
        .run();
    run.assert_success();
    let evs = gw.wait_call_ended(&run.call_id, CALL_END_WAIT);
    assert_well_formed(&evs);
    assert_in_order(
        &evs,
        &[
            ("call_started", &[]),
            ("answered", &[]),
            ("prompt_started", &[("prompt", "en/welcome")]),
            ("hangup", &[("ended_by", "caller"), ("cause", "BYE")]),
            ("recording", &[]),
            ("call_ended", &[]),
        ],
    );
    assert_eq!(count(&evs, "digit"), 0);
    let rec = check_recording(&evs);
    assert!(
        (1800.0..=3500.0).contains(&rec.duration_ms),
        "2 s call recorded as {rec:?}"
    );
    assert!(rec.rms[0] > 1000.0, "caller channel too quiet: {rec:?}");
}

fn info_digit(label: &str, ctype: &str, body: &str, digit: &str) {
    let gw = Gateway::start(label);
    let run = Sipp::new("uac_info_digit.xml", &gw)
        .var("CTYPE", ctype)
        .var("BODY", body)
        .run();
    run.assert_success();
    let evs = gw.wait_call_ended(&run.call_id, CALL_END_WAIT);
    assert_well_formed(&evs);
    let digits_prompt = format!("en/digits/{digit}");
    assert_in_order(
        &evs,
        &[
            ("answered", &[]),
            ("digit", &[("digit", digit), ("transport", "info")]),
            ("prompt_started", &[("prompt", "en/you-pressed")]),
            ("prompt_started", &[("prompt", digits_prompt.as_str())]),
            ("hangup", &[("ended_by", "gateway")]),
            ("call_ended", &[]),
        ],
    );
    assert_eq!(count(&evs, "digit"), 1);
}

#[test]
fn info_digit_dtmf_relay() {
    info_digit(
        "info-relay",
        "application/dtmf-relay",
        "Signal=7\nDuration=160",
        "7",
    );
}

#[test]
fn info_digit_application_dtmf() {
    info_digit("info-dtmf", "application/dtmf", "9", "9");
}

/// CANCEL while ringing (the gateway delays its answer by 3 s): 200 for the CANCEL,
/// 487 for the INVITE, ACK; the call is logged as ended by the caller, never answered.
#[test]
fn cancel_before_answer() {
    let gw = Gateway::start_with("cancel", &["--answer-delay-ms", "3000"]);
    let run = Sipp::new("uac_cancel.xml", &gw).run();
    run.assert_success();
    let evs = gw.wait_call_ended(&run.call_id, CALL_END_WAIT);
    assert_well_formed(&evs);
    assert_in_order(
        &evs,
        &[
            ("call_started", &[]),
            ("hangup", &[("ended_by", "caller"), ("cause", "CANCEL")]),
            ("call_ended", &[]),
        ],
    );
    assert_eq!(count(&evs, "answered"), 0, "CANCELled call was answered");
    assert_eq!(
        count(&evs, "prompt_started"),
        0,
        "CANCELled call played a prompt"
    );
    // No leftover call: nothing more is logged for it (e.g. when the answer delay
    // expires), and the gateway is healthy.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        gw.events_for(&run.call_id).len(),
        evs.len(),
        "events after call_ended"
    );
    assert_eq!(gw.http_get("/healthz").map(|r| r.0), Ok(200));
}

/// INVITE and CANCEL back to back with no answer delay: whichever wins, the outcome
/// must be consistent. Either the INVITE got 487 and the log has no `answered`, or it
/// got 200 (CANCEL too late), the log has `answered` and the call lives until our BYE.
#[test]
fn cancel_racing_the_answer_is_consistent() {
    use hotline_e2e::rawsip::RawUac;
    use hotline_e2e::unique_token;
    let gw = Gateway::start("cancel-race");
    let mut uac = RawUac::new(gw.sip_addr());
    let mut outcomes = Vec::new();
    for i in 0..5 {
        let cid = unique_token(&format!("race{i}"));
        let branch = format!("z9hG4bK{}", unique_token("inv"));
        let tag = format!("race{i}");
        let invite = uac.invite(&cid, &branch, &tag);
        let cancel = invite
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("Content-Type") && !l.starts_with("Contact"))
            .map(|l| {
                if l.starts_with("INVITE ") {
                    l.replacen("INVITE", "CANCEL", 1)
                } else if l.starts_with("CSeq:") {
                    "CSeq: 1 CANCEL".to_string()
                } else if l.starts_with("Content-Length") {
                    "Content-Length: 0".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n\r\n";
        uac.send(invite.as_bytes());
        uac.send(cancel.as_bytes());
        let fin = uac
            .recv_final(&cid, "INVITE", Duration::from_secs(5))
            .expect("no final response to INVITE");
        let code = fin.status().unwrap();
        if code == 200 {
            let ack = uac.in_dialog(
                "ACK",
                &fin,
                &format!("z9hG4bK{}", unique_token("a")),
                &tag,
                1,
            );
            uac.send(ack.as_bytes());
            let bye = uac.in_dialog(
                "BYE",
                &fin,
                &format!("z9hG4bK{}", unique_token("b")),
                &tag,
                2,
            );
            uac.send(bye.as_bytes());
            uac.recv_final(&cid, "BYE", Duration::from_secs(5))
                .expect("no response to BYE");
        } else {
            let to = fin.header("to").unwrap_or("");
            let ack = invite
                .split("\r\n\r\n")
                .next()
                .unwrap()
                .lines()
                .filter(|l| !l.starts_with("Content-Type") && !l.starts_with("Contact"))
                .map(|l| {
                    if l.starts_with("INVITE ") {
                        l.replacen("INVITE", "ACK", 1)
                    } else if l.starts_with("CSeq:") {
                        "CSeq: 1 ACK".to_string()
                    } else if l.starts_with("To:") {
                        format!("To: {to}")
                    } else if l.starts_with("Content-Length") {
                        "Content-Length: 0".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\r\n")
                + "\r\n\r\n";
            uac.send(ack.as_bytes());
        }
        let evs = gw.wait_call_ended(&cid, CALL_END_WAIT);
        assert_well_formed(&evs);
        let answered = count(&evs, "answered");
        let hangup = find(&evs, "hangup");
        outcomes.push(format!("{code} answered={answered} {}", hangup.data()));
        match code {
            487 => {
                assert_eq!(
                    answered,
                    0,
                    "INVITE got 487 but the event log says the call was answered:\n{}",
                    events::dump(&evs)
                );
                assert_eq!(hangup.data_str("cause"), "CANCEL", "{hangup}");
            }
            200 => {
                assert_eq!(answered, 1, "INVITE got 200 but no `answered` event");
                assert_eq!(
                    hangup.data_str("cause"),
                    "BYE",
                    "answered call not ended by our BYE: {hangup}"
                );
            }
            other => panic!("unexpected final response {other} to INVITE"),
        }
    }
    eprintln!("CANCEL race outcomes: {outcomes:#?}");
}

#[test]
fn hold_and_resume() {
    let gw = Gateway::start("hold");
    let run = Sipp::new("uac_hold.xml", &gw).capture().run();
    run.assert_success();
    let evs = gw.wait_call_ended(&run.call_id, CALL_END_WAIT);
    assert_well_formed(&evs);
    assert_in_order(
        &evs,
        &[
            ("answered", &[]),
            ("media_changed", &[("direction", "sendonly")]),
            ("media_changed", &[("direction", "sendrecv")]),
            ("hangup", &[("ended_by", "caller"), ("cause", "BYE")]),
            ("call_ended", &[]),
        ],
    );
    // While held (between the 200s to re-INVITE CSeq 2 and CSeq 3) the gateway
    // answered recvonly/inactive, so it must not send audio.
    let sip: Vec<(u64, String)> = run
        .captured
        .iter()
        .filter(|d| d.dst_port == run.local_port)
        .map(|d| (d.ts_us, String::from_utf8_lossy(&d.payload).into_owned()))
        .collect();
    let ok_for = |cseq: &str| {
        sip.iter()
            .find(|(_, m)| m.starts_with("SIP/2.0 200") && m.contains(cseq))
            .map(|(t, _)| *t)
    };
    if let (Some(hold), Some(resume)) = (ok_for("CSeq: 2 INVITE"), ok_for("CSeq: 3 INVITE")) {
        let held_pkts = run
            .rtp_received()
            .iter()
            .filter(|p| {
                p.payload_type == rtp::PT_PCMU && p.ts_us > hold + 60_000 && p.ts_us < resume
            })
            .count();
        assert!(
            held_pkts <= 1,
            "gateway sent {held_pkts} audio packets while the caller was on hold (a=sendonly)"
        );
        let resumed_pkts = run
            .rtp_received()
            .iter()
            .filter(|p| p.payload_type == rtp::PT_PCMU && p.ts_us > resume)
            .count();
        assert!(
            resumed_pkts >= 5,
            "gateway sent only {resumed_pkts} audio packets after the call was resumed"
        );
    } else {
        panic!("re-INVITE 200s not captured; SIP seen:\n{sip:#?}");
    }
}

#[test]
fn event_log_is_jsonl_with_call_ids() {
    // Two sequential calls on one gateway: distinct call_id (UUID) per call, seq per call.
    let gw = Gateway::start("two-calls");
    let pcap = write_pcap(&gw, "tone.pcap", &tone(1500));
    let a = Sipp::new("uac_caller_bye.xml", &gw)
        .var("PCAP", pcap.clone())
        .var("PAUSE_MS", "500")
        .run();
    a.assert_success();
    let b = Sipp::new("uac_caller_bye.xml", &gw)
        .var("PCAP", pcap)
        .var("PAUSE_MS", "500")
        .run();
    b.assert_success();
    let ea = gw.wait_call_ended(&a.call_id, CALL_END_WAIT);
    let eb = gw.wait_call_ended(&b.call_id, CALL_END_WAIT);
    assert_ne!(ea[0].call_id(), eb[0].call_id());
    for e in ea.iter().chain(&eb) {
        let id = e.call_id();
        assert!(
            id.len() == 36 && id.chars().filter(|&c| c == '-').count() == 4,
            "call_id is not a UUID: {e}"
        );
    }
    let all = gw.all_events();
    assert_well_formed(&all);
    let started = find(&ea, "call_started");
    assert!(
        !started.data_str("caller").is_empty(),
        "call_started without caller: {started}"
    );
    assert!(
        !started.data_str("callee").is_empty(),
        "call_started without callee: {started}"
    );
    assert!(events::parse_rfc3339_micros(started.at()).is_some());
}

#[test]
fn json_logs_carry_the_call_id() {
    // `--log-format json`: every line the gateway writes is one JSON object
    // (a log shipper parses the whole file), and the lines logged inside a
    // call name its Call-ID through the `call` span.
    let gw = Gateway::start_with("json-logs", &["--log-format", "json"]);
    let pcap = write_pcap(&gw, "tone.pcap", &tone(1500));
    let run = Sipp::new("uac_caller_bye.xml", &gw)
        .var("PCAP", pcap)
        .var("PAUSE_MS", "500")
        .run();
    run.assert_success();
    gw.wait_call_ended(&run.call_id, CALL_END_WAIT);
    let text = std::fs::read_to_string(gw.log_path()).expect("read gateway log");
    assert!(!text.contains('\u{1b}'), "colour codes in a JSON log");
    let mut lines = 0;
    let mut in_call = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(v.get(key).is_some(), "no {key} in {line}");
        }
        lines += 1;
        let spans = v["spans"].as_array().cloned().unwrap_or_default();
        if spans
            .iter()
            .any(|s| s["name"] == "call" && s["call_id"] == run.call_id.as_str())
        {
            in_call += 1;
        }
    }
    assert!(lines >= 3, "hardly any log lines:\n{text}");
    assert!(
        in_call >= 1,
        "no log line in the call's span (call_id {}):\n{text}",
        run.call_id
    );
}
