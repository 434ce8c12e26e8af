//! The endpoint's public settings: [`EndpointConfig`] (our address, RFC 3261
//! timer values, the edge policy) and [`Originate`] (one outbound call to
//! place), plus the Contact header value derived from them that every part
//! of the endpoint puts in its messages.

use std::net::SocketAddr;
use std::time::Duration;

use crate::guard::GuardConfig;
use crate::transport::Transport;

/// Settings of an [`Endpoint`](crate::Endpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    /// host:port we put in Contact and in the Via of our requests.
    pub contact_addr: SocketAddr,
    /// host:port of the SIP-over-TLS listener, for Contact and Via on TLS
    /// connections; `None`: no TLS listener ([`EndpointConfig::contact_addr`]).
    pub tls_contact_addr: Option<SocketAddr>,
    /// Server / User-Agent header value, e.g. "Hotline/0.1".
    pub user_agent: String,
    /// RFC 3261 T1, the RTT estimate (500 ms).
    pub t1: Duration,
    /// RFC 3261 T2, the retransmit interval cap (4 s).
    pub t2: Duration,
    /// RFC 3261 T4, the time a message may linger in the network (5 s).
    pub t4: Duration,
    /// The edge policy (allow-list, rate limits, caps); off by default
    /// here, the gateway's defaults are [`GuardConfig::default`].
    pub guard: GuardConfig,
    /// Refuse (488) every offer that is not SDES-SRTP (`RTP/SAVP` with a
    /// usable `a=crypto`); since SRTP is only answered over TLS, plain
    /// UDP/TCP calls are then all refused. Off by default.
    pub require_srtp: bool,
}

impl EndpointConfig {
    /// Defaults for everything but the contact address.
    pub fn new(contact_addr: SocketAddr) -> Self {
        EndpointConfig {
            contact_addr,
            ..Self::default()
        }
    }

    /// Our Contact header value for messages over `transport`.
    pub(super) fn contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("<sip:hotline@{}>", self.contact_addr),
            Transport::Tcp => format!("<sip:hotline@{};transport=tcp>", self.contact_addr),
            // RFC 5630 §3.1.3: `sips:` says "TLS on every hop", which we
            // cannot promise past the peer; `;transport=tls` says this hop.
            Transport::Tls => format!(
                "<sip:hotline@{};transport=tls>",
                self.local_addr(Transport::Tls)
            ),
        }
    }

    /// Our sent-by for the Via of requests over `transport`.
    pub(super) fn local_addr(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Tls => self.tls_contact_addr.unwrap_or(self.contact_addr),
            Transport::Udp | Transport::Tcp => self.contact_addr,
        }
    }
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            contact_addr: SocketAddr::from(([127, 0, 0, 1], 5060)),
            tls_contact_addr: None,
            user_agent: "Hotline/0.1".to_string(),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            guard: GuardConfig::off(),
            require_srtp: false,
        }
    }
}

/// An outbound call to place with [`Endpoint::originate`](crate::Endpoint::originate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Originate {
    /// The Call-ID (and so the [`CallKey`](crate::CallKey)) to use, e.g. so
    /// that the application can route the call's events before `originate`
    /// returns; `None` generates a random one. Must be unique among the
    /// endpoint's calls and made of visible ASCII characters (at most 128).
    pub call_id: Option<String>,
    /// Request-URI and To, e.g. `sip:+15551234567@127.0.0.1:5090`: a `sip:`
    /// URI whose host is an IP address (the trunk or proxy; no DNS), port
    /// 5060 by default. UDP only (`;transport=tcp` is refused).
    pub target: String,
    /// The user part of our From URI (`sip:<from_user>@<contact address>`),
    /// e.g. `hotline` or the caller ID number.
    pub from_user: String,
    /// The From display name, e.g. `Hotline`.
    pub from_display: Option<String>,
    /// Our RTP address for the SDP offer (PCMU 0, PCMA 8, telephone-event
    /// 101, sendrecv, ptime 20). An unspecified IP is replaced by the
    /// contact address's.
    pub local_rtp: SocketAddr,
    /// No-answer timeout: when no final response has arrived this long after
    /// `originate`, the INVITE is cancelled and the call fails with 480.
    pub ring_timeout: Duration,
}
