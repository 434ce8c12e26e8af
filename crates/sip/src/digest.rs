//! Digest authentication of requests from trunks (RFC 3261 §22, RFC 8760:
//! SHA-256, and MD5 for old PBXes; `qop=auth` only), sans-IO: time and
//! the source address come in, a verdict and the challenge headers go out.
//!
//! Nonces are stateless: `hex(issued_ms ‖ serial ‖ HMAC-SHA256(key,
//! issued_ms ‖ serial ‖ source IP)[..16])`, with a random per-process key,
//! so a challenge to an unauthenticated source leaves nothing behind; a
//! nonce is only good from the address it was issued to and for
//! [`DigestConfig::nonce_ttl`] (then `401 … stale=true`). Replay protection
//! keeps, for nonces that authenticated a request, the highest nonce-count
//! seen (RFC 7616 §3.4.5: it must grow). Only requests whose response was
//! right reach that map, and it is bounded ([`DigestConfig::max_nonces`]):
//! when full, the oldest entry is dropped and every nonce issued up to it
//! becomes stale, so evicting never re-opens a replay.
//!
//! Not supported: `auth-int`, the `-sess` algorithms, `userhash`,
//! Proxy-Authorization (we are a UAS, not a proxy).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A hash a Digest response may be computed with (RFC 8760 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// `SHA-256` (RFC 8760 §2.2), preferred.
    Sha256,
    /// `MD5` (RFC 3261 §22.4), for peers that know nothing else.
    Md5,
}

impl DigestAlgorithm {
    /// The `algorithm=` token.
    pub fn token(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Md5 => "MD5",
        }
    }

    /// Lower-case hex of the hash of `parts` joined by `:`.
    fn hex(self, parts: &[&[u8]]) -> String {
        fn run<D: Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            hex(&d.finalize())
        }
        match self {
            DigestAlgorithm::Sha256 => run::<Sha256>(parts),
            DigestAlgorithm::Md5 => run::<Md5>(parts),
        }
    }

    /// The `response` for `qop=auth` (RFC 7616 §3.4.1, RFC 2617 §3.2.2.1):
    /// `H(H(username:realm:password):nonce:nc:cnonce:auth:H(method:uri))`
    /// in lower-case hex; what a client sends and what we expect.
    #[allow(clippy::too_many_arguments)]
    pub fn response(
        self,
        username: &str,
        realm: &str,
        password: &str,
        method: &str,
        uri: &str,
        nonce: &str,
        nc: &str,
        cnonce: &str,
    ) -> String {
        let ha1 = self.hex(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()]);
        let ha2 = self.hex(&[method.as_bytes(), uri.as_bytes()]);
        self.hex(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            nc.as_bytes(),
            cnonce.as_bytes(),
            b"auth",
            ha2.as_bytes(),
        ])
    }
}

impl FromStr for DigestAlgorithm {
    type Err = String;
    /// `sha256` / `SHA-256` or `md5` / `MD5`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sha256" | "sha-256" => Ok(DigestAlgorithm::Sha256),
            "md5" => Ok(DigestAlgorithm::Md5),
            other => Err(format!("{other:?}: expected sha256 or md5")),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != N * 2 {
        return None;
    }
    let nib = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nib(*b.get(2 * i)?)? << 4 | nib(*b.get(2 * i + 1)?)?;
    }
    Some(out)
}

/// The username and password a trunk authenticates with. `Debug` never
/// shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct TrunkCredentials {
    /// The trunk's name: a `--trunk` of the same name also restricts its
    /// addresses; otherwise any address may authenticate as this trunk.
    pub trunk: String,
    /// The Digest username.
    pub username: String,
    password: String,
}

