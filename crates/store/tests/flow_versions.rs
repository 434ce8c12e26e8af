//! Flow versions against a real PostgreSQL (a fresh database per test, see
//! `hotline_store::testing`): numbering, stale saves, one published version,
//! rollback, the files-vs-console rule, and the notification.

use std::time::Duration;

use hotline_store::flow_versions::{Imported, NewFlowVersion, Saved, Source, text_sha256};
use hotline_store::testing::fresh_db;
use hotline_store::{Store, StoreError};

async fn store() -> (hotline_store::testing::TestDb, Store) {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let store = db.store.clone();
    (db, store)
}

fn draft(flow: &str, yaml: &str, author: &str, based_on: Option<i32>) -> NewFlowVersion {
    NewFlowVersion {
        comment: format!("by {author}"),
        based_on,
        ..NewFlowVersion::new(flow, yaml, author, Source::Console)
    }
}

async fn save(store: &Store, new: NewFlowVersion) -> hotline_store::FlowVersion {
    match store.save_flow_draft(new).await.unwrap() {
        Saved::Created(v) => v,
        Saved::Stale(l) => panic!("unexpected stale save (latest v{})", l.version),
    }
}

#[tokio::test]
async fn versions_are_numbered_per_flow_and_stored_exactly() {
    let (_db, store) = store().await;
    assert!(store.flow_versions_empty().await.unwrap());
    let text = "flow: main\r\nstart: a   \n# trailing\n\n";
    let v1 = save(&store, draft("main", text, "ada", None)).await;
    assert_eq!((v1.version, v1.status.as_str()), (1, "draft"));
    assert_eq!(v1.yaml, text, "stored byte for byte");
    assert_eq!(v1.sha256, text_sha256(text));
    assert_eq!(v1.sha256.len(), 64);
    let v2 = save(&store, draft("main", "start: b\n", "bob", Some(1))).await;
    assert_eq!((v2.version, v2.based_on), (2, Some(1)));
    let other = save(&store, draft("other", "start: x\n", "ada", None)).await;
    assert_eq!(other.version, 1, "numbering is per flow");
    assert!(!store.flow_versions_empty().await.unwrap());

    let all = store.flow_versions("main").await.unwrap();
    assert_eq!(
        all.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1],
        "newest first"
    );
    assert_eq!(
        store.flow_version("main", 1).await.unwrap().unwrap().yaml,
        text
    );
    assert!(store.flow_version("main", 9).await.unwrap().is_none());

    for bad in ["a/b", "..", "a..b", "", ".hidden", "x y"] {
        let r = store
            .save_flow_draft(draft(bad, "start: a\n", "ada", None))
            .await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{bad:?}: {r:?}");
    }
    // The table refuses them too, whoever writes.
    let r = sqlx::query(
        "INSERT INTO flow_versions (flow, version, yaml, sha256, author) VALUES ('a/../b', 1, '', $1, 'x')",
    )
    .bind(text_sha256(""))
    .execute(store.pool())
    .await;
    assert!(r.is_err());
}

#[tokio::test]
async fn a_stale_save_is_refused_with_the_other_change() {
    let (_db, store) = store().await;
    save(&store, draft("main", "start: a\n", "ada", None)).await;
    // Ada and Bob both edit v1; Bob saves first.
    let bob = save(&store, draft("main", "start: bob\n", "bob", Some(1))).await;
    let ada = store
        .save_flow_draft(draft("main", "start: ada\n", "ada", Some(1)))
        .await
        .unwrap();
    match ada {
        Saved::Stale(latest) => {
            assert_eq!(latest.version, bob.version);
            assert_eq!(latest.author, "bob");
            assert_eq!(latest.yaml, "start: bob\n");
        }
        Saved::Created(v) => panic!("lost update: saved v{}", v.version),
    }
    // A new flow's name already taken: no base is stale too.
    assert!(matches!(
        store
            .save_flow_draft(draft("main", "start: c\n", "carol", None))
            .await
            .unwrap(),
        Saved::Stale(_)
    ));
    // A publish in between makes a save stale as well (rollback adds a version).
    store.publish_flow_version("main", 2).await.unwrap();
    store.rollback_flow("main", 1, "carol", "").await.unwrap();
    assert!(matches!(
        store
            .save_flow_draft(draft("main", "start: d\n", "bob", Some(2)))
            .await
            .unwrap(),
        Saved::Stale(l) if l.version == 3 && l.author == "carol"
    ));
    assert_eq!(store.flow_versions("main").await.unwrap().len(), 3);
}

#[tokio::test]
async fn concurrent_saves_on_one_base_make_one_version() {
    let (_db, store) = store().await;
    save(&store, draft("main", "start: a\n", "ada", None)).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .save_flow_draft(draft("main", &format!("start: n{i}\n"), "x", Some(1)))
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Saved::Created(_)) {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    assert_eq!(store.flow_versions("main").await.unwrap().len(), 2);
}

