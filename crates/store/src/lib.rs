//! Call records in PostgreSQL: the schema (`migrations/`), the embedded
//! default cluster, the call-record writer and its spool.
//!
//! For: turning `hotline_events::CallEvent`s into exactly one `calls`
//! row per call, its ordered `call_events` and its `recordings`, without
//! losing any when the database is away. Not for: producing events (see
//! `hotline-call`) or reading reports (later: the admin API).
//!
//! ```no_run
//! # async fn demo(rx: tokio::sync::mpsc::Receiver<hotline_events::CallEvent>) -> Result<(), hotline_store::StoreError> {
//! use hotline_store::{Store, Writer, WriterConfig};
//! let store = Store::connect(Store::options_from_url("postgres://localhost/hotline")?).await?;
//! store.migrate().await?;
//! let writer = Writer::new(store, "data/spool".as_ref(), WriterConfig::new("gw1"))?;
//! tokio::spawn(writer.run(rx));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod admin_sessions;
pub mod agent_calls;
pub mod agents;
pub mod call_search;
pub mod callbacks;
mod db;
pub mod desk_mail;
pub mod edge_bans;
pub mod embedded;
mod error;
pub mod flow_versions;
pub mod leader;
pub mod leases;
mod lookup;
pub mod mask;
pub mod metrics;
pub mod privacy;
pub mod record;
pub mod recording_file;
pub mod reports;
pub mod sealed;
mod seed;
pub mod seed_calls;
pub mod spool;
pub mod testing;
pub mod voicemails;
pub mod wav_probe;
mod writer;

pub use admin_sessions::AdminSession;
pub use agent_calls::AgentCall;
pub use agents::{Agent, AgentUpdate, NewAgent, NewQueue, Queue, QueueUpdate, Role};
pub use callbacks::{CallSource, CallbackRow};
pub use db::{MIGRATOR, SeedCounts, Store};
pub use embedded::{EmbeddedOptions, EmbeddedPostgres, PgBinaries, create_database};
pub use error::StoreError;
pub use flow_versions::{FlowSummary, FlowVersion};
pub use leases::TakenOver;
pub use privacy::{
    AuditEntry, EraseReport, EventFiles, Keep, RetentionDays, RetentionPolicy, RetentionReport,
};
pub use record::{CallRecord, EventRow, RecordingRow, derive_call};
pub use recording_file::{RecordingError, RecordingReader, StoredRecording, open_recording};
pub use sealed::{Keyring, RecordingKey, SealError};
pub use sqlx::postgres::PgConnectOptions;
/// Call, recording and callback ids.
pub use uuid::Uuid;
pub use writer::{Writer, WriterConfig, WriterStats, prepare, prepare_sealed, sha256_file};