impl TrunkCredentials {
    /// Credentials for `trunk`.
    pub fn new(
        trunk: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        TrunkCredentials {
            trunk: trunk.into(),
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for TrunkCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrunkCredentials")
            .field("trunk", &self.trunk)
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Settings of the [`Authenticator`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestConfig {
    /// The realm in challenges; credentials for another realm are ignored.
    pub realm: String,
    /// Algorithms offered (one challenge each, in this order: RFC 8760
    /// §2.4 says by preference) and accepted.
    pub algorithms: Vec<DigestAlgorithm>,
    /// How long a nonce is good for.
    pub nonce_ttl: Duration,
    /// Nonces remembered for replay protection at most.
    pub max_nonces: usize,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            realm: "hotline".to_string(),
            algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            nonce_ttl: Duration::from_secs(300),
            max_nonces: 10_000,
        }
    }
}

/// What became of a request's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DigestVerdict {
    /// Right credentials of the trunk named here.
    Authenticated(String),
    /// No usable credentials (`stale: false`), or right ones with a nonce
    /// that expired or is not ours (`stale: true`): 401 with a new challenge.
    Challenge {
        /// RFC 7616 §3.3: the password was right, only the nonce was not.
        stale: bool,
    },
    /// Wrong credentials (or a replay): 403. The reason is for logs.
    Refused(&'static str),
}

/// The parsed `Digest` parameters of an Authorization header.
#[derive(Default)]
struct Params {
    username: Option<String>,
    realm: Option<String>,
    nonce: Option<String>,
    uri: Option<String>,
    response: Option<String>,
    algorithm: Option<String>,
    qop: Option<String>,
    nc: Option<String>,
    cnonce: Option<String>,
    opaque: Option<String>,
}

/// `Digest name=value, name="quoted \" value", ...` (RFC 7235 §2.1);
/// `None` for another scheme or broken syntax.
fn parse_authorization(value: &str) -> Option<Params> {
    let v = value.trim_start();
    let (scheme, rest) = v.split_at(v.find([' ', '\t']).unwrap_or(v.len()));
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut p = Params::default();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let eq = s.find('=')?;
        let name = s.get(..eq)?.trim().to_ascii_lowercase();
        s = s.get(eq + 1..)?.trim_start();
        let val;
        if let Some(q) = s.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => out.push(chars.next()?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => out.push(c),
                }
            }
            val = out;
            s = q.get(end?..)?;
        } else {
            let end = s.find(',').unwrap_or(s.len());
            val = s.get(..end)?.trim().to_string();
            s = s.get(end..)?;
        }
        s = s.trim_start();
        if let Some(r) = s.strip_prefix(',') {
            s = r.trim_start();
        } else if !s.is_empty() {
            return None;
        }
        let slot = match name.as_str() {
            "username" => &mut p.username,
            "realm" => &mut p.realm,
            "nonce" => &mut p.nonce,
            "uri" => &mut p.uri,
            "response" => &mut p.response,
            "algorithm" => &mut p.algorithm,
            "qop" => &mut p.qop,
            "nc" => &mut p.nc,
            "cnonce" => &mut p.cnonce,
            "opaque" => &mut p.opaque,
            _ => continue,
        };
        if slot.is_some() {
            return None; // a parameter given twice
        }
        *slot = Some(val);
    }
    Some(p)
}

type HmacSha256 = Hmac<Sha256>;

/// A nonce as issued: when and which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Nonce {
    issued_ms: u64,
    serial: u64,
}

