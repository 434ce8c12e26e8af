//! Free-port selection that is safe for tests running in parallel threads of one
//! process (an in-process registry of ports already handed out) and, as far as
//! practical, across processes (kernel-assigned ephemeral ports; RTP ranges spread
//! by pid and probed before use).

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

/// A port free on both UDP and TCP at 127.0.0.1 (the gateway listens for SIP on both).
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp :0");
        let port = sock.local_addr().expect("local_addr").port();
        drop(sock);
        if tcp_free(port) && claim(port) {
            return port;
        }
    }
    panic!("no free UDP+TCP port found");
}

/// An even port `p` with `p..p+4` free on UDP and `p` free on TCP, for SIPp `-mp`
/// (SIPp binds the audio port, and may bind the next ones for RTCP/video).
pub fn free_media_port() -> u16 {
    for _ in 0..500 {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp :0");
        let port = sock.local_addr().expect("local_addr").port();
        drop(sock);
        if port % 2 != 0 || port > 65_000 {
            continue;
        }
        if (port..port + 4).all(udp_free) && (port..port + 4).all(claim) {
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
