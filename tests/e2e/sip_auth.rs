//! Digest authentication of trunks (RFC 3261 §22, RFC 8760; docs/security.md,
//! "Trunk authentication") against the real gateway, configured with
//! `--trunk-auth pbx=pbxuser:FILE` and no `--trunk`: any address may call,
//! but only with the PBX's credentials.
//!
//! * SIPp (MD5: the only algorithm SIPp 3.6.1 computes) gets 401, sends the
//!   INVITE again with credentials, and its call is in the calls table; with
//!   a wrong password it gets 401 then 403, and those INVITEs cost no call:
//!   no call row, no event, nothing in `/healthz`'s active calls, and with
//!   `--max-calls 1` the next good call still gets through (a call actor —
//!   the only owner of an RTP port — would have taken that one slot).
//! * The raw client answers the SHA-256 challenge (the response computed
//!   here, with the `sha2` crate) and its call succeeds; the same
//!   Authorization replayed on a new call (same nonce, same nonce-count) is
//!   refused with 403.

use hotline_e2e::db::psql;
use hotline_e2e::rawsip::{RawUac, SipMessage};
use hotline_e2e::{Gateway, Sipp, TempDir, poll_until, unique_token};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

const USER: &str = "pbxuser";
const PASSWORD: &str = "correct horse battery";

/// A gateway whose only caller is the `pbx` trunk, authenticated by Digest.
fn gateway(label: &str, extra: &[&str]) -> (Gateway, TempDir) {
    let secrets = TempDir::new(&format!("{label}-secret"));
    let file = secrets.path().join("pbx.password");
    std::fs::write(&file, format!("{PASSWORD}\n")).expect("write password file");
    let spec = format!("pbx={USER}:{}", file.display());
    let mut args = vec!["--trunk-auth", spec.as_str()];
    args.extend_from_slice(extra);
    (Gateway::start_with(label, &args), secrets)
}

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

fn active_calls(gw: &Gateway) -> u64 {
    let (_, body) = gw.http_get("/healthz").expect("GET /healthz");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["active_calls"].as_u64().expect("active_calls")
}