/// Issues challenges and checks credentials (see the module documentation).
pub struct Authenticator {
    cfg: DigestConfig,
    key: [u8; 32],
    /// Nonce timestamps count from here (the first `now` seen).
    epoch: Option<Instant>,
    next_serial: u64,
    opaque: String,
    /// Nonces that authenticated a request: serial → (issued_ms, highest nc).
    used: BTreeMap<u64, (u64, u32)>,
    /// Nonces with a serial up to this one and not in `used` are stale (evicted).
    floor: Option<u64>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("cfg", &self.cfg)
            .field("used", &self.used.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator whose nonces are signed with `key` (random per
    /// process: nonces of an earlier run are then refused as stale).
    pub fn new(cfg: DigestConfig, key: [u8; 32]) -> Self {
        let mut a = Authenticator {
            cfg,
            key,
            epoch: None,
            next_serial: 0,
            opaque: String::new(),
            used: BTreeMap::new(),
            floor: None,
        };
        let tag = a.mac(&[b"opaque"]);
        a.opaque = hex(tag.get(..8).unwrap_or_default());
        a
    }

    /// The settings.
    pub fn config(&self) -> &DigestConfig {
        &self.cfg
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        // HMAC takes keys of any length: this cannot fail.
        let Ok(mut m) = HmacSha256::new_from_slice(&self.key) else {
            return [0; 32];
        };
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    fn now_ms(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        u64::try_from(now.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
    }

    fn nonce_mac(&self, n: Nonce, ip: IpAddr) -> [u8; 32] {
        let ip: Ipv6Addr = match ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        self.mac(&[
            &n.issued_ms.to_be_bytes(),
            &n.serial.to_be_bytes(),
            &ip.octets(),
        ])
    }

    /// A fresh nonce for `ip`.
    fn issue(&mut self, now: Instant, ip: IpAddr) -> String {
        let n = Nonce {
            issued_ms: self.now_ms(now),
            serial: self.next_serial,
        };
        self.next_serial += 1;
        let mac = self.nonce_mac(n, ip);
        let mut raw = [0u8; 32];
        raw[..8].copy_from_slice(&n.issued_ms.to_be_bytes());
        raw[8..16].copy_from_slice(&n.serial.to_be_bytes());
        raw[16..].copy_from_slice(&mac[..16]);
        hex(&raw)
    }

    /// The nonce if it is ours and was issued to `ip`.
    fn check_nonce(&self, nonce: &str, ip: IpAddr) -> Option<Nonce> {
        let raw: [u8; 32] = unhex(nonce)?;
        let issued_ms = u64::from_be_bytes(raw[..8].try_into().ok()?);
        let serial = u64::from_be_bytes(raw[8..16].try_into().ok()?);
        let n = Nonce { issued_ms, serial };
        let mac = self.nonce_mac(n, ip);
        bool::from(mac[..16].ct_eq(&raw[16..])).then_some(n)
    }

    /// `WWW-Authenticate` headers for a 401 to `ip`: one challenge per
    /// algorithm, sharing one new nonce.
    pub fn challenge(
        &mut self,
        now: Instant,
        ip: IpAddr,
        stale: bool,
    ) -> Vec<(&'static str, String)> {
        let nonce = self.issue(now, ip);
        let stale = if stale { ", stale=true" } else { "" };
        self.cfg
            .algorithms
            .iter()
            .map(|a| {
                (
                    "WWW-Authenticate",
                    format!(
                        "Digest realm=\"{}\", nonce=\"{nonce}\", opaque=\"{}\", algorithm={}, qop=\"auth\"{stale}",
                        self.cfg.realm,
                        self.opaque,
                        a.token()
                    ),
                )
            })
            .collect()
    }

    /// A To tag for a stateless response to a request, the same for its
    /// retransmissions (RFC 3261 §8.2.7).
    pub fn stateless_tag(&self, call_id: &str, branch: &str) -> String {
        hex(self
            .mac(&[b"tag", call_id.as_bytes(), b"\n", branch.as_bytes()])
            .get(..6)
            .unwrap_or_default())
    }

    /// Checks the Authorization header values of a request (`method`,
    /// Request-URI `uri`) from `ip` against the `candidates` (credentials
    /// this source may use).
    pub fn verify<'c>(
        &mut self,
        now: Instant,
        ip: IpAddr,
        method: &str,
        uri: &str,
        authorization: &[String],
        candidates: impl Iterator<Item = &'c TrunkCredentials>,
    ) -> DigestVerdict {
        // RFC 7616 §3.4: ours is the header for our realm with an algorithm we offer.
        let Some((p, algorithm)) = authorization.iter().find_map(|v| {
            let p = parse_authorization(v)?;
            if p.realm.as_deref() != Some(self.cfg.realm.as_str()) {
                return None;
            }
            let algorithm = match p.algorithm.as_deref() {
                None => DigestAlgorithm::Md5, // RFC 2617 §3.2.1: absent means MD5
                Some(a) if a.eq_ignore_ascii_case("MD5") => DigestAlgorithm::Md5,
                Some(a) if a.eq_ignore_ascii_case("SHA-256") => DigestAlgorithm::Sha256,
                Some(_) => return None,
            };
            self.cfg
                .algorithms
                .contains(&algorithm)
                .then_some((p, algorithm))
        }) else {
            return DigestVerdict::Challenge { stale: false };
        };
        let (Some(username), Some(nonce), Some(duri), Some(response)) =
            (&p.username, &p.nonce, &p.uri, &p.response)
        else {
            return DigestVerdict::Refused("incomplete credentials");
        };
        // We offer qop="auth" only; without it there is no nonce-count,
        // hence no replay protection (RFC 7616 §3.4 makes qop mandatory).
        let (Some("auth"), Some(nc), Some(cnonce)) = (p.qop.as_deref(), &p.nc, &p.cnonce) else {
            return DigestVerdict::Refused("qop=auth with nc and cnonce required");
        };
        let Some(count) = unhex::<4>(nc).map(u32::from_be_bytes) else {
            return DigestVerdict::Refused("bad nonce-count");
        };
        if p.opaque.as_ref().is_some_and(|o| *o != self.opaque) {
            return DigestVerdict::Refused("opaque not ours");
        }
        // RFC 3261 §22.4 / RFC 7616 §3.4.6: the digest-uri is the Request-URI.
        if duri != uri {
            return DigestVerdict::Refused("uri is not the Request-URI");
        }
        let Some(cred) = candidates.into_iter().find(|c| c.username == *username) else {
            return DigestVerdict::Refused("unknown user");
        };
        let expected = algorithm.response(
            username,
            &self.cfg.realm,
            &cred.password,
            method,
            duri,
            nonce,
            nc,
            cnonce,
        );
        let given = response.to_ascii_lowercase();
        if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            return DigestVerdict::Refused("wrong response (password)");
        }
        // The password is right; the nonce decides between OK and stale.
        let Some(n) = self.check_nonce(nonce, ip) else {
            return DigestVerdict::Challenge { stale: true };
        };
        let now_ms = self.now_ms(now);
        let ttl = u64::try_from(self.cfg.nonce_ttl.as_millis()).unwrap_or(u64::MAX);
        if now_ms.saturating_sub(n.issued_ms) >= ttl || n.issued_ms > now_ms {
            return DigestVerdict::Challenge { stale: true };
        }
        self.forget_expired(now_ms, ttl);
        match self.used.get_mut(&n.serial) {
            Some((_, highest)) if count <= *highest => {
                return DigestVerdict::Refused("nonce-count not above the last (replay)");
            }
            Some((_, highest)) => *highest = count,
            None => {
                if self.floor.is_some_and(|f| n.serial <= f) {
                    // Evicted (or older than what was): cannot tell a replay.
                    return DigestVerdict::Challenge { stale: true };
                }
                if self.cfg.max_nonces > 0 && self.used.len() >= self.cfg.max_nonces {
                    if let Some((oldest, _)) = self.used.pop_first() {
                        self.floor = Some(self.floor.map_or(oldest, |f| f.max(oldest)));
                    }
                    if self.floor.is_some_and(|f| n.serial <= f) {
                        return DigestVerdict::Challenge { stale: true };
                    }
                }
                self.used.insert(n.serial, (n.issued_ms, count));
            }
        }
        DigestVerdict::Authenticated(cred.trunk.clone())
    }

    /// Drops remembered nonces that expired: they are refused as stale anyway.
    fn forget_expired(&mut self, now_ms: u64, ttl: u64) {
        while let Some((_, &(issued, _))) = self.used.first_key_value() {
            if now_ms.saturating_sub(issued) < ttl {
                break;
            }
            self.used.pop_first();
        }
    }

    /// Nonces remembered for replay protection right now.
    pub fn remembered(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: &str = "198.51.100.7";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn auth(cfg: DigestConfig) -> Authenticator {
        Authenticator::new(cfg, [7; 32])
    }

    fn creds() -> Vec<TrunkCredentials> {
        vec![TrunkCredentials::new("pbx", "bob", "zanzibar")]
    }

    /// The nonce in a challenge header.
    fn nonce_of(h: &str) -> String {
        let i = h.find("nonce=\"").unwrap() + 7;
        h[i..i + 64].to_string()
    }

    #[allow(clippy::too_many_arguments)]
    fn authorization(
        alg: DigestAlgorithm,
        user: &str,
        pass: &str,
        realm: &str,
        uri: &str,
        nonce: &str,
        nc: &str,
        opaque: &str,
    ) -> String {
        let cnonce = "0a4f113b";
        let resp = alg.response(user, realm, pass, "INVITE", uri, nonce, nc, cnonce);
        format!(
            "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{resp}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"{cnonce}\", opaque=\"{opaque}\"",
            alg.token()
        )
    }

    /// RFC 7616 §3.9.1 (HTTP, qop=auth): the RFC's own vectors for SHA-256 and MD5.
    #[test]
    fn rfc7616_vectors() {
        let args = (
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "00000001",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        let r = |a: DigestAlgorithm| {
            a.response(
                args.0, args.1, args.2, args.3, args.4, args.5, args.6, args.7,
            )
        };
        assert_eq!(
            r(DigestAlgorithm::Sha256),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert_eq!(r(DigestAlgorithm::Md5), "8ca523f5e9506fed4657c9700eebdbec");
    }

    /// SIP vectors (RFC 7616's are HTTP), computed independently with
    /// coreutils: HA1=H("bob:hotline:zanzibar"),
    /// HA2=H("INVITE:sip:100@192.0.2.10"),
    /// response=H(HA1:abc:00000001:0a4f113b:auth:HA2), H = md5sum / sha256sum.
    #[test]
    fn sip_vectors() {
        let r = |a: DigestAlgorithm| {
            a.response(
                "bob",
                "hotline",
                "zanzibar",
                "INVITE",
                "sip:100@192.0.2.10",
                "abc",
                "00000001",
                "0a4f113b",
            )
        };
        assert_eq!(r(DigestAlgorithm::Md5), "a5f6c9ce78dc4f602ca36d33a7904e65");
        assert_eq!(
            r(DigestAlgorithm::Sha256),
            "8d18ae2d4ea9320274af766e94fd10b1815793b4b29f8477d9a371e9913a663c"
        );
    }

    #[test]
    fn a_right_answer_passes_once_per_nonce_count() {
        for alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Md5] {
            let mut a = auth(DigestConfig::default());
            let now = Instant::now();
            let ch = a.challenge(now, ip(IP), false);
            assert_eq!(ch.len(), 2);
            assert!(ch[0].1.contains("algorithm=SHA-256"), "{ch:?}");
            assert!(ch[1].1.contains("algorithm=MD5"), "{ch:?}");
            assert!(ch[0].1.contains("qop=\"auth\"") && !ch[0].1.contains("stale"));
            let nonce = nonce_of(&ch[0].1);
            let uri = "sip:100@192.0.2.10";
            let h = authorization(
                alg, "bob", "zanzibar", "hotline", uri, &nonce, "00000001", &a.opaque,
            );
            let c = creds();
            let v = |a: &mut Authenticator, h: &str, t: Instant| {
                a.verify(t, ip(IP), "INVITE", uri, &[h.to_string()], c.iter())
            };
            assert_eq!(
                v(&mut a, &h, now),
                DigestVerdict::Authenticated("pbx".into())
            );
            // The same nc again: a replay.
            assert!(matches!(v(&mut a, &h, now), DigestVerdict::Refused(_)));
            // A higher nc with the same nonce is fine, then not the lower one.
            let h3 = authorization(
                alg, "bob", "zanzibar", "hotline", uri, &nonce, "00000003", &a.opaque,
            );
            let h2 = authorization(
                alg, "bob", "zanzibar", "hotline", uri, &nonce, "00000002", &a.opaque,
            );
            assert_eq!(
                v(&mut a, &h3, now),
                DigestVerdict::Authenticated("pbx".into())
            );
            assert!(matches!(v(&mut a, &h2, now), DigestVerdict::Refused(_)));
            // Expired: stale, even with a fresh nc.
            let later = now + Duration::from_secs(300);
            let h4 = authorization(
                alg, "bob", "zanzibar", "hotline", uri, &nonce, "00000004", &a.opaque,
            );
            assert_eq!(
                v(&mut a, &h4, later),
                DigestVerdict::Challenge { stale: true }
            );
            assert!(
                a.challenge(later, ip(IP), true)[0]
                    .1
                    .ends_with("stale=true")
            );
        }
    }

    #[test]
    fn wrong_credentials_are_refused() {
        let mut a = auth(DigestConfig::default());
        let now = Instant::now();
        let nonce = nonce_of(&a.challenge(now, ip(IP), false)[0].1);
        let uri = "sip:100@192.0.2.10";
        let op = a.opaque.clone();
        let c = creds();
        let mut v = |h: String, from: &str, req_uri: &str| {
            a.verify(now, ip(from), "INVITE", req_uri, &[h], c.iter())
        };
        let s = DigestAlgorithm::Sha256;
        let refused = |d: DigestVerdict| matches!(d, DigestVerdict::Refused(_));
        // Wrong password, wrong user, a uri other than the Request-URI.
        assert!(refused(v(
            authorization(s, "bob", "nope", "hotline", uri, &nonce, "00000001", &op),
            IP,
            uri
        )));
        assert!(refused(v(
            authorization(
                s, "eve", "zanzibar", "hotline", uri, &nonce, "00000001", &op
            ),
            IP,
            uri
        )));
        let other = "sip:200@192.0.2.10";
        assert!(refused(v(
            authorization(
                s, "bob", "zanzibar", "hotline", other, &nonce, "00000001", &op
            ),
            IP,
            uri
        )));
        // Another realm's credentials are not ours: a challenge.
        assert_eq!(
            v(
                authorization(
                    s,
                    "bob",
                    "zanzibar",
                    "elsewhere",
                    uri,
                    &nonce,
                    "00000001",
                    &op
                ),
                IP,
                uri
            ),
            DigestVerdict::Challenge { stale: false }
        );
        // Right password, nonce issued to another address or forged: stale.
        assert_eq!(
            v(
                authorization(
                    s, "bob", "zanzibar", "hotline", uri, &nonce, "00000001", &op
                ),
                "192.0.2.99",
                uri
            ),
            DigestVerdict::Challenge { stale: true }
        );
        let forged = format!("{}{}", &nonce[..32], "0".repeat(32));
        assert_eq!(
            v(
                authorization(
                    s, "bob", "zanzibar", "hotline", uri, &forged, "00000001", &op
                ),
                IP,
                uri
            ),
            DigestVerdict::Challenge { stale: true }
        );
        // Nothing, another scheme, junk: a challenge.
        assert_eq!(
            v("Basic Ym9iOnphbnppYmFy".into(), IP, uri),
            DigestVerdict::Challenge { stale: false }
        );
        assert_eq!(
            v("Digest realm=\"hotline\", x".into(), IP, uri),
            DigestVerdict::Challenge { stale: false }
        );
        // Without qop (RFC 2069 style): refused.
        assert!(refused(v(
            format!(
                "Digest username=\"bob\", realm=\"hotline\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"00\""
            ),
            IP,
            uri
        )));
        // Still fine with the right answer afterwards.
        assert_eq!(
            v(
                authorization(
                    s, "bob", "zanzibar", "hotline", uri, &nonce, "00000001", &op
                ),
                IP,
                uri
            ),
            DigestVerdict::Authenticated("pbx".into())
        );
    }

    #[test]
    fn md5_only_refuses_sha256() {
        let mut a = auth(DigestConfig {
            algorithms: vec![DigestAlgorithm::Md5],
            ..DigestConfig::default()
        });
        let now = Instant::now();
        let ch = a.challenge(now, ip(IP), false);
        assert_eq!(ch.len(), 1);
        let nonce = nonce_of(&ch[0].1);
        let uri = "sip:100@192.0.2.10";
        let h = authorization(
            DigestAlgorithm::Sha256,
            "bob",
            "zanzibar",
            "hotline",
            uri,
            &nonce,
            "00000001",
            &a.opaque,
        );
        let c = creds();
        assert_eq!(
            a.verify(now, ip(IP), "INVITE", uri, &[h], c.iter()),
            DigestVerdict::Challenge { stale: false }
        );
    }

    /// However many authenticated nonces, the map stays bounded, and an
    /// evicted nonce is never accepted again (stale instead).
    #[test]
    fn replay_map_is_bounded_without_reopening_replays() {
        let mut a = auth(DigestConfig {
            max_nonces: 100,
            ..DigestConfig::default()
        });
        let now = Instant::now();
        let uri = "sip:100@192.0.2.10";
        let c = creds();
        let op = a.opaque.clone();
        let mut first = None;
        for i in 0..1000 {
            let nonce = nonce_of(&a.challenge(now, ip(IP), false)[0].1);
            let h = authorization(
                DigestAlgorithm::Md5,
                "bob",
                "zanzibar",
                "hotline",
                uri,
                &nonce,
                "00000001",
                &op,
            );
            assert_eq!(
                a.verify(
                    now,
                    ip(IP),
                    "INVITE",
                    uri,
                    std::slice::from_ref(&h),
                    c.iter()
                ),
                DigestVerdict::Authenticated("pbx".into()),
                "{i}"
            );
            assert!(a.remembered() <= 100);
            first.get_or_insert(h);
        }
        assert_eq!(a.remembered(), 100);
        let first = first.unwrap();
        assert_eq!(
            a.verify(now, ip(IP), "INVITE", uri, &[first], c.iter()),
            DigestVerdict::Challenge { stale: true }
        );
        // Expired nonces are forgotten as time goes by.
        let later = now + Duration::from_secs(301);
        let nonce = nonce_of(&a.challenge(later, ip(IP), false)[0].1);
        let h = authorization(
            DigestAlgorithm::Md5,
            "bob",
            "zanzibar",
            "hotline",
            uri,
            &nonce,
            "00000001",
            &op,
        );
        assert_eq!(
            a.verify(later, ip(IP), "INVITE", uri, &[h], c.iter()),
            DigestVerdict::Authenticated("pbx".into())
        );
        assert_eq!(a.remembered(), 1);
    }

    #[test]
    fn parser_handles_quotes_and_spacing() {
        let p = parse_authorization(
            "Digest  username = \"b\\\"ob\" ,realm=\"a, b\",nc=00000001, qop=auth,uri=\"sip:x@y\"",
        )
        .unwrap();
        assert_eq!(p.username.as_deref(), Some("b\"ob"));
        assert_eq!(p.realm.as_deref(), Some("a, b"));
        assert_eq!(p.nc.as_deref(), Some("00000001"));
        assert_eq!(p.qop.as_deref(), Some("auth"));
        assert!(parse_authorization("Digest realm=\"a\", realm=\"b\"").is_none());
        assert!(parse_authorization("Digest realm=\"unterminated").is_none());
        assert!(parse_authorization("Basic abc").is_none());
        assert_eq!(
            "SHA-256".parse::<DigestAlgorithm>(),
            Ok(DigestAlgorithm::Sha256)
        );
        assert!(format!("{:?}", creds()[0]).contains("***"));
        assert!(!format!("{:?}", creds()[0]).contains("zanzibar"));
    }

    #[test]
    fn stateless_tags_repeat_per_request() {
        let a = auth(DigestConfig::default());
        assert_eq!(
            a.stateless_tag("c1", "z9hG4bK1"),
            a.stateless_tag("c1", "z9hG4bK1")
        );
        assert_ne!(
            a.stateless_tag("c1", "z9hG4bK1"),
            a.stateless_tag("c1", "z9hG4bK2")
        );
    }
}
