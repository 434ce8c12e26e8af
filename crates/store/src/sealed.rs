//! Recordings at rest: the sealed file format and the keys that open it.
//!
//! A sealed recording is the WAV encrypted with AES-256-GCM in chunks, so a
//! reader can seek (an HTTP Range request) and decrypt only what it needs,
//! and every chunk is authenticated on its own:
//!
//! ```text
//! header (48 bytes, the AAD of every chunk)
//!   magic "HLREC\0\0\x01" | version 1 | alg 1 (AES-256-GCM) | 0 0
//!   chunk size u32 BE | key id (8 bytes) | salt (16 random bytes) | WAV length u64 BE
//! chunk 0 … n-1: ciphertext (chunk size; the last one shorter) + 16-byte tag
//! ```
//!
//! The file key is HKDF-SHA256(master key, salt, "hotline recording v1"):
//! a fresh key per file, so chunk `i`'s nonce can simply be `i` (never
//! reused under one key). The header is the AAD of every chunk, so a
//! changed length, key id or salt fails every chunk; the chunk number in
//! the nonce stops chunks being swapped; the length in the header stops
//! truncation. There is always at least one chunk (an empty WAV too).
//!
//! Keys are 32 random bytes written as 64 hex digits in a file
//! (`openssl rand -hex 32`). A key's id is the first 8 bytes of
//! SHA-256("hotline-recording-key\0" ‖ key), so ids never need naming and
//! cannot collide by accident; the id goes into each file's header, and a
//! [`Keyring`] of the current key plus the retired ones opens every file
//! (docs/security.md, "Recordings at rest").

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use sha2::Digest;

/// The first bytes of a sealed file.
pub const MAGIC: &[u8; 8] = b"HLREC\0\0\x01";
/// Header length.
pub const HEADER_LEN: usize = 48;
/// Plaintext bytes per chunk: 64 KiB, ~2 s of 8 kHz stereo audio.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const INFO: &[u8] = b"hotline recording v1";

/// What can go wrong with keys and sealed files.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Reading or writing a file.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A key file that does not hold 64 hex digits.
    #[error("{0}: not a recording key (64 hex digits, e.g. `openssl rand -hex 32`)")]
    BadKey(PathBuf),
    /// A sealed file whose key is not in the keyring.
    #[error("{path}: sealed with key {key_id}, which is not in the keyring")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// Its key's id (hex).
        key_id: String,
    },
    /// A sealed file that is not one (bad header, wrong size) or whose
    /// chunk fails authentication: changed on disk or truncated.
    #[error("{path}: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A sealed file and no keyring to open it.
    #[error("{0}: the recording is encrypted; give --recording-key-file (or the keyring)")]
    NoKeys(PathBuf),
}

/// A recording key: 32 bytes and its id.
#[derive(Clone)]
pub struct RecordingKey {
    id: [u8; 8],
    key: [u8; 32],
}

impl std::fmt::Debug for RecordingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordingKey({})", self.id_hex())
    }
}

impl RecordingKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let mut h = sha2::Sha256::new();
        h.update(b"hotline-recording-key\0");
        h.update(key);
        let d = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        Self { id, key }
    }

    /// Reads a key file: 64 hex digits; blank lines and `#` comments allowed.
    pub fn load(path: &Path) -> Result<Self, SealError> {
        let text = std::fs::read_to_string(path).map_err(|source| SealError::Io {
            what: "cannot read the recording key",
            path: path.to_owned(),
            source,
        })?;
        let hex: String = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let bytes = decode_hex(&hex).ok_or_else(|| SealError::BadKey(path.to_owned()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SealError::BadKey(path.to_owned()))?;
        Ok(Self::from_bytes(key))
    }

    /// The key's id, as sealed files name it (16 hex digits).
    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }

    fn file_key(&self, salt: &[u8]) -> LessSafeKey {
        let prk = Salt::new(HKDF_SHA256, salt).extract(&self.key);
        let okm = prk
            .expand(&[INFO], &AES_256_GCM)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        LessSafeKey::new(UnboundKey::from(okm))
    }
}

/// The key new recordings are sealed with, and every key old ones may be
/// sealed with.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    current: Option<RecordingKey>,
    keys: HashMap<[u8; 8], RecordingKey>,
}

