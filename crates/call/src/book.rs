//! The callback book's side of the agent desk: booked callbacks that are due
//! come in ([`BookedCallback`]), and every step of one goes out
//! ([`CallbackProgress`]) for the binary to write to the `callbacks` table.
//! The desk never sees the database: as with [`crate::LookupProvider`], the
//! binary does the SQL (poll every few seconds, write back in order).

use std::net::SocketAddr;

/// A booked callback the desk should hold: due, not finished, not cancelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookedCallback {
    /// The desk's entry id: the id of the call that booked it (a queue
    /// overflow's entry has the same id, so it is never held twice).
    pub entry: String,
    /// Dialable (`+` and 5–15 digits): the book stores nothing else.
    pub number: String,
    /// `None`: the first configured queue.
    pub queue: Option<String>,
    /// Attempts already dialled (before a restart).
    pub attempts: u32,
    /// The trunk the booking call came in on, when known; `--callback-via`
    /// wins over it.
    pub via: Option<SocketAddr>,
    /// What the agent's offer shows: the slot chosen.
    pub slot: String,
}

/// A step of a callback the desk holds, keyed by its entry (the booking
/// call's id), in the order they happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackProgress {
    pub entry: String,
    /// `queued`, `dialing`, `done` or `abandoned` (the `callbacks` states).
    pub state: &'static str,
    /// Attempts dialled so far.
    pub attempts: u32,
    pub agent: Option<String>,
    /// `answered`, `no answer`, `no queue` …
    pub result: Option<String>,
}
