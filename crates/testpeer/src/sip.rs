//! Raw SIP text as a caller writes and reads it: a lenient message parser
//! with header lookup, request and SDP-offer builders, and the few fields a
//! caller needs from answers (To tag, Contact URI, SDP audio address).
//!
//! Deliberately not a SIP stack (no transactions, dialogs or transport): the
//! callers keep those, and keep them simple enough to be checked by eye.

use std::net::{IpAddr, SocketAddr};

/// A SIP message split into its first line, headers (names as received,
/// values trimmed) and body.
#[derive(Debug, Clone)]
pub struct SipMessage {
    /// The request line (`INVITE sip:… SIP/2.0`) or status line
    /// (`SIP/2.0 200 OK`).
    pub first_line: String,
    /// Name and value pairs, in message order.
    pub headers: Vec<(String, String)>,
    /// The body (usually SDP); empty when there is none.
    pub body: String,
}

/// Expands a compact header name (RFC 3261 §7.3.3) and lowercases it.
pub fn long_name(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    let long = match n.as_str() {
        "i" => "call-id",
        "t" => "to",
        "f" => "from",
        "v" => "via",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        _ => return n,
    };
    long.to_owned()
}

impl SipMessage {
    /// Splits a datagram (invalid UTF-8 replaced). `None` only for an empty one.
    pub fn parse(bytes: &[u8]) -> Option<SipMessage> {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.split("\r\n");
        let first_line = lines.next()?.to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Some(SipMessage {
            first_line,
            headers,
            body: body.to_string(),
        })
    }

    /// Status code of a response; `None` for requests.
    pub fn status(&self) -> Option<u16> {
        let mut it = self.first_line.split_whitespace();
        if it.next()? != "SIP/2.0" {
            return None;
        }
        it.next()?.parse().ok()
    }

    /// Method of a request; `None` for responses.
    pub fn method(&self) -> Option<&str> {
        if self.first_line.starts_with("SIP/2.0") {
            return None;
        }
        self.first_line.split_whitespace().next()
    }

    /// First header with this name (case-insensitive, compact forms understood).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = long_name(name);
        self.headers
            .iter()
            .find(|(k, _)| long_name(k) == name)
            .map(|(_, v)| v.as_str())
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let mut it = self.header("cseq")?.split_whitespace();
        let n = it.next()?.parse().ok()?;
        Some((n, it.next()?))
    }

    /// The method named in CSeq (`INVITE`, `BYE`, …), e.g. to match a response
    /// to its request.
    pub fn cseq_method(&self) -> Option<&str> {
        self.header("cseq")?.split_whitespace().nth(1)
    }

    /// The `tag` parameter of To.
    pub fn to_tag(&self) -> Option<String> {
        header_param(self.header("to")?, "tag")
    }

    /// The URI of Contact (inside `<…>`, else up to the first `;`).
    pub fn contact_uri(&self) -> Option<String> {
        let value = self.header("contact")?;
        value
            .split_once('<')
            .and_then(|(_, r)| r.split_once('>'))
            .map(|(uri, _)| uri.to_owned())
            .or_else(|| value.split(';').next().map(str::to_owned))
    }

    /// The Via, From, To, Call-ID and CSeq header lines, in order: what a
    /// response to this request repeats (see [`response`]).
    pub fn echo_headers(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| {
                matches!(
                    long_name(k).as_str(),
                    "via" | "from" | "to" | "call-id" | "cseq"
                )
            })
            .map(|(k, v)| format!("{k}: {v}"))
            .collect()
    }
}

/// A `;name=value` parameter of a header value (outside the `<...>` URI).
pub fn header_param(value: &str, name: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_owned())
    })
}

