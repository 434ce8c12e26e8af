//! What the IVR flows' built-in lookups read: the subscriber behind a caller
//! id, an order by its number. Answers are JSON objects with the field names
//! docs/flows.md promises; `None` is "not found".

use serde_json::{Map, Value, json};
use sqlx::Row;

use crate::{Store, StoreError};

impl Store {
    /// The customer whose phone numbers include `phone`, with their most
    /// relevant subscription (active first, then the latest):
    /// `name`, `language`, `plan`, `status`, `renews_on` (`YYYY-MM-DD`, when set).
    pub async fn subscriber_by_phone(
        &self,
        phone: &str,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let row = sqlx::query(
            "SELECT c.name, c.preferred_language, s.plan, s.status,
                    to_char(s.renews_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS renews_on
               FROM customers c
               LEFT JOIN LATERAL (
                    SELECT plan, status, renews_at FROM subscriptions
                     WHERE customer_id = c.id
                     ORDER BY (status = 'active') DESC, started_at DESC
                     LIMIT 1) s ON true
              WHERE $1 = ANY(c.phone_numbers)
              ORDER BY c.created_at
              LIMIT 1",
        )
        .bind(phone)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| {
            let mut m = Map::new();
            m.insert("name".into(), json!(r.get::<String, _>("name")));
            put_opt(
                &mut m,
                "language",
                r.get::<Option<String>, _>("preferred_language"),
            );
            put_opt(&mut m, "plan", r.get::<Option<String>, _>("plan"));
            put_opt(&mut m, "status", r.get::<Option<String>, _>("status"));
            put_opt(&mut m, "renews_on", r.get::<Option<String>, _>("renews_on"));
            m
        }))
    }

    /// An order by its number as printed (`A-10001`) or as keyed on a phone
    /// (`10001`, the digits alone): `order_number`, `course`, `status`,
    /// `amount` (major units, e.g. `199`), `currency`, `purchased_on`, `customer`.
    pub async fn order_by_number(
        &self,
        number: &str,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        let row = sqlx::query(
            "SELECT o.order_number, o.course, o.status, o.amount_cents, o.currency,
                    to_char(o.purchased_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS purchased_on,
                    c.name AS customer
               FROM orders o JOIN customers c ON c.id = o.customer_id
              WHERE o.order_number = $1
                 OR ($2 <> '' AND regexp_replace(o.order_number, '[^0-9]', '', 'g') = $2)
              ORDER BY (o.order_number = $1) DESC
              LIMIT 1",
        )
        .bind(number)
        .bind(&digits)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| {
            let cents: i64 = r.get("amount_cents");
            let mut m = Map::new();
            m.insert(
                "order_number".into(),
                json!(r.get::<String, _>("order_number")),
            );
            m.insert("course".into(), json!(r.get::<String, _>("course")));
            m.insert("status".into(), json!(r.get::<String, _>("status")));
            // Whole units are what a caller hears ("one hundred ninety-nine").
            m.insert("amount".into(), json!((cents / 100).to_string()));
            m.insert("amount_cents".into(), json!(cents));
            m.insert("currency".into(), json!(r.get::<String, _>("currency")));
            m.insert(
                "purchased_on".into(),
                json!(r.get::<String, _>("purchased_on")),
            );
            m.insert("customer".into(), json!(r.get::<String, _>("customer")));
            m
        }))
    }
}

fn put_opt(m: &mut Map<String, Value>, key: &str, v: Option<String>) {
    if let Some(v) = v {
        m.insert(key.into(), Value::String(v));
    }
}
