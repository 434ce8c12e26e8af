//! This node's part in electing the cluster's one ACD leader
//! (hotline_store::leader; docs/architecture.md, "One ACD for the
//! cluster"). A round a second: a node that leads says so in the log and
//! in `hotline_acd_leader`; one that loses its database session loses the
//! lead with it, and another node takes over within about a second.
//!
//! What is built: the election and its failover. What is not yet: the
//! desk deciding for the whole cluster on the leader (each node still
//! routes its own callers to the agents connected to it; docs/scaling.md).

use std::time::Duration;

use hotline_store::Store;
use hotline_store::leader::Elector;
use tokio::sync::watch;

/// `hotline_acd_leader`: 1 while this node leads the ACD, else 0.
pub const ACD_LEADER: &str = "hotline_acd_leader";

/// Runs the election for `node`; the receiver holds this node's epoch
/// while it leads.
pub fn spawn_elector(store: Store, node: String) -> watch::Receiver<Option<i64>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        // The table comes with the migrations the writer may still run.
        while store.migrate().await.is_err() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let mut elector = Elector::new(store, node);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = false;
        loop {
            tick.tick().await;
            let now = match elector.round().await {
                Ok(epoch) => {
                    warned = false;
                    epoch
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!(error = %e, "ACD election: no database session");
                        warned = true;
                    }
                    None
                }
            };
            let before = *tx.borrow();
            if now != before {
                match now {
                    Some(epoch) => tracing::info!(epoch, "this node leads the ACD"),
                    None => tracing::warn!("this node no longer leads the ACD"),
                }
                metrics::gauge!(ACD_LEADER).set(if now.is_some() { 1.0 } else { 0.0 });
                if tx.send(now).is_err() {
                    break;
                }
            }
        }
    });
    rx
}