/// A body-less response repeating a request's `echo` lines
/// ([`SipMessage::echo_headers`]).
pub fn response(echo: &[String], status: u16, reason: &str) -> String {
    let mut s = format!("SIP/2.0 {status} {reason}\r\n");
    for line in echo {
        s.push_str(line);
        s.push_str("\r\n");
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

/// A request over UDP, in the fixed header order both callers use.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `INVITE`, `ACK`, `BYE`, …
    pub method: &'a str,
    /// The Request-URI.
    pub uri: &'a str,
    /// `host:port` of our Via.
    pub via: &'a str,
    /// The Via `branch` parameter, naming the transaction.
    pub branch: &'a str,
    /// From and To header values (with their tags).
    pub from: &'a str,
    /// The To header value (with its tag in dialog).
    pub to: &'a str,
    /// The Call-ID header value.
    pub call_id: &'a str,
    /// The CSeq number; the method is `method`.
    pub cseq: u32,
    /// Contact header value, if any.
    pub contact: Option<&'a str>,
    /// Content-Type and body, if any.
    pub body: Option<(&'a str, &'a str)>,
}

impl Request<'_> {
    /// The request as text, `Content-Length` included.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {via};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {from}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n",
            method = self.method,
            uri = self.uri,
            via = self.via,
            branch = self.branch,
            from = self.from,
            to = self.to,
            call_id = self.call_id,
            cseq = self.cseq,
        );
        if let Some(c) = self.contact {
            s.push_str(&format!("Contact: {c}\r\n"));
        }
        match self.body {
            Some((ty, b)) => s.push_str(&format!(
                "Content-Type: {ty}\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => s.push_str("Content-Length: 0\r\n\r\n"),
        }
        s
    }
}

/// An SDP offer of PCMU + telephone-event/8000 (PT 101) at `rtp`.
pub fn pcmu_offer(origin_user: &str, session: u32, rtp: SocketAddr, ptime: Option<u32>) -> String {
    let ip = rtp.ip();
    let ptime = ptime
        .map(|p| format!("a=ptime:{p}\r\n"))
        .unwrap_or_default();
    format!(
        "v=0\r\no={origin_user} {session} 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n{ptime}a=sendrecv\r\n",
        port = rtp.port(),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_compact_headers_tags_and_contact() {
        let raw = "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                   To: <sip:ivr@h>;tag=abc;x=1\r\ni: c-1@h\r\nCSeq: 1 INVITE\r\n\
                   m: <sip:ivr@127.0.0.1:5060;transport=udp>\r\n\r\nv=0\r\n";
        let m = SipMessage::parse(raw.as_bytes()).unwrap();
        assert_eq!((m.status(), m.method()), (Some(200), None));
        assert_eq!(m.header("Call-ID"), Some("c-1@h"));
        assert_eq!(m.header("via"), Some("SIP/2.0/UDP h;branch=z9hG4bK1"));
        assert_eq!(m.cseq(), Some((1, "INVITE")));
        assert_eq!(m.to_tag().as_deref(), Some("abc"));
        assert_eq!(
            m.contact_uri().as_deref(),
            Some("sip:ivr@127.0.0.1:5060;transport=udp")
        );
        assert_eq!(m.body, "v=0\r\n");
        assert_eq!(m.echo_headers().len(), 4);
    }

    #[test]
    fn request_and_offer_lengths_agree() {
        let sdp = pcmu_offer("t", 1, "127.0.0.1:40000".parse().unwrap(), Some(20));
        assert_eq!(sdp_audio(&sdp), Some("127.0.0.1:40000".parse().unwrap()));
        let text = Request {
            method: "INVITE",
            uri: "sip:ivr@h",
            via: "127.0.0.1:5070",
            branch: "z9hG4bKa",
            from: "<sip:a@h>;tag=1",
            to: "<sip:ivr@h>",
            call_id: "x@h",
            cseq: 1,
            contact: Some("<sip:a@h>"),
            body: Some(("application/sdp", &sdp)),
        }
        .render();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.ends_with(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("a=ptime:20\r\na=sendrecv"));
        let m = SipMessage::parse(text.as_bytes()).unwrap();
        assert_eq!(m.method(), Some("INVITE"));
        assert!(response(&m.echo_headers(), 200, "OK").contains("CSeq: 1 INVITE\r\n"));
    }
}
