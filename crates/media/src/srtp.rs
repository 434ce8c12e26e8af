//! SRTP (RFC 3711) with the AES_CM_128_HMAC_SHA1_80 suite, the one SDES
//! (RFC 4568) offers every SIP phone and trunk understands.
//!
//! One [`SrtpContext`] protects (or unprotects) one direction of one
//! stream: session keys derived once from the master key and salt
//! (§4.3, key derivation rate 0), AES in counter mode over the payload
//! (§4.1.1), an 80-bit HMAC-SHA1 tag over header, payload and rollover
//! counter (§4.2), the rollover counter tracked from sequence numbers
//! (§3.3.1, Appendix A). Not here: SRTCP, MKIs, key lifetimes, replay lists
//! (a replayed packet is authentic and decrypts to audio already heard).
//!
//! The primitives are aws-lc-rs's (already the gateway's TLS and WebRTC
//! crypto); the unit tests check them against RFC 3711 Appendix B.
//!
//! ```
//! use hotline_media::srtp::{SrtpContext, MasterKey};
//! let key = MasterKey { key: [7; 16], salt: [9; 14] };
//! let mut tx = SrtpContext::new(&key).unwrap();
//! let mut rx = SrtpContext::new(&key).unwrap();
//! let rtp = [0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4, 0xAA, 0xBB];
//! let mut pkt = rtp.to_vec();
//! tx.protect(&mut pkt).unwrap();
//! assert_ne!(&pkt[12..14], &rtp[12..]);
//! let n = rx.unprotect(&mut pkt).unwrap();
//! assert_eq!(&pkt[..n], &rtp[..]);
//! ```

use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;

/// Length of the authentication tag (80 bits).
pub const TAG_LEN: usize = 10;

/// A master key and salt as SDES carries them (`inline:` = base64 of the
/// 16 key bytes then the 14 salt bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey {
    /// The AES-128 master key.
    pub key: [u8; 16],
    /// The 112-bit master salt.
    pub salt: [u8; 14],
}

impl MasterKey {
    /// The 30 bytes of the SDES key-params (key then salt).
    pub fn to_bytes(&self) -> [u8; 30] {
        let mut b = [0u8; 30];
        b[..16].copy_from_slice(&self.key);
        b[16..].copy_from_slice(&self.salt);
        b
    }

    /// Splits 30 SDES bytes into key and salt.
    pub fn from_bytes(b: &[u8; 30]) -> Self {
        let mut key = [0u8; 16];
        let mut salt = [0u8; 14];
        key.copy_from_slice(&b[..16]);
        salt.copy_from_slice(&b[16..]);
        MasterKey { key, salt }
    }
}

/// Never prints the key.
impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

/// Why a packet was not protected or unprotected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Shorter than an RTP header (plus tag), or a header that runs past the end.
    #[error("not an RTP packet")]
    Malformed,
    /// The tag does not match: forged, corrupted, or another key.
    #[error("SRTP authentication failed")]
    AuthFailed,
    /// The crypto library refused (does not happen with valid keys).
    #[error("SRTP cipher failure")]
    Cipher,
}

/// One direction of one SRTP stream.
pub struct SrtpContext {
    cipher: EncryptingKey,
    auth: hmac::Key,
    salt: [u8; 14],
    /// Rollover counter and highest sequence number seen (None before the first).
    roc: u32,
    last_seq: Option<u16>,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("roc", &self.roc)
            .finish_non_exhaustive()
    }
}

