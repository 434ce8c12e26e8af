//! The call's SRTP (RFC 3711, keys by SDES): protects what the call sends
//! and unprotects what the caller sends, with the keys the SIP endpoint
//! negotiated ([`RemoteMedia::srtp`](hotline_sip::RemoteMedia)). A
//! re-offer with a new key replaces the context of that direction only.
//! There is no SRTCP: the gateway sends no RTCP and ignores what it gets
//! (an SRTCP packet fails the SRTP check and is dropped like a forgery).

use hotline_media::srtp::{MasterKey, SrtpContext};
use hotline_sip::SrtpKeys;

/// Both directions' contexts of one call.
pub(crate) struct CallSrtp {
    keys: SrtpKeys,
    rx: SrtpContext,
    tx: SrtpContext,
    /// Datagrams dropped because they failed authentication (or were too
    /// short to carry a tag).
    dropped: u64,
}

impl CallSrtp {
    /// Brings `this` in line with the call's current `keys`: created,
    /// replaced per direction when a key changes, or dropped.
    pub(crate) fn sync(this: &mut Option<Box<CallSrtp>>, keys: Option<&SrtpKeys>) {
        let Some(keys) = keys else {
            *this = None;
            return;
        };
        let ctx = |k: &[u8; 30]| SrtpContext::new(&MasterKey::from_bytes(k));
        match this {
            Some(s) if s.keys == *keys => {}
            Some(s) => {
                if s.keys.remote != keys.remote
                    && let Ok(rx) = ctx(&keys.remote)
                {
                    s.rx = rx;
                }
                if s.keys.local != keys.local
                    && let Ok(tx) = ctx(&keys.local)
                {
                    s.tx = tx;
                }
                s.keys = *keys;
            }
            None => match (ctx(&keys.remote), ctx(&keys.local)) {
                (Ok(rx), Ok(tx)) => {
                    // Boxed: 3.5 KiB of cipher state that plain calls
                    // (most) do not carry inline in their task.
                    *this = Some(Box::new(CallSrtp {
                        keys: *keys,
                        rx,
                        tx,
                        dropped: 0,
                    }));
                }
                // Fail closed: the shell sends and takes no audio while
                // the call has keys but no contexts.
                _ => tracing::error!("SRTP keys unusable by the cipher; no audio"),
            },
        }
    }

    /// Checks and decrypts a received datagram in place: the RTP packet's
    /// length, or `None` (counted) when it is not authentic.
    pub(crate) fn unprotect(&mut self, datagram: &mut [u8]) -> Option<usize> {
        match self.rx.unprotect(datagram) {
            Ok(n) => Some(n),
            Err(e) => {
                self.dropped += 1;
                if self.dropped == 1 {
                    tracing::warn!(error = %e, "SRTP packet dropped (first of this call)");
                }
                None
            }
        }
    }

    /// Encrypts an RTP packet in place and appends its tag; `false` when
    /// it cannot be (then it must not be sent).
    pub(crate) fn protect(&mut self, packet: &mut Vec<u8>) -> bool {
        self.tx.protect(packet).is_ok()
    }
}

impl Drop for CallSrtp {
    fn drop(&mut self) {
        if self.dropped > 0 {
            tracing::info!(
                dropped = self.dropped,
                "SRTP packets failing authentication dropped"
            );
        }
    }
}

/// A datagram received on the call's RTP socket, with the call's current
/// `keys`: decrypted in place, its RTP length returned; `None`: drop it
/// (not authentic, or keys without contexts). Plain calls pass through.
pub(crate) fn incoming(
    this: &mut Option<Box<CallSrtp>>,
    keys: Option<SrtpKeys>,
    datagram: &mut [u8],
) -> Option<usize> {
    if keys.is_none() && this.is_none() {
        return Some(datagram.len());
    }
    CallSrtp::sync(this, keys.as_ref());
    match (this, keys) {
        (Some(s), Some(_)) => s.unprotect(datagram),
        (_, None) => Some(datagram.len()),
        (None, Some(_)) => None,
    }
}

/// An RTP packet about to be sent, with the call's current `keys`:
/// protected in place; `false`: do not send it.
pub(crate) fn outgoing(
    this: &mut Option<Box<CallSrtp>>,
    keys: Option<SrtpKeys>,
    packet: &mut Vec<u8>,
) -> bool {
    if keys.is_none() && this.is_none() {
        return true;
    }
    CallSrtp::sync(this, keys.as_ref());
    match (this, keys) {
        (Some(s), Some(_)) => s.protect(packet),
        (_, None) => true,
        (None, Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(remote: u8, local: u8) -> SrtpKeys {
        SrtpKeys {
            tag: 1,
            remote: [remote; 30],
            local: [local; 30],
        }
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 1, 2, 3, 4];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0x55; 160]);
        p
    }

    /// The caller's side: protects with `k`.
    fn caller_sends(k: u8, seq: u16) -> Vec<u8> {
        let mut p = rtp(seq);
        SrtpContext::new(&MasterKey::from_bytes(&[k; 30]))
            .unwrap()
            .protect(&mut p)
            .unwrap();
        p
    }

    #[test]
    fn plain_calls_pass_through_untouched() {
        let mut none = None;
        let mut d = rtp(1);
        assert_eq!(incoming(&mut none, None, &mut d), Some(d.len()));
        let mut p = rtp(1);
        assert!(outgoing(&mut none, None, &mut p));
        assert_eq!(p, rtp(1));
        assert!(none.is_none());
    }

    #[test]
    fn decrypts_the_callers_packets_drops_forgeries_and_follows_a_new_key() {
        let mut s = None;
        let mut d = caller_sends(1, 7);
        assert_eq!(
            incoming(&mut s, Some(keys(1, 2)), &mut d),
            Some(rtp(7).len())
        );
        assert_eq!(&d[..rtp(7).len()], &rtp(7)[..]);
        // Flipped bit, wrong key, too short, plain RTP: dropped and counted.
        let mut forged = caller_sends(1, 8);
        forged[20] ^= 1;
        let mut other = caller_sends(9, 9);
        let mut short = vec![0x80, 0, 0, 1];
        let mut plain = rtp(10);
        for d in [&mut forged, &mut other, &mut short, &mut plain] {
            assert_eq!(incoming(&mut s, Some(keys(1, 2)), d), None);
        }
        assert_eq!(s.as_ref().unwrap().dropped, 4);
        // A re-offer with a new caller key.
        let mut d = caller_sends(3, 11);
        assert_eq!(
            incoming(&mut s, Some(keys(3, 2)), &mut d),
            Some(rtp(11).len())
        );
    }

    #[test]
    fn protects_what_the_call_sends_with_our_key() {
        let mut s = None;
        let mut p = rtp(5);
        assert!(outgoing(&mut s, Some(keys(1, 2)), &mut p));
        assert_eq!(p.len(), rtp(5).len() + hotline_media::srtp::TAG_LEN);
        assert_ne!(&p[12..172], &rtp(5)[12..]);
        let mut rx = SrtpContext::new(&MasterKey::from_bytes(&[2; 30])).unwrap();
        let n = rx.unprotect(&mut p).unwrap();
        assert_eq!(&p[..n], &rtp(5)[..]);
    }
}
