//! Reading a recording back: plain or sealed, its sha256 checked first.
//!
//! Every read of a recording goes through [`open_recording`]: it reads the
//! whole WAV once (decrypting a sealed file), compares its sha256 with the
//! one the `recordings` row holds, and only then hands out a reader. A
//! mismatch is [`RecordingError::Mismatch`], never a silently served file.
//! A sealed file also authenticates every chunk it decrypts, so a byte
//! changed on disk after the check still fails the read.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::Digest;
use uuid::Uuid;

use crate::sealed::{Keyring, SealError, SealedReader, is_sealed};

/// A `recordings` row with its deletion mark.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct StoredRecording {
    /// The recording's id.
    pub id: Uuid,
    /// The call it belongs to.
    pub call_id: Uuid,
    /// The file, absolute (a sealed one ends in `.enc`).
    pub path: String,
    /// Length of the WAV in bytes (the plaintext, for a sealed file).
    pub bytes: i64,
    /// Lowercase hex sha256 of the WAV (the plaintext, for a sealed file).
    pub sha256: Option<String>,
    /// When its file was deleted on purpose (retention, erasure).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Why: `retention` or `erase`.
    pub deleted_reason: Option<String>,
}

/// Why a recording cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// Its file was deleted on purpose.
    #[error("recording {id} was deleted ({reason}) at {at}")]
    Deleted {
        /// The recording.
        id: Uuid,
        /// `retention` or `erase`.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The file is not there.
    #[error("recording file {0} is missing")]
    Missing(PathBuf),
    /// The file's sha256 is not the one recorded when it was written.
    #[error("recording {path}: checksum mismatch (recorded sha256 {expected}, file has {actual})")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The recorded sha256.
        expected: String,
        /// The file's.
        actual: String,
    },
    /// A sealed file that cannot be opened or fails authentication.
    #[error(transparent)]
    Sealed(#[from] SealError),
    /// Reading failed (for a sealed file: a chunk failed authentication).
    #[error("recording {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl RecordingError {
    /// True when the file is there but is not what was recorded (checksum
    /// mismatch, a sealed chunk that fails authentication, a bad header).
    pub fn is_corrupt(&self) -> bool {
        match self {
            Self::Mismatch { .. } | Self::Sealed(SealError::Corrupt { .. }) => true,
            Self::Io { source, .. } => source.kind() == io::ErrorKind::InvalidData,
            _ => false,
        }
    }
}

/// A recording's WAV, verified: `Read + Seek` over the plain bytes.
pub struct RecordingReader {
    inner: Inner,
    len: u64,
    /// False when the row had no sha256 to check against.
    checked: bool,
}

enum Inner {
    Plain(File),
    Sealed(Box<SealedReader>),
}

impl RecordingReader {
    /// The WAV's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the sha256 was compared (false: the row had none).
    pub fn checked(&self) -> bool {
        self.checked
    }

    /// Whether the file on disk is sealed.
    pub fn sealed(&self) -> bool {
        matches!(self.inner, Inner::Sealed(_))
    }
}

impl Read for RecordingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(f) => f.read(buf),
            Inner::Sealed(s) => s.read(buf),
        }
    }
}

impl Seek for RecordingReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match &mut self.inner {
            Inner::Plain(f) => f.seek(to),
            Inner::Sealed(s) => s.seek(to),
        }
    }
}

/// Opens a recording for reading: decrypts a sealed file with `keys`,
/// reads it whole once to compare its sha256 with the recorded one, and
/// returns a reader at the start. Blocking I/O: call it from a blocking task.
pub fn open_recording(
    rec: &StoredRecording,
    keys: Option<&Keyring>,
) -> Result<RecordingReader, RecordingError> {
    if let (Some(at), reason) = (rec.deleted_at, &rec.deleted_reason) {
        return Err(RecordingError::Deleted {
            id: rec.id,
            reason: reason.clone().unwrap_or_else(|| "deleted".into()),
            at,
        });
    }
    let path = Path::new(&rec.path);
    let io_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            RecordingError::Missing(path.to_owned())
        } else {
            RecordingError::Io {
                path: path.to_owned(),
                source,
            }
        }
    };
    let sealed = is_sealed(path).map_err(io_err)?;
    let (inner, len) = if sealed {
        let keys = keys.ok_or_else(|| SealError::NoKeys(path.to_owned()))?;
        let r = SealedReader::open(path, keys)?;
        let len = r.len();
        (Inner::Sealed(Box::new(r)), len)
    } else {
        let f = File::open(path).map_err(io_err)?;
        let len = f.metadata().map_err(io_err)?.len();
        (Inner::Plain(f), len)
    };
    let mut reader = RecordingReader {
        inner,
        len,
        checked: false,
    };
    if let Some(expected) = &rec.sha256 {
        let actual = sha256_of(&mut reader).map_err(|source| RecordingError::Io {
            path: path.to_owned(),
            source,
        })?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(RecordingError::Mismatch {
                path: path.to_owned(),
                expected: expected.clone(),
                actual,
            });
        }
        reader.checked = true;
        reader
            .seek(SeekFrom::Start(0))
            .map_err(|source| RecordingError::Io {
                path: path.to_owned(),
                source,
            })?;
    }
    Ok(reader)
}

fn sha256_of(r: &mut impl Read) -> io::Result<String> {
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::sealed::hex(&h.finalize()))
}
