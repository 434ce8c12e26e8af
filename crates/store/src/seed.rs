//! `hotline seed-demo`: a few customers, subscriptions and orders for demos
//! and the flows' lookups, the queues the shipped flow enqueues to and a demo
//! agent who answers them. Fixed ids: running it twice inserts nothing new.

use sqlx::PgPool;
use uuid::Uuid;

use crate::{SeedCounts, StoreError};

const fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 | n)
}

/// (id, name, phone numbers, email, preferred language)
const CUSTOMERS: &[(Uuid, &str, &[&str], &str, &str)] = &[
    (
        id(1),
        "Alice Chen",
        &["+15550100001", "1001"],
        "alice@example.com",
        "en",
    ),
    (
        id(2),
        "Li Wei",
        &["+8613800138000", "1002"],
        "liwei@example.com",
        "zh",
    ),
    (
        id(3),
        "Bob Martin",
        &["+15550100003", "1003"],
        "bob@example.com",
        "en",
    ),
    // SIPp's default caller user, so a plain `sipp -sn uac` call finds someone.
    (id(4), "Demo Caller", &["sipp"], "demo@example.com", "en"),
];

/// (id, customer, plan, status, renews in days from now or None)
const SUBSCRIPTIONS: &[(Uuid, Uuid, &str, &str, Option<i32>)] = &[
    (id(101), id(1), "membership.annual", "active", Some(200)),
    (id(102), id(2), "membership.monthly", "past_due", Some(-3)),
    (id(103), id(3), "membership.monthly", "cancelled", None),
    (id(104), id(4), "membership.monthly", "active", Some(17)),
];

/// (id, order number, customer, course, status, amount in cents, currency, purchased days ago)
type Order = (
    Uuid,
    &'static str,
    Uuid,
    &'static str,
    &'static str,
    i64,
    &'static str,
    i32,
);

const ORDERS: &[Order] = &[
    (
        id(201),
        "A-10001",
        id(1),
        "Rust for Telephony",
        "paid",
        19900,
        "USD",
        40,
    ),
    (
        id(202),
        "A-10002",
        id(2),
        "Mandarin for Business",
        "paid",
        9900,
        "USD",
        12,
    ),
    (
        id(203),
        "A-10003",
        id(3),
        "Public Speaking",
        "refunded",
        4900,
        "USD",
        90,
    ),
    (
        id(204),
        "A-10004",
        id(4),
        "Demo Course",
        "pending",
        100,
        "USD",
        1,
    ),
];

/// Every `queue:` of an `enqueue` node in `ivr-flows/main.yaml` (the
/// hotline crate's tests check this list against the file).
pub(crate) const DEMO_QUEUES: &[&str] = &["support", "subscriptions", "purchases", "billing"];

/// (id, name, password). The password is shorter than agents may choose on
/// purpose: it is for a demo on localhost, and says so.
pub(crate) const DEMO_AGENT: (&str, &str, &str) = ("demo", "Demo Agent", "demo");

pub(crate) async fn seed_demo(pool: &PgPool) -> Result<SeedCounts, StoreError> {
    // Hashed before the transaction: argon2 takes tens of ms on purpose.
    let hash = crate::agents::hash_password(DEMO_AGENT.2).await?;
    let mut tx = pool.begin().await?;
    let mut counts = SeedCounts::default();
    for (id, name, phones, email, lang) in CUSTOMERS {
        counts.customers += sqlx::query(
            "INSERT INTO customers (id, name, phone_numbers, email, preferred_language) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(phones)
        .bind(email)
        .bind(lang)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    for (id, customer, plan, status, renews) in SUBSCRIPTIONS {
        counts.subscriptions += sqlx::query(
            "INSERT INTO subscriptions (id, customer_id, plan, status, started_at, renews_at) \
             VALUES ($1, $2, $3, $4, now() - interval '100 days', \
                     now() + make_interval(days => $5)) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(customer)
        .bind(plan)
        .bind(status)
        .bind(renews)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    for (id, number, customer, course, status, cents, currency, days_ago) in ORDERS {
        counts.orders += sqlx::query(
            "INSERT INTO orders (id, order_number, customer_id, course, status, amount_cents, \
                                 currency, purchased_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, now() - make_interval(days => $8)) \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(number)
        .bind(customer)
        .bind(course)
        .bind(status)
        .bind(cents)
        .bind(currency)
        .bind(days_ago)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    // The queues with the defaults of `POST /api/queues` (longest idle, 120 s
    // then voicemail, 20 s offers, 30 s wrap-up); existing ones are kept as
    // the operator left them.
    for name in DEMO_QUEUES {
        counts.queues +=
            sqlx::query("INSERT INTO queues (name) VALUES ($1) ON CONFLICT DO NOTHING")
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
    }
    let (agent, agent_name, _) = DEMO_AGENT;
    counts.agents += sqlx::query(
        "INSERT INTO agents (id, name, password_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(agent)
    .bind(agent_name)
    .bind(&hash)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // Last in each queue's round-robin order, so real members keep theirs.
    for name in DEMO_QUEUES {
        counts.members += sqlx::query(
            "INSERT INTO queue_members (queue, agent, position) \
             SELECT $1, $2, coalesce(max(position) + 1, 0) FROM queue_members WHERE queue = $1 \
             ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(agent)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(counts)
}
