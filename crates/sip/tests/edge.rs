//! The edge policy inside the sans-IO endpoint: what a refused message
//! costs (no call, no event, no transaction) and what comes back.

use std::time::{Duration, Instant};

use hotline_sip::{Endpoint, EndpointConfig, GuardConfig, Peer, RefuseMode, SipEvent};

const TRUNK: &str = "198.51.100.7:5060";
const STRANGER: &str = "192.0.2.66:5060";

fn invite(call_id: &str, ua: &str) -> String {
    let sdp = "v=0\r\no=a 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
               m=audio 4000 RTP/AVP 0\r\n";
    format!(
        "INVITE sip:100@192.0.2.10 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK{call_id}\r\n\
         From: <sip:alice@example.com>;tag=a{call_id}\r\n\
         To: <sip:100@192.0.2.10>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         User-Agent: {ua}\r\n\
         Contact: <sip:alice@198.51.100.7>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn request(method: &str, call_id: &str) -> String {
    format!(
        "{method} sip:100@192.0.2.10 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK{call_id}\r\n\
         From: <sip:alice@example.com>;tag=a{call_id}\r\n\
         To: <sip:100@192.0.2.10>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 {method}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

struct H {
    ep: Endpoint,
    now: Instant,
}

impl H {
    fn new(guard: GuardConfig) -> Self {
        H {
            ep: Endpoint::new(EndpointConfig {
                guard,
                ..EndpointConfig::new("192.0.2.10:5060".parse().unwrap())
            }),
            now: Instant::now(),
        }
    }

    fn input(&mut self, from: &str, msg: &str) -> (Vec<String>, Vec<SipEvent>) {
        self.ep
            .handle_input(self.now, Peer::udp(from.parse().unwrap()), msg.as_bytes());
        let out = std::iter::from_fn(|| self.ep.poll_transmit())
            .map(|t| String::from_utf8_lossy(&t.data).into_owned())
            .collect();
        let ev = std::iter::from_fn(|| self.ep.poll_event()).collect();
        (out, ev)
    }
}

fn with_trunk(mode: RefuseMode) -> GuardConfig {
    GuardConfig {
        trunks: vec!["carrier=198.51.100.0/24".parse().unwrap()],
        refuse_unknown: mode,
        ..GuardConfig::default()
    }
}

#[test]
fn a_stranger_gets_403_and_costs_no_call() {
    let mut h = H::new(with_trunk(RefuseMode::Reply));
    let (out, ev) = h.input(STRANGER, &invite("s1", "Zoiper"));
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].starts_with("SIP/2.0 403 Forbidden\r\n"),
        "{}",
        out[0]
    );
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(h.ep.active_calls(), 0);
    // Stateless: the retransmission is refused again, not matched to a transaction.
    let (out, _) = h.input(STRANGER, &invite("s1", "Zoiper"));
    assert!(out[0].starts_with("SIP/2.0 403"), "{}", out[0]);
    // Its ACK gets nothing; nor does junk from it.
    assert!(h.input(STRANGER, &request("ACK", "s1")).0.is_empty());
    assert!(h.input(STRANGER, "FOO\r\n\r\n").0.is_empty());
    let s = h.ep.edge_counters().snapshot();
    assert_eq!((s.refused_unknown, s.dropped_unusable), (3, 1), "{s:?}");
    // The trunk calls as before.
    let (out, ev) = h.input(TRUNK, &invite("t1", "Carrier SBC"));
    assert!(out[0].starts_with("SIP/2.0 100 Trying"), "{}", out[0]);
    assert!(matches!(ev.as_slice(), [SipEvent::Incoming(_)]), "{ev:?}");
}

#[test]
fn drop_mode_answers_nothing() {
    let mut h = H::new(with_trunk(RefuseMode::Drop));
    let (out, ev) = h.input(STRANGER, &invite("s1", "Zoiper"));
    assert!(out.is_empty() && ev.is_empty(), "{out:?} {ev:?}");
    let (out, _) = h.input(STRANGER, &request("OPTIONS", "s2"));
    assert!(out.is_empty(), "{out:?}");
    let (out, _) = h.input(TRUNK, &request("OPTIONS", "t2"));
    assert!(out[0].starts_with("SIP/2.0 200"), "{out:?}");
}

#[test]
fn scanners_are_dropped_and_banned() {
    let mut h = H::new(GuardConfig::default());
    let (out, ev) = h.input(STRANGER, &invite("x1", "friendly-scanner"));
    assert!(out.is_empty() && ev.is_empty(), "{out:?} {ev:?}");
    // Banned: even an ordinary OPTIONS gets nothing now.
    assert!(h.input(STRANGER, &request("OPTIONS", "x2")).0.is_empty());
    let s = h.ep.edge_counters().snapshot();
    assert_eq!(
        (s.dropped_scanner, s.bans, s.dropped_banned),
        (1, 1, 1),
        "{s:?}"
    );
    // Others still get through (open mode).
    let (out, _) = h.input(TRUNK, &request("OPTIONS", "o1"));
    assert!(out[0].starts_with("SIP/2.0 200"), "{out:?}");
}

#[test]
fn unacked_calls_per_source_are_capped_with_503() {
    let mut h = H::new(GuardConfig {
        max_unacked_per_source: 2,
        max_calls: 3,
        ..GuardConfig::default()
    });
    let mut calls = Vec::new();
    for id in ["u1", "u2"] {
        let (_, ev) = h.input(STRANGER, &invite(id, "x"));
        let [SipEvent::Incoming(inc)] = ev.as_slice() else {
            panic!("{ev:?}")
        };
        calls.push(inc.call.clone());
    }
    let (out, ev) = h.input(STRANGER, &invite("u3", "x"));
    assert!(ev.is_empty(), "{ev:?}");
    assert!(
        out[0].starts_with("SIP/2.0 503 Service Unavailable (unconfirmed calls limit)\r\n"),
        "{}",
        out[0]
    );
    assert!(out[0].contains("\r\nRetry-After: 10\r\n"), "{}", out[0]);
    // Answer and ACK one: its slot is free again.
    h.ep.answer(h.now, &calls[0], "192.0.2.10:30000".parse().unwrap())
        .unwrap();
    let ok = h.ep.poll_transmit().unwrap();
    let ok = String::from_utf8_lossy(&ok.data).into_owned();
    let to = ok
        .lines()
        .find(|l| l.starts_with("To:"))
        .unwrap()
        .trim_start_matches("To:")
        .trim()
        .to_string();
    let ack = request("ACK", "u1").replace("To: <sip:100@192.0.2.10>", &format!("To: {to}"));
    let (_, ev) = h.input(STRANGER, &ack);
    assert!(
        matches!(ev.as_slice(), [SipEvent::Confirmed { .. }]),
        "{ev:?}"
    );
    let (_, ev) = h.input(STRANGER, &invite("u4", "x"));
    assert!(matches!(ev.as_slice(), [SipEvent::Incoming(_)]), "{ev:?}");
    // Three calls live: the total cap answers 503 to anyone.
    let (out, ev) = h.input(TRUNK, &invite("t1", "x"));
    assert!(ev.is_empty(), "{ev:?}");
    assert!(out[0].starts_with("SIP/2.0 503"), "{}", out[0]);
    // A call ended before its ACK (CANCEL) frees both counts.
    let cancel = request("CANCEL", "u2");
    let (_, ev) = h.input(STRANGER, &cancel);
    assert!(matches!(ev.as_slice(), [SipEvent::Ended { .. }]), "{ev:?}");
    let (_, ev) = h.input(STRANGER, &invite("u5", "x"));
    assert!(matches!(ev.as_slice(), [SipEvent::Incoming(_)]), "{ev:?}");
    let s = h.ep.edge_counters().snapshot();
    assert_eq!(
        (s.refused_unacked_cap, s.refused_total_cap),
        (1, 1),
        "{s:?}"
    );
}

#[test]
fn a_flood_is_rate_limited_then_banned_and_unbanned_later() {
    let mut h = H::new(GuardConfig {
        rate: 100,
        burst: 200,
        ban_after: 50,
        ban_for: Duration::from_secs(60),
        ..GuardConfig::default()
    });
    let mut answered = 0;
    for i in 0..1000 {
        let (out, _) = h.input(STRANGER, &request("OPTIONS", &format!("f{i}")));
        answered += out.len();
    }
    assert_eq!(answered, 200, "the burst, then nothing");
    let s = h.ep.edge_counters().snapshot();
    assert_eq!((s.rate_limited, s.bans), (50, 1), "{s:?}");
    assert_eq!(s.dropped_banned, 750, "{s:?}");
    // The housekeeping timer lifts the ban.
    let later = h.now + Duration::from_secs(61);
    while let Some(t) = h.ep.poll_timeout().filter(|t| *t <= later) {
        h.ep.handle_timeout(t);
    }
    h.now = later;
    let (out, _) = h.input(STRANGER, &request("OPTIONS", "after"));
    assert!(out[0].starts_with("SIP/2.0 200"), "{out:?}");
    assert_eq!(h.ep.edge_counters().snapshot().banned_now, 0);
}

#[test]
fn unknown_methods_are_counted() {
    let mut h = H::new(GuardConfig::default());
    let (out, _) = h.input(TRUNK, &request("REGISTER", "r1"));
    assert!(out[0].starts_with("SIP/2.0 405"), "{out:?}");
    let (out, _) = h.input(TRUNK, &request("FROBNICATE", "r2"));
    assert!(out[0].starts_with("SIP/2.0 501"), "{out:?}");
    let s = h.ep.edge_counters().snapshot();
    assert_eq!((s.method_not_allowed, s.not_implemented), (1, 1), "{s:?}");
}

#[test]
fn oversized_headers_are_dropped() {
    let mut h = H::new(GuardConfig {
        max_headers: 20,
        ..GuardConfig::default()
    });
    let many: String = (0..30).map(|i| format!("X-H{i}: v\r\n")).collect();
    let msg =
        request("OPTIONS", "big").replacen("Content-Length", &format!("{many}Content-Length"), 1);
    assert!(h.input(TRUNK, &msg).0.is_empty());
    assert_eq!(h.ep.edge_counters().snapshot().dropped_oversized, 1);
}

/// The shell closes a source's TCP connections beyond its cap at once.
#[tokio::test]
async fn tcp_connections_per_source_are_capped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    let (handle, _events) = hotline_sip::SipServer::bind(hotline_sip::SipConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        guard: GuardConfig {
            max_tcp_per_source: 2,
            ..GuardConfig::default()
        },
        ..hotline_sip::SipConfig::default()
    })
    .await
    .unwrap();
    let server = handle.local_addr();
    let wait = Duration::from_secs(5);
    let mut first = TcpStream::connect(server).await.unwrap();
    let _second = TcpStream::connect(server).await.unwrap();
    let mut third = TcpStream::connect(server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    // Closed by the gateway: end of stream (or a reset).
    let r = tokio::time::timeout(wait, third.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    assert_eq!(handle.edge_stats().refused_tcp, 1);
    // The first two still work.
    let options = request("OPTIONS", "tcp1").replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    first.write_all(options.as_bytes()).await.unwrap();
    let n = tokio::time::timeout(wait, first.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf[..n].starts_with(b"SIP/2.0 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // Closing one makes room for another.
    drop(first);
    let mut again = None;
    for _ in 0..50 {
        let mut s = TcpStream::connect(server).await.unwrap();
        s.write_all(options.replace("tcp1", "tcp2").as_bytes())
            .await
            .unwrap();
        match tokio::time::timeout(wait, s.read(&mut buf)).await.unwrap() {
            Ok(n) if n > 0 => {
                again = Some(n);
                break;
            }
            // The close of `first` is not processed yet: try again.
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(again.is_some(), "no room after a connection closed");
    handle.shutdown().await;
}
