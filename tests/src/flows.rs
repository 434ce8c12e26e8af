//! IVR flows for the end-to-end tests: `ivr-flows/main.yaml` with office
//! hours that do not depend on the wall clock, in a temp flows dir.

use crate::gateway::hotline_bin;
use crate::{TempDir, workspace_root};
use std::process::Command;

/// `ivr-flows/main.yaml` with the office hours replaced: `weekly` becomes
/// `daily: <hours>` and the holidays go ("00:00-24:00": open all day;
/// "closed": never open).
pub fn main_flow_with_hours(hours: &str) -> String {
    let path = workspace_root().join("ivr-flows/main.yaml");
    let text = std::fs::read_to_string(&path).expect("read ivr-flows/main.yaml");
    assert_eq!(
        text.matches("type: hours").count(),
        1,
        "main.yaml has one hours node"
    );
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = text.lines().collect();
    let hours_at = lines
        .iter()
        .position(|l| l.trim() == "type: hours")
        .unwrap();
    let (mut weekly, mut holidays) = (false, false);
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        i += 1;
        if i > hours_at && !weekly && l.trim() == "weekly:" {
            let indent = indent_of(l);
            out.push(l.to_owned());
            out.push(format!("{}  daily: {hours}", " ".repeat(indent)));
            while i < lines.len() && indent_of(lines[i]) > indent {
                i += 1;
            }
            weekly = true;
        } else if weekly && !holidays && l.trim_start().starts_with("holidays:") {
            holidays = true;
        } else {
            out.push(l.to_owned());
        }
    }
    assert!(
        weekly && holidays,
        "main.yaml's hours node has weekly and holidays"
    );
    out.join("\n") + "\n"
}

/// A flows dir holding `main.yaml` with `text`, which must pass `hotline
/// flows check` (else calls would silently get the built-in flow).
pub fn flows_dir(label: &str, text: &str) -> TempDir {
    let dir = TempDir::new(label);
    let file = dir.path().join("main.yaml");
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    let out = Command::new("timeout")
        .arg("20")
        .arg(hotline_bin())
        .args(["flows", "check", "--sounds-dir"])
        .arg(workspace_root().join("sounds"))
        .arg(&file)
        .output()
        .expect("run hotline flows check");
    assert!(
        out.status.success(),
        "{} does not pass `hotline flows check`:\n{}{}\n{text}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}
