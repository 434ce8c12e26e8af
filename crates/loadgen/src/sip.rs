//! A minimal SIP user agent client: formats the few requests a caller sends
//! (INVITE, ACK, BYE, 200 to the gateway's BYE) and reads the few fields of
//! what comes back (status, Call-ID, CSeq, To tag, Contact, SDP body).
//!
//! Deliberately not a SIP stack: it is the independent peer the gateway is
//! measured against, so it shares no code with `hotline-sip`; the message
//! text itself comes from `hotline-testpeer`, shared with the e2e harness.

use std::net::SocketAddr;
use std::time::Instant;

pub use hotline_testpeer::sip::sdp_audio;
use hotline_testpeer::sip::{Request, SipMessage, pcmu_offer, response};

/// A received SIP message, reduced to what the load generator needs.
#[derive(Debug, Clone)]
pub struct Msg {
    pub at: Instant,
    pub kind: Kind,
    pub call_id: String,
    /// Only the method decides routing today; the number is kept for tests and debugging.
    #[allow(dead_code, reason = "read by tests and Debug output only")]
    pub cseq: u32,
    pub cseq_method: String,
    pub to_tag: Option<String>,
    pub contact: Option<String>,
    pub body: String,
    /// Via, From, To, Call-ID and CSeq lines, for answering a request.
    pub echo: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Response(u16),
    Request(String),
}

/// Parses one datagram. `None` for anything that is not a SIP message with
/// a Call-ID and a CSeq.
pub fn parse(data: &[u8], at: Instant) -> Option<Msg> {
    // Strict UTF-8: a mangled datagram is dropped rather than half-read.
    std::str::from_utf8(data).ok()?;
    let m = SipMessage::parse(data)?;
    let kind = match m.method() {
        Some(method) => Kind::Request(method.to_owned()),
        None => Kind::Response(m.status()?),
    };
    let call_id = m.header("call-id").filter(|c| !c.is_empty())?.to_owned();
    let (cseq, cseq_method) = m.cseq()?;
    Some(Msg {
        at,
        kind,
        call_id,
        cseq,
        cseq_method: cseq_method.to_owned(),
        to_tag: m.to_tag(),
        contact: m.contact_uri(),
        echo: m.echo_headers(),
        body: m.body,
    })
}

/// A fresh RFC 3261 branch (magic cookie prefix).
pub fn branch() -> String {
    format!("z9hG4bK{:016x}", fastrand::u64(..))
}

/// The fixed parts of one dialog, as the caller sees it.
pub struct Dialog {
    pub local: SocketAddr,
    pub target: SocketAddr,
    pub call_id: String,
    pub from_tag: String,
    pub to_tag: Option<String>,
    /// Where in-dialog requests go (the gateway's Contact), else the target.
    pub remote_uri: Option<String>,
}

impl Dialog {
    fn request_uri(&self) -> String {
        format!("sip:ivr@{}", self.target)
    }

    fn to(&self) -> String {
        match &self.to_tag {
            Some(t) => format!("<{}>;tag={t}", self.request_uri()),
            None => format!("<{}>", self.request_uri()),
        }
    }

    fn request(
        &self,
        method: &str,
        uri: &str,
        branch: &str,
        cseq: u32,
        sdp: Option<&str>,
    ) -> String {
        let local = self.local.to_string();
        Request {
            method,
            uri,
            via: &local,
            branch,
            from: &format!("\"loadgen\" <sip:loadgen@{local}>;tag={}", self.from_tag),
            to: &self.to(),
            call_id: &self.call_id,
            cseq,
            contact: Some(&format!("<sip:loadgen@{local}>")),
            body: sdp.map(|b| ("application/sdp", b)),
        }
        .render()
    }

    /// The INVITE with an SDP offer of PCMU + telephone-event/8000 (PT 101).
    pub fn invite(&self, branch: &str, rtp: SocketAddr) -> String {
        let sdp = pcmu_offer("loadgen", fastrand::u32(..), rtp, Some(20));
        self.request("INVITE", &self.request_uri(), branch, 1, Some(&sdp))
    }

    /// An in-dialog request without body, to the gateway's Contact.
    fn in_dialog(&self, method: &str, branch: &str, cseq: u32) -> String {
        let uri = self
            .remote_uri
            .clone()
            .unwrap_or_else(|| self.request_uri());
        self.request(method, &uri, branch, cseq, None)
    }

    /// ACK for a 2xx (its own transaction, new branch) or for a non-2xx
    /// (same branch as the INVITE), both CSeq 1.
    pub fn ack(&self, branch: &str) -> String {
        self.in_dialog("ACK", branch, 1)
    }

    /// The caller's BYE, CSeq 2.
    pub fn bye(&self, branch: &str) -> String {
        self.in_dialog("BYE", branch, 2)
    }
}

/// A 200 OK to a request, echoing its Via/From/To/Call-ID/CSeq.
pub fn ok_to(req: &Msg) -> String {
    response(&req.echo, 200, "OK")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_200_with_sdp() {
        let body = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 20002 RTP/AVP 0 101\r\n";
        let raw = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             To: <sip:ivr@127.0.0.1:5060>;tag=abc;x=1\r\nFrom: <sip:l@h>;tag=f\r\n\
             i: c-1@h\r\nCSeq: 1 INVITE\r\nm: <sip:ivr@127.0.0.1:5060;transport=udp>\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let m = parse(raw.as_bytes(), Instant::now()).unwrap();
        assert_eq!(m.kind, Kind::Response(200));
        assert_eq!(m.call_id, "c-1@h");
        assert_eq!((m.cseq, m.cseq_method.as_str()), (1, "INVITE"));
        assert_eq!(m.to_tag.as_deref(), Some("abc"));
        assert_eq!(
            m.contact.as_deref(),
            Some("sip:ivr@127.0.0.1:5060;transport=udp")
        );
        assert_eq!(sdp_audio(&m.body), Some("127.0.0.1:20002".parse().unwrap()));
        assert_eq!(m.echo.len(), 5);
    }

    #[test]
    fn answers_a_bye() {
        let raw = "BYE sip:loadgen@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n\
                   From: <sip:ivr@h>;tag=g\r\nTo: <sip:l@h>;tag=f\r\nCall-ID: c2\r\nCSeq: 7 BYE\r\n\r\n";
        let m = parse(raw.as_bytes(), Instant::now()).unwrap();
        assert_eq!(m.kind, Kind::Request("BYE".into()));
        let ok = ok_to(&m);
        assert!(
            ok.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n")
        );
        assert!(ok.contains("CSeq: 7 BYE\r\n"));
    }

    #[test]
    fn invite_has_consistent_length() {
        let d = Dialog {
            local: "127.0.0.1:5070".parse().unwrap(),
            target: "127.0.0.1:5060".parse().unwrap(),
            call_id: "x@h".into(),
            from_tag: "t".into(),
            to_tag: None,
            remote_uri: None,
        };
        let inv = d.invite("z9hG4bKa", "127.0.0.1:40000".parse().unwrap());
        let (head, body) = inv.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("m=audio 40000 RTP/AVP 0 101"));
    }
}