/// RFC 3711 §4.1.1: `len` bytes of AES-CM keystream XORed into `buf` from `iv`.
fn aes_cm(key: &EncryptingKey, iv: [u8; 16], buf: &mut [u8]) -> Result<(), SrtpError> {
    key.less_safe_encrypt(buf, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map(|_| ())
        .map_err(|_| SrtpError::Cipher)
}

fn ctr_key(key: &[u8]) -> Result<EncryptingKey, SrtpError> {
    UnboundCipherKey::new(&AES_128, key)
        .and_then(EncryptingKey::ctr)
        .map_err(|_| SrtpError::Cipher)
}

/// RFC 3711 §4.3.1 with kdr = 0: the session key with `label` (0 cipher
/// key, 1 auth key, 2 salt), `out.len()` bytes.
fn derive(
    master: &EncryptingKey,
    salt: &[u8; 14],
    label: u8,
    out: &mut [u8],
) -> Result<(), SrtpError> {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    // key_id = label || r (48 bits of index, 0 here), XORed into the salt's low 56 bits.
    iv[7] ^= label;
    out.fill(0);
    aes_cm(master, iv, out)
}

impl SrtpContext {
    /// Derives the session keys from `master`.
    pub fn new(master: &MasterKey) -> Result<Self, SrtpError> {
        let mk = ctr_key(&master.key)?;
        let mut enc = [0u8; 16];
        let mut auth = [0u8; 20];
        let mut salt = [0u8; 14];
        derive(&mk, &master.salt, 0, &mut enc)?;
        derive(&mk, &master.salt, 1, &mut auth)?;
        derive(&mk, &master.salt, 2, &mut salt)?;
        Ok(SrtpContext {
            cipher: ctr_key(&enc)?,
            auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &auth),
            salt,
            roc: 0,
            last_seq: None,
        })
    }

    /// Encrypts an RTP packet in place and appends its tag.
    pub fn protect(&mut self, pkt: &mut Vec<u8>) -> Result<(), SrtpError> {
        let head = header_len(pkt)?;
        let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
        // The sender's rollover counter: +1 when the sequence number wraps.
        match self.last_seq {
            Some(last) if seq < last && last - seq > 0x8000 => {
                self.roc = self.roc.wrapping_add(1);
                self.last_seq = Some(seq);
            }
            Some(last) if seq <= last => {}
            _ => self.last_seq = Some(seq),
        }
        let index = (u64::from(self.roc) << 16) | u64::from(seq);
        let iv = self.iv(ssrc(pkt), index);
        aes_cm(&self.cipher, iv, &mut pkt[head..])?;
        let tag = self.tag(pkt, self.roc);
        pkt.extend_from_slice(&tag[..TAG_LEN]);
        Ok(())
    }

    /// Checks and removes the tag, decrypts in place; returns the RTP
    /// packet's length (the tag's bytes at the end are left as they were).
    pub fn unprotect(&mut self, pkt: &mut [u8]) -> Result<usize, SrtpError> {
        if pkt.len() < 12 + TAG_LEN {
            return Err(SrtpError::Malformed);
        }
        let len = pkt.len() - TAG_LEN;
        let head = header_len(&pkt[..len])?;
        let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
        let roc = self.estimate_roc(seq);
        let tag = self.tag(&pkt[..len], roc);
        if !constant_time_eq(&tag[..TAG_LEN], &pkt[len..]) {
            return Err(SrtpError::AuthFailed);
        }
        // Authentic: only now may it move the rollover state (Appendix A).
        if roc > self.roc || (roc == self.roc && self.last_seq.is_none_or(|l| seq > l)) {
            self.roc = roc;
            self.last_seq = Some(seq);
        }
        let index = (u64::from(roc) << 16) | u64::from(seq);
        let iv = self.iv(ssrc(pkt), index);
        aes_cm(&self.cipher, iv, &mut pkt[head..len])?;
        Ok(len)
    }

    /// RFC 3711 §3.3.1: the rollover counter of a received sequence number.
    fn estimate_roc(&self, seq: u16) -> u32 {
        let Some(last) = self.last_seq else {
            return self.roc;
        };
        if last < 0x8000 {
            if seq > last && seq - last > 0x8000 {
                self.roc.saturating_sub(1)
            } else {
                self.roc
            }
        } else if last - 0x8000 > seq {
            self.roc.wrapping_add(1)
        } else {
            self.roc
        }
    }

    /// RFC 3711 §4.1.1: IV = (salt · 2^16) ⊕ (SSRC · 2^64) ⊕ (index · 2^16).
    fn iv(&self, ssrc: [u8; 4], index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (i, b) in ssrc.iter().enumerate() {
            iv[4 + i] ^= b;
        }
        let idx = index.to_be_bytes(); // 8 bytes, the top 2 are zero (48-bit index)
        for i in 0..6 {
            iv[8 + i] ^= idx[2 + i];
        }
        iv
    }

    /// RFC 3711 §4.2: HMAC-SHA1 over the packet and the rollover counter.
    fn tag(&self, authenticated: &[u8], roc: u32) -> [u8; 20] {
        let mut ctx = hmac::Context::with_key(&self.auth);
        ctx.update(authenticated);
        ctx.update(&roc.to_be_bytes());
        let mut out = [0u8; 20];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }
}

