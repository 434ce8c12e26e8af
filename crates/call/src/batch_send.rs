//! Sends one tick's RTP datagrams — one per talking call, each from its
//! own socket — with one system call.
//!
//! `sendmmsg` batches only datagrams of one socket, and every call has its
//! own RTP port; io_uring takes a `sendmsg` for any socket in one
//! submission. The clock thread stages the tick's frames, [`BatchSender`]
//! turns them into `IORING_OP_SENDMSG` entries, submits them and waits for
//! their completions in one `io_uring_enter` (UDP sends complete inline),
//! so a tick of N calls costs one system call instead of N
//! (benches/pacer_send.rs, docs/performance.md). Where io_uring is not
//! available (an old kernel, `kernel.io_uring_disabled`, a seccomp filter)
//! it falls back to one `sendto` per datagram, as before.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{IoUring, opcode, types};
use socket2::SockAddr;

/// Entries in the submission queue: a tick's sends go in chunks of this
/// many (one `io_uring_enter` each).
const RING_ENTRIES: u32 = 1024;

/// The largest datagram staged: a 20 ms G.711 frame (172 bytes) or an
/// RFC 4733 event (16 bytes), with room for header extensions.
pub const MAX_DATAGRAM: usize = 256;

/// One datagram waiting for the tick's submission.
pub struct Staged {
    fd: RawFd,
    to: SocketAddr,
    len: usize,
    data: [u8; MAX_DATAGRAM],
}

/// What the kernel needs per datagram, kept at a fixed address until the
/// datagram's completion has been reaped.
struct Msg {
    addr: SockAddr,
    iov: libc::iovec,
    hdr: libc::msghdr,
}

/// Sends staged datagrams, batched through io_uring when the kernel
/// allows it.
pub struct BatchSender {
    ring: Option<IoUring>,
    staged: Vec<Staged>,
    msgs: Vec<Msg>,
    /// Datagrams the kernel refused since the last [`Self::take_errors`].
    errors: u64,
}

