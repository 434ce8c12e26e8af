//! `hotline agents add|list|remove|passwd|set-role`: manage agents (and
//! admins and supervisors: agents with that role) without the admin API —
//! the way to create the first admin. The database is found as for
//! `hotline migrate` (DATABASE_URL, or the embedded cluster under
//! --data-dir). Role changes are written to the audit log as `cli:<user>`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hotline_store::{AgentUpdate, NewAgent, Role};

use crate::records::{Database, DbArgs};

#[derive(Args, Debug)]
pub struct AgentsArgs {
    #[command(subcommand)]
    command: AgentsCommand,
}

#[derive(Subcommand, Debug)]
enum AgentsCommand {
    /// Add an agent, supervisor or admin; the password is read from standard
    /// input or a file (`echo "$PW" | hotline agents add a1 --name "Ada" --password-stdin`;
    /// the first admin: `hotline agents add boss --name "Boss" --role admin --password-file pw.txt`).
    Add {
        /// The login name (1-64 of A-Z a-z 0-9 . _ @ -).
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Read the password from standard input (never from the command line).
        #[arg(long, conflicts_with = "password_file")]
        password_stdin: bool,
        /// Read the password from this file's first line instead.
        #[arg(long, value_name = "PATH")]
        password_file: Option<PathBuf>,
        /// Comma-separated skills, e.g. billing,refunds.
        #[arg(long, value_delimiter = ',')]
        skills: Vec<String>,
        /// admin, supervisor or agent: what the admin console (/admin) allows.
        #[arg(long, default_value = "agent", value_parser = parse_role)]
        role: Role,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set what the admin console allows someone: admin, supervisor or agent
    /// (`hotline agents set-role a1 supervisor`).
    SetRole {
        /// The login name.
        id: String,
        /// admin, supervisor or agent.
        #[arg(value_parser = parse_role)]
        role: Role,
        #[command(flatten)]
        db: DbArgs,
    },
    /// List the agents.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Remove an agent with their sessions and queue memberships (their
    /// calls and state history stay in the records).
    Remove {
        /// The agent's login name.
        id: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Set an agent's password, read from standard input; ends their sessions
    /// (`echo "$PW" | hotline agents passwd a1 --password-stdin`).
    Passwd {
        /// The agent's login name.
        id: String,
        /// Read the password from standard input (never from the command line).
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

pub fn run(args: AgentsArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    match args.command {
        AgentsCommand::Add {
            id,
            name,
            password_stdin,
            password_file,
            skills,
            role,
            db,
        } => {
            let password = match password_file {
                Some(path) => password_from_file(&path)?,
                None => password_from_stdin(password_stdin)?,
            };
            let mut agent = NewAgent::new(&id, name, password).with_role(role);
            agent.skills = skills;
            rt.block_on(async {
                let db = open(db).await?;
                let res = db.store.create_agent(agent).await;
                if let Ok(a) = &res {
                    let details = serde_json::json!({"name": a.name, "role": a.role});
                    audit(&db, "agent_create", &a.id, details).await;
                }
                db.close().await;
                let a = res.with_context(|| format!("cannot add agent {id:?}"))?;
                println!("{} {} ({}) added", a.role, a.id, a.name);
                Ok(())
            })
        }
        AgentsCommand::SetRole { id, role, db } => rt.block_on(async {
            let db = open(db).await?;
            let res = async {
                let before = db.store.agent(&id).await?;
                let up = AgentUpdate {
                    role: Some(role),
                    ..AgentUpdate::default()
                };
                let after = db.store.update_agent(&id, up).await?;
                Ok::<_, hotline_store::StoreError>((before.map(|b| b.role), after))
            }
            .await;
            if let Ok((Some(from), after)) = &res
                && *from != after.role
            {
                let details = serde_json::json!({"from": from, "to": after.role});
                audit(&db, "role_change", &id, details).await;
            }
            db.close().await;
            let (_, a) = res.with_context(|| format!("cannot set the role of {id:?}"))?;
            println!("{} is now {}", a.id, a.role);
            Ok(())
        }),
        AgentsCommand::List { db } => rt.block_on(async {
            let db = open(db).await?;
            let res = db.store.list_agents().await;
            db.close().await;
            let agents = res.context("cannot list the agents")?;
            println!(
                "{:<20} {:<30} {:<11} {:<8} SKILLS",
                "ID", "NAME", "ROLE", "ACTIVE"
            );
            for a in agents {
                println!(
                    "{:<20} {:<30} {:<11} {:<8} {}",
                    a.id,
                    a.name,
                    a.role,
                    if a.active { "yes" } else { "no" },
                    a.skills.join(",")
                );
            }
            Ok(())
        }),
        AgentsCommand::Remove { id, db } => rt.block_on(async {
            let db = open(db).await?;
            let res = db.store.delete_agent(&id).await;
            db.close().await;
            res.with_context(|| format!("cannot remove agent {id:?}"))?;
            println!("agent {id} removed");
            Ok(())
        }),
        AgentsCommand::Passwd {
            id,
            password_stdin,
            db,
        } => {
            let password = password_from_stdin(password_stdin)?;
            let update = AgentUpdate {
                password: Some(password),
                ..AgentUpdate::default()
            };
            rt.block_on(async {
                let db = open(db).await?;
                let res = db.store.update_agent(&id, update).await;
                db.close().await;
                res.with_context(|| format!("cannot set the password of agent {id:?}"))?;
                println!("password of agent {id} changed; their sessions are ended");
                Ok(())
            })
        }
    }
}

/// The database of `db`, migrated; an embedded cluster found running is
/// left to its gateway.
async fn open(db: DbArgs) -> anyhow::Result<Database> {
    let (url, data_dir) = db.resolve()?;
    Database::open(url.as_deref(), &data_dir, true, false).await
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: hotline_store::StoreError| e.to_string())
}

/// An audit entry by the person at the command line; a failure is a warning
/// (the change is made).
async fn audit(db: &Database, action: &str, subject: &str, details: serde_json::Value) {
    let actor = crate::privacy_cmd::cli_actor();
    if let Err(e) = db.store.audit(&actor, action, Some(subject), details).await {
        eprintln!("warning: cannot write the audit entry: {e}");
    }
}

/// The password in `path`: its first line.
fn password_from_file(path: &Path) -> anyhow::Result<String> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the password file {}", path.display()))?;
    read_password(file).with_context(|| format!("password file {}", path.display()))
}

/// The password from standard input; `--password-stdin` must say so, so a
/// forgotten pipe does not wait on a terminal.
fn password_from_stdin(asked: bool) -> anyhow::Result<String> {
    if !asked {
        bail!(
            "give the password on standard input with --password-stdin, or in a file with --password-file"
        );
    }
    read_password(std::io::stdin().lock())
}

/// The first line of `input`, without its line ending.
fn read_password(mut input: impl Read) -> anyhow::Result<String> {
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .context("cannot read the password")?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        bail!("no password given (empty input)");
    }
    Ok(line.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_the_first_line() {
        assert_eq!(read_password("pw one\r\n".as_bytes()).unwrap(), "pw one");
        assert_eq!(read_password("pw\nrest".as_bytes()).unwrap(), "pw");
        assert!(read_password("".as_bytes()).is_err());
    }
}
