//! This node's part in the cluster's one ACD (hotline_store::leader,
//! hotline_desk::cluster; docs/architecture.md, "One ACD for the
//! cluster"): the election, a round a second — the node that leads says so
//! in the log and in `hotline_acd_leader`, and its desk decides for every
//! node; the others' desks follow it — and the desk's mail between nodes,
//! carried through PostgreSQL (a table and NOTIFY, migration 0021).

use std::time::Duration;

use hotline_desk::{ClusterEvent, ClusterInput, ClusterRole, DeskHandle, DeskMail};
use hotline_store::Store;
use hotline_store::leader::Elector;
use tokio::sync::mpsc;

/// How long a batch of outgoing mail is retried while the database is
/// away before it is dropped (the calls it was about have moved on).
const MAIL_RETRY_FOR: Duration = Duration::from_secs(10);
/// Mail is also looked for this often, in case a notification was missed.
const MAIL_SWEEP: Duration = Duration::from_secs(5);

/// Makes `desk` a node of the cluster (before this node takes calls or
/// pages: until the election's first word its desk decides nothing), then
/// runs the election and the desk's mail for `node` for as long as the
/// process runs.
pub async fn start(store: Store, node: String, desk: DeskHandle) {
    let (outbox, out_rx) = mpsc::unbounded_channel();
    desk.cluster(ClusterInput::SetCluster {
        node: node.clone(),
        outbox,
    })
    .await;
    tokio::spawn(async move {
        crate::records::migrated(&store, "ACD election", Duration::from_secs(2)).await;
        // Mail for this node's previous life: its calls and pages are gone.
        match store.discard_desk_mail(&node).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "stale desk mail discarded"),
            Err(e) => tracing::warn!(error = %e, "stale desk mail not discarded"),
        }
        tokio::spawn(send_mail(store.clone(), out_rx));
        tokio::spawn(receive_mail(store.clone(), node.clone(), desk.clone()));
        elect(store, node, desk).await;
    });
}

async fn elect(store: Store, node: String, desk: DeskHandle) {
    let mut leading: Option<i64> = None;
    let mut role: Option<ClusterRole> = None;
    let mut elector = Elector::new(store.clone(), node.clone());
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
            metrics::gauge!(crate::metrics::ACD_LEADER).set(if now.is_some() { 1.0 } else { 0.0 });
            leading = now;
        }
        // Who decides: this node, another (as the table says), or unknown
        // (the database is away: the desk keeps doing what it did).
        let next = match now {
            Some(epoch) => Some(ClusterRole::Leading { epoch }),
            None => match store.acd_leader().await {
                Ok(Some(l)) if l.node != node => Some(ClusterRole::Following {
                    leader: l.node,
                    epoch: l.epoch,
                }),
                _ => None,
            },
        };
        if next.is_some() && next != role {
            if let Some(r) = &next {
                desk.cluster(ClusterInput::Event(ClusterEvent::Role(r.clone())))
                    .await;
            }
            role = next;
        }
        // The leader lets go of the calls and pages of nodes that died; a
        // new leader starts deciding once every live node has announced.
        let as_of = std::time::Instant::now();
        if now.is_some()
            && let Ok(live) = store.live_nodes().await
        {
            let live = ClusterEvent::LiveNodes { live, as_of };
            desk.cluster(ClusterInput::Event(live)).await;
        }
    }
}

/// Sends the desk's mail in batches, in order.
async fn send_mail(store: Store, mut rx: mpsc::UnboundedReceiver<(String, DeskMail)>) {
    let mut batch: Vec<(String, String)> = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.clear();
        let mut next = Some(first);
        while let Some((to, mail)) = next {
            match serde_json::to_string(&mail) {
                Ok(body) => batch.push((to, body)),
                Err(e) => {
                    tracing::error!(error = %e, node = %to, "desk mail not serialisable; dropped")
                }
            }
            next = if batch.len() < 256 {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        let started = tokio::time::Instant::now();
        loop {
            match store.send_desk_mail(&batch).await {
                Ok(()) => break,
                Err(e) if started.elapsed() < MAIL_RETRY_FOR => {
                    tracing::warn!(error = %e, "desk mail not sent; retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, messages = batch.len(), "desk mail dropped");
                    break;
                }
            }
        }
    }
}

/// Takes this node's mail when woken (or every [`MAIL_SWEEP`]) and hands
/// it to the desk.
async fn receive_mail(store: Store, node: String, desk: DeskHandle) {
    loop {
        let mut listener = match store.listen_desk_mail().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for desk mail; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut sweep = tokio::time::interval(MAIL_SWEEP);
        // What came while nobody listened.
        take(&store, &node, &desk).await;
        loop {
            tokio::select! {
                woken = listener.next() => match woken {
                    Ok(Some(to)) if to != node => {}
                    // Ours, or the connection was lost (a notification may
                    // have gone with it).
                    Ok(_) => take(&store, &node, &desk).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "desk mail notifications failed; reconnecting");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                },
                _ = sweep.tick() => take(&store, &node, &desk).await,
            }
        }
    }
}

async fn take(store: &Store, node: &str, desk: &DeskHandle) {
    let bodies = match store.take_desk_mail(node).await {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!(error = %e, "desk mail not taken");
            return;
        }
    };
    for body in bodies {
        match serde_json::from_str::<DeskMail>(&body) {
            Ok(mail) => {
                let mail = ClusterEvent::Mail(Box::new(mail));
                desk.cluster(ClusterInput::Event(mail)).await
            }
            Err(e) => tracing::warn!(error = %e, "desk mail not understood; dropped"),
        }
    }
}
