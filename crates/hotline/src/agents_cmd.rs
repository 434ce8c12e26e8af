//! `hotline agents add|list`: make the first agents without the admin API.
//! The database is found as for `hotline migrate` (DATABASE_URL, or the
//! embedded cluster under --data-dir).

use std::io::Read;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hotline_store::NewAgent;

use crate::config::{Config, ServeArgs};
use crate::records::Database;

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
        db: ServeArgs,
    },
    /// List the agents.
    List {
        #[command(flatten)]
        db: ServeArgs,
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
            if !password_stdin {
                bail!("give the password on standard input with --password-stdin");
            }
            let password = read_password(std::io::stdin().lock())?;
            let cfg = Config::resolve(db)?;
            let mut agent = NewAgent::new(&id, name, password);
            agent.skills = skills;
            rt.block_on(async {
                let db =
                    Database::open(cfg.database_url.as_deref(), &cfg.data_dir, true, false).await?;
                let res = db.store.create_agent(agent).await;
                db.close().await;
                let a = res.with_context(|| format!("cannot add agent {id:?}"))?;
                println!("agent {} ({}) added", a.id, a.name);
                Ok(())
            })
        }
        AgentsCommand::List { db } => {
            let cfg = Config::resolve(db)?;
            rt.block_on(async {
                let db =
                    Database::open(cfg.database_url.as_deref(), &cfg.data_dir, true, false).await?;
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
            })
        }
    }
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
