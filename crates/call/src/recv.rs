//! Batched reads of a call's RTP socket: what is waiting, in one
//! `recvmmsg(2)` system call, where `recv_from` took one call per datagram
//! and one more to find the socket empty (a call gets two datagrams per
//! 40 ms media tick: three system calls became one).

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// The longest datagram read whole; a longer one is cut, as `recv_from`
/// into a buffer this size would.
pub(crate) const DATAGRAM: usize = 2048;
/// Datagrams one read takes at most.
pub(crate) const BATCH: usize = 8;

/// One worker thread's receive buffers (16 KiB), shared by the calls it
/// runs between two awaits.
pub(crate) struct RecvBatch {
    bufs: [[u8; DATAGRAM]; BATCH],
    got: [(usize, Option<SocketAddr>); BATCH],
}

impl RecvBatch {
    pub(crate) const fn new() -> Self {
        Self {
            bufs: [[0; DATAGRAM]; BATCH],
            got: [(0, None); BATCH],
        }
    }

    /// Reads up to `max` (at most [`BATCH`]) datagrams waiting on
    /// `socket` (non-blocking) in one system call; returns how many. An
    /// empty socket is `Ok(0)`.
    pub(crate) fn recv(&mut self, socket: &UdpSocket, max: usize) -> io::Result<usize> {
        let max = max.min(BATCH);
        if max == 0 {
            return Ok(0);
        }
        #[cfg(target_os = "linux")]
        return sys::recv_batch(socket, &mut self.bufs[..max], &mut self.got[..max]);
        #[cfg(not(target_os = "linux"))]
        return self.recv_each(socket, max);
    }

    /// Without recvmmsg: one `recv_from` per datagram.
    #[cfg(not(target_os = "linux"))]
    fn recv_each(&mut self, socket: &UdpSocket, max: usize) -> io::Result<usize> {
        let mut n = 0;
        while n < max {
            match socket.recv_from(&mut self.bufs[n]) {
                Ok((len, from)) => self.got[n] = (len, Some(from)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if n == 0 => return Err(e),
                Err(_) => break,
            }
            n += 1;
        }
        Ok(n)
    }

    /// Datagram `i` of the last read (mutable: SRTP decrypts in place) and
    /// where it came from; `None` past the end or for a source that is no
    /// IP address.
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<(&mut [u8], SocketAddr)> {
        let (len, from) = *self.got.get(i)?;
        let buf = self.bufs.get_mut(i)?;
        Some((buf.get_mut(..len)?, from?))
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::mem::size_of;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
    use std::os::fd::AsRawFd;

    use super::{BATCH, DATAGRAM};

    pub(super) fn recv_batch(
        socket: &UdpSocket,
        bufs: &mut [[u8; DATAGRAM]],
        got: &mut [(usize, Option<SocketAddr>)],
    ) -> io::Result<usize> {
        let max = bufs.len().min(got.len()).min(BATCH);
        // SAFETY: all-zero bytes are a valid value of these C structs
        // (integers, and pointers that are null until set below).
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, buf) in bufs.iter_mut().enumerate().take(max) {
            iovs[i] = libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: DATAGRAM,
            };
        }
        for i in 0..max {
            let hdr = &mut msgs[i].msg_hdr;
            hdr.msg_name = (&raw mut names[i]).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &raw mut iovs[i];
            hdr.msg_iovlen = 1;
        }
        // SAFETY: `msgs[..max]` point at `max` live buffers of DATAGRAM
        // bytes and address storages of the size given, all outliving the
        // call; the kernel writes at most that much into each.
        let rc = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                max as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(e)
            };
        }
        let n = (rc as usize).min(max);
        for i in 0..n {
            let len = (msgs[i].msg_len as usize).min(DATAGRAM);
            got[i] = (len, to_addr(&names[i], msgs[i].msg_hdr.msg_namelen));
        }
        Ok(n)
    }

    /// The address the kernel wrote, if it is IPv4 or IPv6.
    fn to_addr(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
        let len = len as usize;
        match i32::from(name.ss_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family and length say the storage holds a
                // sockaddr_in (sockaddr_storage is aligned for every kind).
                let a = unsafe {
                    &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, a sockaddr_in6.
                let a = unsafe {
                    &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(ip: &str) -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind(format!("{ip}:0")).unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind(format!("{ip}:0")).unwrap();
        (rx, tx)
    }

    /// Waits (bounded) until `n` datagrams are readable: loopback delivery
    /// is synchronous on Linux, but not promised.
    fn read_all(batch: &mut RecvBatch, rx: &UdpSocket, want: usize) -> usize {
        for _ in 0..1000 {
            let mut peek = [0u8; 1];
            if rx.peek_from(&mut peek).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        batch.recv(rx, want).unwrap()
    }

    #[test]
    fn reads_every_waiting_datagram_with_its_length_and_source() {
        let (rx, tx) = pair("127.0.0.1");
        let to = rx.local_addr().unwrap();
        for (i, len) in [172usize, 16, 1].into_iter().enumerate() {
            tx.send_to(&vec![i as u8 + 1; len], to).unwrap();
        }
        let mut batch = RecvBatch::new();
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let n = read_all(&mut batch, &rx, BATCH);
            assert!(n > 0, "datagrams sent but none read");
            for i in 0..n {
                let (data, from) = batch.get_mut(i).unwrap();
                assert_eq!(from, tx.local_addr().unwrap());
                seen.push((data.len(), data[0]));
            }
        }
        assert_eq!(seen, [(172, 1), (16, 2), (1, 3)]);
        assert_eq!(
            batch.recv(&rx, BATCH).unwrap(),
            0,
            "an empty socket reads 0"
        );
        assert!(batch.get_mut(BATCH).is_none());
    }

    #[test]
    fn takes_at_most_what_is_asked_and_leaves_the_rest() {
        let (rx, tx) = pair("127.0.0.1");
        let to = rx.local_addr().unwrap();
        for i in 0..5u8 {
            tx.send_to(&[i], to).unwrap();
        }
        let mut batch = RecvBatch::new();
        let mut order = Vec::new();
        while order.len() < 5 {
            let n = read_all(&mut batch, &rx, 2);
            assert!((1..=2).contains(&n), "asked for 2, read {n}");
            for i in 0..n {
                order.push(batch.get_mut(i).unwrap().0[0]);
            }
        }
        assert_eq!(order, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_long_datagram_is_cut_and_an_ipv6_source_is_read() {
        let (rx, tx) = pair("[::1]");
        tx.send_to(&[7u8; DATAGRAM + 100], rx.local_addr().unwrap())
            .unwrap();
        let mut batch = RecvBatch::new();
        assert_eq!(read_all(&mut batch, &rx, BATCH), 1);
        let (data, from) = batch.get_mut(0).unwrap();
        assert_eq!((data.len(), from), (DATAGRAM, tx.local_addr().unwrap()));
    }
}
