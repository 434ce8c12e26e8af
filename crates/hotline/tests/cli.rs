//! The `hotline` binary as an operator meets it: per-command help, quiet
//! database commands, `error: …` without backtraces or colour codes, and the
//! agent commands against a real PostgreSQL (the store's throwaway cluster).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use hotline_store::testing::{TestCluster, TestDb};

/// Runs `hotline args…` with `stdin` piped in, RUST_BACKTRACE set (a user
/// error must still show none) and no HOTLINE_* or DATABASE_URL inherited.
fn hotline(args: &[&str], stdin: &str, database_url: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotline"));
    cmd.args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("HOTLINE_LOG")
        .env_remove("HOTLINE_CONFIG")
        .env_remove("HOTLINE_DATA_DIR")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    let mut child = cmd.spawn().expect("run hotline");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("hotline finishes")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A user error: `error: …` on stderr, exit 1, no backtrace, no colour codes.
fn assert_user_error(o: &Output, says: &str) {
    let (out, err) = text(o);
    assert_eq!(o.status.code(), Some(1), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("error: "), "{err}");
    assert!(err.contains(says), "wanted {says:?} in: {err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    assert!(!err.contains("\x1b["), "colour codes in a pipe: {err:?}");
    assert!(!err.contains(" INFO "), "INFO without -v: {err}");
}

#[test]
fn agents_add_help_lists_only_its_own_flags() {
    let o = hotline(&["agents", "add", "--help"], "", None);
    let (out, _) = text(&o);
    assert!(o.status.success());
    for own in [
        "--name",
        "--password-stdin",
        "--skills",
        "--data-dir",
        "--database-url",
    ] {
        assert!(out.contains(own), "{own} missing from:\n{out}");
    }
    for serve_only in [
        "--sip-listen",
        "--rtp-ports",
        "--admin-token",
        "--entry-flow",
    ] {
        assert!(!out.contains(serve_only), "{serve_only} in:\n{out}");
    }
    // `serve` keeps every one of its flags.
    let (out, _) = text(&hotline(&["serve", "--help"], "", None));
    for flag in [
        "--config",
        "--sip-listen",
        "--http-listen",
        "--rtp-ports",
        "--data-dir",
        "--sounds-dir",
        "--flows-dir",
        "--database-url",
        "--media-ip",
        "--rtp-timeout-secs",
        "--answer-delay-ms",
        "--drain-timeout-secs",
        "--digit-timeout-secs",
        "--entry-flow",
        "--queue-max-wait-secs",
        "--admin-token",
        "--agent-media-listen",
        "--callback-via",
    ] {
        assert!(out.contains(flag), "serve lost {flag}:\n{out}");
    }
    // Issue 9 #12: no promise of what is "coming" or "later", nothing that
    // says agents do not exist yet.
    for stale in ["Until agents", "coming", "later"] {
        assert!(
            !out.contains(stale),
            "stale `{stale}` in serve --help:\n{out}"
        );
    }
    assert!(out.contains("--force-hours"), "{out}");
}

/// Issue 9 #12: the README says where the binary is and has no stale
/// "coming"/"later" promises.
#[test]
fn the_readme_says_where_the_binary_is_and_promises_nothing_stale() {
    let readme =
        std::fs::read_to_string(format!("{}/../../README.md", manifest_dir())).expect("README.md");
    assert!(readme.contains("release/hotline"), "where the binary is");
    assert!(
        readme.contains("hotline seed-demo"),
        "the quick start seeds"
    );
    assert!(
        readme.contains("--force-hours open"),
        "how to try open hours"
    );
    for stale in ["; coming)", "later admin", "(coming", "coming soon"] {
        assert!(!readme.contains(stale), "stale `{stale}` in README.md");
    }
}

#[test]
fn a_bad_data_dir_is_an_error_line_not_a_backtrace() {
    // A data dir below a regular file cannot be created.
    let dir = std::env::temp_dir().join(format!("hotline-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let data = file.join("data");
    let o = hotline(
        &[
            "agents",
            "add",
            "ada",
            "--name",
            "Ada",
            "--password-stdin",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        "correct horse\n",
        None,
    );
    assert_user_error(&o, "embedded PostgreSQL");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreachable_database_is_an_error_line_not_a_backtrace() {
    // Port 1 on localhost: refused at once.
    let o = hotline(
        &["agents", "list"],
        "",
        Some("postgres://hotline@127.0.0.1:1/hotline?connect_timeout=2"),
    );
    assert_user_error(&o, "database");
}

async fn test_db() -> (TestDb, String) {
    let cluster = TestCluster::shared();
    let db = cluster.fresh_db().await;
    let url = cluster.pg.url(&db.name);
    (db, url)
}

#[tokio::test]
async fn agents_add_passwd_remove_round_trip() {
    let (db, url) = test_db().await;
    let url = Some(url.as_str());
    let run = |args: &'static [&'static str], stdin: &'static str| {
        let url = url.map(str::to_owned);
        async move {
            tokio::task::spawn_blocking(move || hotline(args, stdin, url.as_deref()))
                .await
                .unwrap()
        }
    };

    let o = run(
        &[
            "agents",
            "add",
            "ada",
            "--name",
            "Ada Agent",
            "--password-stdin",
        ],
        "first password\n",
    )
    .await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("agent ada (Ada Agent) added"), "{out}");
    assert!(!err.contains("INFO"), "quiet without -v: {err}");
    assert!(
        db.store
            .verify_agent_password("ada", "first password")
            .await
            .unwrap()
            .is_some()
    );

    let o = run(
        &["agents", "passwd", "ada", "--password-stdin"],
        "second password\n",
    )
    .await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        db.store
            .verify_agent_password("ada", "second password")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        db.store
            .verify_agent_password("ada", "first password")
            .await
            .unwrap()
            .is_none()
    );
    // Too short a password: refused, the old one stays.
    let o = run(&["agents", "passwd", "ada", "--password-stdin"], "short\n").await;
    assert_user_error(&o, "at least 8 characters");
    let o = run(
        &["agents", "passwd", "ghost", "--password-stdin"],
        "ghost password\n",
    )
    .await;
    assert_user_error(&o, "\"ghost\" not found");

    let o = run(&["agents", "list"], "").await;
    assert!(text(&o).0.contains("Ada Agent"), "{:?}", text(&o));
    let o = run(&["agents", "remove", "ada"], "").await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("agent ada removed"), "{out}");
    assert_eq!(db.store.agent("ada").await.unwrap(), None);
    let o = run(&["agents", "remove", "ada"], "").await;
    assert_user_error(&o, "\"ada\" not found");
}

#[test]
fn the_embedded_database_is_quiet_unless_verbose() {
    // Under /tmp: as root the embedded PostgreSQL runs as `postgres`, which
    // must be able to enter the data dir.
    let dir = std::env::temp_dir().join(format!("hotline-cli-quiet-{}", std::process::id()));
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    let o = hotline(&["migrate", "--data-dir", data], "", None);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("migrations up to date"), "{out}");
    assert_eq!(err, "", "nothing but the answer without -v");
    let o = hotline(&["migrate", "-v", "--data-dir", data], "", None);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        err.contains("INFO") && err.contains("embedded PostgreSQL ready"),
        "{err}"
    );
    assert!(!err.contains("\x1b["), "colour codes in a pipe: {err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn seed_demo_prints_the_demo_login_and_warns() {
    let (db, url) = test_db().await;
    let o = tokio::task::spawn_blocking(move || hotline(&["seed-demo"], "", Some(&url)))
        .await
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("as demo / demo"), "{out}");
    assert!(out.contains("support"), "{out}");
    assert!(
        err.contains("warning:") && err.contains("demos only"),
        "{err}"
    );
    let queues = db.store.list_queues().await.unwrap();
    assert_eq!(queues.len(), 4, "{queues:?}");
}