impl BatchSender {
    /// A sender with its own ring, or the `sendto` fallback when io_uring
    /// cannot be set up here.
    pub fn new() -> Self {
        let ring = match IoUring::new(RING_ENTRIES) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::info!(error = %e, "io_uring unavailable: RTP sent with one sendto per packet");
                None
            }
        };
        Self::with_ring(ring)
    }

    /// A sender that never uses io_uring (one `sendto` per datagram).
    pub fn plain() -> Self {
        Self::with_ring(None)
    }

    fn with_ring(ring: Option<IoUring>) -> Self {
        BatchSender {
            ring,
            staged: Vec::new(),
            msgs: Vec::new(),
            errors: 0,
        }
    }

    /// Whether sends go through io_uring.
    pub fn batched(&self) -> bool {
        self.ring.is_some()
    }

    /// Stages `data` from `socket` to `to` for the next [`Self::send`].
    /// The socket must stay open until then. Datagrams longer than
    /// [`MAX_DATAGRAM`] are sent at once instead.
    pub fn stage(&mut self, socket: &UdpSocket, to: SocketAddr, data: &[u8]) {
        if data.len() > MAX_DATAGRAM {
            self.send_one(socket, to, data);
            return;
        }
        let mut s = Staged {
            fd: socket.as_raw_fd(),
            to,
            len: data.len(),
            data: [0; MAX_DATAGRAM],
        };
        s.data[..data.len()].copy_from_slice(data);
        self.staged.push(s);
    }

    /// Datagrams staged and not yet sent.
    pub fn pending(&self) -> usize {
        self.staged.len()
    }

    /// Datagrams the kernel refused since the last call (a closed port on
    /// the far side, a full buffer); the caller counts or logs them.
    pub fn take_errors(&mut self) -> u64 {
        std::mem::take(&mut self.errors)
    }

    /// Sends everything staged, in staging order, and forgets it. Every
    /// socket staged from must still be open.
    pub fn send(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        if self.ring.is_some() && self.send_ring().is_ok() {
            self.staged.clear();
            return;
        }
        // No ring, or the ring failed as a whole (then nothing of the
        // failed chunk was sent: see send_ring).
        for s in std::mem::take(&mut self.staged) {
            self.send_raw(s.fd, s.to, &s.data[..s.len]);
        }
    }

    /// The staged datagrams through the ring, chunk by chunk. On an error
    /// of the ring itself the datagrams not yet submitted stay staged
    /// (those before them are removed) and the ring is given up.
    fn send_ring(&mut self) -> std::io::Result<()> {
        let Some(ring) = self.ring.as_mut() else {
            return Err(std::io::ErrorKind::Unsupported.into());
        };
        // The headers point into `staged` and `msgs`: neither may move
        // before every completion of the chunk is reaped.
        self.msgs.clear();
        self.msgs.reserve(self.staged.len());
        for s in &self.staged {
            self.msgs.push(Msg {
                addr: SockAddr::from(s.to),
                // SAFETY: all-zero is a valid iovec and msghdr (null
                // pointers, zero lengths); both are filled in below.
                iov: unsafe { std::mem::zeroed() },
                hdr: unsafe { std::mem::zeroed() },
            });
        }
        for (m, s) in self.msgs.iter_mut().zip(self.staged.iter_mut()) {
            m.iov.iov_base = s.data.as_mut_ptr().cast();
            m.iov.iov_len = s.len;
            m.hdr.msg_name = m.addr.as_ptr().cast_mut().cast();
            m.hdr.msg_namelen = m.addr.len();
            m.hdr.msg_iov = &mut m.iov;
            m.hdr.msg_iovlen = 1;
        }
        let mut done = 0;
        while done < self.staged.len() {
            let chunk = (self.staged.len() - done).min(RING_ENTRIES as usize);
            for (i, (m, s)) in self.msgs[done..done + chunk]
                .iter()
                .zip(&self.staged[done..done + chunk])
                .enumerate()
            {
                let entry = opcode::SendMsg::new(types::Fd(s.fd), &m.hdr)
                    .flags(libc::MSG_DONTWAIT as u32)
                    .build()
                    .user_data((done + i) as u64);
                // SAFETY: the entry's msghdr, iovec, address and data live
                // in `self.msgs` and `self.staged`, which are not touched
                // until `submit_and_wait` below has returned every
                // completion of this chunk; the fd is open (the caller's
                // contract of `stage`).
                if unsafe { ring.submission().push(&entry) }.is_err() {
                    // Cannot happen: a chunk is at most the queue's size
                    // and the queue is empty between chunks.
                    self.staged.drain(..done);
                    self.ring = None;
                    return Err(std::io::ErrorKind::OutOfMemory.into());
                }
            }
            let mut reaped = 0;
            while reaped < chunk {
                if let Err(e) = ring.submit_and_wait(chunk - reaped) {
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    tracing::warn!(error = %e, "io_uring submission failed: falling back to sendto");
                    // What was submitted may or may not have gone out;
                    // drop the chunk rather than send it twice.
                    self.staged.drain(..done + chunk);
                    self.ring = None;
                    return Err(e);
                }
                for cqe in ring.completion() {
                    reaped += 1;
                    if cqe.result() < 0 {
                        self.errors += 1;
                        tracing::debug!(
                            error = %std::io::Error::from_raw_os_error(-cqe.result()),
                            "RTP send failed"
                        );
                    }
                }
            }
            done += chunk;
        }
        Ok(())
    }

    fn send_one(&mut self, socket: &UdpSocket, to: SocketAddr, data: &[u8]) {
        if let Err(e) = socket.send_to(data, to) {
            self.errors += 1;
            tracing::debug!(error = %e, "RTP send failed");
        }
    }

    fn send_raw(&mut self, fd: RawFd, to: SocketAddr, data: &[u8]) {
        let addr = SockAddr::from(to);
        // SAFETY: `fd` is an open socket (the contract of `stage`), `data`
        // and `addr` are valid for the lengths passed, and sendto only
        // reads them.
        let rc = unsafe {
            libc::sendto(
                fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_DONTWAIT,
                addr.as_ptr().cast(),
                addr.len(),
            )
        };
        if rc < 0 {
            self.errors += 1;
            tracing::debug!(error = %std::io::Error::last_os_error(), "RTP send failed");
        }
    }
}

