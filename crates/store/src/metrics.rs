//! The store's Prometheus figures (docs/operations.md, "Metrics"), through
//! the `metrics` facade (a no-op until the binary installs a recorder).

use std::time::Duration;

use crate::record::OUTCOMES;

/// Calls completed (their `call_ended` committed), by `outcome`.
pub const CALLS: &str = "hotline_calls_total";
/// One batch of events written to PostgreSQL (commit included).
pub const WRITER_BATCH: &str = "hotline_writer_batch_seconds";
/// Database operations that failed, by `op`.
pub const DB_ERRORS: &str = "hotline_db_errors_total";
/// Times the writer turned to the spool because more events waited than
/// the database kept up with (`WriterConfig::backlog_max`).
pub const WRITER_BEHIND: &str = "hotline_writer_behind_total";

/// The `outcome` label: one of [`OUTCOMES`], `none` when no event set one,
/// `other` otherwise (a row the schema would refuse).
pub fn outcome_label(outcome: Option<&str>) -> &'static str {
    match outcome {
        None => "none",
        Some(o) => OUTCOMES
            .iter()
            .find(|k| **k == o)
            .copied()
            .unwrap_or("other"),
    }
}

/// A call's `call_ended` was committed with this outcome.
pub(crate) fn call_completed(outcome: Option<&str>) {
    metrics::counter!(CALLS, "outcome" => outcome_label(outcome)).increment(1);
}

/// A batch write took `took` (successful or not).
pub(crate) fn batch_written(took: Duration) {
    metrics::histogram!(WRITER_BATCH).record(took.as_secs_f64());
}

/// The writer spools a batch because the database is behind the calls.
pub(crate) fn behind() {
    metrics::counter!(WRITER_BEHIND).increment(1);
}

/// A database operation `op` (`write`: the writer's batches and replays)
/// failed.
pub(crate) fn db_error(op: &'static str) {
    metrics::counter!(DB_ERRORS, "op" => op).increment(1);
}
