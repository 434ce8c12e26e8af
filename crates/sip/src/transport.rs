//! Transport identities (UDP/TCP/TLS peers) and the sans-IO stream framer
//! (TCP and TLS streams are framed alike).

use std::fmt;
use std::net::SocketAddr;

use crate::framing::{self, ContentLength};

/// The transport a message arrived on or leaves by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams; we retransmit (RFC 3261 §17).
    Udp,
    /// A stream; reliable, so most retransmission timers are zero.
    Tcp,
    /// A TCP stream under TLS (RFC 3261 §26.2, `sips:`); framed like TCP.
    Tls,
}

impl Transport {
    /// `true` for TCP and TLS (RFC 3261 calls them reliable transports).
    pub fn is_reliable(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// The Via transport token.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The other end of a flow: where a message came from and where replies go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// UDP or TCP.
    pub transport: Transport,
    /// The remote socket address (the packet's source).
    pub addr: SocketAddr,
    /// TCP connection id assigned by the shell; 0 for UDP.
    pub conn: u64,
}

impl Peer {
    /// A UDP peer.
    pub fn udp(addr: SocketAddr) -> Self {
        Peer {
            transport: Transport::Udp,
            addr,
            conn: 0,
        }
    }

    /// A peer on TCP connection `conn`.
    pub fn tcp(addr: SocketAddr, conn: u64) -> Self {
        Peer {
            transport: Transport::Tcp,
            addr,
            conn,
        }
    }

    /// A peer on TLS connection `conn` (numbered with the TCP ones).
    pub fn tls(addr: SocketAddr, conn: u64) -> Self {
        Peer {
            transport: Transport::Tls,
            addr,
            conn,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.transport {
            Transport::Udp => write!(f, "udp:{}", self.addr),
            Transport::Tcp => write!(f, "tcp:{}#{}", self.addr, self.conn),
            Transport::Tls => write!(f, "tls:{}#{}", self.addr, self.conn),
        }
    }
}

/// Why a TCP stream must be closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// No end of the header section within [`TcpFramer::MAX_HEADER`] bytes.
    #[error("header section larger than 64 KiB")]
    HeaderTooLarge,
    /// Content-Length is not a number or is absurdly large.
    #[error("bad Content-Length")]
    BadContentLength,
    /// Two Content-Length headers with different values (RFC 4475 §3.3.9).
    /// The message's header section was handed out once (so it can be
    /// answered 400); nothing more can be read from the stream.
    #[error("conflicting Content-Length headers")]
    ConflictingContentLength,
}

/// Splits a SIP byte stream into messages by Content-Length (RFC 3261 §18.3).
///
/// Sans-IO: push what the socket gave, pop complete messages. After an error
/// the stream cannot be resynchronised, so the caller closes the connection.
/// A message with conflicting Content-Length headers is popped once as its
/// header section alone (for the endpoint to answer 400), then the next pop
/// fails with [`FramingError::ConflictingContentLength`].
#[derive(Debug, Default)]
pub struct TcpFramer {
    buf: Vec<u8>,
    broken: bool,
}

impl TcpFramer {
    /// Largest header section we wait for before giving up on the stream.
    pub const MAX_HEADER: usize = 64 * 1024;
    /// Largest body we accept on a stream.
    pub const MAX_BODY: usize = 1024 * 1024;

    /// An empty framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Returns the next complete message, `Ok(None)` if more bytes are needed.
    pub fn pop(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        if self.broken {
            return Err(FramingError::ConflictingContentLength);
        }
        // RFC 5626 §4.4.1: CRLF keep-alives between messages are skipped.
        let skip = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        if skip > 0 {
            self.buf.drain(..skip);
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        let Some(head_end) = framing::header_end(&self.buf) else {
            if self.buf.len() > Self::MAX_HEADER {
                return Err(FramingError::HeaderTooLarge);
            }
            return Ok(None);
        };
        if head_end.head_len > Self::MAX_HEADER {
            return Err(FramingError::HeaderTooLarge);
        }
        let head = self.buf.get(..head_end.head_len).unwrap_or_default();
        // RFC 3261 §18.3: on a stream Content-Length is mandatory; absent means no body.
        let body_len = match framing::content_length(head) {
            ContentLength::Absent => 0,
            ContentLength::Value(n) if n <= Self::MAX_BODY => n,
            ContentLength::Value(_) | ContentLength::Invalid => {
                return Err(FramingError::BadContentLength);
            }
            ContentLength::Conflicting => {
                self.broken = true;
                let head = self.buf.get(..head_end.body_start).unwrap_or_default();
                let msg = head.to_vec();
                self.buf.clear();
                return Ok(Some(msg));
            }
        };
        let total = head_end.body_start + body_len;
        if self.buf.len() < total {
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        let msg = std::mem::replace(&mut self.buf, rest);
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_and_joined_messages() {
        let m1 = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 4\r\n\r\nabcd";
        let m2 = b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n";
        let mut all = b"\r\n\r\n".to_vec();
        all.extend_from_slice(m1);
        all.extend_from_slice(m2);
        let mut f = TcpFramer::new();
        for chunk in all.chunks(7) {
            f.push(chunk);
        }
        assert_eq!(f.pop().unwrap().unwrap(), m1.to_vec());
        assert_eq!(f.pop().unwrap().unwrap(), m2.to_vec());
        assert_eq!(f.pop().unwrap(), None);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn waits_for_the_body() {
        let mut f = TcpFramer::new();
        f.push(b"INFO sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\n12345");
        assert_eq!(f.pop().unwrap(), None);
        f.push(b"67890");
        assert!(f.pop().unwrap().is_some());
    }

    #[test]
    fn bad_content_length_and_huge_header_close_the_stream() {
        let mut f = TcpFramer::new();
        f.push(b"INFO sip:a@b SIP/2.0\r\nContent-Length: ten\r\n\r\n");
        assert_eq!(f.pop(), Err(FramingError::BadContentLength));
        let mut f = TcpFramer::new();
        f.push(b"INFO sip:a@b SIP/2.0\r\n");
        f.push(&vec![b'x'; 70_000]);
        assert_eq!(f.pop(), Err(FramingError::HeaderTooLarge));
    }

    #[test]
    fn conflicting_content_lengths_give_the_head_once_then_close() {
        let mut f = TcpFramer::new();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 13\r\nl: 5\r\n\r\nabcdefghijklmnop");
        assert_eq!(
            f.pop().unwrap().unwrap(),
            b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 13\r\nl: 5\r\n\r\n".to_vec()
        );
        assert_eq!(f.pop(), Err(FramingError::ConflictingContentLength));
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n");
        assert_eq!(f.pop(), Err(FramingError::ConflictingContentLength));
    }
}