#[tokio::test]
async fn one_published_version_and_a_linear_rollback() {
    let (_db, store) = store().await;
    save(&store, draft("main", "start: one\n", "ada", None)).await;
    save(&store, draft("main", "start: two\n", "ada", Some(1))).await;
    store.publish_flow_version("main", 1).await.unwrap();
    let p2 = store.publish_flow_version("main", 2).await.unwrap();
    assert_eq!(p2.status, "published");
    let statuses: Vec<(i32, String)> = store
        .flow_versions("main")
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.version, v.status))
        .collect();
    assert_eq!(
        statuses,
        [(2, "published".to_string()), (1, "retired".to_string())]
    );
    assert_eq!(
        store.published_flow("main").await.unwrap().unwrap().version,
        2
    );
    // The database itself refuses a second published version.
    let r = sqlx::query("UPDATE flow_versions SET status = 'published' WHERE version = 1")
        .execute(store.pool())
        .await;
    assert!(r.is_err(), "two published versions of one flow");
    assert!(matches!(
        store.publish_flow_version("main", 7).await,
        Err(StoreError::NotFound { .. })
    ));

    let rb = store.rollback_flow("main", 1, "bob", "").await.unwrap();
    assert_eq!(rb.version, 3);
    assert_eq!(rb.rollback_of, Some(1));
    assert_eq!(rb.based_on, Some(2));
    assert_eq!(rb.status, "published");
    assert_eq!(rb.yaml, "start: one\n");
    assert_eq!(rb.author, "bob");
    assert_eq!(rb.comment, "rollback to v1");
    let published: Vec<i32> = store
        .published_flows()
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(published, [3]);
    assert_eq!(
        store.flow_version("main", 2).await.unwrap().unwrap().status,
        "retired"
    );
    assert!(matches!(
        store.rollback_flow("main", 42, "bob", "").await,
        Err(StoreError::NotFound { .. })
    ));

    let list = store.flow_list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].published, Some(3));
    assert_eq!(list[0].last_editor, "bob");
    assert_eq!(list[0].drafts, 0);
}

#[tokio::test]
async fn publish_notifies_listeners_on_commit() {
    let (_db, store) = store().await;
    let mut listener = sqlx::postgres::PgListener::connect_with(store.pool())
        .await
        .unwrap();
    listener.listen("hotline_flows").await.unwrap();
    save(&store, draft("main", "start: a\n", "ada", None)).await;
    store.publish_flow_version("main", 1).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("no notification within 5 s")
        .unwrap();
    assert_eq!(n.channel(), "hotline_flows");
    assert_eq!(n.payload(), "main");
    store.rollback_flow("main", 1, "ada", "").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("no notification for the rollback")
        .unwrap();
    assert_eq!(n.payload(), "main");
    // A draft notifies nobody.
    save(&store, draft("main", "start: b\n", "ada", Some(2))).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), listener.recv())
            .await
            .is_err(),
        "a draft must not notify"
    );
}

#[tokio::test]
async fn files_publish_until_the_console_wins() {
    let (_db, store) = store().await;
    let imp = |yaml: &'static str, source, valid| {
        let store = store.clone();
        async move {
            store
                .import_flow_text("main", yaml, "import", source, valid)
                .await
                .unwrap()
        }
    };
    let Imported::Published(v1) = imp("start: a\n", Source::Files, true).await else {
        panic!("first import is published");
    };
    assert_eq!((v1.version, v1.author.as_str()), (1, "import"));
    assert_eq!(
        imp("start: a\n", Source::Files, true).await,
        Imported::Unchanged
    );
    // The file edited: published again (the published version is the file's).
    assert!(matches!(
        imp("start: b\n", Source::Files, true).await,
        Imported::Published(v) if v.version == 2
    ));
    // An invalid file edit is a draft; the published version stays.
    assert!(matches!(
        imp("start: [\n", Source::Files, false).await,
        Imported::Draft { draft, published: Some(2) } if draft.version == 3
    ));
    // The console publishes; the file edited afterwards becomes a draft.
    save(&store, draft("main", "start: console\n", "ada", Some(3))).await;
    store.publish_flow_version("main", 4).await.unwrap();
    match imp("start: c\n", Source::Files, true).await {
        Imported::Draft { draft, published } => {
            assert_eq!((draft.version, published), (5, Some(4)));
            assert_eq!(draft.status, "draft");
        }
        other => panic!("{other:?}"),
    }
    // Seen once: the same file text does not pile up drafts.
    assert_eq!(
        imp("start: c\n", Source::Files, true).await,
        Imported::Unchanged
    );
    let list = store.flow_list().await.unwrap();
    assert_eq!(list[0].published, Some(4));
    assert_eq!(list[0].file_draft, Some(5));
    assert_eq!(
        list[0].notice.as_deref(),
        Some("published v4 from the console wins; file saved as draft v5")
    );
    // `hotline flows import` publishes what it is given.
    assert!(matches!(
        imp("start: c\n", Source::Cli, true).await,
        Imported::Published(v) if v.version == 6
    ));
    assert_eq!(
        imp("start: c\n", Source::Cli, true).await,
        Imported::Unchanged
    );
    assert_eq!(store.flow_list().await.unwrap()[0].notice, None);
}
