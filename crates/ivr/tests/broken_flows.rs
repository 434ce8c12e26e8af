//! Every broken flow under tests/fixtures/flows produces exactly the errors in
//! its `.expected` file (`file:line:column: message`, one a line).
//!
//! To update after a deliberate message change: `BLESS=1 cargo test -p hotline-ivr --test broken_flows`.

use std::path::{Path, PathBuf};

use hotline_ivr::{LoadOptions, load_file};

#[test]
fn broken_flows_report_exactly_the_expected_errors() {
    // Relative paths, so that the messages read as `hotline flows check` prints them.
    let dir = Path::new("tests/fixtures/flows");
    let opts = LoadOptions {
        sounds_dir: Some(PathBuf::from("tests/fixtures/sounds")),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "fixtures missing");
    let mut failures = Vec::new();
    for f in files {
        let got = match load_file(&f, &opts) {
            Ok(_) => String::new(),
            Err(e) => format!("{e}\n"),
        };
        let expected_path = f.with_extension("expected");
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path).unwrap_or_default();
        assert!(!got.is_empty(), "{} loaded without errors", f.display());
        if got != want {
            failures.push(format!(
                "{}:\n--- expected\n{want}--- got\n{got}",
                f.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
