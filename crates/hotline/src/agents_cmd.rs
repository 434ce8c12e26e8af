//! `hotline agents add|list|remove|passwd`: manage agents without the admin
//! API. The database is found as for `hotline migrate` (DATABASE_URL, or the
//! embedded cluster under --data-dir).

use std::io::Read;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hotline_store::{AgentUpdate, NewAgent};

use crate::records::{Database, DbArgs};

#[derive(Args, Debug)]
pub struct AgentsArgs {
    #[command(subcommand)]
    command: AgentsCommand,
}

#[derive(Subcommand, Debug)]
enum AgentsCommand {
    /// Add an agent; the password is read from standard input
    /// (`echo "$PW" | hotline agents add a1 --name "Ada" --password-stdin`).
    Add {
        /// The login name (1-64 of A-Z a-z 0-9 . _ @ -).
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Read the password from standard input (never from the command line).
        #[arg(long)]
        password_stdin: bool,
        /// Comma-separated skills, e.g. billing,refunds.
        #[arg(long, value_delimiter = ',')]
        skills: Vec<String>,
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
            skills,
            db,
        } => {
            let password = password_from_stdin(password_stdin)?;
            let mut agent = NewAgent::new(&id, name, password);
            agent.skills = skills;
            rt.block_on(async {
                let db = open(db).await?;
                let res = db.store.create_agent(agent).await;
                db.close().await;
                let a = res.with_context(|| format!("cannot add agent {id:?}"))?;
                println!("agent {} ({}) added", a.id, a.name);
                Ok(())
            })
        }
        AgentsCommand::List { db } => rt.block_on(async {
            let db = open(db).await?;
            let res = db.store.list_agents().await;
            db.close().await;
            let agents = res.context("cannot list the agents")?;
            println!("{:<20} {:<30} {:<8} SKILLS", "ID", "NAME", "ACTIVE");
            for a in agents {
                println!(
                    "{:<20} {:<30} {:<8} {}",
                    a.id,
                    a.name,
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

/// The password from standard input; `--password-stdin` must say so, so a
/// forgotten pipe does not wait on a terminal.
fn password_from_stdin(asked: bool) -> anyhow::Result<String> {
    if !asked {
        bail!("give the password on standard input with --password-stdin");
    }
    read_password(std::io::stdin().lock())
}

/// The first line of `input`, without its line ending.
fn read_password(mut input: impl Read) -> anyhow::Result<String> {
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .context("cannot read the password from standard input")?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        bail!("no password on standard input");
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
