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

/// Runs the election for `node` for as long as the process runs.
pub fn spawn_elector(store: Store, node: String) {
    tokio::spawn(async move {
        crate::records::migrated(&store, "ACD election", Duration::from_secs(2)).await;
        let mut leading: Option<i64> = None;
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
            if now != leading {
                match now {
                    Some(epoch) => tracing::info!(epoch, "this node leads the ACD"),
                    None => tracing::warn!("this node no longer leads the ACD"),
                }
                metrics::gauge!(crate::metrics::ACD_LEADER).set(if now.is_some() {
                    1.0
                } else {
                    0.0
                });
                leading = now;
            }
        }
    });
}