impl Default for BatchSender {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receiver() -> UdpSocket {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        rx
    }

    /// Datagrams from many sockets arrive whole, from the right source, in
    /// staging order per socket, through the ring and through the fallback.
    fn sends_every_datagram(mut tx: BatchSender) {
        let rx = receiver();
        let to = rx.local_addr().unwrap();
        let sockets: Vec<UdpSocket> = (0..40)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for round in 0..3u8 {
            for (i, s) in sockets.iter().enumerate() {
                tx.stage(s, to, &[round, i as u8, 0xAB, 0xCD]);
            }
        }
        assert_eq!(tx.pending(), 120);
        tx.send();
        assert_eq!(tx.pending(), 0);
        assert_eq!(tx.take_errors(), 0);
        let mut last_round = vec![None::<u8>; sockets.len()];
        let mut buf = [0u8; 64];
        for _ in 0..120 {
            let (n, from) = rx.recv_from(&mut buf).expect("every datagram arrives");
            assert_eq!(n, 4);
            let (round, i) = (buf[0], buf[1] as usize);
            assert_eq!(
                from,
                sockets[i].local_addr().unwrap(),
                "sent from its own socket"
            );
            assert_eq!(&buf[2..4], &[0xAB, 0xCD]);
            assert!(last_round[i] < Some(round), "in order per socket");
            last_round[i] = Some(round);
        }
    }

    #[test]
    fn the_ring_sends_every_datagram_from_its_socket() {
        let tx = BatchSender::new();
        // This machine's kernel has io_uring; a CI kernel without it would
        // test the fallback twice, which the message says.
        if !tx.batched() {
            eprintln!("io_uring unavailable here: the fallback is tested instead");
        }
        sends_every_datagram(tx);
    }

    #[test]
    fn the_fallback_sends_every_datagram_from_its_socket() {
        sends_every_datagram(BatchSender::plain());
    }

    #[test]
    fn more_than_a_ring_of_datagrams_go_in_chunks() {
        // Spread over receivers so no receive buffer overflows.
        let rxs: Vec<UdpSocket> = (0..8).map(|_| receiver()).collect();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut tx = BatchSender::new();
        let n = RING_ENTRIES as usize + 300;
        for k in 0..n {
            let to = rxs[k % rxs.len()].local_addr().unwrap();
            tx.stage(&s, to, &(k as u16).to_be_bytes());
        }
        tx.send();
        assert_eq!(tx.take_errors(), 0);
        let mut buf = [0u8; 8];
        for (r, rx) in rxs.iter().enumerate() {
            for k in (r..n).step_by(rxs.len()) {
                let (len, _) = rx.recv_from(&mut buf).expect("a datagram");
                assert_eq!(len, 2);
                assert_eq!(u16::from_be_bytes([buf[0], buf[1]]) as usize, k, "in order");
            }
        }
    }

    #[test]
    fn a_refused_datagram_is_counted_not_fatal() {
        // An IPv6 destination from an IPv4 socket: the kernel refuses that
        // one datagram; the others still go.
        let rx = receiver();
        let to = rx.local_addr().unwrap();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        for mut tx in [BatchSender::new(), BatchSender::plain()] {
            tx.stage(&s, "[::1]:9".parse().unwrap(), &[1]);
            tx.stage(&s, to, &[2]);
            tx.send();
            assert_eq!(tx.take_errors(), 1);
            let mut buf = [0u8; 4];
            let (n, _) = rx.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[2]);
        }
    }
}
