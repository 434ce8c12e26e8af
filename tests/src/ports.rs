//! Free-port selection that is safe for tests running in parallel threads of one
//! process (an in-process registry of ports already handed out) and, as far as
//! practical, across processes (ranges spread by pid and probed before use).
//!
//! Listening ports come from above the kernel's ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`, 32768–60999 by default): a port
//! taken from inside it was free when probed but could be handed by the kernel
//! to any outgoing connection (a test's HTTP client, Chromium, psql) before the
//! gateway bound it — a CI run lost a test to exactly that ("Address already in
//! use" on the HTTP port). The gateway harness still retries a start that lost
//! such a race, with fresh ports.

use std::collections::HashSet;
use std::net::{TcpListener, UdpSocket};
use std::sync::Mutex;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

fn claim(port: u16) -> bool {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    guard.get_or_insert_with(HashSet::new).insert(port)
}

fn udp_free(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

fn tcp_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The ports above the kernel's ephemeral range that tests listen on: from one
/// past its upper bound (61000 by default) to 65499. Falls back to 61000.. when
/// the range cannot be read or leaves fewer than 1000 ports above it.
fn listen_range() -> (u16, u16) {
    const TOP: u16 = 65_499;
    let upper = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u16>().ok())
        .unwrap_or(60_999);
    match upper.checked_add(1) {
        Some(low) if low <= TOP - 1000 => (low, TOP),
        _ => (61_000, TOP),
    }
}

/// Candidate ports in `listen_range`, starting at an offset from the pid (so two
/// test processes rarely probe the same ports) and stepping by `step`.
fn candidates(step: u16) -> impl Iterator<Item = u16> {
    let (low, high) = listen_range();
    let low = (low + 1) & !1; // even, for RTP/RTCP pairs
    let span = u32::from(high - low) / u32::from(step);
    let start = std::process::id() % span.max(1);
    (0..span).map(move |i| low + (((start + i) % span) * u32::from(step)) as u16)
}

/// A port free on both UDP and TCP at 127.0.0.1 (the gateway listens for SIP on both).
pub fn free_port() -> u16 {
    for port in candidates(1) {
        let taken = HANDED_OUT
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|s| s.contains(&port));
        if !taken && udp_free(port) && tcp_free(port) && claim(port) {
            return port;
        }
    }
    panic!("no free UDP+TCP port found");
}

/// An even port `p` with `p..p+4` free on UDP, for SIPp `-mp` (SIPp binds the
/// audio port, and may bind the next ones for RTCP/video).
pub fn free_media_port() -> u16 {
    for port in candidates(4) {
        let taken = {
            let guard = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
            guard
                .as_ref()
                .is_some_and(|s| (port..port + 4).any(|p| s.contains(&p)))
        };
        if !taken && (port..port + 4).all(udp_free) && (port..port + 4).all(claim) {
            return port;
        }
    }
    panic!("no free even media port found");
}

const RTP_BASE: u16 = 10_000;
const RTP_SLOT: u16 = 100;
const RTP_SLOTS: u16 = 200; // 10000..30000, below the Linux ephemeral range (32768+)

/// A range of `RTP_SLOT` UDP ports for one gateway's `--rtp-ports`, distinct from any
/// other range handed out in this process and probed free right now. Slots start at
/// an offset derived from the pid so concurrent test processes rarely collide.
pub fn rtp_range() -> (u16, u16) {
    let start_slot = (std::process::id() % 50) as u16 * 4;
    for i in 0..RTP_SLOTS {
        let slot = (start_slot + i) % RTP_SLOTS;
        let low = RTP_BASE + slot * RTP_SLOT;
        let high = low + RTP_SLOT - 1;
        // The slot's first port stands for the slot in the registry.
        {
            let guard = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
            if guard.as_ref().is_some_and(|s| s.contains(&low)) {
                continue;
            }
        }
        if (low..=high).step_by(2).all(udp_free) && claim(low) {
            return (low, high);
        }
    }
    panic!("no free RTP port range found");
}
