//! The agent desk's configuration from the database: queues and agents as
//! the admin API keeps them, turned into the ACD's terms.

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use hotline_desk::{DeskHandle, DeskInput};
use hotline_routing::{AgentConfig, AgentState, AgentView, Overflow, QueueConfig};
use hotline_store::Store;
use tokio::sync::watch;

use crate::admin::AgentStateView;

/// Every queue and active agent, for `DeskInput::Configure`.
pub async fn load(
    store: &Store,
) -> Result<(Vec<QueueConfig>, Vec<AgentConfig>), hotline_store::StoreError> {
    let queues = store
        .list_queues()
        .await?
        .into_iter()
        .map(QueueConfig::from)
        .collect();
    let agents = store
        .list_agents()
        .await?
        .into_iter()
        .filter(|a| a.active)
        .map(AgentConfig::from)
        .collect();
    Ok((queues, agents))
}

/// Reloads the desk's queues and agents whenever they change: at once after
/// this node's admin API changed them (`changes`), and on every
/// `hotline_admin` notification (migration 0017), which any node's admin
/// API and the `hotline agents` command cause: so every node's routing
/// follows a change made anywhere within a database round trip.
pub fn follow_admin_changes(store: Store, desk: DeskHandle, mut changes: watch::Receiver<u64>) {
    let (s, d) = (store.clone(), desk.clone());
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            reload(&s, &d).await;
        }
    });
    tokio::spawn(async move {
        loop {
            let mut listener = match store.listen_admin_changes().await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot LISTEN for admin changes; retrying in 2 s");
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    continue;
                }
            };
            // What changed while nobody listened.
            reload(&store, &desk).await;
            loop {
                match listener.next().await {
                    Ok(Some(table)) => {
                        tracing::debug!(table = %table, "admin change notified; reloading queues and agents");
                        reload(&store, &desk).await;
                    }
                    Ok(None) => {
                        tracing::warn!("admin change notifications interrupted; reconnecting");
                        reload(&store, &desk).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "admin change notifications failed; reconnecting");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    });
}

async fn reload(store: &Store, desk: &DeskHandle) {
    match load(store).await {
        Ok((queues, agents)) => desk.send(DeskInput::Configure { queues, agents }).await,
        Err(e) => tracing::warn!(error = %e, "queues and agents not reloaded"),
    }
}

/// Publishes live agent states for the admin API and keeps their history
/// in the database.
pub fn live_states(store: Store, desk: &DeskHandle) -> watch::Receiver<Vec<AgentStateView>> {
    let mut rx = desk.watch_states();
    let decides = desk.clone();
    let (tx, out) = watch::channel(Vec::new());
    let epoch = (Instant::now(), Utc::now());
    let wall = move |at: Instant| -> DateTime<Utc> {
        match at.checked_duration_since(epoch.0) {
            Some(d) => epoch.1 + chrono::Duration::from_std(d).unwrap_or_default(),
            None => epoch.1 - chrono::Duration::from_std(epoch.0 - at).unwrap_or_default(),
        }
    };
    tokio::spawn(async move {
        let mut last: HashMap<String, &'static str> = HashMap::new();
        loop {
            let views: Vec<AgentView> = rx.borrow_and_update().clone();
            let mut out_views = Vec::with_capacity(views.len());
            for v in views {
                let reason = match &v.state {
                    AgentState::Away { reason } => Some(reason.clone()),
                    _ => None,
                };
                let name = v.state.name();
                let since = v.since.map(wall);
                // Only the node that decides keeps the history: the others
                // show the leader's view.
                let changed = last.insert(v.id.as_str().to_owned(), name) != Some(name);
                if changed && decides.decides() {
                    let at = since.unwrap_or_else(Utc::now);
                    if let Err(e) = store
                        .record_agent_state(v.id.as_str(), name, reason.as_deref(), at)
                        .await
                    {
                        tracing::debug!(error = %e, "agent state not recorded");
                    }
                }
                out_views.push(AgentStateView {
                    agent: v.id.as_str().to_owned(),
                    name: v.name.clone(),
                    state: name.to_owned(),
                    reason,
                    since,
                    call: v.call.as_ref().map(|c| c.as_str().to_owned()),
                });
            }
            tx.send_replace(out_views);
            if rx.changed().await.is_err() {
                break;
            }
        }
    });
    out
}

// ---- queues the flows send callers to (start-up check) ---------------------