/// The first admin comes from the command line (README, "Signing in to the
/// admin console the first time"); roles change there too, audited.
#[tokio::test]
async fn the_first_admin_and_role_changes() {
    let (db, url) = test_db().await;
    let dir = std::env::temp_dir().join(format!("hotline-cli-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pw = dir.join("pw.txt");
    std::fs::write(&pw, "boss password\n").unwrap();
    let args: Vec<String> = [
        "agents",
        "add",
        "boss",
        "--name",
        "The Boss",
        "--role",
        "admin",
        "--password-file",
        pw.to_str().unwrap(),
    ]
    .map(String::from)
    .into();
    let run = |args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                hotline(&args, "", Some(&url))
            })
            .await
            .unwrap()
        }
    };
    let o = run(args).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("admin boss (The Boss) added"), "{out}");
    let boss = db
        .store
        .verify_agent_password("boss", "boss password")
        .await
        .unwrap()
        .expect("the file's password");
    assert_eq!(boss.role, hotline_store::Role::Admin);

    let set =
        |id: &str, role: &str| vec!["agents".into(), "set-role".into(), id.into(), role.into()];
    let o = run(set("boss", "supervisor")).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(out.contains("boss is now supervisor"), "{out}");
    // A usage error (clap's exit code 2), naming the choices.
    let o = run(set("boss", "root")).await;
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not one of admin, supervisor, agent"), "{err}");
    let o = run(set("ghost", "admin")).await;
    assert_user_error(&o, "\"ghost\" not found");
    let o = run(vec!["agents".into(), "list".into()]).await;
    let (out, _) = text(&o);
    assert!(out.contains("ROLE"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("boss") && l.contains("supervisor")),
        "{out}"
    );
    let audit = db.store.audit_page(None, 10).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["role_change", "agent_create"], "{audit:?}");
    assert_eq!(audit[0].details["to"], "supervisor");
    assert!(audit[0].actor.starts_with("cli:"), "{audit:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The package's directory as `cargo test` gives it at run time (the
/// compile-time one is stale when a shared target dir reuses this test
/// binary for a checkout elsewhere).
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
