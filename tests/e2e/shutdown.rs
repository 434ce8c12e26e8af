//! SIGTERM: stop taking calls (503), let calls in progress finish, exit 0.

use hotline_e2e::events::{assert_in_order, find};
use hotline_e2e::rawsip::RawUac;
use hotline_e2e::rtp::{self, CallerAudio};
use hotline_e2e::{Gateway, Sipp, unique_token};
use std::time::Duration;

#[test]
fn idle_gateway_exits_zero_on_sigterm() {
    let mut gw = Gateway::start("sigterm-idle");
    gw.sigterm();
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("idle gateway still running 10 s after SIGTERM"));
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        gw.log_tail()
    );
}

/// A stop that comes while the gateway is still starting — here while its
/// embedded PostgreSQL is being created, as systemd stops a node right after
/// starting it — is a drain like any other: the start completes, the
/// gateway exits 0 and stops the database it started (killed by the signal
/// instead, it left the cluster running under its data dir).
#[test]
fn sigterm_during_startup_exits_zero_and_stops_the_embedded_database() {
    let mut gw = Gateway::spawn_starting("sigterm-startup");
    gw.wait_log(
        "creating the embedded PostgreSQL cluster",
        Duration::from_secs(30),
    );
    gw.sigterm();
    let status = gw.wait_exit(Duration::from_secs(90)).unwrap_or_else(|| {
        panic!(
            "gateway still running 90 s after a SIGTERM during start-up; log:\n{}",
            gw.log_tail()
        )
    });
    let log = gw.log_tail();
    assert!(status.success(), "exit status {status}; log:\n{log}");
    assert!(
        log.contains("embedded PostgreSQL stopped"),
        "the embedded database was not stopped; log:\n{log}"
    );
    let pid_file = gw.data_dir().join("pg").join("postmaster.pid");
    assert!(
        !pid_file.exists(),
        "{} is still there: a PostgreSQL outlived the gateway",
        pid_file.display()
    );
}

#[test]
fn sigterm_drains_calls_in_progress() {
    let mut gw = Gateway::start("sigterm-drain");
    let pcap = gw.dir().join("tone.pcap");
    rtp::write_caller_pcap(
        &pcap,
        &[CallerAudio::Tone {
            hz: 440.0,
            ms: 6000,
        }],
    );
    // Caller hangs up 5 s after answering (before the flow's own timeout hang-up).
    let sipp = Sipp::new("uac_caller_bye.xml", &gw)
        .var("PCAP", pcap.to_str().unwrap())
        .var("PAUSE_MS", "5000")
        .spawn();
    let call_id = sipp.call_id().to_string();
    gw.wait_event(&call_id, "answered", Duration::from_secs(10));

    gw.sigterm();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        gw.is_alive(),
        "gateway exited at once despite a call in progress"
    );

    // A new call is refused with 503 while draining.
    let mut uac = RawUac::new(gw.sip_addr());
    let cid = unique_token("during-drain");
    let branch = format!("z9hG4bK{}", unique_token("inv"));
    uac.send(uac.invite(&cid, &branch, "drain1").as_bytes());
    let resp = uac.recv_final(&cid, "INVITE", Duration::from_secs(5));
    let status = resp.as_ref().and_then(|m| m.status());
    if let Some(r) = &resp {
        if status.is_some_and(|s| s >= 300) {
            // ACK the non-2xx final response (same branch, To with the gateway's tag).
            let to = r.header("to").unwrap_or("");
            let port = uac.local_port();
            let ack = format!(
                "ACK sip:ivr@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n\
                 Max-Forwards: 70\r\nFrom: \"e2e\" <sip:caller@127.0.0.1:{port}>;tag=drain1\r\nTo: {to}\r\n\
                 Call-ID: {cid}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
                gw = gw.sip_addr()
            );
            uac.send(ack.as_bytes());
        }
    }
    assert_eq!(status, Some(503), "INVITE during drain: {resp:?}");
    // Load balancers see the drain on /healthz (README: 503 while draining).
    let health = gw.http_get("/healthz").map(|r| r.0);
    assert_eq!(health, Ok(503), "/healthz while draining");

    // The call in progress completes normally.
    let run = sipp.wait();
    run.assert_success();
    let evs = gw.wait_call_ended(&call_id, Duration::from_secs(10));
    assert_in_order(
        &evs,
        &[
            ("answered", &[]),
            ("hangup", &[("ended_by", "caller"), ("cause", "BYE")]),
            ("call_ended", &[]),
        ],
    );
    find(&evs, "recording");
    assert!(
        gw.events_for(&cid).is_empty(),
        "the refused INVITE was logged as a call: {:?}",
        gw.events_for(&cid)
    );

    let exit = gw
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("gateway still running 15 s after its last call ended"));
    assert!(
        exit.success(),
        "exit status {exit}; log:\n{}",
        gw.log_tail()
    );
}
