//! The ACD leader election (crates/store/src/leader.rs) against a real
//! PostgreSQL: one leader at a time, another takes over when the leader's
//! session dies, every leadership has a higher epoch.

use std::time::{Duration, Instant};

use hotline_store::leader::{Elector, Leader};
use hotline_store::testing::fresh_db;

/// Rounds of `e` until it leads (or `within` passes).
async fn leads_within(e: &mut Elector, within: Duration) -> Option<i64> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(epoch)) = e.round().await {
            return Some(epoch);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test]
async fn one_leader_and_a_takeover_when_its_session_dies() {
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    assert_eq!(db.store.acd_leader().await.unwrap(), None);

    let mut a = Elector::new(db.store.clone(), "node-a");
    let mut b = Elector::new(db.store.clone(), "node-b");
    assert_eq!(a.round().await.unwrap(), Some(1));
    assert_eq!(b.round().await.unwrap(), None, "one leader at a time");
    assert_eq!(a.round().await.unwrap(), Some(1), "a keeps leading");
    assert_eq!(b.round().await.unwrap(), None);
    let Leader { node, epoch, .. } = db.store.acd_leader().await.unwrap().unwrap();
    assert_eq!((node.as_str(), epoch), ("node-a", 1));

    // Node a's session dies (as when its process or network goes): the
    // server releases the lock; b takes it with the next epoch.
    let pid = a.backend_pid().await.expect("a holds a session");
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert!(killed);
    assert_eq!(
        leads_within(&mut b, Duration::from_secs(5)).await,
        Some(2),
        "b leads after a's session ended"
    );
    // a notices it lost its session, and comes back as a follower.
    assert!(a.round().await.is_err(), "a's session is gone");
    assert_eq!(a.round().await.unwrap(), None);
    let leader = db.store.acd_leader().await.unwrap().unwrap();
    assert_eq!((leader.node.as_str(), leader.epoch), ("node-b", 2));

    // A leader that steps down hands over too.
    b.resign().await;
    assert_eq!(leads_within(&mut a, Duration::from_secs(5)).await, Some(3));
    assert_eq!(b.round().await.unwrap(), None);
}

/// The desk's mail between nodes (crates/store/src/desk_mail.rs): the
/// recipient is woken by name, takes its own mail in the order it was sent,
/// and nobody else's; a restarted node drops what waited for it.
#[tokio::test]
async fn desk_mail_wakes_its_recipient_and_keeps_the_senders_order() {
    use hotline_store::desk_mail::DESK_CHANNEL;
    let db = fresh_db().await;
    db.store.migrate().await.unwrap();
    let mut listener = db.store.listen_desk_mail().await.unwrap();

    let batch: Vec<(String, String)> = (0..50)
        .map(|i| {
            let to = if i % 3 == 0 { "node-b" } else { "node-a" };
            (to.to_owned(), format!("{{\"n\":{i}}}"))
        })
        .collect();
    db.store.send_desk_mail(&batch).await.unwrap();
    // One notification per recipient of the batch, naming it.
    let mut woken = Vec::new();
    for _ in 0..2 {
        let n = tokio::time::timeout(Duration::from_secs(5), listener.next())
            .await
            .expect("woken within 5 s")
            .unwrap()
            .expect("connected");
        woken.push(n);
    }
    woken.sort();
    assert_eq!(woken, ["node-a", "node-b"], "on {DESK_CHANNEL}");

    let for_a = db.store.take_desk_mail("node-a").await.unwrap();
    let want: Vec<String> = batch
        .iter()
        .filter(|(t, _)| t == "node-a")
        .map(|(_, b)| b.clone())
        .collect();
    assert_eq!(for_a, want, "node-a's mail, in the order it was sent");
    assert!(
        db.store.take_desk_mail("node-a").await.unwrap().is_empty(),
        "taken once"
    );

    // node-b restarts before reading: what waited for it is dropped.
    assert_eq!(db.store.discard_desk_mail("node-b").await.unwrap(), 17);
    assert!(db.store.take_desk_mail("node-b").await.unwrap().is_empty());
}
