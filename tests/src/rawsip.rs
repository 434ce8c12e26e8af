//! A deliberately small SIP-over-UDP client for tests that need byte-level control.
//! Message text (parsing, request and SDP builders) is the shared test peer's
//! ([`hotline_testpeer::sip`]); the blocking socket client is the harness's own.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

pub use hotline_testpeer::sip::SipMessage;
use hotline_testpeer::sip::{Request, pcmu_offer};

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

    /// `127.0.0.1:<our SIP port>`, the Via host of every request.
    fn via(&self) -> String {
        format!("127.0.0.1:{}", self.local_port())
    }

    /// Our From in INVITEs and in-dialog requests.
    fn caller_from(&self, from_tag: &str) -> String {
        format!("\"e2e\" <sip:caller@{}>;tag={from_tag}", self.via())
    }

    /// An INVITE with a PCMU/telephone-event SDP offer pointing at our media socket.
    pub fn invite(&self, call_id: &str, branch: &str, from_tag: &str) -> String {
        let media = SocketAddr::from(([127, 0, 0, 1], self.media_port()));
        let sdp = pcmu_offer("e2e", 1, media, None);
        let contact = format!("<sip:caller@{}>", self.via());
        let to = format!("<sip:ivr@{}>", self.gw);
        let offer = Some((contact.as_str(), sdp.as_str()));
        let from = self.caller_from(from_tag);
        self.request("INVITE", branch, &from, &to, call_id, 1, offer)
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
        let to = answer.header("to").unwrap_or("");
        let call_id = answer.header("call-id").unwrap_or("");
        let from = self.caller_from(from_tag);
        self.request(method, branch, &from, to, call_id, cseq, None)
    }

    /// An out-of-dialog request without body (OPTIONS, unknown methods...).
    pub fn simple_request(&self, method: &str, call_id: &str, branch: &str) -> String {
        let from = format!("<sip:caller@{}>;tag=t{branch}", self.via());
        let to = format!("<sip:ivr@{}>", self.gw);
        self.request(method, branch, &from, &to, call_id, 1, None)
    }

    /// A request from our SIP socket to `sip:ivr@<gateway>`; `offer` is the
    /// Contact and SDP body of an INVITE.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        method: &str,
        branch: &str,
        from: &str,
        to: &str,
        call_id: &str,
        cseq: u32,
        offer: Option<(&str, &str)>,
    ) -> String {
        Request {
            method,
            uri: &format!("sip:ivr@{}", self.gw),
            via: &self.via(),
            branch,
            from,
            to,
            call_id,
            cseq,
            contact: offer.map(|(contact, _)| contact),
            body: offer.map(|(_, sdp)| ("application/sdp", sdp)),
        }
        .render()
    }
}
