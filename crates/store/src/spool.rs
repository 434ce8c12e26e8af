//! The append-only spool: where event batches go while the database is
//! unreachable or slow, replayed in order when it is back.
//!
//! A spool is a directory of numbered segment files (`000000000001.jsonl`, …),
//! one event a JSON line, each batch written whole and fsync'd. Appends go
//! to the newest segment; the writer replays the oldest one and deletes it
//! only after every event in it is committed. A process never appends to a
//! segment it found at start (a crash may have torn its last line); torn
//! lines are skipped on replay (they were never acknowledged to anyone).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use hotline_events::CallEvent;

use crate::StoreError;

/// Start a new segment after this many bytes.
const SEGMENT_BYTES: u64 = 8 << 20;

/// The spool directory and its segments (see the module documentation).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// Sealed segments, oldest first (no longer appended to).
    sealed: VecDeque<u64>,
    /// The segment being appended to, and its size.
    current: Option<(u64, File, u64)>,
    next_id: u64,
}

/// A sealed segment read back for replay.
#[derive(Debug)]
pub struct Segment {
    /// The segment's number (its file name).
    pub id: u64,
    /// The events that parsed, in file order.
    pub events: Vec<CallEvent>,
    /// Lines that did not parse (a torn last write).
    pub skipped: usize,
}

impl Spool {
    /// Opens (creating) the spool directory and finds the segments left in it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io("cannot create", dir, e))?;
        let mut ids: Vec<u64> = std::fs::read_dir(dir)
            .map_err(|e| StoreError::io("cannot list", dir, e))?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                name.to_str()?.strip_suffix(".jsonl")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        let next_id = ids.last().map_or(1, |last| last + 1);
        Ok(Self {
            dir: dir.to_owned(),
            sealed: ids.into(),
            current: None,
            next_id,
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when nothing waits for replay.
    pub fn is_empty(&self) -> bool {
        self.sealed.is_empty() && self.current.is_none()
    }

    /// Segment files present (sealed and current).
    pub fn segments(&self) -> usize {
        self.sealed.len() + usize::from(self.current.is_some())
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:012}.jsonl"))
    }

    /// Appends a batch and fsyncs it: once this returns Ok the batch survives a crash.
    pub fn append(&mut self, batch: &[CallEvent]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.current.as_ref().is_some_and(|c| c.2 >= SEGMENT_BYTES) {
            self.seal();
        }
        if self.current.is_none() {
            let id = self.next_id;
            self.next_id += 1;
            let path = self.path(id);
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(|e| StoreError::io("cannot create spool segment", &path, e))?;
            sync_dir(&self.dir)?;
            self.current = Some((id, file, 0));
        }
        let mut buf = Vec::with_capacity(batch.len() * 256);
        for ev in batch {
            serde_json::to_writer(&mut buf, ev).map_err(StoreError::Encode)?;
            buf.push(b'\n');
        }
        let path = self.path(self.current.as_ref().map_or(0, |c| c.0));
        let (_, file, size) = self.current.as_mut().expect("opened above");
        file.write_all(&buf)
            .and_then(|()| file.sync_data())
            .map_err(|e| StoreError::io("cannot write spool segment", &path, e))?;
        *size += buf.len() as u64;
        Ok(())
    }

    /// Stops appending to the current segment (the next append starts a new one).
    fn seal(&mut self) {
        if let Some((id, _, _)) = self.current.take() {
            self.sealed.push_back(id);
        }
    }

    /// Reads the oldest segment for replay, sealing the current one if it is
    /// the only one. `None` when the spool is empty.
    pub fn oldest(&mut self) -> Result<Option<Segment>, StoreError> {
        if self.sealed.is_empty() {
            self.seal();
        }
        let Some(&id) = self.sealed.front() else {
            return Ok(None);
        };
        let path = self.path(id);
        let file = File::open(&path).map_err(|e| StoreError::io("cannot open", &path, e))?;
        let mut events = Vec::new();
        let mut skipped = 0;
        for line in BufReader::new(file).split(b'\n') {
            let line = line.map_err(|e| StoreError::io("cannot read", &path, e))?;
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<CallEvent>(&line) {
                Ok(ev) => events.push(ev),
                Err(_) => skipped += 1,
            }
        }
        Ok(Some(Segment {
            id,
            events,
            skipped,
        }))
    }

    /// Deletes a replayed (committed) segment.
    pub fn remove(&mut self, id: u64) -> Result<(), StoreError> {
        let path = self.path(id);
        std::fs::remove_file(&path).map_err(|e| StoreError::io("cannot remove", &path, e))?;
        sync_dir(&self.dir)?;
        self.sealed.retain(|s| *s != id);
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("cannot sync", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{SubsecRound, Utc};
    use hotline_events::EventData;
    use uuid::Uuid;

    fn events(n: u32) -> Vec<CallEvent> {
        let id = Uuid::new_v4();
        (0..n)
            .map(|seq| CallEvent {
                call_id: id,
                sip_call_id: "x".into(),
                seq,
                at: Utc::now().trunc_subsecs(6),
                node: None,
                data: EventData::Digit {
                    digit: "1".into(),
                    transport: "info".into(),
                    duration_ms: Some(100),
                    masked: None,
                },
            })
            .collect()
    }

    /// A segment written before events were typed (`kind` and `data` as
    /// `StoredEvent` wrote them) replays as typed events.
    #[test]
    fn an_old_segment_reads_typed() {
        let dir = std::env::temp_dir().join(format!("hotline-spool-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let line = r#"{"call_id":"0b9e8f3c-2f6a-4a5e-9d41-7c2a1e5b8d10","sip_call_id":"x","seq":3,"at":"2024-05-01T10:00:00.000123Z","kind":"hangup","node":null,"data":{"cause":"BYE","ended_by":"caller"}}"#;
        std::fs::write(dir.join("000000000001.jsonl"), format!("{line}\n")).unwrap();
        let mut spool = Spool::open(&dir).unwrap();
        let seg = spool.oldest().unwrap().unwrap();
        assert_eq!((seg.events.len(), seg.skipped), (1, 0));
        assert!(matches!(
            &seg.events[0].data,
            EventData::Hangup { cause, .. } if cause == "BYE"
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn batches_come_back_in_order_and_torn_lines_are_skipped() {
        let dir = std::env::temp_dir().join(format!("hotline-spool-{}", Uuid::new_v4()));
        let mut spool = Spool::open(&dir).unwrap();
        assert!(spool.is_empty());
        let a = events(3);
        let b = events(2);
        spool.append(&a).unwrap();
        spool.append(&b).unwrap();
        // A crash mid-write: a torn line at the end of the segment.
        drop(spool);
        let seg_path = dir.join("000000000001.jsonl");
        let mut f = OpenOptions::new().append(true).open(&seg_path).unwrap();
        f.write_all(b"{\"call_id\":\"abc").unwrap();

        let mut spool = Spool::open(&dir).unwrap();
        assert!(!spool.is_empty());
        spool.append(&events(1)).unwrap(); // goes to a new segment
        let seg = spool.oldest().unwrap().unwrap();
        assert_eq!(seg.id, 1);
        assert_eq!(seg.skipped, 1);
        assert_eq!(seg.events, [a, b].concat());
        spool.remove(seg.id).unwrap();
        let seg = spool.oldest().unwrap().unwrap();
        assert_eq!((seg.id, seg.events.len()), (2, 1));
        spool.remove(seg.id).unwrap();
        assert!(spool.is_empty());
        assert!(spool.oldest().unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
