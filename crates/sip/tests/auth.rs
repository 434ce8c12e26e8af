//! Digest authentication of trunks inside the sans-IO endpoint: what an
//! unauthenticated INVITE gets (a stateless 401, no call, no event), what
//! right, wrong and replayed credentials get, and that the ACK of the 401
//! and a retransmitted authenticated INVITE are handled per RFC 3261.

use std::time::{Duration, Instant};

use hotline_sip::{
    DigestAlgorithm, Endpoint, EndpointConfig, GuardConfig, Peer, SipEvent, TrunkCredentials,
};

const IP_TRUNK: &str = "198.51.100.7:5060";
const ROAMING_PBX: &str = "203.0.113.50:5060";
const STRANGER: &str = "192.0.2.66:5060";
const URI: &str = "sip:100@192.0.2.10";

fn invite(call_id: &str, cseq: u32, branch: &str, auth: Option<&str>) -> String {
    let sdp = "v=0\r\no=a 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
               m=audio 4000 RTP/AVP 0\r\n";
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    format!(
        "INVITE {URI} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK{branch}\r\n\
         From: <sip:pbx@example.com>;tag=a{call_id}\r\n\
         To: <sip:100@192.0.2.10>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} INVITE\r\n\
         Contact: <sip:pbx@198.51.100.7>\r\n\
         {auth}Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

fn ack(call_id: &str, branch: &str, to_tag: &str) -> String {
    format!(
        "ACK {URI} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK{branch}\r\n\
         From: <sip:pbx@example.com>;tag=a{call_id}\r\n\
         To: <sip:100@192.0.2.10>;tag={to_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 ACK\r\n\
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

/// An IP trunk that must also authenticate, and a PBX at any address.
fn guard() -> GuardConfig {
    GuardConfig {
        trunks: vec!["carrier=198.51.100.0/24".parse().unwrap()],
        trunk_auth: vec![
            TrunkCredentials::new("carrier", "carrier-user", "carrier-secret"),
            TrunkCredentials::new("roaming", "pbx", "s3cret"),
        ],
        ban_after: 5,
        ..GuardConfig::default()
    }
}

/// A header's value in a response.
fn header<'a>(resp: &'a str, name: &str) -> Vec<&'a str> {
    resp.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

fn param(challenge: &str, name: &str) -> String {
    let i = challenge.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    let rest = &challenge[i..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn to_tag(resp: &str) -> String {
    let to = header(resp, "To")[0];
    to[to.find("tag=").unwrap() + 4..].to_string()
}

fn authorization(
    alg: DigestAlgorithm,
    user: &str,
    pass: &str,
    challenge: &str,
    nc: &str,
) -> String {
    let nonce = param(challenge, "nonce");
    let opaque = param(challenge, "opaque");
    let resp = alg.response(user, "hotline", pass, "INVITE", URI, &nonce, nc, "c0ffee");
    format!(
        "Digest username=\"{user}\", realm=\"hotline\", nonce=\"{nonce}\", uri=\"{URI}\", \
         response=\"{resp}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"c0ffee\", opaque=\"{opaque}\"",
        alg.token()
    )
}

#[test]
fn roaming_pbx_is_challenged_then_calls() {
    let mut h = H::new(guard());
    let (out, ev) = h.input(ROAMING_PBX, &invite("r1", 1, "r1a", None));
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].starts_with("SIP/2.0 401 Unauthorized\r\n"),
        "{}",
        out[0]
    );
    let ch = header(&out[0], "WWW-Authenticate");
    assert_eq!(ch.len(), 2, "{}", out[0]);
    assert!(ch[0].contains("algorithm=SHA-256") && ch[1].contains("algorithm=MD5"));
    assert!(ev.is_empty() && h.ep.active_calls() == 0, "{ev:?}");
    // A retransmission of the INVITE gets a 401 with the same To tag.
    let (again, _) = h.input(ROAMING_PBX, &invite("r1", 1, "r1a", None));
    assert_eq!(to_tag(&again[0]), to_tag(&out[0]));
    // The ACK of the 401 is absorbed: no answer, no strike, no refusal.
    let (o, _) = h.input(ROAMING_PBX, &ack("r1", "r1a", &to_tag(&out[0])));
    assert!(o.is_empty(), "{o:?}");
    // A CANCEL of it is ignored too (RFC 3261 §8.2.7).
    let cancel = invite("r1", 1, "r1a", None)
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    assert!(h.input(ROAMING_PBX, &cancel).0.is_empty());
    let s = h.ep.edge_counters().snapshot();
    assert_eq!(
        (s.auth_challenged, s.refused_unknown, s.bans),
        (2, 0, 0),
        "{s:?}"
    );

    // The INVITE again with SHA-256 credentials: a call.
    let auth = authorization(DigestAlgorithm::Sha256, "pbx", "s3cret", ch[0], "00000001");
    let (out, ev) = h.input(ROAMING_PBX, &invite("r1", 2, "r1b", Some(&auth)));
    assert!(out[0].starts_with("SIP/2.0 100 Trying"), "{}", out[0]);
    assert!(matches!(ev.as_slice(), [SipEvent::Incoming(_)]), "{ev:?}");
    // Its retransmission is the same transaction, not a replay.
    let (out, ev) = h.input(ROAMING_PBX, &invite("r1", 2, "r1b", Some(&auth)));
    assert!(out[0].starts_with("SIP/2.0 100 Trying"), "{out:?}");
    assert!(ev.is_empty());
    // The same Authorization on a new call: a replay, 403.
    let (out, ev) = h.input(ROAMING_PBX, &invite("r2", 2, "r2b", Some(&auth)));
    assert!(out[0].starts_with("SIP/2.0 403"), "{}", out[0]);
    assert!(ev.is_empty());
    // A higher nonce-count with the same nonce: fine (MD5 this time).
    let auth = authorization(DigestAlgorithm::Md5, "pbx", "s3cret", ch[1], "00000002");
    let (out, ev) = h.input(ROAMING_PBX, &invite("r3", 2, "r3b", Some(&auth)));
    assert!(out[0].starts_with("SIP/2.0 100"), "{}", out[0]);
    assert_eq!(ev.len(), 1);
    let s = h.ep.edge_counters().snapshot();
    assert_eq!((s.auth_passed, s.auth_failed), (2, 1), "{s:?}");
    assert_eq!(h.ep.active_calls(), 2);
}

#[test]
fn wrong_credentials_get_403_and_a_ban() {
    let mut h = H::new(guard());
    let (out, _) = h.input(STRANGER, &invite("w0", 1, "w0", None));
    let ch = header(&out[0], "WWW-Authenticate")[0].to_string();
    for i in 1..=5 {
        let auth = authorization(
            DigestAlgorithm::Sha256,
            "pbx",
            "guess",
            &ch,
            &format!("{i:08x}"),
        );
        let (out, ev) = h.input(
            STRANGER,
            &invite(&format!("w{i}"), 1, &format!("w{i}"), Some(&auth)),
        );
        assert!(out[0].starts_with("SIP/2.0 403"), "{}", out[0]);
        assert!(ev.is_empty());
    }
    // Five strikes: banned, so the right password no longer helps.
    let auth = authorization(DigestAlgorithm::Sha256, "pbx", "s3cret", &ch, "00000009");
    let (out, ev) = h.input(STRANGER, &invite("w9", 1, "w9", Some(&auth)));
    assert!(out.is_empty() && ev.is_empty(), "{out:?}");
    let s = h.ep.edge_counters().snapshot();
    assert_eq!((s.auth_failed, s.bans, s.auth_passed), (5, 1, 0), "{s:?}");
    assert_eq!(h.ep.active_calls(), 0);
}

#[test]
fn ip_trunk_with_credentials_must_use_its_own() {
    let mut h = H::new(guard());
    let (out, _) = h.input(IP_TRUNK, &invite("c1", 1, "c1", None));
    assert!(out[0].starts_with("SIP/2.0 401"), "{}", out[0]);
    let ch = header(&out[0], "WWW-Authenticate")[0].to_string();
    // The roaming PBX's credentials are not the carrier's.
    let auth = authorization(DigestAlgorithm::Sha256, "pbx", "s3cret", &ch, "00000001");
    let (out, _) = h.input(IP_TRUNK, &invite("c2", 1, "c2", Some(&auth)));
    assert!(out[0].starts_with("SIP/2.0 403"), "{}", out[0]);
    let auth = authorization(
        DigestAlgorithm::Sha256,
        "carrier-user",
        "carrier-secret",
        &ch,
        "00000001",
    );
    let (out, ev) = h.input(IP_TRUNK, &invite("c3", 1, "c3", Some(&auth)));
    assert!(out[0].starts_with("SIP/2.0 100"), "{}", out[0]);
    assert_eq!(ev.len(), 1);
    // Its OPTIONS need no credentials (the address is trusted).
    let options = "OPTIONS sip:100@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKo\r\n\
                   From: <sip:a@b>;tag=1\r\nTo: <sip:100@192.0.2.10>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n\
                   Content-Length: 0\r\n\r\n";
    assert!(h.input(IP_TRUNK, options).0[0].starts_with("SIP/2.0 200"));
    // An expired nonce with the right password: 401 stale=true.
    h.now += Duration::from_secs(301);
    let auth = authorization(
        DigestAlgorithm::Sha256,
        "carrier-user",
        "carrier-secret",
        &ch,
        "00000002",
    );
    let (out, ev) = h.input(IP_TRUNK, &invite("c4", 1, "c4", Some(&auth)));
    assert!(out[0].starts_with("SIP/2.0 401"), "{}", out[0]);
    assert!(header(&out[0], "WWW-Authenticate")[0].contains("stale=true"));
    assert!(ev.is_empty());
}

#[test]
fn without_address_free_credentials_strangers_are_refused_as_before() {
    let mut h = H::new(GuardConfig {
        trunk_auth: vec![TrunkCredentials::new("carrier", "u", "p")],
        ..guard()
    });
    let (out, _) = h.input(STRANGER, &invite("s1", 1, "s1", None));
    assert!(out[0].starts_with("SIP/2.0 403"), "{}", out[0]);
    let s = h.ep.edge_counters().snapshot();
    assert_eq!((s.refused_unknown, s.auth_challenged), (1, 0), "{s:?}");
}
