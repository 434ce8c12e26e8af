//! IVR flows as versioned documents (`migrations/0008_flow_versions.sql`).
//!
//! For: the admin API's flow routes, `hotline flows import|export`, and the
//! gateway's live flows (which run the published version of each flow and
//! follow `LISTEN hotline_flows`). Not for: checking a flow (that is
//! `hotline_ivr`; the callers validate before they publish).
//!
//! Every change to one flow takes a transaction-scoped advisory lock on its
//! name, so version numbers are dense (1, 2, 3 …) and a save against a stale
//! base is always seen. Publishing (and rolling back) retires the previous
//! published version and sends `pg_notify('hotline_flows', name)` in the same
//! transaction: gateways hear of it when, and only if, it commits.
//!
//! ```no_run
//! # async fn demo(store: hotline_store::Store) -> Result<(), hotline_store::StoreError> {
//! use hotline_store::flow_versions::{NewFlowVersion, Saved, Source};
//! let v1 = match store.save_flow_draft(NewFlowVersion::new("main", "start: a\n", "ada", Source::Console)).await? {
//!     Saved::Created(v) => v,
//!     Saved::Stale(latest) => panic!("someone else saved v{}", latest.version),
//! };
//! store.publish_flow_version("main", v1.version).await?;
//! # Ok(()) }
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::Digest;
use sqlx::{Postgres, Transaction};

use crate::{Store, StoreError};

/// The channel a publish or rollback notifies, with the flow's name as payload.
pub const CHANNEL: &str = "hotline_flows";

/// One version of a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct FlowVersion {
    /// The flow's name.
    pub flow: String,
    /// 1, 2, 3 … per flow.
    pub version: i32,
    /// The YAML exactly as saved.
    pub yaml: String,
    /// SHA-256 of `yaml`, lower-case hex.
    pub sha256: String,
    /// Who saved it (`import` for the first import of the flows dir).
    pub author: String,
    /// When it was saved.
    pub created_at: DateTime<Utc>,
    /// The author's comment; empty when none.
    pub comment: String,
    /// `draft`, `published` or `retired`.
    pub status: String,
    /// The version it was saved against.
    pub based_on: Option<i32>,
    /// For a rollback: the version whose text it republished.
    pub rollback_of: Option<i32>,
    /// `console`, `files` or `cli`.
    pub source: String,
}

/// Where a version's text came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The admin API.
    Console,
    /// The gateway's flows dir (first import and later edits of its files).
    Files,
    /// `hotline flows import`.
    Cli,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Console => "console",
            Source::Files => "files",
            Source::Cli => "cli",
        }
    }
}

/// A version to save.
#[derive(Clone, Debug)]
pub struct NewFlowVersion {
    /// The flow's name (see [`valid_flow_name`]).
    pub flow: String,
    /// The YAML, stored byte for byte.
    pub yaml: String,
    /// Who saves it.
    pub author: String,
    /// Free text; may be empty.
    pub comment: String,
    /// The version the text was edited from; `None` only for a new flow.
    pub based_on: Option<i32>,
    /// Where the text came from.
    pub source: Source,
}

impl NewFlowVersion {
    /// A first version (no base, no comment).
    pub fn new(flow: &str, yaml: &str, author: &str, source: Source) -> Self {
        NewFlowVersion {
            flow: flow.into(),
            yaml: yaml.into(),
            author: author.into(),
            comment: String::new(),
            based_on: None,
            source,
        }
    }
}

/// What a save did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Saved {
    /// The new draft.
    Created(FlowVersion),
    /// Refused: the flow's latest version is not the one the draft was based
    /// on. This is that latest version (someone else's save or publish).
    Stale(FlowVersion),
}

/// A flow as the list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct FlowSummary {
    /// The flow's name.
    pub name: String,
    /// The version calls run; `None` when none is published.
    pub published: Option<i32>,
    /// The latest version.
    pub latest: i32,
    /// The author of the latest version.
    pub last_editor: String,
    /// When the latest version was saved.
    pub last_change: DateTime<Utc>,
    /// Drafts saved after the published version (all drafts if none is).
    pub drafts: i64,
    /// A draft imported from the flows dir that the console's published
    /// version overrules: its number (see [`FlowSummary::notice`]).
    pub file_draft: Option<i32>,
    /// What won when the flows dir and the console disagree, for the UI.
    #[sqlx(skip)]
    pub notice: Option<String>,
}