fn ssrc(pkt: &[u8]) -> [u8; 4] {
    [pkt[8], pkt[9], pkt[10], pkt[11]]
}

/// The RTP header's length: fixed part, CSRCs, extension (RFC 3550 §5.1).
fn header_len(pkt: &[u8]) -> Result<usize, SrtpError> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    let mut len = 12 + 4 * usize::from(pkt[0] & 0x0f);
    if pkt[0] & 0x10 != 0 {
        let ext = pkt.get(len + 2..len + 4).ok_or(SrtpError::Malformed)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    if len > pkt.len() {
        return Err(SrtpError::Malformed);
    }
    Ok(len)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 3711 Appendix B.2: the AES-CM keystream.
    #[test]
    fn aes_cm_keystream_matches_rfc3711_b2() {
        let key = ctr_key(&hex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap();
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"));
        let mut out = [0u8; 48];
        aes_cm(&key, iv, &mut out).unwrap();
        assert_eq!(
            out.to_vec(),
            hex(
                "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB \
                 41E95B3BB0A2E8DD477901E4FCA894C0"
            )
        );
    }

    /// RFC 3711 Appendix B.3: the session keys from a master key and salt.
    #[test]
    fn key_derivation_matches_rfc3711_b3() {
        let mk = ctr_key(&hex("E1F97A0D3E018BE0D64FA32C06DE4139")).unwrap();
        let mut salt = [0u8; 14];
        salt.copy_from_slice(&hex("0EC675AD498AFEEBB6960B3AABE6"));
        let mut enc = [0u8; 16];
        let mut auth = [0u8; 20];
        let mut ssalt = [0u8; 14];
        derive(&mk, &salt, 0, &mut enc).unwrap();
        derive(&mk, &salt, 1, &mut auth).unwrap();
        derive(&mk, &salt, 2, &mut ssalt).unwrap();
        assert_eq!(enc.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(ssalt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(
            auth.to_vec(),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn round_trip_across_a_sequence_wrap_and_tamper_detection() {
        let key = MasterKey {
            key: [1; 16],
            salt: [2; 14],
        };
        let mut tx = SrtpContext::new(&key).unwrap();
        let mut rx = SrtpContext::new(&key).unwrap();
        for seq in (0xfff0u16..=0xffff).chain(0..0x10) {
            let plain = rtp(seq, &[seq as u8; 160]);
            let mut p = plain.clone();
            tx.protect(&mut p).unwrap();
            assert_eq!(p.len(), plain.len() + TAG_LEN);
            assert_ne!(p[12..172], plain[12..]);
            let n = rx.unprotect(&mut p).unwrap();
            assert_eq!(&p[..n], &plain[..], "seq {seq}");
        }
        assert_eq!((tx.roc, rx.roc), (1, 1));
        // A flipped bit, a wrong key: refused.
        let mut p = rtp(0x11, &[5; 160]);
        tx.protect(&mut p).unwrap();
        let mut bad = p.clone();
        bad[20] ^= 1;
        assert_eq!(rx.unprotect(&mut bad), Err(SrtpError::AuthFailed));
        let mut other = SrtpContext::new(&MasterKey {
            key: [3; 16],
            salt: [2; 14],
        })
        .unwrap();
        assert_eq!(other.unprotect(&mut p.clone()), Err(SrtpError::AuthFailed));
        assert_eq!(rx.unprotect(&mut [0u8; 8]), Err(SrtpError::Malformed));
    }
}