/// Call rows whose SIP Call-ID starts with `prefix`.
fn call_rows(gw: &Gateway, prefix: &str) -> u64 {
    let r = psql(
        &gw.data_dir(),
        &format!("SELECT count(*) FROM calls WHERE sip_call_id LIKE '{prefix}%'"),
    );
    r.first()
        .and_then(|row| row.first())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn sipp_authenticates_with_md5_and_a_wrong_password_costs_nothing() {
    // SIPp 3.6.1 answers the first challenge and knows only MD5.
    let (gw, _secrets) = gateway(
        "sip-auth-sipp",
        &["--sip-auth-algorithms", "md5,sha256", "--max-calls", "1"],
    );
    let auth_uri = format!("ivr@127.0.0.1:{}", gw.sip_port);

    // Three callers with a wrong password: 401, then 403 each.
    let bad = Sipp::new("uac_auth_refused.xml", &gw)
        .arg("-au")
        .arg(USER)
        .arg("-ap")
        .arg("wrong password")
        .arg("-auth_uri")
        .arg(&auth_uri)
        .arg("-m")
        .arg("3")
        .arg("-l")
        .arg("3")
        .timeout(Duration::from_secs(40))
        .run();
    bad.assert_success();
    let token = bad
        .call_id
        .strip_suffix("-1")
        .expect("SIPp Call-IDs end in -<n>")
        .to_string();
    let stats = edge(&gw);
    assert!(counter(&stats, "auth_challenged") >= 3, "{stats}");
    assert_eq!(counter(&stats, "auth_failed"), 3, "{stats}");
    assert_eq!(counter(&stats, "auth_passed"), 0, "{stats}");
    assert_eq!(counter(&stats, "refused_unknown"), 0, "{stats}");
    assert_eq!(active_calls(&gw), 0);
    assert!(
        gw.all_events()
            .iter()
            .all(|e| !e.sip_call_id().starts_with(&token)),
        "events from refused INVITEs"
    );

    // The right password: 401, then a call, recorded.
    let good = Sipp::new("uac_auth_call.xml", &gw)
        .var("PAUSE_MS", "1500")
        .arg("-au")
        .arg(USER)
        .arg("-ap")
        .arg(PASSWORD)
        .arg("-auth_uri")
        .arg(&auth_uri)
        .timeout(Duration::from_secs(40))
        .run();
    good.assert_success();
    gw.wait_call_ended(&good.call_id, Duration::from_secs(20));
    let rows = poll_until(Duration::from_secs(20), || {
        let n = call_rows(&gw, &good.call_id);
        (n == 1).then_some(n)
    });
    assert_eq!(rows, Some(1), "the authenticated call's row");
    // Still none for the refused ones, after the good call was written.
    assert_eq!(call_rows(&gw, &token), 0, "call rows from refused INVITEs");
    let stats = edge(&gw);
    assert_eq!(counter(&stats, "auth_passed"), 1, "{stats}");
    assert_eq!(counter(&stats, "auth_failed"), 3, "{stats}");
}

/// `H(a:b:...)` in lower-case hex (SHA-256), as RFC 7616 §3.4.1 writes it.
fn h(parts: &[&str]) -> String {
    let d = Sha256::digest(parts.join(":").as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A quoted parameter of a challenge.
fn param(challenge: &str, name: &str) -> String {
    let key = format!("{name}=\"");
    let i = challenge
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {challenge}"))
        + key.len();
    let rest = &challenge[i..];
    rest[..rest.find('"').expect("closing quote")].to_string()
}

fn challenges(m: &SipMessage) -> Vec<String> {
    m.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("www-authenticate"))
        .map(|(_, v)| v.clone())
        .collect()
}

#[test]
fn raw_sha256_credentials_call_and_a_replay_is_refused() {
    let (gw, _secrets) = gateway("sip-auth-raw", &[]);
    let mut uac = RawUac::new(gw.sip_addr());
    let call_id = unique_token("auth-raw");
    let from_tag = "rawtag";
    let uri = format!("sip:ivr@{}", gw.sip_addr());

    // No credentials: 401 with SHA-256 first, then MD5.
    uac.send(uac.invite(&call_id, "z9hG4bKa1", from_tag).as_bytes());
    let r401 = uac
        .recv_final(&call_id, "INVITE", Duration::from_secs(5))
        .expect("an answer to the INVITE");
    assert_eq!(r401.status(), Some(401), "{r401:?}");
    let ch = challenges(&r401);
    assert_eq!(ch.len(), 2, "{ch:?}");
    assert!(ch[0].contains("algorithm=SHA-256") && ch[0].contains("qop=\"auth\""));
    assert!(ch[1].contains("algorithm=MD5"));
    // Its ACK (same branch, the 401's To tag) is absorbed.
    let ack = uac.in_dialog("ACK", &r401, "z9hG4bKa1", from_tag, 1);
    uac.send(ack.as_bytes());

    // The INVITE again, CSeq 2, with a SHA-256 response computed here.
    let (realm, nonce, opaque) = (
        param(&ch[0], "realm"),
        param(&ch[0], "nonce"),
        param(&ch[0], "opaque"),
    );
    let (nc, cnonce) = ("00000001", "e2e0c0ffee");
    let response = h(&[
        &h(&[USER, &realm, PASSWORD]),
        &nonce,
        nc,
        cnonce,
        "auth",
        &h(&["INVITE", &uri]),
    ]);
    let authorization = format!(
        "Authorization: Digest username=\"{USER}\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{response}\", algorithm=SHA-256, qop=auth, nc={nc}, \
         cnonce=\"{cnonce}\", opaque=\"{opaque}\"\r\n"
    );
    let with_auth = |uac: &RawUac, call_id: &str, branch: &str| {
        uac.invite(call_id, branch, from_tag).replacen(
            "CSeq: 1 INVITE\r\n",
            &format!("CSeq: 2 INVITE\r\n{authorization}"),
            1,
        )
    };
    let invite2 = with_auth(&uac, &call_id, "z9hG4bKa2");
    uac.send(invite2.as_bytes());
    let ok = uac
        .recv_final(&call_id, "INVITE", Duration::from_secs(10))
        .expect("an answer to the authenticated INVITE");
    assert_eq!(ok.status(), Some(200), "{ok:?}\n{}", gw.log_tail());
    uac.send(
        uac.in_dialog("ACK", &ok, "z9hG4bKa3", from_tag, 2)
            .as_bytes(),
    );
    gw.wait_event(&call_id, "flow_started", Duration::from_secs(10));
    uac.send(
        uac.in_dialog("BYE", &ok, "z9hG4bKa4", from_tag, 3)
            .as_bytes(),
    );
    let bye = uac.recv_final(&call_id, "BYE", Duration::from_secs(5));
    assert_eq!(bye.and_then(|m| m.status()), Some(200));
    gw.wait_call_ended(&call_id, Duration::from_secs(20));
    let rows = poll_until(Duration::from_secs(20), || {
        (call_rows(&gw, &call_id) == 1).then_some(())
    });
    assert!(rows.is_some(), "no call row for the authenticated call");

    // The same Authorization (same nonce, same nc) on a new call: a replay.
    let replay_id = unique_token("auth-replay");
    let replay = with_auth(&uac, &replay_id, "z9hG4bKr1");
    uac.send(replay.as_bytes());
    let refused = uac
        .recv_final(&replay_id, "INVITE", Duration::from_secs(5))
        .expect("an answer to the replayed INVITE");
    assert_eq!(refused.status(), Some(403), "{refused:?}");
    let stats = edge(&gw);
    assert_eq!(
        (
            counter(&stats, "auth_passed"),
            counter(&stats, "auth_failed")
        ),
        (1, 1),
        "{stats}"
    );
    assert_eq!(call_rows(&gw, &replay_id), 0, "a call row for the replay");
    assert!(
        gw.events_for(&replay_id).is_empty(),
        "events for the replay"
    );
}
