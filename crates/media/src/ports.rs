//! The pool of local RTP ports: even ports for RTP, the odd port above each
//! kept for RTCP (RFC 3550 §11), handed out round-robin.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use thiserror::Error;

/// An unusable port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("RTP port range {low}-{high} holds no even/odd port pair")]
pub struct PortRangeError {
    /// The range's first port, as configured.
    pub low: u16,
    /// The range's last port, as configured.
    pub high: u16,
}

#[derive(Debug)]
struct Pool {
    /// Free RTP ports, oldest-released first.
    free: VecDeque<u16>,
    /// Indexed by (port - first) / 2.
    in_use: Vec<bool>,
}

/// Hands out RTP ports from `low..=high`.
///
/// Released ports go to the back of the queue, so a port is reused as late
/// as possible: stray packets of the previous call on that port (late RTP
/// after BYE) then do not end up in a new call.
#[derive(Debug)]
pub struct RtpPortPool {
    first: u16,
    pairs: usize,
    pool: Mutex<Pool>,
}

impl RtpPortPool {
    /// A pool over `low..=high`. `low` is rounded up to even; a pair needs
    /// both the even port and the odd one above it inside the range.
    pub fn new(low: u16, high: u16) -> Result<Self, PortRangeError> {
        let err = PortRangeError { low, high };
        // RFC 3550 §11: RTP on an even port, RTCP on the next higher odd one.
        let first = low.checked_add(low & 1).ok_or(err)?;
        if first == 0 || high <= first {
            return Err(err);
        }
        // Pairs (p, p + 1) with p = first + 2i and p + 1 <= high.
        let pairs = (usize::from(high) - usize::from(first)).div_ceil(2);
        if pairs == 0 {
            return Err(err);
        }
        let free = (0..pairs).map(|i| first + 2 * i as u16).collect();
        Ok(Self {
            first,
            pairs,
            pool: Mutex::new(Pool {
                free,
                in_use: vec![false; pairs],
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        // The pool's invariants hold between statements; a panic elsewhere
        // while holding the lock does not corrupt it.
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn index(&self, port: u16) -> Option<usize> {
        let off = port.checked_sub(self.first)?;
        if off % 2 != 0 {
            return None;
        }
        let i = usize::from(off / 2);
        (i < self.pairs).then_some(i)
    }

    /// Takes the least recently used free RTP port.
    pub fn allocate(&self) -> Option<u16> {
        let mut pool = self.lock();
        let port = pool.free.pop_front()?;
        if let Some(flag) = self.index(port).and_then(|i| pool.in_use.get_mut(i)) {
            *flag = true;
        }
        Some(port)
    }

    /// Returns a port. Ports not from this pool and double releases are
    /// ignored (with a warning) so a bug elsewhere cannot duplicate a port.
    pub fn release(&self, port: u16) {
        let mut pool = self.lock();
        match self.index(port) {
            Some(i) if pool.in_use.get(i).copied().unwrap_or(false) => {
                if let Some(flag) = pool.in_use.get_mut(i) {
                    *flag = false;
                }
                pool.free.push_back(port);
            }
            _ => tracing::warn!(port, "release of a port that is not allocated"),
        }
    }

    /// Allocates a port returned automatically when the lease is dropped.
    pub fn lease(self: &Arc<Self>) -> Option<PortLease> {
        let port = self.allocate()?;
        Some(PortLease {
            pool: Arc::clone(self),
            port,
        })
    }

    /// Number of RTP/RTCP pairs in the range.
    pub fn capacity(&self) -> usize {
        self.pairs
    }

    /// Number of pairs free right now.
    pub fn available(&self) -> usize {
        self.lock().free.len()
    }
}

/// An allocated RTP port, released back to its pool on drop.
#[derive(Debug)]
pub struct PortLease {
    pool: Arc<RtpPortPool>,
    port: u16,
}

impl PortLease {
    /// The leased RTP port (even); bind the call's RTP socket to it.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The RTCP port that goes with it (RFC 3550 §11).
    pub fn rtcp_port(&self) -> u16 {
        self.port + 1
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.release(self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_ranges() {
        assert!(RtpPortPool::new(10000, 10000).is_err());
        assert!(RtpPortPool::new(10001, 10002).is_err());
        assert!(RtpPortPool::new(20000, 10000).is_err());
        assert!(RtpPortPool::new(65535, 65535).is_err());
        assert!(RtpPortPool::new(0, 1).is_err());
        assert_eq!(RtpPortPool::new(10000, 10001).unwrap().capacity(), 1);
        assert_eq!(RtpPortPool::new(10001, 10005).unwrap().capacity(), 2);
        assert_eq!(RtpPortPool::new(10000, 10004).unwrap().capacity(), 2);
        assert_eq!(RtpPortPool::new(65534, 65535).unwrap().capacity(), 1);
    }

    #[test]
    fn even_ports_round_robin() {
        let pool = RtpPortPool::new(10000, 10007).unwrap();
        assert_eq!(pool.capacity(), 4);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!((a, b), (10000, 10002));
        pool.release(a);
        // The freshly released port is not handed out again right away.
        assert_eq!(pool.allocate(), Some(10004));
        assert_eq!(pool.allocate(), Some(10006));
        assert_eq!(pool.allocate(), Some(10000));
        assert_eq!(pool.allocate(), None);
        // Bogus and double releases change nothing.
        pool.release(10001);
        pool.release(9998);
        pool.release(10000);
        pool.release(10000);
        assert_eq!(pool.available(), 1);
    }

    #[test]
    fn lease_returns_port_on_drop() {
        let pool = Arc::new(RtpPortPool::new(20000, 20003).unwrap());
        let lease = pool.lease().unwrap();
        assert_eq!((lease.port(), lease.rtcp_port()), (20000, 20001));
        let second = pool.lease().unwrap();
        assert!(pool.lease().is_none());
        drop(lease);
        assert_eq!(pool.available(), 1);
        assert_eq!(pool.lease().unwrap().port(), 20000);
        drop(second);
    }

    #[test]
    fn shared_between_threads() {
        let pool = Arc::new(RtpPortPool::new(30000, 30999).unwrap());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    (0..100).filter_map(|_| pool.allocate()).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u16> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert_eq!(all.len(), 400);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 400, "no port handed out twice");
    }
}
