//! Agents, sessions, queues and state history against a real PostgreSQL
//! (a fresh database per test, see `hotline_store::testing`).

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use hotline_routing::{AgentLostPolicy, Overflow, Strategy};
use hotline_store::agents::session_token_hash;
use hotline_store::testing::fresh_db;
use hotline_store::{AgentUpdate, NewAgent, NewQueue, QueueUpdate, Store, StoreError};

async fn store() -> (hotline_store::testing::TestDb, Store) {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let store = db.store.clone();
    (db, store)
}

#[tokio::test]
async fn agents_crud_with_hashed_passwords() {
    let (_db, store) = store().await;
    let mut new = NewAgent::new("a1", " Ada Agent ", "correct horse");
    new.skills = vec!["billing".into(), "refunds".into(), "billing".into()];
    let a = store.create_agent(new).await.unwrap();
    assert_eq!(a.name, "Ada Agent");
    assert_eq!(a.skills, ["billing", "refunds"]);
    assert!(a.active);

    let hash: String = sqlx::query_scalar("SELECT password_hash FROM agents WHERE id = 'a1'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));

    let dup = store
        .create_agent(NewAgent::new("a1", "Other", "correct horse"))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    for bad in [
        NewAgent::new("a 1", "X", "correct horse"),
        NewAgent::new("a2", "X", "short"),
        NewAgent::new("a2", "  ", "correct horse"),
        NewAgent {
            skills: vec!["no spaces".into()],
            ..NewAgent::new("a2", "X", "correct horse")
        },
    ] {
        let r = store.create_agent(bad.clone()).await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{bad:?}: {r:?}");
    }

    store
        .create_agent(NewAgent::new("b2", "Bob", "bob's password"))
        .await
        .unwrap();
    let ids: Vec<String> = store
        .list_agents()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["a1", "b2"]);

    let a = store
        .update_agent(
            "a1",
            AgentUpdate {
                name: Some("Ada Lovelace".into()),
                skills: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((a.name.as_str(), a.skills.len()), ("Ada Lovelace", 0));
    assert_eq!(store.agent("a1").await.unwrap(), Some(a));
    let missing = store.update_agent("zz", AgentUpdate::default()).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));

    store.delete_agent("b2").await.unwrap();
    assert_eq!(store.agent("b2").await.unwrap(), None);
    assert!(matches!(
        store.delete_agent("b2").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn passwords_verify_and_change() {
    let (_db, store) = store().await;
    store
        .create_agent(NewAgent::new("a1", "Ada", "correct horse"))
        .await
        .unwrap();
    let ok = store
        .verify_agent_password("a1", "correct horse")
        .await
        .unwrap();
    assert_eq!(ok.map(|a| a.id).as_deref(), Some("a1"));
    assert_eq!(
        store
            .verify_agent_password("a1", "wrong horse")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .verify_agent_password("nobody", "correct horse")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .verify_agent_password("not an id", "correct horse")
            .await
            .unwrap(),
        None
    );

    store
        .update_agent(
            "a1",
            AgentUpdate {
                password: Some("battery staple".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        store
            .verify_agent_password("a1", "correct horse")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .verify_agent_password("a1", "battery staple")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn sessions_store_only_a_hash_and_end() {
    let (_db, store) = store().await;
    store
        .create_agent(NewAgent::new("a1", "Ada", "correct horse"))
        .await
        .unwrap();
    let token = store
        .create_session("a1", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(token.len(), 64);
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM agent_sessions")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, [session_token_hash(&token)]);
    assert_eq!(
        store.session_agent(&token).await.unwrap().as_deref(),
        Some("a1")
    );
    assert_eq!(store.session_agent(&"0".repeat(64)).await.unwrap(), None);
    assert_eq!(store.session_agent("nonsense").await.unwrap(), None);

    // Expired sessions are not accepted (and are swept by the next login).
    let short = store
        .create_session("a1", Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.session_agent(&short).await.unwrap(), None);
    let third = store
        .create_session("a1", Duration::from_secs(60))
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM agent_sessions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 2);

    assert!(store.delete_session(&token).await.unwrap());
    assert!(!store.delete_session(&token).await.unwrap());
    assert_eq!(store.session_agent(&token).await.unwrap(), None);

    // A new password ends every session; so does deactivation.
    store
        .update_agent(
            "a1",
            AgentUpdate {
                password: Some("battery staple".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(store.session_agent(&third).await.unwrap(), None);
    let fourth = store
        .create_session("a1", Duration::from_secs(60))
        .await
        .unwrap();
    store
        .update_agent(
            "a1",
            AgentUpdate {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(store.session_agent(&fourth).await.unwrap(), None);
    assert!(
        store
            .verify_agent_password("a1", "battery staple")
            .await
            .unwrap()
            .is_none(),
        "inactive agents cannot log in"
    );
    assert!(matches!(
        store.create_session("ghost", Duration::from_secs(60)).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn queues_crud_and_ordered_members() {
    let (_db, store) = store().await;
    for id in ["a1", "a2", "a3"] {
        store
            .create_agent(NewAgent::new(id, id, "correct horse"))
            .await
            .unwrap();
    }
    // The overflow target must exist first.
    store.create_queue(NewQueue::new("general")).await.unwrap();
    let mut new = NewQueue::new("billing");
    new.strategy = Strategy::SkillsPriority;
    new.overflow = Overflow::Queue("general".into());
    new.on_agent_lost = AgentLostPolicy::Release;
    new.issue_skills
        .insert("subscription.refund".into(), "refunds".into());
    new.members = vec!["a3".into(), "a1".into()];
    let q = store.create_queue(new.clone()).await.unwrap();
    assert_eq!(q.members, ["a3", "a1"]);
    assert_eq!(q.strategy, Strategy::SkillsPriority);
    assert_eq!(q.overflow, Overflow::Queue("general".into()));
    assert_eq!(q.on_agent_lost, AgentLostPolicy::Release);
    assert_eq!(q.issue_skills["subscription.refund"], "refunds");
    assert!(!q.survey, "no survey unless asked for");
    assert_eq!(
        (q.max_wait_secs, q.offer_timeout_secs, q.wrap_up_secs),
        (120, 20, 30)
    );
    assert_eq!(
        (q.callback_attempts, q.callback_retry_secs),
        (3, 120),
        "callback defaults"
    );
    assert!(matches!(
        store.create_queue(new).await,
        Err(StoreError::Conflict { .. })
    ));
    let mut ghost = NewQueue::new("sales");
    ghost.members = vec!["a1".into(), "ghost".into()];
    assert!(matches!(
        store.create_queue(ghost).await,
        Err(StoreError::Invalid(m)) if m.contains("ghost")
    ));
    assert_eq!(store.queue("sales").await.unwrap(), None, "rolled back");

    let q = store
        .set_queue_members("billing", &["a2".into(), "a3".into(), "a1".into()])
        .await
        .unwrap();
    assert_eq!(q.members, ["a2", "a3", "a1"]);
    assert!(matches!(
        store
            .set_queue_members("billing", &["a1".into(), "a1".into()])
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.set_queue_members("nope", &[]).await,
        Err(StoreError::NotFound { .. })
    ));

    let q = store
        .update_queue(
            "billing",
            QueueUpdate {
                strategy: Some(Strategy::RingAll),
                max_wait_secs: Some(300),
                overflow: Some(Overflow::Callback),
                callback_attempts: Some(5),
                callback_retry_secs: Some(30),
                survey: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (q.strategy, q.max_wait_secs, q.overflow.clone()),
        (Strategy::RingAll, 300, Overflow::Callback)
    );
    assert_eq!((q.callback_attempts, q.callback_retry_secs), (5, 30));
    // The post-call survey: off by default, on once set, and in the ACD's terms.
    assert!(q.survey);
    assert!(hotline_routing::QueueConfig::from(q.clone()).survey);
    for bad in [0, 11] {
        assert!(matches!(
            store
                .update_queue(
                    "billing",
                    QueueUpdate {
                        callback_attempts: Some(bad),
                        ..Default::default()
                    }
                )
                .await,
            Err(StoreError::Invalid(m)) if m.contains("callback_attempts")
        ));
    }
    assert_eq!(q.members, ["a2", "a3", "a1"], "members kept");
    assert!(matches!(
        store
            .update_queue(
                "billing",
                QueueUpdate {
                    offer_timeout_secs: Some(0),
                    ..Default::default()
                }
            )
            .await,
        Err(StoreError::Invalid(_))
    ));

    // Deleting an agent drops their memberships; deleting a queue its members.
    store.delete_agent("a3").await.unwrap();
    assert_eq!(
        store.queue("billing").await.unwrap().unwrap().members,
        ["a2", "a1"]
    );
    let names: Vec<String> = store
        .list_queues()
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, ["billing", "general"]);
    store.delete_queue("billing").await.unwrap();
    let members: i64 = sqlx::query_scalar("SELECT count(*) FROM queue_members")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(members, 0);
    assert!(matches!(
        store.delete_queue("billing").await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn state_history_keeps_the_last_state() {
    let (_db, store) = store().await;
    for id in ["a1", "a2"] {
        store
            .create_agent(NewAgent::new(id, id.to_uppercase(), "correct horse"))
            .await
            .unwrap();
    }
    let t0 = Utc::now() - TimeDelta::seconds(100);
    store
        .record_agent_state("a1", "available", None, t0)
        .await
        .unwrap();
    store
        .record_agent_state("a1", "away", Some("lunch"), t0 + TimeDelta::seconds(10))
        .await
        .unwrap();
    // Same instant: the later insert wins.
    store
        .record_agent_state("a1", "available", None, t0 + TimeDelta::seconds(10))
        .await
        .unwrap();
    assert!(matches!(
        store.record_agent_state("a1", "napping", None, t0).await,
        Err(StoreError::Invalid(_))
    ));
    let states = store.agent_last_states().await.unwrap();
    assert_eq!(states.len(), 2);
    assert_eq!(
        (states[0].agent.as_str(), states[0].state.as_deref()),
        ("a1", Some("available"))
    );
    assert_eq!(states[1].state, None);
    assert_eq!(states[1].name, "A2");
}

#[tokio::test]
async fn a_wrap_up_event_lands_on_the_call_row() {
    let (_db, store) = store().await;
    let id = uuid::Uuid::new_v4();
    let t0 = Utc::now();
    let ev = |seq: u32, kind: &str, data: serde_json::Value| {
        let data = hotline_events::EventData::from_parts(kind, data);
        assert!(!data.is_other(), "{kind} does not type: {data:?}");
        hotline_events::CallEvent {
            call_id: id,
            sip_call_id: "w@x".into(),
            seq,
            at: t0 + TimeDelta::milliseconds(seq as i64 * 100),
            node: None,
            data,
        }
    };
    let events = [
        ev(
            0,
            "call_started",
            serde_json::json!({"caller": "1001", "caller_name": null, "callee": "800",
                               "transport": "udp", "source": "127.0.0.1:5060"}),
        ),
        ev(1, "answered", serde_json::json!({"rtp": "127.0.0.1:20000"})),
        ev(
            2,
            "enqueued",
            serde_json::json!({"queue": "billing", "priority": 0}),
        ),
        ev(3, "agent_answered", serde_json::json!({"agent_id": "a1"})),
        ev(
            4,
            "hangup",
            serde_json::json!({"ended_by": "agent", "cause": "BYE"}),
        ),
        ev(
            5,
            "wrap_up",
            serde_json::json!({"agent_id": "a1", "disposition": "refund", "notes": "form sent", "seconds": 7}),
        ),
        ev(6, "call_ended", serde_json::json!({})),
    ];
    store.write(&events[..5]).await.unwrap();
    let r = store.call(id).await.unwrap().unwrap();
    assert_eq!((r.disposition, r.wrap_up_seconds), (None, None));
    store.write(&events[5..]).await.unwrap();
    store.write(&events).await.unwrap(); // a replay changes nothing
    let r = store.call(id).await.unwrap().unwrap();
    assert_eq!(r.disposition.as_deref(), Some("refund"));
    assert_eq!(r.notes.as_deref(), Some("form sent"));
    assert_eq!(r.wrap_up_seconds, Some(7.0));
    assert_eq!(
        (r.agent_id.as_deref(), r.outcome.as_deref(), r.complete),
        (Some("a1"), Some("answered"), true)
    );
}

#[tokio::test]
async fn seed_demo_creates_the_flow_queues_and_a_demo_agent_once() {
    let (_db, store) = store().await;
    // An operator's own queue and agent before the seed: kept as they are.
    store
        .create_agent(NewAgent::new("ada", "Ada", "correct horse"))
        .await
        .unwrap();
    let mut billing = NewQueue::new("billing");
    billing.strategy = Strategy::RoundRobin;
    billing.members = vec!["ada".into()];
    store.create_queue(billing).await.unwrap();

    let first = store.seed_demo().await.unwrap();
    assert_eq!((first.queues, first.agents, first.members), (3, 1, 4));
    let (id, name, password) = Store::DEMO_AGENT;
    assert_eq!((id, name, password), ("demo", "Demo Agent", "demo"));
    let agent = store
        .verify_agent_password("demo", "demo")
        .await
        .unwrap()
        .expect("the demo agent logs in with demo/demo");
    assert_eq!(agent.name, "Demo Agent");
    for q in ["support", "subscriptions", "purchases", "billing"] {
        assert!(Store::DEMO_QUEUES.contains(&q), "{q}");
        let queue = store.queue(q).await.unwrap().expect(q);
        assert!(queue.members.contains(&"demo".to_owned()), "{queue:?}");
    }
    let billing = store.queue("billing").await.unwrap().unwrap();
    assert_eq!(billing.strategy, Strategy::RoundRobin, "kept");
    assert_eq!(billing.members, ["ada", "demo"], "appended after ada");
    let support = store.queue("support").await.unwrap().unwrap();
    assert_eq!(
        (support.overflow, support.max_wait_secs),
        (Overflow::Voicemail, 120)
    );

    // Again: nothing new, nothing changed (not even a changed password).
    store
        .update_agent(
            "demo",
            AgentUpdate {
                password: Some("changed password".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let queues_before = store.list_queues().await.unwrap();
    let again = store.seed_demo().await.unwrap();
    assert_eq!(
        (again.queues, again.agents, again.members, again.customers),
        (0, 0, 0, 0)
    );
    assert_eq!(store.list_queues().await.unwrap(), queues_before);
    assert!(
        store
            .verify_agent_password("demo", "changed password")
            .await
            .unwrap()
            .is_some()
    );
}