impl Keyring {
    /// `current`: the key file new recordings are sealed with;
    /// `retired`: a directory of older key files (`*.key`) that still open
    /// the files they sealed. Either may be absent.
    pub fn load(current: Option<&Path>, retired: Option<&Path>) -> Result<Self, SealError> {
        let mut ring = Self::default();
        if let Some(dir) = retired {
            let entries = std::fs::read_dir(dir).map_err(|source| SealError::Io {
                what: "cannot list the keyring",
                path: dir.to_owned(),
                source,
            })?;
            let mut paths: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "key"))
                .collect();
            paths.sort();
            for p in paths {
                ring.add(RecordingKey::load(&p)?);
            }
        }
        if let Some(path) = current {
            let key = RecordingKey::load(path)?;
            ring.add(key.clone());
            ring.current = Some(key);
        }
        Ok(ring)
    }

    /// A keyring of one key, also the current one.
    pub fn single(key: RecordingKey) -> Self {
        let mut ring = Self::default();
        ring.add(key.clone());
        ring.current = Some(key);
        ring
    }

    /// Adds a key that opens files (not the current one).
    pub fn add(&mut self, key: RecordingKey) {
        self.keys.insert(key.id, key);
    }

    /// The key new recordings are sealed with.
    pub fn current(&self) -> Option<&RecordingKey> {
        self.current.as_ref()
    }

    /// How many keys open files.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when it holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// True when the file at `path` starts with the sealed-file magic.
pub fn is_sealed(path: &Path) -> io::Result<bool> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 8];
    let mut got = 0;
    while got < magic.len() {
        match f.read(&mut magic[got..])? {
            0 => return Ok(false),
            n => got += n,
        }
    }
    Ok(&magic == MAGIC)
}

