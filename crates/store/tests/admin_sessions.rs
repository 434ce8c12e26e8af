//! Roles, admin console sessions and the audit log's pages against a real
//! PostgreSQL (a fresh database per test, see `hotline_store::testing`).

use std::time::Duration;

use hotline_store::agents::Role;
use hotline_store::testing::fresh_db;
use hotline_store::{AgentUpdate, NewAgent, StoreError};
use serde_json::json;

#[tokio::test]
async fn roles_are_stored_and_changed() {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let store = &db.store;
    let a = store
        .create_agent(NewAgent::new("a1", "Ada", "correct horse"))
        .await
        .unwrap();
    assert_eq!(a.role, Role::Agent, "agent by default");
    let boss = store
        .create_agent(NewAgent::new("boss", "Boss", "correct horse").with_role(Role::Admin))
        .await
        .unwrap();
    assert_eq!(boss.role, Role::Admin);
    let a = store
        .update_agent(
            "a1",
            AgentUpdate {
                role: Some(Role::Supervisor),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(a.role, Role::Supervisor);
    assert_eq!(
        store.agent("a1").await.unwrap().unwrap().role,
        Role::Supervisor
    );
    assert_eq!("ADMIN".parse::<Role>().unwrap(), Role::Admin);
    assert!(matches!(
        "root".parse::<Role>(),
        Err(StoreError::Invalid(_))
    ));
    // JSON: lower case, refused otherwise.
    assert_eq!(
        serde_json::to_value(Role::Supervisor).unwrap(),
        "supervisor"
    );
    assert!(
        serde_json::from_value::<NewAgent>(
            json!({"id": "x", "name": "X", "password": "correct horse", "role": "root"})
        )
        .is_err()
    );
}

#[tokio::test]
async fn sessions_follow_the_person() {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let store = &db.store;
    store
        .create_agent(NewAgent::new("boss", "Boss", "correct horse").with_role(Role::Admin))
        .await
        .unwrap();
    let hour = Duration::from_secs(3600);
    let token = store.create_admin_session("boss", hour).await.unwrap();
    assert_eq!(token.len(), 64);
    let s = store.admin_session(&token).await.unwrap().unwrap();
    assert_eq!((s.agent.as_str(), s.role), ("boss", Role::Admin));
    // Only the hash is stored; the desk does not know the token.
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM admin_sessions")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token);
    assert_eq!(store.session_agent(&token).await.unwrap(), None);

    // A demotion shows at once; deactivation ends the session.
    store
        .update_agent(
            "boss",
            AgentUpdate {
                role: Some(Role::Supervisor),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let s = store.admin_session(&token).await.unwrap().unwrap();
    assert_eq!(s.role, Role::Supervisor);
    store
        .update_agent(
            "boss",
            AgentUpdate {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(store.admin_session(&token).await.unwrap(), None);

    // Expired sessions are not live; unknown people get none.
    store
        .update_agent(
            "boss",
            AgentUpdate {
                active: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let short = store
        .create_admin_session("boss", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(store.admin_session(&short).await.unwrap(), None);
    let live = store.create_admin_session("boss", hour).await.unwrap();
    assert!(store.delete_admin_session(&live).await.unwrap());
    assert!(!store.delete_admin_session(&live).await.unwrap());
    assert_eq!(store.admin_session(&live).await.unwrap(), None);
    assert!(matches!(
        store.create_admin_session("ghost", hour).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.admin_session("not-a-token").await.unwrap(), None);
}

#[tokio::test]
async fn audit_pages_go_back_by_id() {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let store = &db.store;
    let ip: std::net::IpAddr = "198.51.100.7".parse().unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            store
                .audit_from(
                    "boss",
                    "queue_create",
                    Some(&format!("q{i}")),
                    json!({"i": i}),
                    Some(ip),
                )
                .await
                .unwrap(),
        );
    }
    let cli = store
        .audit("cli:root", "erase_caller", None, json!({}))
        .await
        .unwrap();
    let page = store.audit_page(None, 4).await.unwrap();
    assert_eq!(page.len(), 4);
    assert_eq!(page[0].id, cli);
    assert_eq!(page[0].ip, None);
    assert_eq!(page[1].ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(page[1].subject.as_deref(), Some("q4"));
    let rest = store.audit_page(Some(page[3].id), 4).await.unwrap();
    let rest_ids: Vec<i64> = rest.iter().map(|e| e.id).collect();
    assert_eq!(rest_ids, vec![ids[1], ids[0]]);
    assert!(store.audit_page(Some(ids[0]), 4).await.unwrap().is_empty());
}
