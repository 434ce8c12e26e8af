//! Protocol robustness with a raw UDP client: malformed input, OPTIONS/unknown
//! methods, INVITE retransmissions, and a caller that never ACKs.

use hotline_e2e::events::{count, find};
use hotline_e2e::rawsip::{RawUac, SipMessage};
use hotline_e2e::{Gateway, Sipp, rtp, unique_token};
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_secs(3);

/// Send `bytes`, return the first final response (if any) within `wait`; with a
/// Call-ID only responses for it count, without one any response does.
fn exchange(
    uac: &mut RawUac,
    bytes: &[u8],
    cid: Option<&str>,
    wait: Duration,
) -> Option<SipMessage> {
    uac.send(bytes);
    uac.recv_matching(wait, |m| match cid {
        Some(cid) => m.status().is_some_and(|s| s >= 200) && m.header("call-id") == Some(cid),
        None => m.status().is_some(),
    })
}

fn status_of(m: &Option<SipMessage>) -> Option<u16> {
    m.as_ref().and_then(SipMessage::status)
}

/// After a malformed request, answer a clean ACK/BYE if the gateway took it as a call.
fn hang_up_if_answered(uac: &mut RawUac, resp: &Option<SipMessage>, from_tag: &str) {
    if let Some(r) = resp {
        if r.status() == Some(200) {
            let ack = uac.in_dialog(
                "ACK",
                r,
                &format!("z9hG4bK{}", unique_token("ack")),
                from_tag,
                1,
            );
            uac.send(ack.as_bytes());
            let bye = uac.in_dialog(
                "BYE",
                r,
                &format!("z9hG4bK{}", unique_token("bye")),
                from_tag,
                2,
            );
            uac.send(bye.as_bytes());
            let _ = uac.recv_matching(SHORT, |m| m.cseq_method() == Some("BYE"));
        }
    }
}

