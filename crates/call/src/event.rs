//! Call events: the ordered path of one call, as the record and the logs see it.
//!
//! A call actor numbers its events itself (`seq` from 0, contiguous), so a
//! consumer can detect a gap or a replay without any shared counter. Events
//! leave the actor over a bounded channel; [`EventLog`] is the first consumer
//! (a JSON-lines file under the data directory), the database writer joins it
//! later behind the same [`EventSink`].

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use uuid::Uuid;

/// Who ended a call, as the record names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    Caller,
    Gateway,
    Agent,
    Timeout,
}

impl EndedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            EndedBy::Caller => "caller",
            EndedBy::Gateway => "gateway",
            EndedBy::Agent => "agent",
            EndedBy::Timeout => "timeout",
        }
    }
}

/// One step of a call's path.
#[derive(Clone, Debug, Serialize)]
pub struct CallEvent {
    pub call_id: Uuid,
    pub sip_call_id: String,
    pub seq: u32,
    #[serde(serialize_with = "micros")]
    pub at: DateTime<Utc>,
    pub kind: &'static str,
    pub node: Option<String>,
    pub data: Value,
}

fn micros<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// Where call events go. Cloned into every call actor.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<CallEvent>,
}

impl EventSink {
    pub fn new(tx: mpsc::Sender<CallEvent>) -> Self {
        Self { tx }
    }

    /// Queues an event. Waits when the consumer is behind: an event is part
    /// of a record and is never dropped to save time.
    pub async fn emit(&self, ev: CallEvent) {
        if self.tx.send(ev).await.is_err() {
            tracing::error!("call event consumer is gone; event lost");
        }
    }
}

/// Stamps events of one call with its ids and a contiguous sequence number.
pub struct CallEventStamper {
    pub call_id: Uuid,
    pub sip_call_id: String,
    next_seq: u32,
    sink: EventSink,
}

impl CallEventStamper {
    pub fn new(call_id: Uuid, sip_call_id: String, sink: EventSink) -> Self {
        Self {
            call_id,
            sip_call_id,
            next_seq: 0,
            sink,
        }
    }

    pub async fn emit(&mut self, kind: &'static str, node: Option<&str>, data: Value) {
        let ev = CallEvent {
            call_id: self.call_id,
            sip_call_id: self.sip_call_id.clone(),
            seq: self.next_seq,
            at: Utc::now(),
            kind,
            node: node.map(str::to_owned),
            data,
        };
        self.next_seq += 1;
        self.sink.emit(ev).await;
    }
}

/// Appends call events as JSON lines to a file, flushing after each batch.
pub struct EventLog {
    path: PathBuf,
}

impl EventLog {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
        }
    }

    /// Consumes events until every sender is gone.
    pub async fn run(self, mut rx: mpsc::Receiver<CallEvent>) -> std::io::Result<()> {
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await?;
        let mut batch = Vec::with_capacity(64);
        let mut buf = Vec::with_capacity(16 * 1024);
        while rx.recv_many(&mut batch, 256).await > 0 {
            buf.clear();
            for ev in batch.drain(..) {
                if serde_json::to_writer(&mut buf, &ev).is_ok() {
                    buf.push(b'\n');
                }
            }
            file.write_all(&buf).await?;
            file.flush().await?;
        }
        Ok(())
    }
}
