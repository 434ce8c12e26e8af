//! A minimal SIP user agent client: formats the few requests a caller sends
//! (INVITE, ACK, BYE, 200 to the gateway's BYE) and reads the few fields of
//! what comes back (status, Call-ID, CSeq, To tag, Contact, SDP body).
//!
//! Deliberately not a SIP stack: it is the independent peer the gateway is
//! measured against, so it shares no code with `hotline-sip`.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// A received SIP message, reduced to what the load generator needs.
#[derive(Debug, Clone)]
pub struct Msg {
    pub at: Instant,
    pub kind: Kind,
    pub call_id: String,
    pub cseq: u32,
    pub cseq_method: String,
    pub to_tag: Option<String>,
    pub contact: Option<String>,
    pub body: String,
    /// Via, From, To, Call-ID and CSeq lines verbatim, for answering a request.
    pub echo: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Response(u16),
    Request(String),
}

/// Expands a compact header name (RFC 3261 §7.3.3) and lowercases it.
fn header_name(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    match n.as_str() {
        "i" => "call-id".into(),
        "t" => "to".into(),
        "f" => "from".into(),
        "v" => "via".into(),
        "m" => "contact".into(),
        "l" => "content-length".into(),
        "c" => "content-type".into(),
        _ => n,
    }
}

/// Parses one datagram. `None` for anything that is not a SIP message with
/// a Call-ID and a CSeq.
pub fn parse(data: &[u8], at: Instant) -> Option<Msg> {
    let text = std::str::from_utf8(data).ok()?;
    let (head, body) = match text.find("\r\n\r\n") {
        Some(i) => (&text[..i], &text[i + 4..]),
        None => (text, ""),
    };
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    let kind = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
        Kind::Response(rest.get(..3)?.parse().ok()?)
    } else {
        Kind::Request(first.split(' ').next()?.to_owned())
    };
    let mut msg = Msg {
        at,
        kind,
        call_id: String::new(),
        cseq: 0,
        cseq_method: String::new(),
        to_tag: None,
        contact: None,
        body: body.to_owned(),
        echo: Vec::new(),
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = header_name(name);
        let value = value.trim();
        match name.as_str() {
            "call-id" => msg.call_id = value.to_owned(),
            "cseq" => {
                let mut it = value.split_whitespace();
                msg.cseq = it.next()?.parse().ok()?;
                msg.cseq_method = it.next().unwrap_or("").to_owned();
            }
            "to" => msg.to_tag = param(value, "tag"),
            "contact" => {
                msg.contact = value
                    .split_once('<')
                    .and_then(|(_, r)| r.split_once('>'))
                    .map(|(uri, _)| uri.to_owned())
                    .or_else(|| value.split(';').next().map(str::to_owned));
            }
            _ => {}
        }
        if matches!(name.as_str(), "via" | "from" | "to" | "call-id" | "cseq") {
            msg.echo.push(line.to_owned());
        }
    }
    if msg.call_id.is_empty() || msg.cseq_method.is_empty() {
        return None;
    }
    Some(msg)
}

/// A `;name=value` parameter of a header value (outside the `<...>` URI).
fn param(value: &str, name: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_owned())
    })
}

/// The RTP address of the first `m=audio` line of an SDP body.
pub fn sdp_audio(body: &str) -> Option<SocketAddr> {
    let mut ip: Option<IpAddr> = None;
    let mut port: Option<u16> = None;
    for line in body.lines() {
        let line = line.trim();
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            // A media-level c= after m= wins; session-level before it is the default.
            if port.is_none() || ip.is_none() {
                ip = c.split('/').next()?.trim().parse().ok();
            }
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            if port.is_none() {
                port = m.split_whitespace().next()?.parse().ok();
            }
        }
    }
    Some(SocketAddr::new(ip?, port?))
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

    fn headers(&self, method: &str, uri: &str, branch: &str, cseq: u32) -> String {
        format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"loadgen\" <sip:loadgen@{local}>;tag={from_tag}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:loadgen@{local}>\r\n",
            local = self.local,
            from_tag = self.from_tag,
            to = self.to(),
            call_id = self.call_id,
        )
    }

    /// The INVITE with an SDP offer of PCMU + telephone-event/8000 (PT 101).
    pub fn invite(&self, branch: &str, rtp: SocketAddr) -> String {
        let sdp = format!(
            "v=0\r\no=loadgen {sess} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
            sess = fastrand::u32(..),
            ip = rtp.ip(),
            port = rtp.port(),
        );
        format!(
            "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            self.headers("INVITE", &self.request_uri(), branch, 1),
            sdp.len()
        )
    }

    /// ACK for a 2xx (its own transaction, new branch) or for a non-2xx
    /// (same branch as the INVITE), both CSeq 1.
    pub fn ack(&self, branch: &str) -> String {
        let uri = self
            .remote_uri
            .clone()
            .unwrap_or_else(|| self.request_uri());
        format!(
            "{}Content-Length: 0\r\n\r\n",
            self.headers("ACK", &uri, branch, 1)
        )
    }

    /// The caller's BYE, CSeq 2.
    pub fn bye(&self, branch: &str) -> String {
        let uri = self
            .remote_uri
            .clone()
            .unwrap_or_else(|| self.request_uri());
        format!(
            "{}Content-Length: 0\r\n\r\n",
            self.headers("BYE", &uri, branch, 2)
        )
    }
}

/// A 200 OK to a request, echoing its Via/From/To/Call-ID/CSeq.
pub fn ok_to(req: &Msg) -> String {
    let mut s = String::from("SIP/2.0 200 OK\r\n");
    for line in &req.echo {
        s.push_str(line);
        s.push_str("\r\n");
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s
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