#[test]
fn malformed_requests_do_not_hurt_the_gateway() {
    let mut gw = Gateway::start("malformed");
    let mut uac = RawUac::new(gw.sip_addr());
    let mut report = Vec::new();

    // 1. INVITE whose body is cut short of its Content-Length → 400 (RFC 3261 18.3).
    let cid = unique_token("trunc");
    let full = uac.invite(&cid, &format!("z9hG4bK{}", unique_token("b")), "t1");
    let cut = &full.as_bytes()[..full.len() - 40];
    let r = exchange(&mut uac, cut, Some(&cid), SHORT);
    report.push(format!("truncated INVITE → {:?}", status_of(&r)));
    assert_eq!(status_of(&r), Some(400), "truncated INVITE: {r:?}");

    // 2. INVITE without Call-ID → 400.
    let cid = unique_token("nocid");
    let no_cid: String = uac
        .invite(&cid, &format!("z9hG4bK{}", unique_token("b")), "t2")
        .split("\r\n")
        .filter(|l| !l.starts_with("Call-ID:"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let r = exchange(&mut uac, no_cid.as_bytes(), None, SHORT);
    report.push(format!("INVITE without Call-ID → {:?}", status_of(&r)));
    assert_eq!(status_of(&r), Some(400), "INVITE without Call-ID: {r:?}");

    // 3. Binary garbage → no answer, or 400.
    let garbage: Vec<u8> = (0..512u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let r = exchange(&mut uac, &garbage, None, Duration::from_millis(1500));
    report.push(format!("binary garbage → {:?}", status_of(&r)));
    assert!(matches!(status_of(&r), None | Some(400)), "garbage: {r:?}");

    // 4. A 65,000-byte datagram (INVITE with a huge header) → an error or nothing.
    let cid = unique_token("huge");
    let inv = uac.invite(&cid, &format!("z9hG4bK{}", unique_token("b")), "t4");
    let (head, rest) = inv.split_once("\r\n").unwrap();
    let filler = "x".repeat(65_000 - inv.len() - 20);
    let huge = format!("{head}\r\nX-Filler: {filler}\r\n{rest}");
    assert!(huge.len() <= 65_000 && huge.len() > 64_000);
    let r = exchange(&mut uac, huge.as_bytes(), Some(&cid), SHORT);
    report.push(format!("65,000-byte INVITE → {:?}", status_of(&r)));
    // Any outcome is acceptable here (413/513/400, or a call); the gateway must survive.
    hang_up_if_answered(&mut uac, &r, "t4");

    // 5. Non-UTF-8 byte in the From display name. The brief expected 400; the gateway
    //    accepts it (lenient parsing is legitimate), so either is allowed, but an
    //    accepted call must still be logged as valid UTF-8 JSON.
    let cid = unique_token("latin1");
    let inv = uac.invite(&cid, &format!("z9hG4bK{}", unique_token("b")), "t5");
    let mut bytes = inv.into_bytes();
    let pos = bytes
        .windows(6)
        .position(|w| w == b"\"e2e\" ")
        .expect("display name");
    bytes[pos + 2] = 0xe9; // "e\xe92e": invalid UTF-8
    let final_r = exchange(&mut uac, &bytes, Some(&cid), Duration::from_secs(5));
    report.push(format!(
        "non-UTF-8 From display name → {:?}",
        status_of(&final_r)
    ));
    hang_up_if_answered(&mut uac, &final_r, "t5");
    match status_of(&final_r) {
        Some(400) => {}
        Some(200) => {
            // read_events fails on invalid UTF-8 or JSON.
            let evs = gw.wait_call_ended(&cid, Duration::from_secs(10));
            let started = find(&evs, "call_started");
            assert_eq!(started.data_str("caller"), "caller", "{started}");
        }
        other => panic!("non-UTF-8 display name: expected 400 or 200, got {other:?}: {final_r:?}"),
    }

    eprintln!("malformed input results: {report:#?}");
    assert!(
        gw.is_alive(),
        "gateway died on malformed input:\n{}",
        gw.log_tail()
    );
    assert_eq!(gw.http_get("/healthz").map(|r| r.0), Ok(200));

    // 6. OPTIONS → 200, unknown method → 501.
    let cid = unique_token("options");
    let req = uac.simple_request("OPTIONS", &cid, &format!("z9hG4bK{}", unique_token("o")));
    let r = exchange(&mut uac, req.as_bytes(), Some(&cid), SHORT);
    assert_eq!(status_of(&r), Some(200), "OPTIONS: {r:?}");
    let cid = unique_token("frobnicate");
    let req = uac.simple_request("FROBNICATE", &cid, &format!("z9hG4bK{}", unique_token("f")));
    let r = exchange(&mut uac, req.as_bytes(), Some(&cid), SHORT);
    assert_eq!(status_of(&r), Some(501), "unknown method: {r:?}");

    // And a normal call still works afterwards.
    let pcap = gw.dir().join("tone_2_tone.pcap");
    rtp::write_caller_pcap(&pcap, &rtp::tone_digit_tone('2'));
    let run = Sipp::new("uac_digit_gateway_bye.xml", &gw)
        .var("PCAP", pcap.to_str().unwrap())
        .run();
    run.assert_success();
    let evs = gw.wait_call_ended(&run.call_id, Duration::from_secs(15));
    assert_eq!(find(&evs, "digit").data_str("digit"), "2");
    assert!(gw.is_alive());
}

#[test]
fn invite_retransmission_is_absorbed() {
    let gw = Gateway::start("invite-retrans");
    let mut uac = RawUac::new(gw.sip_addr());
    let cid = unique_token("retrans");
    let branch = format!("z9hG4bK{}", unique_token("inv"));
    let invite = uac.invite(&cid, &branch, "ft1");
    uac.send(invite.as_bytes());
    uac.send(invite.as_bytes());
    std::thread::sleep(Duration::from_millis(200));
    uac.send(invite.as_bytes());
    let ok = uac
        .recv_final(&cid, "INVITE", Duration::from_secs(5))
        .expect("no final response to INVITE");
    assert_eq!(ok.status(), Some(200), "{ok:?}");
    // Any further 200s (retransmissions) must carry the same To tag.
    let to_tag = ok.header("to").unwrap_or("").to_string();
    let ack = uac.in_dialog(
        "ACK",
        &ok,
        &format!("z9hG4bK{}", unique_token("ack")),
        "ft1",
        1,
    );
    uac.send(ack.as_bytes());
    std::thread::sleep(Duration::from_millis(500));
    let bye_branch = format!("z9hG4bK{}", unique_token("bye"));
    let bye = uac.in_dialog("BYE", &ok, &bye_branch, "ft1", 2);
    uac.send(bye.as_bytes());
    let bye_ok = uac
        .recv_final(&cid, "BYE", Duration::from_secs(5))
        .expect("no response to BYE");
    assert_eq!(bye_ok.status(), Some(200));
    for m in &uac.received {
        if m.status() == Some(200) && m.cseq_method() == Some("INVITE") {
            assert_eq!(
                m.header("to").unwrap_or(""),
                to_tag,
                "200s with different To tags"
            );
        }
    }
    let evs = gw.wait_call_ended(&cid, Duration::from_secs(10));
    assert_eq!(
        count(&evs, "call_started"),
        1,
        "retransmitted INVITE started another call"
    );
    let mut ids: Vec<&str> = evs.iter().map(|e| e.call_id()).collect();
    ids.dedup();
    assert_eq!(
        ids.len(),
        1,
        "several gateway calls for one Call-ID: {ids:?}"
    );
    assert_eq!(find(&evs, "hangup").data_str("ended_by"), "caller");
}

/// RFC 3261 13.3.1.4: the UAS retransmits the 2xx (T1, 2T1, … capped at T2) and,
/// with no ACK after 64·T1 = 32 s, ends the call with a BYE.
#[test]
fn missing_ack_times_out() {
    // The caller sends no RTP either: with the default 30 s RTP timeout this
    // also checks that silence before the ACK does not end the call early.
    let gw = Gateway::start("no-ack");
    let mut uac = RawUac::new(gw.sip_addr());
    let cid = unique_token("noack");
    let invite = uac.invite(&cid, &format!("z9hG4bK{}", unique_token("inv")), "ft9");
    let t0 = Instant::now();
    uac.send(invite.as_bytes());
    let mut ok_times = Vec::new();
    let mut bye: Option<SipMessage> = None;
    while t0.elapsed() < Duration::from_secs(45) && bye.is_none() {
        let Some(m) = uac.recv(Duration::from_millis(500)) else {
            continue;
        };
        if m.status() == Some(200) && m.cseq_method() == Some("INVITE") {
            ok_times.push(t0.elapsed());
        } else if m.method() == Some("BYE") {
            // 200 OK for the gateway's BYE.
            let resp = format!(
                "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
                m.header("via").unwrap_or(""),
                m.header("from").unwrap_or(""),
                m.header("to").unwrap_or(""),
                m.header("call-id").unwrap_or(""),
                m.header("cseq").unwrap_or("")
            );
            uac.send(resp.as_bytes());
            bye = Some(m);
        }
    }
    assert!(
        ok_times.len() >= 3,
        "expected the 200 OK to be retransmitted (≥ 3 copies), got {} at {ok_times:?}",
        ok_times.len()
    );
    // Retransmission intervals grow (T1 = 500 ms doubling, capped at T2 = 4 s).
    let gaps: Vec<f64> = ok_times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    assert!(
        gaps[0] >= 0.3 && gaps[0] <= 1.0,
        "first 200 retransmission after {:.2} s",
        gaps[0]
    );
    assert!(
        gaps.iter().all(|&g| g <= 4.6),
        "retransmission gap above T2: {gaps:?}"
    );
    let evs = gw.wait_call_ended(&cid, Duration::from_secs(10));
    let hangup = find(&evs, "hangup");
    assert_eq!(hangup.data_str("ended_by"), "timeout", "hangup: {hangup}");
    assert_eq!(hangup.data_str("cause"), "ack_timeout", "hangup: {hangup}");
    // RFC 3261 §13.3.1.4: the UAS gives up 64·T1 = 32 s after its first 200
    // (sent when the call is answered).
    let after = (hangup.at_us() - find(&evs, "answered").at_us()) as f64 / 1e6;
    assert!(
        (31.9..=33.0).contains(&after),
        "ACK timeout {after:.2} s after the 200, expected 32 s"
    );
    assert!(
        bye.is_some(),
        "gateway did not send BYE after the ACK timeout (RFC 3261 13.3.1.4)"
    );
}

/// The gateway's log on a full disk (stdout and stderr on `/dev/full`, every
/// write fails with ENOSPC): calls are still answered, walked and recorded.
/// Before the fix, tracing's fallback `eprintln!` panicked whichever task
/// logged — the call actors and the record writer (found by a load run
/// that filled /tmp).
#[test]
fn a_full_disk_under_the_log_costs_log_lines_not_calls() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let gw = Gateway::start_logging_to("log-on-full-disk", &[], Some(full));
    for _ in 0..2 {
        let pcap = gw.dir().join(format!("{}.pcap", unique_token("tone")));
        rtp::write_caller_pcap(&pcap, &rtp::tone_digit_tone('5'));
        let run = Sipp::new("uac_digit_gateway_bye.xml", &gw)
            .var("PCAP", pcap.to_str().unwrap())
            .run();
        run.assert_success();
        let evs = gw.wait_call_ended(&run.call_id, Duration::from_secs(15));
        assert_eq!(count(&evs, "digit"), 1, "the digit reached the flow");
        assert_eq!(find(&evs, "digit").data_str("digit"), "5");
        assert_eq!(count(&evs, "recording"), 1);
    }
    assert!(gw.http_get("/healthz").is_ok_and(|(c, _)| c == 200));
}
