//! A deliberately small SIP-over-UDP client for tests that need byte-level control.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SipMessage {
    pub first_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

const COMPACT: &[(&str, &str)] = &[
    ("i", "call-id"),
    ("f", "from"),
    ("t", "to"),
    ("v", "via"),
    ("m", "contact"),
    ("l", "content-length"),
    ("c", "content-type"),
];

impl SipMessage {
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
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| {
                let k = k.to_ascii_lowercase();
                let long = COMPACT.iter().find(|(c, _)| *c == k).map(|(_, l)| *l);
                k == name || long == Some(name.as_str())
            })
            .map(|(_, v)| v.as_str())
    }

    pub fn cseq_method(&self) -> Option<&str> {
        self.header("cseq")?.split_whitespace().nth(1)
    }
}

/// One UDP socket for SIP plus one for media (so the gateway's RTP has a live target).
pub struct RawUac {
    pub sock: UdpSocket,
    pub media: UdpSocket,
    pub gw: SocketAddr,
    pub received: Vec<SipMessage>,
}

impl RawUac {
    pub fn new(gw: SocketAddr) -> RawUac {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind sip socket");
        let media = UdpSocket::bind("127.0.0.1:0").expect("bind media socket");
        RawUac {
            sock,
            media,
            gw,
            received: Vec::new(),
        }
    }

    pub fn local_port(&self) -> u16 {
        self.sock.local_addr().expect("local addr").port()
    }

    pub fn media_port(&self) -> u16 {
        self.media.local_addr().expect("local addr").port()
    }

    pub fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.gw).expect("send_to gateway");
    }

    /// Next SIP message within `timeout` (non-SIP datagrams are skipped).
    pub fn recv(&mut self, timeout: Duration) -> Option<SipMessage> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 70_000];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok();
            match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    if let Some(m) = SipMessage::parse(&buf[..n]) {
                        self.received.push(m.clone());
                        return Some(m);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(_) => {} // e.g. ICMP-induced ECONNREFUSED: keep waiting
            }
        }
    }

    /// Wait for a message matching `pred`, skipping others (they stay in `received`).
    pub fn recv_matching(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&SipMessage) -> bool,
    ) -> Option<SipMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let m = self.recv(left)?;
            if pred(&m) {
                return Some(m);
            }
        }
    }

    /// A final (≥ 200) response to `method` with this Call-ID.
    pub fn recv_final(
        &mut self,
        call_id: &str,
        method: &str,
        timeout: Duration,
    ) -> Option<SipMessage> {
        self.recv_matching(timeout, |m| {
            m.status().is_some_and(|s| s >= 200)
                && m.header("call-id") == Some(call_id)
                && m.cseq_method() == Some(method)
        })
    }

    /// An INVITE with a PCMU/telephone-event SDP offer pointing at our media socket.
    pub fn invite(&self, call_id: &str, branch: &str, from_tag: &str) -> String {
        let port = self.local_port();
        let sdp = format!(
            "v=0\r\no=e2e 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n",
            self.media_port()
        );
        format!(
            "INVITE sip:ivr@{gw} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"e2e\" <sip:caller@127.0.0.1:{port}>;tag={from_tag}\r\n\
             To: <sip:ivr@{gw}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:caller@127.0.0.1:{port}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{sdp}",
            gw = self.gw,
            len = sdp.len()
        )
    }

    /// An in-dialog request (ACK/BYE/...) using the To (with tag) of `answer`.
    pub fn in_dialog(
        &self,
        method: &str,
        answer: &SipMessage,
        branch: &str,
        from_tag: &str,
        cseq: u32,
    ) -> String {
        let port = self.local_port();
        let to = answer.header("to").unwrap_or("");
        let call_id = answer.header("call-id").unwrap_or("");
        format!(
            "{method} sip:ivr@{gw} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: \"e2e\" <sip:caller@127.0.0.1:{port}>;tag={from_tag}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            gw = self.gw,
        )
    }

    /// An out-of-dialog request without body (OPTIONS, unknown methods...).
    pub fn simple_request(&self, method: &str, call_id: &str, branch: &str) -> String {
        let port = self.local_port();
        format!(
            "{method} sip:ivr@{gw} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:caller@127.0.0.1:{port}>;tag=t{branch}\r\n\
             To: <sip:ivr@{gw}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n",
            gw = self.gw,
        )
    }
}
