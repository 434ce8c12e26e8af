//! TLS (docs/security.md, "TLS and SRTP"): the HTTP listener as HTTPS with a
//! certificate from PEM files, reloaded on SIGHUP; HSTS and a `Secure`
//! login cookie; the agent page in Chromium over HTTPS with its socket on
//! `wss:`; SIP over TLS (`--sip-tls-listen`): a call from a real TLS peer
//! speaking SIP, its per-source connection cap, its certificate reload;
//! SDES-SRTP calls (RFC 4568) over it and `--require-srtp`.
//!
//! The certificates are self-signed, made with the `openssl` CLI for each
//! test; the client is rustls (accepting any certificate, then comparing
//! the one presented with the file).

use hotline_e2e::browser::{self, AgentDriver, Chromium};
use hotline_e2e::tls::SipTlsClient;
use hotline_e2e::{Gateway, TempDir, db, poll_until, ports, send_signal, tls};
use hotline_testpeer::sip::{Request, pcmu_offer};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

const ADMIN_TOKEN: &str = "t0k3n";
const PASSWORD: &str = "correct horse battery";

/// A gateway serving HTTPS with `live.crt`/`live.key` in `certs`.
fn https_gateway(label: &str, certs: &Path, extra: &[&str]) -> Gateway {
    let cert = certs.join("live.crt");
    let key = certs.join("live.key");
    let mut args = vec![
        "--tls-cert",
        cert.to_str().expect("utf-8 path"),
        "--tls-key",
        key.to_str().expect("utf-8 path"),
        "--admin-token",
        ADMIN_TOKEN,
    ];
    args.extend_from_slice(extra);
    Gateway::start_with(label, &args)
}

/// Makes certificate `name` (CN=`name`) in `dir` and copies it to `live.*`.
fn make_live(dir: &Path, name: &str) -> Vec<u8> {
    let (crt, key) = tls::self_signed(dir, name, name);
    std::fs::copy(&crt, dir.join("live.crt")).expect("copy cert");
    std::fs::copy(&key, dir.join("live.key")).expect("copy key");
    tls::cert_der(&crt)
}

fn http_addr(gw: &Gateway) -> SocketAddr {
    ([127, 0, 0, 1], gw.http_port).into()
}

/// The certificate a new connection is shown.
fn presented(gw: &Gateway) -> Vec<u8> {
    tls::connect(http_addr(gw), &[b"http/1.1"])
        .unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail()))
        .1
}

fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let head = answer.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn https_serves_health_with_hsts_a_secure_cookie_and_refuses_plain_http() {
    let certs = TempDir::new("tls_https_certs");
    let first = make_live(certs.path(), "first");
    // Start waits for /healthz over HTTPS (the harness speaks TLS when the
    // gateway has a certificate): that is the first assertion.
    let gw = https_gateway("tls_https", certs.path(), &[]);
    assert_eq!(presented(&gw), first, "the certificate from --tls-cert");

    let answer = gw
        .http_exchange("GET", "/healthz", &[], None)
        .expect("GET /healthz over HTTPS");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""status":"ok""#), "{answer}");
    assert_eq!(
        header(&answer, "strict-transport-security"),
        Some("max-age=31536000"),
        "{answer}"
    );

    // The agent login cookie is Secure (and keeps its other attributes).
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let (code, body) = gw
        .http_request(
            "POST",
            "/api/agents",
            &[("Authorization", &auth)],
            Some(&json!({"id": "ana", "name": "Ana", "password": PASSWORD}).to_string()),
        )
        .expect("create agent");
    assert!((200..300).contains(&code), "{code} {body}");
    let login = json!({"agent": "ana", "password": PASSWORD}).to_string();
    let answer = gw
        .http_exchange("POST", "/agent/login", &[], Some(&login))
        .expect("login over HTTPS");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let cookie = header(&answer, "set-cookie").expect("Set-Cookie");
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for want in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/agent"] {
        assert!(attrs.contains(&want), "{want} missing: {cookie}");
    }

    // Plain HTTP to the TLS port gets no HTTP answer, and the port still
    // serves HTTPS afterwards.
    let mut plain =
        TcpStream::connect_timeout(&http_addr(&gw), Duration::from_secs(2)).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(gw.http_get("/healthz").map(|r| r.0), Ok(200));
}

