//! Batched receives: `recvmmsg(2)` into buffers set up once, with each
//! datagram's kernel receive timestamp when the socket has SO_TIMESTAMPNS
//! on. Shared by the caller's media thread and the `floor` tool.

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// Datagrams one `recvmmsg` takes from a socket: two ticks' worth and room
/// for an RFC 4733 event's repeats.
pub const BATCH: usize = 8;

/// Room for one SCM_TIMESTAMPNS control message (and then some).
type Cmsg = [u64; 8];

/// `recvmmsg` buffers: `BATCH` datagrams of up to 256 bytes (RTP of G.711
/// is 172) and their control messages. Boxed, so the pointers the headers
/// hold stay valid when the value moves.
pub struct Batch {
    bufs: Box<[[u8; 256]; BATCH]>,
    iovs: Box<[libc::iovec; BATCH]>,
    cmsgs: Box<[Cmsg; BATCH]>,
    msgs: Box<[libc::mmsghdr; BATCH]>,
}

impl Batch {
    pub fn new() -> Self {
        let mut b = Batch {
            bufs: Box::new([[0u8; 256]; BATCH]),
            iovs: Box::new(
                [libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                }; BATCH],
            ),
            cmsgs: Box::new([[0u64; 8]; BATCH]),
            // SAFETY: mmsghdr is plain data; all-zero is a valid empty value.
            msgs: Box::new(unsafe { std::mem::zeroed() }),
        };
        for i in 0..BATCH {
            b.iovs[i].iov_base = b.bufs[i].as_mut_ptr().cast();
            b.iovs[i].iov_len = b.bufs[i].len();
            b.msgs[i].msg_hdr.msg_iov = &mut b.iovs[i];
            b.msgs[i].msg_hdr.msg_iovlen = 1;
            b.msgs[i].msg_hdr.msg_control = b.cmsgs[i].as_mut_ptr().cast();
        }
        b
    }

    /// Reads up to `BATCH` waiting datagrams without blocking; how many
    /// came (0 when none waited).
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        for m in self.msgs.iter_mut() {
            // The kernel shrinks these to what it wrote: reset them.
            m.msg_hdr.msg_controllen = std::mem::size_of::<Cmsg>() as _;
            m.msg_hdr.msg_flags = 0;
        }
        // SAFETY: every header points at a live iovec over a live buffer
        // and a live control buffer of the length given (boxed: they do not
        // move); no address buffers.
        let n = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(e)
            };
        }
        Ok(n as usize)
    }

    /// Datagram `i` of the last `recv` and its kernel arrival time
    /// (CLOCK_REALTIME, ns) when the socket reports one.
    pub fn get(&self, i: usize) -> (&[u8], Option<i64>) {
        let m = &self.msgs[i];
        let len = (m.msg_len as usize).min(self.bufs[i].len());
        (&self.bufs[i][..len], stamp(&m.msg_hdr))
    }
}

/// The SCM_TIMESTAMPNS control message of a received datagram, in ns.
fn stamp(msg: &libc::msghdr) -> Option<i64> {
    let mut at = None;
    // SAFETY: walking the control messages the kernel just wrote into the
    // header's control buffer, with the libc CMSG macros; the data is read
    // unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                at = Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_batch_with_kernel_timestamps() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        crate::rtp::enable_timestamps(&rx).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..(BATCH as u8 + 3) {
            tx.send_to(&[i; 20], rx.local_addr().unwrap()).unwrap();
        }
        let mut b = Batch::new();
        assert_eq!(b.recv(&rx).unwrap(), BATCH, "a full batch first");
        for i in 0..BATCH {
            let (data, at) = b.get(i);
            assert_eq!(data, &[i as u8; 20]);
            assert!(at.is_some_and(|ns| ns > 0), "datagram {i} has no timestamp");
        }
        assert_eq!(b.recv(&rx).unwrap(), 3, "then the rest");
        assert_eq!(b.get(2).0, &[BATCH as u8 + 2; 20]);
        assert_eq!(b.recv(&rx).unwrap(), 0, "then nothing, without blocking");
    }
}