/// Seals the WAV at `src` into `dst` (written to `dst.tmp`, synced, then
/// renamed, so `dst` is whole or absent). Returns the WAV's sha256 (hex)
/// and length, computed from the bytes that were sealed.
pub fn seal_file(src: &Path, dst: &Path, key: &RecordingKey) -> Result<(String, u64), SealError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| SealError::Io { what, path, source }
    };
    let mut input = File::open(src).map_err(io("cannot open", src))?;
    let len = input.metadata().map_err(io("cannot stat", src))?.len();
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| SealError::Corrupt {
        path: dst.to_owned(),
        why: "no random bytes for the salt".into(),
    })?;
    let header = header(&key.id, &salt, len);
    let file_key = key.file_key(&salt);
    let tmp = tmp_path(dst);
    let result = (|| {
        let mut out = io::BufWriter::with_capacity(
            CHUNK + TAG,
            File::create(&tmp).map_err(io("cannot create", &tmp))?,
        );
        out.write_all(&header).map_err(io("cannot write", &tmp))?;
        let mut hash = sha2::Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut done = 0u64;
        for i in 0..chunks(len) {
            let n = chunk_len(len, i);
            input
                .read_exact(&mut buf[..n])
                .map_err(io("cannot read", src))?;
            hash.update(&buf[..n]);
            let tag = file_key
                .seal_in_place_separate_tag(nonce(i), Aad::from(&header[..]), &mut buf[..n])
                .map_err(|_| SealError::Corrupt {
                    path: dst.to_owned(),
                    why: "encryption failed".into(),
                })?;
            out.write_all(&buf[..n]).map_err(io("cannot write", &tmp))?;
            out.write_all(tag.as_ref())
                .map_err(io("cannot write", &tmp))?;
            done += n as u64;
        }
        debug_assert_eq!(done, len);
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io("cannot write", &tmp))?;
        file.sync_all().map_err(io("cannot sync", &tmp))?;
        Ok(hex(&hash.finalize()))
    })();
    match result {
        Ok(sha) => {
            std::fs::rename(&tmp, dst).map_err(io("cannot rename", &tmp))?;
            if let Some(dir) = dst.parent().and_then(|d| File::open(d).ok()) {
                let _ = dir.sync_all();
            }
            Ok((sha, len))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// A sealed recording opened for reading: `Read + Seek` over the WAV,
/// decrypting (and authenticating) one chunk at a time.
pub struct SealedReader {
    file: File,
    path: PathBuf,
    header: [u8; HEADER_LEN],
    key: LessSafeKey,
    len: u64,
    pos: u64,
    /// The chunk in `plain`, if any.
    cached: Option<u64>,
    plain: Vec<u8>,
}

impl SealedReader {
    /// Opens a sealed file with a key from `keys`, checking its header and size.
    pub fn open(path: &Path, keys: &Keyring) -> Result<Self, SealError> {
        let corrupt = |why: &str| SealError::Corrupt {
            path: path.to_owned(),
            why: why.to_owned(),
        };
        let mut file = File::open(path).map_err(|source| SealError::Io {
            what: "cannot open",
            path: path.to_owned(),
            source,
        })?;
        let mut header = [0u8; HEADER_LEN];
        file.read_exact(&mut header)
            .map_err(|_| corrupt("shorter than a sealed recording's header"))?;
        if &header[..8] != MAGIC || header[8] != 1 || header[9] != 1 {
            return Err(corrupt("not a sealed recording (bad header)"));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&header[16..24]);
        let salt = &header[24..40];
        let len = u64::from_be_bytes(header[40..48].try_into().expect("8 bytes"));
        let chunk = u32::from_be_bytes(header[12..16].try_into().expect("4 bytes"));
        if chunk as usize != CHUNK {
            return Err(corrupt("unsupported chunk size"));
        }
        let size = file
            .metadata()
            .map_err(|source| SealError::Io {
                what: "cannot stat",
                path: path.to_owned(),
                source,
            })?
            .len();
        if size != sealed_len(len) {
            return Err(corrupt(&format!(
                "{size} bytes on disk, the header says {} (truncated or extended)",
                sealed_len(len)
            )));
        }
        let Some(master) = keys.keys.get(&id) else {
            return Err(SealError::UnknownKey {
                path: path.to_owned(),
                key_id: hex(&id),
            });
        };
        Ok(Self {
            file,
            path: path.to_owned(),
            key: master.file_key(salt),
            header,
            len,
            pos: 0,
            cached: None,
            plain: Vec::with_capacity(CHUNK + TAG),
        })
    }

    /// The WAV's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty WAV.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Decrypts chunk `i` into `plain`.
    fn load(&mut self, i: u64) -> io::Result<()> {
        if self.cached == Some(i) {
            return Ok(());
        }
        self.cached = None;
        let n = chunk_len(self.len, i);
        self.plain.resize(n + TAG, 0);
        self.file.seek(SeekFrom::Start(
            HEADER_LEN as u64 + i * (CHUNK + TAG) as u64,
        ))?;
        self.file.read_exact(&mut self.plain)?;
        let opened = self
            .key
            .open_in_place(nonce(i), Aad::from(&self.header[..]), &mut self.plain)
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: chunk {i} fails authentication (changed on disk, or the wrong key)",
                        self.path.display()
                    ),
                )
            })?
            .len();
        self.plain.truncate(opened);
        self.cached = Some(i);
        Ok(())
    }
}

impl Read for SealedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let i = self.pos / CHUNK as u64;
        self.load(i)?;
        let off = (self.pos % CHUNK as u64) as usize;
        let n = (self.plain.len() - off).min(buf.len());
        buf[..n].copy_from_slice(&self.plain[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SealedReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match pos {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start",
            )),
        }
    }
}

fn header(id: &[u8; 8], salt: &[u8; 16], len: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8] = 1; // version
    h[9] = 1; // AES-256-GCM
    h[12..16].copy_from_slice(&(CHUNK as u32).to_be_bytes());
    h[16..24].copy_from_slice(id);
    h[24..40].copy_from_slice(salt);
    h[40..48].copy_from_slice(&len.to_be_bytes());
    h
}

fn chunks(len: u64) -> u64 {
    len.div_ceil(CHUNK as u64).max(1)
}

fn chunk_len(len: u64, i: u64) -> usize {
    (len - (i * CHUNK as u64).min(len)).min(CHUNK as u64) as usize
}

/// The size on disk of a sealed WAV of `len` bytes.
pub fn sealed_len(len: u64) -> u64 {
    HEADER_LEN as u64 + len + chunks(len) * TAG as u64
}

