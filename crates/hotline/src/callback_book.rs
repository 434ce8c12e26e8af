//! The callback book between the `callbacks` table and the agent desk: every
//! few seconds the due, open bookings go to the desk (which takes those it
//! does not hold: IVR bookings whose slot came, and after a restart every
//! open one), with the ones admins cancelled lately; and every step the
//! desk reports (queued, dialing, done, abandoned) is written back, in
//! order, retried while the database is away.

use std::time::Duration;

use chrono::Utc;
use hotline_desk::{BookedCallback, CallbackProgress, DeskHandle, DeskInput};
use hotline_store::{Store, Uuid};
use tokio::sync::mpsc;

/// How often the book is read: a slot's callback reaches the agents at
/// most this late (and an admin's cancel takes effect within it).
const POLL: Duration = Duration::from_secs(5);
/// How far back cancels are looked for: comfortably more than one poll.
const CANCEL_WINDOW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Starts both directions.
pub async fn start(store: Store, desk: DeskHandle) {
    let (tx, rx) = mpsc::unbounded_channel();
    desk.send(DeskInput::SetCallbackBook(tx)).await;
    tokio::spawn(write_back(store.clone(), rx));
    tokio::spawn(poll(store, desk));
}

async fn poll(store: Store, desk: DeskHandle) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match read(&store).await {
            Ok(input) => desk.send(input).await,
            Err(e) => tracing::warn!(error = %e, "cannot read the callback book; retrying"),
        }
    }
}

async fn read(store: &Store) -> Result<DeskInput, hotline_store::StoreError> {
    let now = Utc::now();
    let rows = store.due_callbacks(now).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.call_id).collect();
    let sources = store.call_sources(&ids).await?;
    let due = rows
        .into_iter()
        .map(|r| {
            let call = sources.iter().find(|s| s.id == r.call_id);
            let via = call.and_then(|s| s.source.as_deref()?.parse().ok());
            // A queue overflow's entry keeps the caller's place.
            let queued_since = call
                .filter(|_| r.source == "queue_overflow")
                .and_then(|s| s.queued_at)
                .map(std::time::SystemTime::from);
            BookedCallback {
                entry: r.call_id.to_string(),
                number: r.number,
                queue: r.queue,
                attempts: u32::try_from(r.attempts).unwrap_or(0),
                via,
                slot: r.slot,
                queued_since,
            }
        })
        .collect();
    let cancelled = store
        .cancelled_callbacks_since(now - CANCEL_WINDOW)
        .await?
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    Ok(DeskInput::Booked { due, cancelled })
}

async fn write_back(store: Store, mut rx: mpsc::UnboundedReceiver<CallbackProgress>) {
    while let Some(p) = rx.recv().await {
        let Ok(call) = p.entry.parse::<Uuid>() else {
            continue;
        };
        let attempts = i32::try_from(p.attempts).unwrap_or(i32::MAX);
        // In order: a later step must not overtake this one, so wait for
        // the database rather than skip (the desk goes on meanwhile).
        let mut delay = Duration::from_millis(200);
        loop {
            match store
                .update_callback_of_call(
                    call,
                    p.state,
                    attempts,
                    p.agent.as_deref(),
                    p.result.as_deref(),
                )
                .await
            {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(call = %call, state = p.state, error = %e, "cannot write a callback step; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}
