//! SDES key exchange for SRTP (RFC 4568): reading the `a=crypto` offer of
//! an `RTP/SAVP` audio stream and writing our answer's line.
//!
//! Only the AES_CM_128_HMAC_SHA1_80 suite is accepted (RFC 4568 §6.2.1,
//! the one every SIP phone and trunk offers); key-params with an MKI, and
//! lines with session parameters (UNENCRYPTED_SRTP and friends,
//! §6.3) are passed over, since each would weaken or complicate what the
//! suite promises. Keys travel in the SDP in clear: SDES is only worth
//! anything over SIP on TLS (docs/security.md, "TLS and SRTP").
//!
//! The endpoint's policy (which offers get SRTP, which a 488) is in
//! `endpoint/srtp.rs`; the call's RTP is protected in `hotline-call`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The one crypto suite we use.
pub const SDES_SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

/// A usable `a=crypto` line of an offer: its tag (echoed in the answer,
/// RFC 4568 §5.1.2) and the 30 bytes of master key and salt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SdesCrypto {
    /// The offer's tag for this line.
    pub tag: u32,
    /// Master key (16 bytes) then master salt (14 bytes).
    pub key: [u8; 30],
}

/// Never prints the key.
impl std::fmt::Debug for SdesCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdesCrypto")
            .field("tag", &self.tag)
            .field("key", &"***")
            .finish()
    }
}

/// What an offer's first audio stream says about SRTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SrtpOffer {
    /// The stream's profile is `RTP/SAVP` (or `RTP/SAVPF`).
    pub savp: bool,
    /// The first `a=crypto` line of that stream we can use.
    pub crypto: Option<SdesCrypto>,
}

/// Reads the first audio stream's profile and `a=crypto` lines.
/// Unreadable SDP yields "no SRTP" (`negotiate` reports the syntax error).
pub fn srtp_offer(body: &[u8]) -> SrtpOffer {
    let mut out = SrtpOffer {
        savp: false,
        crypto: None,
    };
    let Ok(text) = std::str::from_utf8(body) else {
        return out;
    };
    let mut in_first_audio = false;
    let mut seen_audio = false;
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut f = m.split_whitespace();
            in_first_audio = !seen_audio && f.next() == Some("audio");
            if in_first_audio {
                seen_audio = true;
                let proto = f.nth(1).unwrap_or_default();
                out.savp = matches!(proto, "RTP/SAVP" | "RTP/SAVPF");
            }
        } else if in_first_audio
            && out.crypto.is_none()
            && let Some(v) = line.strip_prefix("a=crypto:")
        {
            out.crypto = parse_crypto(v);
        }
    }
    out
}

/// One `a=crypto:` value (after the colon), if it is a line we can use.
pub fn parse_crypto(value: &str) -> Option<SdesCrypto> {
    let mut f = value.split_whitespace();
    let tag = f
        .next()?
        .parse::<u32>()
        .ok()
        .filter(|t| *t < 1_000_000_000)?;
    if f.next()? != SDES_SUITE {
        return None;
    }
    let key_params = f.next()?;
    // Session parameters (e.g. UNENCRYPTED_SRTP): not a line we accept.
    if f.next().is_some() {
        return None;
    }
    // Several key-params (';') would mean MKIs: use only a single one.
    if key_params.contains(';') {
        return None;
    }
    let inline = key_params.strip_prefix("inline:")?;
    let mut parts = inline.split('|');
    let b64 = parts.next()?;
    for p in parts {
        // A lifetime (2^n or a number) is fine; an MKI (n:len) is not.
        if p.contains(':') {
            return None;
        }
    }
    let bytes = STANDARD.decode(b64).ok()?;
    let key: [u8; 30] = bytes.try_into().ok()?;
    Some(SdesCrypto { tag, key })
}

/// Our answer's line (RFC 4568 §5.1.2: the offer's tag, our own key).
pub fn crypto_attribute(tag: u32, key: &[u8; 30]) -> String {
    format!(
        "a=crypto:{tag} {SDES_SUITE} inline:{}\r\n",
        STANDARD.encode(key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4568 §4's example key, as phones send it.
    const KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    fn offer(proto: &str, crypto: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\n{crypto}"
        )
    }

    #[test]
    fn reads_the_first_usable_crypto_line() {
        let o = offer(
            "RTP/SAVP",
            &format!(
                "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^20|1:32\r\n\
                 a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20\r\n"
            ),
        );
        let s = srtp_offer(o.as_bytes());
        assert!(s.savp);
        let c = s.crypto.expect("the SHA1_80 line");
        assert_eq!(c.tag, 2);
        assert_eq!(STANDARD.encode(c.key), KEY);
        assert!(!format!("{c:?}").contains(KEY), "Debug hides the key");
    }

    #[test]
    fn passes_over_what_it_cannot_use() {
        for bad in [
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP"),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{KEY};inline:{KEY}"),
            "1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=".to_string(),
            format!("x AES_CM_128_HMAC_SHA1_80 inline:{KEY}"),
            format!("1 F8_128_HMAC_SHA1_80 inline:{KEY}"),
            "1 AES_CM_128_HMAC_SHA1_80".to_string(),
        ] {
            assert_eq!(parse_crypto(&bad), None, "{bad}");
        }
        let plain = offer("RTP/AVP", "");
        assert_eq!(
            srtp_offer(plain.as_bytes()),
            SrtpOffer {
                savp: false,
                crypto: None
            }
        );
    }

    #[test]
    fn the_answer_line_round_trips() {
        let key = [42u8; 30];
        let line = crypto_attribute(7, &key);
        assert!(line.starts_with("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:"));
        let value = line.trim_end().strip_prefix("a=crypto:").unwrap();
        assert_eq!(parse_crypto(value), Some(SdesCrypto { tag: 7, key }));
    }
}
