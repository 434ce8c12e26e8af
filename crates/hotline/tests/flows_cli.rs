//! `hotline flows …` against the hotline's own flows in ivr-flows/.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(&manifest_dir()).join("../..")
}

fn hotline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .current_dir(root())
        .env_remove("HOTLINE_FLOWS_DIR")
        .env_remove("HOTLINE_SOUNDS_DIR")
        .env_remove("HOTLINE_DIAL_ALLOW")
        .env_remove("HOTLINE_CONFIG")
        .output()
        .expect("run hotline")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_hotline_flows_pass_the_check() {
    let o = hotline(&["flows", "check", "ivr-flows"]);
    assert!(
        o.status.success(),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_broken_flow_fails_the_check_with_positions() {
    let o = hotline(&[
        "flows",
        "check",
        "crates/ivr/tests/fixtures/flows/dangling.yaml",
        "--skip-prompts",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("dangling.yaml:1:8: `start` goes to `welcom`"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn simulate_subscription_refund_path() {
    let o = hotline(&[
        "flows",
        "simulate",
        "main",
        "--digits",
        "1 1 3",
        "--at",
        "2026-12-21T10:00+08:00",
    ]);
    assert!(o.status.success());
    let out = stdout(&o);
    for node in [
        "welcome (play)",
        "main-menu (menu)",
        "subscription-menu (menu)",
        "subscription-refund (play)",
        "queue-subscriptions (enqueue)",
    ] {
        assert!(out.contains(node), "{node} missing:\n{out}");
    }
    assert!(out.contains("issue type: subscription.refund"), "{out}");
    assert!(out.contains("end: handed to a queue"), "{out}");
}

/// Runs `hotline flows <pre…> simulate main` in `cwd` for a +882 caller
/// who asks for a callback in the evening, with `HOTLINE_DIAL_ALLOW` set to
/// `allow` (else unset). Returns whether the callback was booked (otherwise
/// the flow asked for another number) and the standard error.
fn books_a_callback_to_882(cwd: &Path, pre: &[&str], allow: Option<&str>) -> (bool, String) {
    let mut args = vec!["flows"];
    args.extend_from_slice(pre);
    args.extend_from_slice(&[
        "simulate",
        "main",
        "--digits",
        "1 2 1",
        "--at",
        "2026-12-21T20:00+08:00",
        "--caller",
        "+882345678901",
    ]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotline"));
    cmd.args(&args)
        .current_dir(cwd)
        .env_remove("HOTLINE_FLOWS_DIR")
        .env_remove("HOTLINE_SOUNDS_DIR")
        .env_remove("HOTLINE_CONFIG")
        .env_remove("HOTLINE_DIAL_ALLOW");
    if let Some(allow) = allow {
        cmd.env("HOTLINE_DIAL_ALLOW", allow);
    }
    let o = cmd.output().expect("run hotline");
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let booked = out.contains("outcome: callback");
    assert_eq!(
        out.contains("callback-enter-number (gather)"),
        !booked,
        "{out}"
    );
    (booked, stderr(&o))
}

/// The simulator asks the gateway's dial rule before it books a callback:
/// by default a +882 caller ID is refused (the flow asks for a number),
/// and the rule from `HOTLINE_DIAL_ALLOW` (as `hotline serve` reads it)
/// changes that.
#[test]
fn simulate_applies_the_dial_rule_from_the_environment() {
    assert!(!books_a_callback_to_882(&root(), &[], None).0);
    assert!(books_a_callback_to_882(&root(), &[], Some(r"^\+86;^\+882[0-9]+$")).0);
}

/// `hotline flows --config hotline.toml` reads the gateway's own settings:
/// the flows and sounds directories and the dial rule, so an operator's
/// simulation books callbacks to exactly the numbers `serve` would dial.
/// A flag or the environment still wins over the file.
#[test]
fn simulate_reads_the_gateway_config_file() {
    let cwd = TempDir::new("simulate-config");
    let flows = repo_flows();
    let sounds = root().join("sounds");
    let config = cwd.0.join("hotline.toml");
    std::fs::write(
        &config,
        format!(
            "# as /etc/hotline/hotline.toml\nsip_listen = \"127.0.0.1:5060\"\n\
             flows_dir = {flows:?}\nsounds_dir = {:?}\n\
             dial_allow = ['^\\+882[0-9]+$']\n",
            sounds.display().to_string()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let pre = ["--config", config.as_str()];
    let (booked, err) = books_a_callback_to_882(&cwd.0, &pre, None);
    assert!(booked, "{err}");
    assert!(!err.contains("no sounds directory"), "{err}");
    assert!(!books_a_callback_to_882(&cwd.0, &pre, Some(r"^\+86")).0);

    // A key the gateway does not know is refused here as by `serve`.
    std::fs::write(&config, "flows_dri = \"x\"\n").unwrap();
    let o = hotline_in(&cwd.0, &["flows", "--config", &config, "graph", "main"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("invalid config file"), "{}", stderr(&o));
}

#[test]
fn simulate_order_status_path_with_fixtures() {
    let fx = std::env::temp_dir().join(format!("hotline-fx-{}.yaml", std::process::id()));
    std::fs::write(
        &fx,
        "order_by_number:\n  \"12345\": { status: paid, course: Rust }\n",
    )
    .unwrap();
    let o = hotline(&[
        "flows",
        "simulate",
        "main",
        "--digits",
        "1 2 2 12345# 2",
        "--at",
        "2026-12-21T10:00+08:00",
        "--fixtures",
        fx.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&fx);
    let out = stdout(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains(
            "hears en/order, en/digits/1, en/digits/2, en/digits/3, en/digits/4, en/digits/5"
        ),
        "{out}"
    );
    assert!(out.contains("status-paid (play)"), "{out}");
    assert!(out.contains("outcome: self_served"), "{out}");
}

#[test]
fn graph_prints_mermaid() {
    let o = hotline(&["flows", "graph", "main"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.starts_with("flowchart TD\n"));
    assert!(
        out.contains("n_main_menu -->|\"1\"| n_subscription_menu"),
        "{out}"
    );
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `hotline` run from `cwd` (not the repository), without the env overrides.
fn hotline_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .current_dir(cwd)
        .env_remove("HOTLINE_FLOWS_DIR")
        .env_remove("HOTLINE_SOUNDS_DIR")
        .env_remove("HOTLINE_DIAL_ALLOW")
        .env_remove("HOTLINE_CONFIG")
        .output()
        .expect("run hotline")
}

/// A fresh empty directory outside the repository, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("hotline-flows-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d.canonicalize().unwrap())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repo_flows() -> String {
    root()
        .join("ivr-flows")
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

/// The hotline's flow copied into `<dir>/flows/`, with no sounds anywhere near.
fn flows_without_sounds(dir: &Path) -> PathBuf {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::copy(root().join("ivr-flows/main.yaml"), flows.join("main.yaml")).unwrap();
    flows
}

#[test]
fn check_from_elsewhere_finds_the_sounds_next_to_the_flows() {
    let cwd = TempDir::new("check-elsewhere");
    let flows = repo_flows();
    let sounds = root().join("sounds").canonicalize().unwrap();
    for args in [
        vec!["flows", "--flows-dir", flows.as_str(), "check"],
        vec!["flows", "check", flows.as_str()],
    ] {
        let o = hotline_in(&cwd.0, &args);
        assert!(o.status.success(), "{args:?}\n{}{}", stdout(&o), stderr(&o));
        assert!(
            stderr(&o).contains(&format!("prompts found in {}", sounds.display())),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn simulate_from_elsewhere_uses_the_sounds_next_to_the_flows() {
    let cwd = TempDir::new("simulate-elsewhere");
    let flows = repo_flows();
    let o = hotline_in(
        &cwd.0,
        &[
            "flows",
            "--flows-dir",
            &flows,
            "simulate",
            "main",
            "--digits",
            "1 1 3",
            "--at",
            "2026-12-21T10:00+08:00",
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("end: handed to a queue"),
        "{}",
        stdout(&o)
    );
    assert!(
        !stderr(&o).contains("no sounds directory"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn graph_needs_no_sounds_at_all() {
    let cwd = TempDir::new("graph-no-sounds");
    flows_without_sounds(&cwd.0);
    for args in [
        vec!["flows", "--flows-dir", "flows", "graph", "main"],
        vec!["flows", "graph", "flows/main.yaml"],
        vec![
            "flows",
            "--sounds-dir",
            "no/such/dir",
            "--flows-dir",
            "flows",
            "graph",
            "main",
        ],
    ] {
        let o = hotline_in(&cwd.0, &args);
        assert!(o.status.success(), "{args:?}\n{}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).starts_with("flowchart TD\n"), "{}", stdout(&o));
        assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    }
}

#[test]
fn check_names_the_sounds_dir_it_used_and_the_flag() {
    let cwd = TempDir::new("wrong-sounds");
    let flows = repo_flows();
    let all = |o: &Output| format!("{}{}", stdout(o), stderr(o));

    // A directory that does not exist: one error naming it, not one per prompt.
    let missing = cwd.0.join("no-such-sounds");
    let missing = missing.to_str().unwrap();
    let o = hotline_in(
        &cwd.0,
        &[
            "flows",
            "--flows-dir",
            &flows,
            "check",
            "--sounds-dir",
            missing,
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    assert!(all(&o).contains(missing), "{}", all(&o));
    assert!(all(&o).contains("--sounds-dir"), "{}", all(&o));
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));

    // A directory without the recordings: the errors, then where it looked.
    let empty = cwd.0.join("empty-sounds");
    std::fs::create_dir_all(&empty).unwrap();
    let empty = empty.to_str().unwrap();
    let o = hotline_in(
        &cwd.0,
        &[
            "flows",
            "--flows-dir",
            &flows,
            "check",
            "--sounds-dir",
            empty,
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    assert!(
        stderr(&o).contains(&format!("prompts were looked up in {empty}")),
        "{}",
        all(&o)
    );
    assert!(stderr(&o).contains("--sounds-dir"), "{}", all(&o));
    assert_eq!(stderr(&o).matches("looked up in").count(), 1, "{}", all(&o));

    // No --sounds-dir and no sounds/ next to the flows or here: says where it looked.
    flows_without_sounds(&cwd.0);
    let o = hotline_in(&cwd.0, &["flows", "--flows-dir", "flows", "check"]);
    assert_eq!(o.status.code(), Some(1), "{}", all(&o));
    let looked = cwd.0.join("sounds");
    assert!(
        all(&o).contains(&looked.display().to_string()),
        "{}",
        all(&o)
    );
    assert!(all(&o).contains("--sounds-dir"), "{}", all(&o));
    // The flow itself is fine: with --skip-prompts it passes.
    let o = hotline_in(
        &cwd.0,
        &["flows", "--flows-dir", "flows", "check", "--skip-prompts"],
    );
    assert!(o.status.success(), "{}", all(&o));
}

#[test]
fn check_reports_structure_and_prompt_errors_in_one_run() {
    let o = hotline(&[
        "flows",
        "check",
        "crates/ivr/tests/fixtures/flows/errors-all-at-once.yaml",
        "--sounds-dir",
        "crates/ivr/tests/fixtures/sounds",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let f = "crates/ivr/tests/fixtures/flows/errors-all-at-once.yaml";
    for want in [
        format!("{f}:6:13: prompt `welcom` has no recording"),
        format!("{f}:9:5: menu `menu` has no timeout path"),
        format!("{f}:16:11: unknown node type `plya`"),
        format!("{f}:17:13: prompt `menuu` has no recording"),
    ] {
        assert!(out.contains(&want), "{want} missing:\n{out}");
    }
}

#[test]
fn check_refuses_conditions_outside_the_grammar() {
    let o = hotline(&[
        "flows",
        "check",
        "crates/ivr/tests/fixtures/flows/bad-conditions.yaml",
        "--skip-prompts",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("bad-conditions.yaml:7:26: `if`: `===` is not an operator; use `==`"),
        "{}",
        stdout(&o)
    );
}

/// The package's directory as `cargo test` gives it at run time (the
/// compile-time one is stale when a shared target dir reuses this test
/// binary for a checkout elsewhere).
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