fn nonce(i: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&i.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

fn tmp_path(dst: &Path) -> PathBuf {
    let mut s = dst.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "hotline-sealed-{name}-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn key(b: u8) -> RecordingKey {
        RecordingKey::from_bytes([b; 32])
    }

    #[test]
    fn round_trips_any_length_and_seeks() {
        let dir = scratch("rt");
        for len in [0usize, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 77] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let src = dir.join("a.wav");
            let dst = dir.join("a.wav.enc");
            std::fs::write(&src, &plain).unwrap();
            let (sha, n) = seal_file(&src, &dst, &key(1)).unwrap();
            assert_eq!(n, len as u64);
            assert_eq!(sha, hex(&sha2::Sha256::digest(&plain)));
            let sealed = std::fs::read(&dst).unwrap();
            assert_eq!(sealed.len() as u64, sealed_len(len as u64));
            assert!(is_sealed(&dst).unwrap());
            if len > 64 {
                assert!(
                    !sealed.windows(32).any(|w| w == &plain[10..42]),
                    "plaintext visible"
                );
            }
            let mut r = SealedReader::open(&dst, &Keyring::single(key(1))).unwrap();
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert_eq!(back, plain, "len {len}");
            if len > 10 {
                let at = len as u64 - 10;
                r.seek(SeekFrom::Start(at)).unwrap();
                let mut tail = Vec::new();
                r.read_to_end(&mut tail).unwrap();
                assert_eq!(tail, plain[at as usize..]);
            }
        }
    }

    #[test]
    fn a_flipped_byte_a_truncation_or_another_key_is_refused() {
        let dir = scratch("bad");
        let plain = vec![5u8; 2 * CHUNK + 10];
        let src = dir.join("b.wav");
        let dst = dir.join("b.wav.enc");
        std::fs::write(&src, &plain).unwrap();
        seal_file(&src, &dst, &key(2)).unwrap();
        let ring = Keyring::single(key(2));
        let good = std::fs::read(&dst).unwrap();

        let mut flipped = good.clone();
        flipped[HEADER_LEN + CHUNK + TAG + 3] ^= 1; // chunk 1
        std::fs::write(&dst, &flipped).unwrap();
        let mut r = SealedReader::open(&dst, &ring).unwrap();
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert!(e.to_string().contains("chunk 1"), "{e}");

        let mut header = good.clone();
        header[45] ^= 1; // the length
        std::fs::write(&dst, &header).unwrap();
        assert!(matches!(
            SealedReader::open(&dst, &ring),
            Err(SealError::Corrupt { .. })
        ));

        std::fs::write(&dst, &good[..good.len() - 1]).unwrap();
        assert!(matches!(
            SealedReader::open(&dst, &ring),
            Err(SealError::Corrupt { .. })
        ));

        std::fs::write(&dst, &good).unwrap();
        let e = SealedReader::open(&dst, &Keyring::single(key(3)))
            .err()
            .unwrap();
        assert!(
            e.to_string().contains(&key(2).id_hex()),
            "names the missing key: {e}"
        );
    }

    #[test]
    fn a_keyring_opens_files_of_retired_keys() {
        let dir = scratch("ring");
        std::fs::create_dir_all(dir.join("old")).unwrap();
        std::fs::write(
            dir.join("old/2026-01.key"),
            "# retired\n".to_owned() + &"ab".repeat(32),
        )
        .unwrap();
        std::fs::write(dir.join("current.key"), "cd".repeat(32) + "\n").unwrap();
        std::fs::write(dir.join("bad.key"), "xyz").unwrap();
        assert!(matches!(
            RecordingKey::load(&dir.join("bad.key")),
            Err(SealError::BadKey(_))
        ));
        let old = RecordingKey::load(&dir.join("old/2026-01.key")).unwrap();
        let src = dir.join("c.wav");
        std::fs::write(&src, b"RIFF old audio").unwrap();
        seal_file(&src, &dir.join("c.wav.enc"), &old).unwrap();
        let ring = Keyring::load(Some(&dir.join("current.key")), Some(&dir.join("old"))).unwrap();
        assert_eq!(ring.len(), 2);
        assert_ne!(ring.current().unwrap().id_hex(), old.id_hex());
        let mut r = SealedReader::open(&dir.join("c.wav.enc"), &ring).unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"RIFF old audio");
    }
}