/// Where a caller would be sent to a queue the desk does not know (the
/// caller holds until the queue's max wait, unanswered).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnknownQueue {
    /// An `enqueue` node of a loaded flow.
    Enqueue {
        flow: String,
        node: String,
        queue: String,
    },
    /// A configured queue's `overflow: queue:<name>`.
    Overflow { from: String, queue: String },
}

/// Every queue `flows` enqueue to, or `queues` overflow to, that is not one
/// of `queues`; in flow, node order, then queue order.
pub fn unknown_queues(flows: &[&hotline_ivr::Flow], queues: &[QueueConfig]) -> Vec<UnknownQueue> {
    let known: std::collections::BTreeSet<&str> = queues.iter().map(|q| q.name.as_str()).collect();
    let mut out = Vec::new();
    for flow in flows {
        for node in &flow.nodes {
            if let hotline_ivr::NodeKind::Enqueue(e) = &node.kind
                && !known.contains(e.queue.as_str())
            {
                out.push(UnknownQueue::Enqueue {
                    flow: flow.name.clone(),
                    node: node.id.clone(),
                    queue: e.queue.clone(),
                });
            }
        }
    }
    for q in queues {
        if let Overflow::Queue(to) = &q.overflow
            && !known.contains(to.as_str())
        {
            out.push(UnknownQueue::Overflow {
                from: q.name.as_str().to_owned(),
                queue: to.as_str().to_owned(),
            });
        }
    }
    out
}

/// Logs one WARN per [`unknown_queues`] entry for the flows in `flows_dir`
/// (read again here: the live set keeps its flows private).
pub fn warn_unknown_queues(
    flows_dir: &std::path::Path,
    sounds_dir: &std::path::Path,
    queues: &[QueueConfig],
) {
    let (set, _report) = hotline_ivr::FlowSet::open(
        flows_dir,
        hotline_ivr::LoadOptions {
            sounds_dir: Some(sounds_dir.to_owned()),
        },
    );
    let flows: Vec<_> = set.names().filter_map(|n| set.get(n)).collect();
    let flows: Vec<&hotline_ivr::Flow> = flows.iter().map(|f| &**f).collect();
    for unknown in unknown_queues(&flows, queues) {
        match unknown {
            UnknownQueue::Enqueue { flow, node, queue } => tracing::warn!(
                %flow, %node, %queue,
                "flow enqueues to a queue that is not configured: its callers wait unanswered \
                 (create it: POST /api/queues, or `hotline seed-demo` for the shipped flow)"
            ),
            UnknownQueue::Overflow { from, queue } => tracing::warn!(
                %from, %queue,
                "queue overflows to a queue that is not configured"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_routing::QueueName;

    #[test]
    fn flow_queues_that_are_not_configured_are_named() {
        let yaml = "\
flow: main
start: pick
nodes:
  pick:
    type: menu
    prompt: main-menu
    options:
      1: q-sales
      2: q-support
    on_exhausted: q-support
  q-sales:
    type: enqueue
    queue: sales
  q-support:
    type: enqueue
    queue: support
";
        let flow = hotline_ivr::load_str(
            "main.yaml".as_ref(),
            yaml,
            &hotline_ivr::LoadOptions::default(),
        )
        .expect("a valid flow");
        let mut support = QueueConfig::new("support");
        support.overflow = Overflow::Queue(QueueName::new("gone"));
        let unknown = unknown_queues(&[&flow], &[support]);
        assert_eq!(
            unknown,
            [
                UnknownQueue::Enqueue {
                    flow: "main".into(),
                    node: "q-sales".into(),
                    queue: "sales".into(),
                },
                UnknownQueue::Overflow {
                    from: "support".into(),
                    queue: "gone".into(),
                },
            ]
        );
        let all = [QueueConfig::new("sales"), QueueConfig::new("support")];
        assert_eq!(unknown_queues(&[&flow], &all), []);
    }

    /// `hotline seed-demo` creates exactly what the shipped flow needs.
    #[test]
    fn the_demo_seed_covers_the_shipped_flow() {
        let path = std::path::Path::new(&crate::test_support::manifest_dir())
            .join("../../ivr-flows/main.yaml");
        let flow = hotline_ivr::load_file(&path, &hotline_ivr::LoadOptions::default())
            .expect("ivr-flows/main.yaml loads");
        let seeded: Vec<QueueConfig> = Store::DEMO_QUEUES
            .iter()
            .map(|q| QueueConfig::new(*q))
            .collect();
        assert_eq!(unknown_queues(&[&flow], &seeded), []);
        assert_eq!(
            unknown_queues(&[&flow], &[]).len(),
            Store::DEMO_QUEUES.len()
        );
    }
}