#[test]
fn sighup_puts_a_new_certificate_in_service_and_keeps_the_old_one_on_a_bad_file() {
    let certs = TempDir::new("tls_reload_certs");
    let first = make_live(certs.path(), "first");
    let gw = https_gateway("tls_reload", certs.path(), &[]);
    let pid = gw.pid().expect("running");
    assert_eq!(presented(&gw), first);

    // A broken certificate file: the reload fails loudly, the old one stays.
    std::fs::write(certs.path().join("live.crt"), "not a certificate\n").unwrap();
    assert!(send_signal(pid, "HUP"));
    poll_until(Duration::from_secs(10), || {
        gw.log_tail()
            .contains("TLS certificate NOT reloaded")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no reload error logged:\n{}", gw.log_tail()));
    assert_eq!(
        presented(&gw),
        first,
        "the old certificate stays in service"
    );
    assert_eq!(gw.http_get("/healthz").map(|r| r.0), Ok(200));

    // A good new pair: new connections see it; the listener never closed.
    let second = make_live(certs.path(), "second");
    assert_ne!(first, second);
    assert!(send_signal(pid, "HUP"));
    poll_until(Duration::from_secs(10), || {
        (presented(&gw) == second).then_some(())
    })
    .unwrap_or_else(|| panic!("the new certificate is not served:\n{}", gw.log_tail()));
    assert!(
        gw.log_tail().contains("TLS certificate reloaded"),
        "{}",
        gw.log_tail()
    );
    assert_eq!(gw.http_get("/healthz").map(|r| r.0), Ok(200));
}

#[test]
fn the_agent_page_loads_over_https_and_its_socket_is_wss() {
    let Some(_browser) = browser::browser_test("the_agent_page_loads_over_https") else {
        return;
    };
    let certs = TempDir::new("tls_browser_certs");
    make_live(certs.path(), "browser");
    let gw = https_gateway("tls_browser", certs.path(), &[]);
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let (code, body) = gw
        .http_request(
            "POST",
            "/api/agents",
            &[("Authorization", &auth)],
            Some(&json!({"id": "ana", "name": "Ana", "password": PASSWORD}).to_string()),
        )
        .expect("create agent");
    assert!((200..300).contains(&code), "{code} {body}");

    assert!(browser::ensure_driver(), "npm install of playwright-core");
    let mic = gw.dir().join("agent-mic.wav");
    browser::write_tone_wav(&mic, 1000.0, 10, 8_000.0);
    let chromium = Chromium::start(&mic, gw.dir());
    let mut drv = AgentDriver::start(&format!("https://127.0.0.1:{}", gw.http_port), &chromium);
    // Logged in, the socket up (`#link[data-up=true]`), then available:
    // the desk sees the agent only through the socket.
    drv.cmd(
        json!({"op": "open", "page": "ana", "agent": "ana", "password": PASSWORD}),
        Duration::from_secs(40),
    );
    drv.cmd(
        json!({"op": "available", "page": "ana"}),
        Duration::from_secs(40),
    );
    let wss = format!("WS open wss://127.0.0.1:{}/agent/ws", gw.http_port);
    assert!(
        drv.log_tail(200).contains(&wss),
        "no {wss} in the driver log:\n{}",
        drv.log_tail(80)
    );
    poll_until(Duration::from_secs(10), || {
        let (_, body) = gw
            .http_request(
                "GET",
                "/api/agents/states",
                &[("Authorization", &auth)],
                None,
            )
            .ok()?;
        body.contains("available").then_some(())
    })
    .unwrap_or_else(|| panic!("agent not available:\n{}", gw.log_tail()));
}

// ---------------------------------------------------------------- SIP over TLS

/// A gateway with HTTPS and SIP over TLS on a free port; that port.
fn sip_tls_gateway(label: &str, certs: &Path, extra: &[&str]) -> (Gateway, u16) {
    let port = ports::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["--sip-tls-listen", listen.as_str()];
    args.extend_from_slice(extra);
    (https_gateway(label, certs, &args), port)
}

fn tls_addr(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

/// An INVITE (or in-dialog request with `to`) from `c` to the gateway's TLS port.
#[allow(clippy::too_many_arguments)]
fn tls_request(
    c: &SipTlsClient,
    port: u16,
    method: &str,
    call_id: &str,
    branch: &str,
    to: &str,
    cseq: u32,
    sdp: Option<&str>,
) -> String {
    let via = c.local_addr().to_string();
    let contact = format!("<sip:caller@{via};transport=tls>");
    Request {
        method,
        uri: &format!("sip:ivr@127.0.0.1:{port};transport=tls"),
        via: &via,
        branch,
        from: &format!("\"tls\" <sip:caller@{via}>;tag=tlsfrom"),
        to,
        call_id,
        cseq,
        contact: sdp.map(|_| contact.as_str()),
        body: sdp.map(|b| ("application/sdp", b)),
    }
    .render()
}

#[test]
fn a_call_over_sip_tls_completes_and_leaves_a_call_record() {
    let certs = TempDir::new("tls_sip_certs");
    let cert = make_live(certs.path(), "sip");
    let (gw, port) = sip_tls_gateway("tls_sip_call", certs.path(), &[]);
    let mut c =
        SipTlsClient::connect(tls_addr(port)).unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail()));
    assert_eq!(c.server_cert, cert, "the certificate from --tls-cert");

    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sdp = pcmu_offer("tls", 1, media.local_addr().unwrap(), None);
    let call_id = format!("tls-call-{}", std::process::id());
    let to = format!("<sip:ivr@127.0.0.1:{port}>");
    let invite = tls_request(
        &c,
        port,
        "INVITE",
        &call_id,
        "z9hG4bKtls1",
        &to,
        1,
        Some(&sdp),
    );
    c.send(&invite);
    let ok = c
        .recv_status("INVITE", 200, Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no 200 over TLS:\n{}", gw.log_tail()));
    let via = ok.header("via").unwrap_or_default();
    assert!(via.starts_with("SIP/2.0/TLS "), "Via: {via}");
    let contact = ok.header("contact").unwrap_or_default();
    assert!(
        contact.contains(&format!("127.0.0.1:{port};transport=tls")),
        "Contact names the TLS listener: {contact}"
    );
    let to = ok.header("to").unwrap_or_default().to_string();
    c.send(&tls_request(
        &c,
        port,
        "ACK",
        &call_id,
        "z9hG4bKtls2",
        &to,
        1,
        None,
    ));

    // Media flows (the prompt's RTP reaches our socket), then we hang up.
    media
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = media.recv(&mut buf).expect("RTP from the gateway");
    assert!(n > 12, "an RTP packet");
    c.send(&tls_request(
        &c,
        port,
        "BYE",
        &call_id,
        "z9hG4bKtls3",
        &to,
        2,
        None,
    ));
    c.recv_status("BYE", 200, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no 200 to BYE:\n{}", gw.log_tail()));

    let events = gw.wait_call_ended(&call_id, Duration::from_secs(15));
    let started = events
        .iter()
        .find(|e| e.kind() == "call_started")
        .expect("call_started");
    assert_eq!(started.data_str("transport"), "tls");
    let sql = format!(
        "SELECT coalesce(outcome, '') FROM calls WHERE sip_call_id = '{call_id}' AND complete"
    );
    let row = poll_until(Duration::from_secs(15), || {
        db::psql(&gw.data_dir(), &sql).pop()
    })
    .unwrap_or_else(|| panic!("no complete calls row:\n{}", gw.log_tail()));
    assert!(!row[0].is_empty(), "an outcome: {row:?}");
}

#[test]
fn sip_tls_connections_count_against_the_per_source_cap_and_see_a_reloaded_certificate() {
    let certs = TempDir::new("tls_sip_cap_certs");
    let first = make_live(certs.path(), "first");
    let (gw, port) = sip_tls_gateway("tls_sip_cap", certs.path(), &["--max-tcp-per-source", "2"]);
    let a = SipTlsClient::connect(tls_addr(port)).expect("first connection");
    let b = SipTlsClient::connect(tls_addr(port)).expect("second connection");
    assert_eq!(a.server_cert, first);
    // The third from the same address is closed before any handshake.
    assert!(
        SipTlsClient::connect(tls_addr(port)).is_err(),
        "a third connection was admitted"
    );
    drop((a, b));
    // Slots come back when connections close; the new certificate is
    // served on SIP too after SIGHUP.
    let second = make_live(certs.path(), "second");
    assert!(send_signal(gw.pid().expect("running"), "HUP"));
    poll_until(Duration::from_secs(10), || {
        let c = SipTlsClient::connect(tls_addr(port)).ok()?;
        (c.server_cert == second).then_some(())
    })
    .unwrap_or_else(|| panic!("no new certificate on SIP over TLS:\n{}", gw.log_tail()));
}

// ---- SDES-SRTP (RFC 4568) over SIP on TLS ----

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 (RFC 4648, padded), written here so the test does not share the
/// gateway's SDES code.
fn b64_encode(data: &[u8]) -> String {
    let mut s = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

fn b64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = B64.iter().position(|&x| x == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The caller's SRTP master key and salt.
const CALLER_KEY: [u8; 30] = *b"caller-master-key+salt-0123456";

/// An `RTP/SAVP` PCMU offer with the caller's key (tag 7), as phones send it.
fn savp_offer(media: SocketAddr) -> String {
    pcmu_offer("srtp", 1, media, None).replace("RTP/AVP", "RTP/SAVP")
        + &format!(
            "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:{}|2^31\r\n",
            b64_encode(&CALLER_KEY)
        )
}

/// The gateway's `m=audio` profile and `a=crypto` (tag, key) of a 200's SDP.
fn answer_crypto(sdp: &str) -> (String, Option<(u32, Vec<u8>)>) {
    let profile = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|m| m.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string();
    let crypto = sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=crypto:"))
        .map(|v| {
            let f: Vec<&str> = v.split_whitespace().collect();
            assert_eq!(f[1], "AES_CM_128_HMAC_SHA1_80", "{v}");
            let inline = f[2].strip_prefix("inline:").expect("inline key");
            let b64 = inline.split('|').next().unwrap_or_default();
            (f[0].parse().expect("tag"), b64_decode(b64))
        });
    (profile, crypto)
}

/// INVITE with `sdp` over `c`; the final answer.
fn tls_invite(
    c: &mut SipTlsClient,
    port: u16,
    call_id: &str,
    sdp: &str,
    status: u16,
) -> Option<hotline_testpeer::sip::SipMessage> {
    let to = format!("<sip:ivr@127.0.0.1:{port}>");
    c.send(&tls_request(
        c,
        port,
        "INVITE",
        call_id,
        "z9hG4bKsrtp1",
        &to,
        1,
        Some(sdp),
    ));
    c.recv_status("INVITE", status, Duration::from_secs(15))
}

#[test]
fn an_sdes_srtp_call_is_encrypted_both_ways_and_recorded_in_clear() {
    use hotline_media::srtp::{MasterKey, SrtpContext, TAG_LEN};
    use hotline_testpeer::g711::{ulaw_decode, ulaw_encode};
    use hotline_testpeer::rtp::build_rtp;

    let certs = TempDir::new("tls_srtp_certs");
    make_live(certs.path(), "srtp");
    let (gw, port) = sip_tls_gateway("tls_srtp", certs.path(), &[]);
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();

    // The same offer over plain UDP: its key crossed the network in clear.
    let mut uac = hotline_e2e::rawsip::RawUac::new(([127, 0, 0, 1], gw.sip_port).into());
    let udp_id = format!("udp-savp-{}", std::process::id());
    let via = format!("127.0.0.1:{}", uac.local_port());
    let invite = Request {
        method: "INVITE",
        uri: &format!("sip:ivr@127.0.0.1:{}", gw.sip_port),
        via: &via,
        branch: "z9hG4bKudpsavp",
        from: &format!("<sip:caller@{via}>;tag=udpsavp"),
        to: &format!("<sip:ivr@127.0.0.1:{}>", gw.sip_port),
        call_id: &udp_id,
        cseq: 1,
        contact: Some(&format!("<sip:caller@{via}>")),
        body: Some(("application/sdp", &savp_offer(media.local_addr().unwrap()))),
    }
    .render();
    uac.send(invite.as_bytes());
    let refused = uac
        .recv_final(&udp_id, "INVITE", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no final answer over UDP:\n{}", gw.log_tail()));
    assert_eq!(refused.status(), Some(488), "RTP/SAVP over UDP");

    let mut c =
        SipTlsClient::connect(tls_addr(port)).unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail()));
    let call_id = format!("tls-srtp-{}", std::process::id());
    let ok = tls_invite(
        &mut c,
        port,
        &call_id,
        &savp_offer(media.local_addr().unwrap()),
        200,
    )
    .unwrap_or_else(|| panic!("no 200 to the SRTP offer:\n{}", gw.log_tail()));

    // (a) The answer: RTP/SAVP, our tag, a key of its own.
    let (profile, crypto) = answer_crypto(&ok.body);
    assert_eq!(profile, "RTP/SAVP", "{}", ok.body);
    let (tag, key) = crypto.unwrap_or_else(|| panic!("no a=crypto in the answer:\n{}", ok.body));
    assert_eq!(tag, 7, "the offer's tag is echoed");
    let key: [u8; 30] = key.try_into().expect("30 bytes of key and salt");
    assert_ne!(key, CALLER_KEY, "the gateway's own key");
    let gw_addr = hotline_testpeer::sip::sdp_audio(&ok.body).expect("the gateway's RTP address");
    let to = ok.header("to").unwrap_or_default().to_string();
    c.send(&tls_request(
        &c,
        port,
        "ACK",
        &call_id,
        "z9hG4bKsrtp2",
        &to,
        1,
        None,
    ));

    // 3 s of a 1 kHz tone, SRTP-protected with the caller's key, 20 ms a
    // packet (plus one forgery, which must be dropped); meanwhile what the
    // gateway sends is collected.
    let mut tx = SrtpContext::new(&MasterKey::from_bytes(&CALLER_KEY)).unwrap();
    let mut rx = SrtpContext::new(&MasterKey::from_bytes(&key)).unwrap();
    media.set_nonblocking(true).unwrap();
    let mut received: Vec<Vec<u8>> = Vec::new();
    let mut buf = [0u8; 2048];
    let start = std::time::Instant::now();
    for i in 0..150u16 {
        let payload: Vec<u8> = (0..160)
            .map(|n| {
                let t = f64::from(i * 160 + n) / 8000.0;
                ulaw_encode((8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin()) as i16)
            })
            .collect();
        let mut pkt = build_rtp(
            i == 0,
            0,
            1000 + i,
            u32::from(i) * 160,
            0x5EC0_0001,
            &payload,
        );
        tx.protect(&mut pkt).unwrap();
        media.send_to(&pkt, gw_addr).unwrap();
        if i == 75 {
            let mut forged = pkt.clone();
            forged[20] ^= 0x40;
            media.send_to(&forged, gw_addr).unwrap();
        }
        while let Ok(n) = media.recv(&mut buf) {
            received.push(buf[..n].to_vec());
        }
        // Pacing the caller's own stream (not waiting for the gateway).
        let next = start + Duration::from_millis(20 * (u64::from(i) + 1));
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
    }

    // (b) What the gateway sent: SRTP (tag present, payload not the audio
    // until unprotected with the answer's key), the prompt's sound.
    assert!(
        received.len() > 50,
        "{} packets from the gateway",
        received.len()
    );
    let mut samples = Vec::new();
    let mut differ = 0;
    for p in &received {
        assert_eq!(p.len(), 12 + 160 + TAG_LEN, "PCMU 20 ms + the 80-bit tag");
        let mut clear = p.clone();
        let n = rx
            .unprotect(&mut clear)
            .unwrap_or_else(|e| panic!("the gateway's packet does not unprotect: {e}"));
        if clear[12..n] != p[12..n] {
            differ += 1;
        }
        samples.extend(clear[12..n].iter().map(|&u| ulaw_decode(u)));
    }
    assert_eq!(differ, received.len(), "every payload is encrypted");
    let peak = samples
        .iter()
        .map(|s| i32::from(*s).abs())
        .max()
        .unwrap_or(0);
    assert!(peak > 1000, "the decrypted prompt is audible (peak {peak})");

    c.send(&tls_request(
        &c,
        port,
        "BYE",
        &call_id,
        "z9hG4bKsrtp3",
        &to,
        2,
        None,
    ));
    c.recv_status("BYE", 200, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no 200 to BYE:\n{}", gw.log_tail()));
    let events = gw.wait_call_ended(&call_id, Duration::from_secs(15));

    // (c) The recording's caller channel holds the tone: the gateway
    // decrypted it (and dropped the forgery rather than playing noise).
    let rec = events
        .iter()
        .find(|e| e.kind() == "recording")
        .unwrap_or_else(|| panic!("no recording event:\n{}", gw.log_tail()));
    let (channels, rate) = hotline_e2e::wav::read_channels(Path::new(rec.data_str("path")))
        .unwrap_or_else(|e| panic!("{e}"));
    let caller = &channels[0];
    let hz = hotline_e2e::wav::dominant_hz(caller, rate);
    assert!((hz - 1000.0).abs() < 50.0, "caller channel at {hz} Hz");
    let rms = hotline_e2e::rtp::rms(caller);
    assert!(rms > 1000.0, "caller channel RMS {rms}");
    assert!(
        gw.log_tail().contains("SRTP packet dropped"),
        "the forged packet is reported:\n{}",
        gw.log_tail()
    );
}

#[test]
fn require_srtp_refuses_a_plain_offer_with_488_and_takes_an_srtp_one() {
    let certs = TempDir::new("tls_require_srtp_certs");
    make_live(certs.path(), "req");
    let (gw, port) = sip_tls_gateway("tls_require_srtp", certs.path(), &["--require-srtp"]);
    plain_refused_srtp_answered(&gw, port);
}

#[test]
fn a_trunk_that_requires_srtp_gets_488_for_plain_offers_while_another_trunk_calls_in_clear() {
    let certs = TempDir::new("tls_trunk_srtp_certs");
    make_live(certs.path(), "trunk");
    let (gw, port) = sip_tls_gateway(
        "tls_trunk_srtp",
        certs.path(),
        &[
            "--trunk",
            "secure=127.0.0.1",
            "--trunk",
            "clear=127.0.0.2",
            "--trunk-require-srtp",
            "secure",
        ],
    );
    // The trunk that requires SRTP (the TLS client is on 127.0.0.1).
    plain_refused_srtp_answered(&gw, port);
    // The other trunk's plain call over UDP goes through.
    let run = hotline_e2e::sipp::Sipp::new("uac_caller_bye.xml", &gw)
        .var("PCAP", tone_pcap(&gw).to_str().unwrap())
        .var("PAUSE_MS", "1000")
        .arg("-i")
        .arg("127.0.0.2")
        .run();
    run.assert_success();
}

/// A caller pcap of one second of tone for SIPp.
fn tone_pcap(gw: &Gateway) -> std::path::PathBuf {
    let pcap = gw.dir().join("tone.pcap");
    hotline_e2e::rtp::write_caller_pcap(
        &pcap,
        &[hotline_e2e::rtp::CallerAudio::Tone {
            hz: 440.0,
            ms: 1000,
        }],
    );
    pcap
}

/// Over TLS from 127.0.0.1: a plain RTP/AVP offer gets 488 and leaves no
/// row; an SRTP offer on the same gateway is answered with RTP/SAVP.
fn plain_refused_srtp_answered(gw: &Gateway, port: u16) {
    let mut c =
        SipTlsClient::connect(tls_addr(port)).unwrap_or_else(|e| panic!("{e}\n{}", gw.log_tail()));
    let media = UdpSocket::bind("127.0.0.1:0").unwrap();
    let plain_id = format!("tls-plain-{}", std::process::id());
    let sdp = pcmu_offer("plain", 1, media.local_addr().unwrap(), None);
    let refused = tls_invite(&mut c, port, &plain_id, &sdp, 488)
        .unwrap_or_else(|| panic!("no 488 to a plain offer:\n{}", gw.log_tail()));
    let to = refused.header("to").unwrap_or_default().to_string();
    c.send(&tls_request(
        &c,
        port,
        "ACK",
        &plain_id,
        "z9hG4bKsrtp1",
        &to,
        1,
        None,
    ));

    // An SRTP call on the same gateway is answered, and once its row is
    // complete the refused INVITE has none.
    let srtp_id = format!("tls-srtp-req-{}", std::process::id());
    let ok = tls_invite(
        &mut c,
        port,
        &srtp_id,
        &savp_offer(media.local_addr().unwrap()),
        200,
    )
    .unwrap_or_else(|| panic!("no 200 to the SRTP offer:\n{}", gw.log_tail()));
    assert_eq!(answer_crypto(&ok.body).0, "RTP/SAVP");
    let to = ok.header("to").unwrap_or_default().to_string();
    c.send(&tls_request(
        &c,
        port,
        "ACK",
        &srtp_id,
        "z9hG4bKsrtp2",
        &to,
        1,
        None,
    ));
    c.send(&tls_request(
        &c,
        port,
        "BYE",
        &srtp_id,
        "z9hG4bKsrtp3",
        &to,
        2,
        None,
    ));
    c.recv_status("BYE", 200, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no 200 to BYE:\n{}", gw.log_tail()));
    let sql =
        |id: &str| format!("SELECT count(*) FROM calls WHERE sip_call_id = '{id}' AND complete");
    poll_until(Duration::from_secs(15), || {
        (db::psql(&gw.data_dir(), &sql(&srtp_id)).pop()?[0] == "1").then_some(())
    })
    .unwrap_or_else(|| panic!("no calls row for the SRTP call:\n{}", gw.log_tail()));
    let started = format!(
        "SELECT e.data->>'srtp', e.data->>'transport' FROM call_events e JOIN calls c ON c.id = e.call_id \
         WHERE c.sip_call_id = '{srtp_id}' AND e.kind = 'call_started'"
    );
    assert_eq!(
        db::psql(&gw.data_dir(), &started),
        vec![vec!["true".to_string(), "tls".to_string()]],
        "call_started of the SRTP call"
    );
    let none = format!("SELECT count(*) FROM calls WHERE sip_call_id = '{plain_id}'");
    assert_eq!(db::psql(&gw.data_dir(), &none), vec![vec!["0".to_string()]]);
}
