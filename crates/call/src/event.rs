//! Call events: the ordered path of one call, as the record and the logs see it.
//!
//! A call actor numbers its events itself (`seq` from 0, contiguous), so a
//! consumer can detect a gap or a replay without any shared counter. Events
//! leave the actor over a bounded channel; [`EventLog`] is the first consumer
//! (a JSON-lines file under the data directory), the database writer joins it
//! later behind the same [`EventSink`].

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use uuid::Uuid;

/// The event types themselves live in `hotline-events`, shared with the
/// record writer (`hotline-store`).
pub use hotline_events::{CallEvent, EndedBy, EventData};

/// Where call events go. Cloned into every call actor.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::Sender<CallEvent>,
}

impl EventSink {
    /// A sink feeding `tx`; whoever holds the receiver (e.g.
    /// [`EventLog::run`]) consumes the events.
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

    /// Queues an event if there is room now; gives it back when the
    /// consumer is behind (then [`emit`](Self::emit) waits for room).
    fn try_emit(&self, ev: CallEvent) -> Option<CallEvent> {
        match self.tx.try_send(ev) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(ev)) => Some(ev),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!("call event consumer is gone; event lost");
                None
            }
        }
    }
}

/// Stamps events of one call with its ids and a contiguous sequence number.
pub struct CallEventStamper {
    /// The call record's id: a fresh UUID per call (and per callback
    /// attempt), not the SIP Call-ID.
    pub call_id: Uuid,
    /// The dialog's SIP Call-ID as the trunk sent it; `cb-<uuid>` for a
    /// callback leg, whose INVITE we send.
    pub sip_call_id: String,
    next_seq: u32,
    sink: EventSink,
}

impl CallEventStamper {
    /// Numbers the call's events from `seq` 0 and queues them on `sink`.
    pub fn new(call_id: Uuid, sip_call_id: String, sink: EventSink) -> Self {
        Self {
            call_id,
            sip_call_id,
            next_seq: 0,
            sink,
        }
    }

    /// Stamps and queues one event; `node` is the IVR node it happened at.
    pub async fn emit(&mut self, data: EventData, node: Option<&str>) {
        let ev = CallEvent {
            call_id: self.call_id,
            sip_call_id: self.sip_call_id.clone(),
            seq: self.next_seq,
            at: Utc::now(),
            node: node.map(str::to_owned),
            data,
        };
        self.next_seq += 1;
        // The wait, rare, is boxed: inline, the send future would sit in
        // every call's task (~1 KiB each) for the few times it is needed.
        if let Some(ev) = self.sink.try_emit(ev) {
            Box::pin(self.sink.emit(ev)).await;
        }
    }
}

/// A step the IVR interpreter recorded (`Action::Record`: a kind and its data
/// as JSON), typed. Data that does not fit its kind is a bug in the
/// interpreter; it is still recorded as it came (an `EventData::Other`).
pub(crate) fn flow_record(kind: &str, data: Value) -> EventData {
    let data = EventData::from_parts(kind, data);
    if data.is_other() {
        tracing::error!(
            kind,
            ?data,
            "the flow recorded an event that does not match docs/call-events.md"
        );
    }
    data
}

/// Appends call events as JSON lines to a file, flushing after each batch.
pub struct EventLog {
    path: PathBuf,
}

impl EventLog {
    /// A log appending to the file at `path`, created by [`EventLog::run`]
    /// if it does not exist.
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use hotline_ivr::sim::SimStep;
    use hotline_ivr::{Action, Fixtures, LoadOptions, SimOptions, load_file, simulate};

    use super::*;

    /// Every event the IVR interpreter records types (no `EventData::Other`)
    /// and writes back the JSON it came as: the flows' events keep their
    /// shape in the log and the database.
    #[test]
    fn the_flows_records_type_and_keep_their_json() {
        let root = Path::new(
            &std::env::var("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
        )
        .join("../..");
        let fixtures = Fixtures::parse(
            r#"
subscriber_by_caller_id:
  "+8613800000000": { name: Li Lei, renews_on: 2027-03-01 }
order_by_number:
  "123456": { status: paid, amount: 250 }
  "222222": { error: database unavailable }
  "333333": timeout
webhook:
  "http://crm.test/vip": { level: gold }
"#,
        )
        .unwrap();
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&Utc)
        };
        let flows = [
            "crates/ivr/tests/fixtures/all-kinds.yaml",
            "ivr-flows/main.yaml",
        ];
        let scripts = [
            "1 1",
            "2 1",
            "1",
            "1 7 0",
            "1 2 123456",
            "1 2 0123# 12# 123456#",
            "1 2 999999",
            "1 2 222222",
            "1 2 333333",
            "1 3",
            "1 4",
            "~2 1",
            "- - - -",
            "9 9 9 9",
            "1 1 1 1 1",
            "2 2 2 2 2",
            "1 3 1 2",
        ];
        let times = [
            "2026-12-21T10:00:00+08:00",
            "2026-12-21T20:00:00+08:00",
            "2026-12-25T10:00:00+08:00",
        ];
        let mut kinds = std::collections::BTreeSet::new();
        for path in flows {
            let flow = Arc::new(load_file(&root.join(path), &LoadOptions::default()).unwrap());
            // A SIP user name for a caller: a callback cannot be booked.
            let runs = scripts.iter().flat_map(|d| {
                times
                    .iter()
                    .flat_map(move |w| ["+8613800000000", "alice"].map(|c| (*d, *w, c)))
            });
            for (digits, when, caller) in runs {
                let opts = SimOptions {
                    digits: digits.into(),
                    at: at(when),
                    caller: caller.into(),
                    fixtures: fixtures.clone(),
                    ..SimOptions::default()
                };
                let t = simulate(flow.clone(), &opts).unwrap();
                for (_, step) in &t.steps {
                    let SimStep::Action(Action::Record { kind, data, .. }) = step else {
                        continue;
                    };
                    let typed = EventData::from_parts(kind, data.clone());
                    assert!(!typed.is_other(), "{path} {digits:?}: {kind} {data}");
                    assert_eq!(&typed.data_json().unwrap(), data, "{path}: {kind}");
                    kinds.insert(*kind);
                }
            }
        }
        assert!(kinds.len() >= 14, "the scripts reach most kinds: {kinds:?}");
    }
}