/// What importing one file did ([`Store::import_flow_text`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Imported {
    /// The text is the published one, or was imported already: nothing created.
    Unchanged,
    /// A new published version.
    Published(FlowVersion),
    /// A new draft: the published version did not come from the files (or the
    /// text is invalid), so the file does not replace it.
    Draft {
        /// The draft.
        draft: FlowVersion,
        /// The version that stays published.
        published: Option<i32>,
    },
}

/// Flow names: 1–64 of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`,
/// never `..` (a name becomes `<name>.yaml` on export).
pub fn valid_flow_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "flow name {name:?}: use 1-64 of A-Z a-z 0-9 . _ - (no `/`, no `..`, not starting with . or -)"
        )))
    }
}

/// SHA-256 of a flow's text, lower-case hex.
pub fn text_sha256(text: &str) -> String {
    crate::sealed::hex(&sha2::Sha256::digest(text.as_bytes()))
}

const COLUMNS: &str = "flow, version, yaml, sha256, author, created_at, comment, status, \
                       based_on, rollback_of, source";

async fn lock(tx: &mut Transaction<'_, Postgres>, flow: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('hotline_flow:' || $1))")
        .bind(flow)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn latest_in(
    tx: &mut Transaction<'_, Postgres>,
    flow: &str,
) -> Result<Option<FlowVersion>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM flow_versions WHERE flow = $1 ORDER BY version DESC LIMIT 1"
    ))
    .bind(flow)
    .fetch_optional(&mut **tx)
    .await?)
}

async fn published_in(
    tx: &mut Transaction<'_, Postgres>,
    flow: &str,
) -> Result<Option<FlowVersion>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM flow_versions WHERE flow = $1 AND status = 'published'"
    ))
    .bind(flow)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Inserts the next version of a flow (the caller holds the lock). A
/// `published` one retires the previous published version and notifies.
async fn insert_next(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewFlowVersion,
    status: &str,
    rollback_of: Option<i32>,
) -> Result<FlowVersion, StoreError> {
    if status == "published" {
        retire_published(tx, &new.flow).await?;
    }
    let v: FlowVersion = sqlx::query_as(&format!(
        "INSERT INTO flow_versions (flow, version, yaml, sha256, author, comment, status, based_on, rollback_of, source) \
         VALUES ($1, COALESCE((SELECT max(version) FROM flow_versions WHERE flow = $1), 0) + 1, \
                 $2, $3, $4, $5, $6, $7, $8, $9) \
         RETURNING {COLUMNS}"
    ))
    .bind(&new.flow)
    .bind(&new.yaml)
    .bind(text_sha256(&new.yaml))
    .bind(&new.author)
    .bind(&new.comment)
    .bind(status)
    .bind(new.based_on)
    .bind(rollback_of)
    .bind(new.source.as_str())
    .fetch_one(&mut **tx)
    .await?;
    if status == "published" {
        notify(tx, &new.flow).await?;
    }
    Ok(v)
}

