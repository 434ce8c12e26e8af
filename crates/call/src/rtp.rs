//! The call's RTP socket: a port from the pool, on the address that routes
//! to the caller.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};

use hotline_media::PortLease;

use crate::context::CallContext;

/// The local address the OS would use to reach `peer` (no packet is sent).
fn route_ip(peer: SocketAddr) -> IpAddr {
    let any: SocketAddr = if peer.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    StdUdpSocket::bind(any)
        .and_then(|s| {
            s.connect(peer)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Binds an RTP socket on a port from the pool, on the address that routes
/// to `peer` (or the configured media address).
pub(crate) fn bind_rtp(
    ctx: &CallContext,
    peer: SocketAddr,
) -> std::io::Result<(StdUdpSocket, PortLease)> {
    let ip = ctx.settings.media_ip.unwrap_or_else(|| route_ip(peer));
    let mut last_err = None;
    for _ in 0..8 {
        let Some(lease) = ctx.ports.lease() else {
            break;
        };
        match StdUdpSocket::bind(SocketAddr::new(ip, lease.port())) {
            Ok(s) => {
                // Non-blocking and outside the reactor: the shell drains
                // it on its media tick, never woken per packet.
                s.set_nonblocking(true)?;
                return Ok((s, lease));
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| std::io::Error::other("RTP port range exhausted")))
}
