//! SDES-SRTP policy (RFC 4568) for an offer the endpoint answers: whether
//! the call's audio is SRTP, with which keys, or why the offer is refused.
//!
//! - `RTP/SAVP` with a usable `a=crypto` line, over TLS: SRTP; our key is
//!   fresh OS random for a new call, and stays the same on a re-offer.
//! - `RTP/SAVP` over UDP or TCP: 488. The keys crossed the network in
//!   clear (RFC 4568 §8.3 allows SDES only over a secure transport), so
//!   "encrypted" audio would be readable by anyone who saw the INVITE.
//! - `RTP/SAVP` without a usable line (other suites, MKIs, session
//!   parameters): 488.
//! - `RTP/AVP` (an `a=crypto` in it is ignored): plain RTP, unless
//!   [`EndpointConfig::require_srtp`](super::EndpointConfig::require_srtp)
//!   (488), or the call is SRTP already (488: a re-offer may not turn
//!   encryption off).

use crate::sdes::srtp_offer;
use crate::sdp::SrtpKeys;
use crate::transport::Transport;

/// A refusal: status code and reason phrase.
pub(super) type SrtpRefusal = (u16, &'static str);

/// Applies the policy to the offer `body` received over `transport`.
/// `previous`: the call's keys before this offer (re-INVITE, UPDATE);
/// `fresh`: a new random key (`None`: the OS random source failed).
pub(super) fn sdes_answer(
    require_srtp: bool,
    transport: Transport,
    body: &[u8],
    previous: Option<SrtpKeys>,
    fresh: impl FnOnce() -> Option<[u8; 30]>,
) -> Result<Option<SrtpKeys>, SrtpRefusal> {
    let offer = srtp_offer(body);
    if !offer.savp {
        if require_srtp {
            return Err((488, "Not Acceptable Here (SRTP required: offer RTP/SAVP)"));
        }
        if previous.is_some() {
            return Err((
                488,
                "Not Acceptable Here (the call's SRTP cannot be turned off)",
            ));
        }
        return Ok(None);
    }
    if transport != Transport::Tls {
        return Err((488, "Not Acceptable Here (SRTP keys only over SIP on TLS)"));
    }
    let Some(crypto) = offer.crypto else {
        return Err((
            488,
            "Not Acceptable Here (no usable a=crypto: AES_CM_128_HMAC_SHA1_80 only)",
        ));
    };
    let local = match previous {
        Some(p) => p.local,
        None => fresh().ok_or((500, "Server Internal Error (no random key)"))?,
    };
    Ok(Some(SrtpKeys {
        tag: crypto.tag,
        remote: crypto.key,
        local,
    }))
}

/// 30 bytes of OS random: a master key and salt.
pub(super) fn random_key() -> Option<[u8; 30]> {
    let mut k = [0u8; 30];
    getrandom::fill(&mut k).ok()?;
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::{Direction, LocalSession, build, negotiate};

    const KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    fn offer(proto: &str, crypto: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n{crypto}"
        )
    }

    fn savp() -> String {
        offer(
            "RTP/SAVP",
            &format!("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^31\r\n"),
        )
    }

    #[test]
    fn a_savp_offer_over_tls_is_answered_savp_with_our_key_and_its_tag() {
        let o = savp();
        let keys = sdes_answer(false, Transport::Tls, o.as_bytes(), None, || Some([5; 30]))
            .unwrap()
            .expect("SRTP");
        assert_eq!((keys.tag, keys.local), (3, [5; 30]));
        let mut media = negotiate(o.as_bytes()).unwrap();
        media.srtp = Some(keys);
        let local = LocalSession {
            sess_id: 1,
            version: 1,
            rtp: "192.0.2.1:30002".parse().unwrap(),
        };
        let answer = build(&local, &media, Direction::SendRecv);
        assert!(
            answer.contains("m=audio 30002 RTP/SAVP 0 101\r\n"),
            "{answer}"
        );
        let line = crate::sdes::crypto_attribute(3, &[5; 30]);
        assert!(
            answer.ends_with(&format!("a=sendrecv\r\n{line}")),
            "{answer}"
        );
        // The offerer reads our line back: our key, its tag.
        let back = crate::sdes::srtp_offer(answer.as_bytes());
        assert!(back.savp);
        let c = back.crypto.unwrap();
        assert_eq!((c.tag, c.key), (3, [5; 30]));
        assert!(!format!("{keys:?}").contains('5'), "Debug hides keys");
        // A plain call's answer is unchanged.
        media.srtp = None;
        let plain = build(&local, &media, Direction::SendRecv);
        assert!(plain.contains("RTP/AVP 0 101") && !plain.contains("a=crypto"));
    }

    #[test]
    fn a_reoffer_keeps_our_key_and_takes_the_new_remote_one() {
        let first = Some(SrtpKeys {
            tag: 1,
            remote: [1; 30],
            local: [2; 30],
        });
        let o = savp();
        let keys = sdes_answer(false, Transport::Tls, o.as_bytes(), first, || None)
            .unwrap()
            .unwrap();
        assert_eq!((keys.tag, keys.local), (3, [2; 30]));
        assert_ne!(keys.remote, [1; 30]);
        let plain = offer("RTP/AVP", "");
        assert_eq!(
            sdes_answer(false, Transport::Tls, plain.as_bytes(), first, || None).map_err(|e| e.0),
            Err(488)
        );
    }

    #[test]
    fn refusals() {
        let o = savp();
        for t in [Transport::Udp, Transport::Tcp] {
            assert_eq!(
                sdes_answer(false, t, o.as_bytes(), None, || Some([0; 30])).map_err(|e| e.0),
                Err(488)
            );
        }
        let unusable = offer(
            "RTP/SAVP",
            &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY}\r\n"),
        );
        assert_eq!(
            sdes_answer(false, Transport::Tls, unusable.as_bytes(), None, || Some(
                [0; 30]
            ))
            .map_err(|e| e.0),
            Err(488)
        );
        let plain = offer("RTP/AVP", "");
        assert_eq!(
            sdes_answer(true, Transport::Tls, plain.as_bytes(), None, || Some(
                [0; 30]
            ))
            .map_err(|e| e.0),
            Err(488)
        );
        assert_eq!(
            sdes_answer(false, Transport::Udp, plain.as_bytes(), None, || Some(
                [0; 30]
            )),
            Ok(None)
        );
        // AVP with a=crypto (best-effort SRTP) is answered plain.
        let best_effort = offer(
            "RTP/AVP",
            &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"),
        );
        assert_eq!(
            sdes_answer(
                false,
                Transport::Tls,
                best_effort.as_bytes(),
                None,
                || Some([0; 30])
            ),
            Ok(None)
        );
        assert_eq!(
            sdes_answer(false, Transport::Tls, o.as_bytes(), None, || None).map_err(|e| e.0),
            Err(500)
        );
    }
}
