//! Two gateways on one database (issue 15, "Nodes"): what an admin does on
//! one node reaches the other's routing and flows within a second.
//!
//! Node A runs the embedded PostgreSQL; node B is given A's database
//! (`--database-url`) and a data dir of its own. Both have names of their
//! own (`--node-name`). The admin works through A's API only; B's live
//! agent states (its routing engine's view) and B's log (`flow loaded`)
//! show when B has followed.

use std::path::Path;
use std::time::{Duration, Instant};

use hotline_e2e::flows::flows_dir;
use hotline_e2e::{Gateway, poll_until};
use serde_json::{Value, json};

const TOKEN: &str = "two-nodes-e2e-admin-token";
/// Issue 15: "admin changes to agents and queues reach every node's routing
/// within 1 s"; "flows published on any node are live on every node within 1 s".
const WITHIN: Duration = Duration::from_secs(1);

fn small_flow(bye: &str) -> String {
    format!(
        "# e2e: two nodes\n\
         flow: main\n\
         languages: [en]\n\
         start: done\n\
         nodes:\n  \
           done:\n    \
             type: hangup\n    \
             prompt: {bye}\n    \
             outcome: self_served\n"
    )
}

fn api(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let body = body.map(|b| b.to_string());
    let (code, text) = gw
        .http_request(method, path, &[("Authorization", &auth)], body.as_deref())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// B's live agent states: (id, name) of every agent its routing knows.
fn routed_agents(gw: &Gateway) -> Vec<(String, String)> {
    let (code, v) = api(gw, "GET", "/api/agents/states", None);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["source"], "live", "{v}");
    v["agents"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            (
                a["agent"].as_str().unwrap_or_default().to_owned(),
                a["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Runs `change` on A and measures until `seen` holds on B.
fn until(
    change: impl FnOnce(),
    mut seen: impl FnMut() -> bool,
    what: &str,
    b: &Gateway,
) -> Duration {
    let t0 = Instant::now();
    change();
    poll_until(Duration::from_secs(10), || seen().then_some(())).unwrap_or_else(|| {
        panic!(
            "{what}: not seen on node B in 10 s; B's log:\n{}",
            b.log_tail()
        )
    });
    let took = t0.elapsed();
    eprintln!("[two_nodes] {what}: {took:?} from A's request to B");
    took
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

#[test]
fn admin_changes_and_publishes_on_one_node_reach_the_other_within_a_second() {
    let flows = flows_dir("two_nodes_flows", &small_flow("goodbye"));
    let token_file = flows.path().join("admin-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let common = [
        "--entry-flow",
        "main",
        "--flows-dir",
        path_str(flows.path()),
        "--admin-token-file",
        path_str(&token_file),
    ];
    let a = Gateway::start_with(
        "two_nodes_a",
        &[&common[..], &["--node-name", "node-a"]].concat(),
    );
    let url = format!(
        "postgres://hotline@localhost/hotline?host={}",
        a.data_dir().join("pg").display()
    );
    let b = Gateway::start_with(
        "two_nodes_b",
        &[
            &common[..],
            &["--node-name", "node-b", "--database-url", &url],
        ]
        .concat(),
    );

    // An agent created on A is in B's routing.
    let took = until(
        || {
            let (code, v) = api(
                &a,
                "POST",
                "/api/agents",
                Some(json!({"id": "ana", "name": "Ana", "password": "correct horse battery"})),
            );
            assert_eq!(code, 201, "{v}");
        },
        || routed_agents(&b).iter().any(|(id, _)| id == "ana"),
        "agent created",
        &b,
    );
    assert!(
        took <= WITHIN,
        "agent created on A reached B's routing in {took:?}"
    );

    // Renamed on A: B's routing has the new name.
    let took = until(
        || {
            let (code, v) = api(
                &a,
                "PUT",
                "/api/agents/ana",
                Some(json!({"name": "Ana Li"})),
            );
            assert_eq!(code, 200, "{v}");
        },
        || {
            routed_agents(&b)
                .iter()
                .any(|(id, n)| id == "ana" && n == "Ana Li")
        },
        "agent renamed",
        &b,
    );
    assert!(
        took <= WITHIN,
        "agent renamed on A reached B's routing in {took:?}"
    );

    // A queue with the agent, then the agent removed: B's routing drops it.
    let (code, q) = api(
        &a,
        "POST",
        "/api/queues",
        Some(json!({"name": "support", "members": ["ana"]})),
    );
    assert_eq!(code, 201, "{q}");
    let took = until(
        || {
            let (code, v) = api(&a, "DELETE", "/api/agents/ana", None);
            assert!((200..300).contains(&code), "{code} {v}");
        },
        || !routed_agents(&b).iter().any(|(id, _)| id == "ana"),
        "agent removed",
        &b,
    );
    assert!(
        took <= WITHIN,
        "agent removed on A left B's routing in {took:?}"
    );

    // A flow version saved and published on A is loaded by B.
    let (code, v2) = api(
        &a,
        "POST",
        "/api/flows/main/versions",
        Some(json!({ "yaml": small_flow("thank-you"), "based_on": 1, "comment": "two nodes" })),
    );
    assert_eq!(code, 201, "{v2}");
    let before = b.loaded_flow_versions().len();
    let took = until(
        || {
            let (code, p) = api(&a, "POST", "/api/flows/main/versions/2/publish", None);
            assert_eq!(code, 200, "{p}");
        },
        || b.loaded_flow_versions()[before..].iter().any(|v| v == "v2"),
        "flow published",
        &b,
    );
    assert!(
        took <= WITHIN,
        "a publish on A was live on B after {took:?}"
    );

    // Both nodes' calls land in one database under their own names.
    let leases = hotline_e2e::db::psql(&a.data_dir(), "SELECT node FROM node_leases ORDER BY node");
    assert_eq!(
        leases,
        vec![vec!["node-a".to_owned()], vec!["node-b".to_owned()]],
        "both nodes hold a lease"
    );
}
