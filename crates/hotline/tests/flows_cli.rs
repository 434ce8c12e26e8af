//! `hotline flows …` against the hotline's own flows in ivr-flows/.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn hotline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(args)
        .current_dir(root())
        .env_remove("HOTLINE_FLOWS_DIR")
        .env_remove("HOTLINE_SOUNDS_DIR")
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