async fn retire_published(
    tx: &mut Transaction<'_, Postgres>,
    flow: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE flow_versions SET status = 'retired' WHERE flow = $1 AND status = 'published'",
    )
    .bind(flow)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn notify(tx: &mut Transaction<'_, Postgres>, flow: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(flow)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// True when no flow has any version (first start: import the flows dir).
    pub async fn flow_versions_empty(&self) -> Result<bool, StoreError> {
        Ok(
            sqlx::query_scalar::<_, bool>("SELECT NOT EXISTS (SELECT 1 FROM flow_versions)")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Every flow with its published version, last change and drafts, by name.
    pub async fn flow_list(&self) -> Result<Vec<FlowSummary>, StoreError> {
        let mut rows: Vec<FlowSummary> = sqlx::query_as(
            "SELECT l.flow AS name, p.version AS published, l.version AS latest, \
                    l.author AS last_editor, l.created_at AS last_change, \
                    (SELECT count(*) FROM flow_versions d WHERE d.flow = l.flow AND d.status = 'draft' \
                       AND d.version > COALESCE(p.version, 0)) AS drafts, \
                    (SELECT max(f.version) FROM flow_versions f WHERE f.flow = l.flow AND f.status = 'draft' \
                       AND f.source = 'files' AND f.version > COALESCE(p.version, 0) AND p.source <> 'files') AS file_draft \
             FROM (SELECT DISTINCT ON (flow) * FROM flow_versions ORDER BY flow, version DESC) l \
             LEFT JOIN flow_versions p ON p.flow = l.flow AND p.status = 'published' \
             ORDER BY l.flow",
        )
        .fetch_all(self.pool())
        .await?;
        for r in &mut rows {
            if let (Some(d), Some(p)) = (r.file_draft, r.published) {
                r.notice = Some(file_draft_notice(p, d));
            }
        }
        Ok(rows)
    }

    /// Every version of a flow, newest first (empty for an unknown flow).
    pub async fn flow_versions(&self, flow: &str) -> Result<Vec<FlowVersion>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM flow_versions WHERE flow = $1 ORDER BY version DESC"
        ))
        .bind(flow)
        .fetch_all(self.pool())
        .await?)
    }

    /// One version of a flow.
    pub async fn flow_version(
        &self,
        flow: &str,
        version: i32,
    ) -> Result<Option<FlowVersion>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM flow_versions WHERE flow = $1 AND version = $2"
        ))
        .bind(flow)
        .bind(version)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The published version of a flow.
    pub async fn published_flow(&self, flow: &str) -> Result<Option<FlowVersion>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM flow_versions WHERE flow = $1 AND status = 'published'"
        ))
        .bind(flow)
        .fetch_optional(self.pool())
        .await?)
    }

    /// The published version of every flow, by name: what calls run.
    pub async fn published_flows(&self) -> Result<Vec<FlowVersion>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM flow_versions WHERE status = 'published' ORDER BY flow"
        ))
        .fetch_all(self.pool())
        .await?)
    }

    /// Saves a draft against `new.based_on`. Refused ([`Saved::Stale`]) when
    /// the flow's latest version is another one (or the flow exists and no
    /// base is given): no update is lost between two editors.
    pub async fn save_flow_draft(&self, new: NewFlowVersion) -> Result<Saved, StoreError> {
        valid_flow_name(&new.flow)?;
        let mut tx = self.pool().begin().await?;
        lock(&mut tx, &new.flow).await?;
        if let Some(latest) = latest_in(&mut tx, &new.flow).await?
            && Some(latest.version) != new.based_on
        {
            return Ok(Saved::Stale(latest));
        }
        if new.based_on.is_some() && latest_in(&mut tx, &new.flow).await?.is_none() {
            return Err(StoreError::NotFound {
                what: "flow",
                id: new.flow.clone(),
            });
        }
        let v = insert_next(&mut tx, &new, "draft", None).await?;
        tx.commit().await?;
        Ok(Saved::Created(v))
    }

    /// Publishes a version: the previous published one is retired and
    /// `hotline_flows` notified, in one transaction. Publishing the
    /// published version changes nothing (and notifies nobody).
    pub async fn publish_flow_version(
        &self,
        flow: &str,
        version: i32,
    ) -> Result<FlowVersion, StoreError> {
        valid_flow_name(flow)?;
        let mut tx = self.pool().begin().await?;
        lock(&mut tx, flow).await?;
        let found: Option<FlowVersion> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM flow_versions WHERE flow = $1 AND version = $2"
        ))
        .bind(flow)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(v) = found else {
            return Err(StoreError::NotFound {
                what: "flow version",
                id: format!("{flow} v{version}"),
            });
        };
        if v.status == "published" {
            return Ok(v);
        }
        retire_published(&mut tx, flow).await?;
        let v: FlowVersion = sqlx::query_as(&format!(
            "UPDATE flow_versions SET status = 'published' WHERE flow = $1 AND version = $2 \
             RETURNING {COLUMNS}"
        ))
        .bind(flow)
        .bind(version)
        .fetch_one(&mut *tx)
        .await?;
        notify(&mut tx, flow).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// Rolls back to an earlier version: a new version with its text,
    /// `rollback_of` pointing at it, published (history stays linear).
    pub async fn rollback_flow(
        &self,
        flow: &str,
        to: i32,
        author: &str,
        comment: &str,
    ) -> Result<FlowVersion, StoreError> {
        valid_flow_name(flow)?;
        let mut tx = self.pool().begin().await?;
        lock(&mut tx, flow).await?;
        let old: Option<FlowVersion> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM flow_versions WHERE flow = $1 AND version = $2"
        ))
        .bind(flow)
        .bind(to)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(old) = old else {
            return Err(StoreError::NotFound {
                what: "flow version",
                id: format!("{flow} v{to}"),
            });
        };
        let latest = latest_in(&mut tx, flow).await?.map(|l| l.version);
        let comment = if comment.is_empty() {
            format!("rollback to v{to}")
        } else {
            comment.to_owned()
        };
        let new = NewFlowVersion {
            flow: flow.into(),
            yaml: old.yaml,
            author: author.into(),
            comment,
            based_on: latest,
            source: Source::Console,
        };
        let v = insert_next(&mut tx, &new, "published", Some(to)).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// Imports one flow's text from a file, in one transaction. Unchanged
    /// when it is the published text, or (for [`Source::Files`]) when the
    /// last version imported from the files has this text already.
    ///
    /// * [`Source::Cli`] (`hotline flows import`): a valid text is published.
    /// * [`Source::Files`] (the gateway's flows dir): published when no
    ///   version is published or the published one came from the files too
    ///   (editing the file is how that flow is changed); otherwise the
    ///   console's published version wins and the file becomes a draft.
    ///
    /// An invalid text (`valid == false`) is only ever saved as a draft.
    pub async fn import_flow_text(
        &self,
        flow: &str,
        yaml: &str,
        author: &str,
        source: Source,
        valid: bool,
    ) -> Result<Imported, StoreError> {
        valid_flow_name(flow)?;
        let sha = text_sha256(yaml);
        let mut tx = self.pool().begin().await?;
        lock(&mut tx, flow).await?;
        let published = published_in(&mut tx, flow).await?;
        if published.as_ref().is_some_and(|p| p.sha256 == sha) {
            return Ok(Imported::Unchanged);
        }
        if source == Source::Files {
            let last_file: Option<String> = sqlx::query_scalar(
                "SELECT sha256 FROM flow_versions WHERE flow = $1 AND source = 'files' \
                 ORDER BY version DESC LIMIT 1",
            )
            .bind(flow)
            .fetch_optional(&mut *tx)
            .await?;
            if last_file.as_deref() == Some(sha.as_str()) {
                return Ok(Imported::Unchanged);
            }
        }
        let publish = valid
            && match source {
                Source::Files => published.as_ref().is_none_or(|p| p.source == "files"),
                _ => true,
            };
        let latest = latest_in(&mut tx, flow).await?.map(|l| l.version);
        let new = NewFlowVersion {
            flow: flow.into(),
            yaml: yaml.into(),
            author: author.into(),
            comment: match (source, valid) {
                (_, false) => "imported from a file; invalid".into(),
                (Source::Cli, _) => "hotline flows import".into(),
                _ => "from the flows dir".into(),
            },
            based_on: latest,
            source,
        };
        let status = if publish { "published" } else { "draft" };
        let v = insert_next(&mut tx, &new, status, None).await?;
        tx.commit().await?;
        Ok(if publish {
            Imported::Published(v)
        } else {
            Imported::Draft {
                draft: v,
                published: published.map(|p| p.version),
            }
        })
    }
}

/// `LISTEN hotline_flows` on a connection of its own ([`Store::listen_flows`]).
pub struct FlowListener(sqlx::postgres::PgListener);

impl FlowListener {
    /// The next flow whose published version changed. `Ok(None)`: the
    /// connection was lost (the next call reconnects and listens again;
    /// notifications in between are lost, so reload everything).
    pub async fn next(&mut self) -> Result<Option<String>, StoreError> {
        Ok(self.0.try_recv().await?.map(|n| n.payload().to_owned()))
    }
}

impl Store {
    /// Listens for publishes and rollbacks ([`CHANNEL`]).
    pub async fn listen_flows(&self) -> Result<FlowListener, StoreError> {
        let mut l = sqlx::postgres::PgListener::connect_with(self.pool()).await?;
        l.listen(CHANNEL).await?;
        Ok(FlowListener(l))
    }
}

/// What the log and the UI say when a file edit loses to the console.
pub fn file_draft_notice(published: i32, draft: i32) -> String {
    format!("published v{published} from the console wins; file saved as draft v{draft}")
}
