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

/// A wrong sounds directory is one error (per language), not one per prompt,
/// and every prompt error says it is about recordings.
#[test]
fn a_wrong_sounds_dir_is_reported_once() {
    use hotline_ivr::ErrorKind;
    let flow = Path::new("tests/fixtures/flows/missing-prompts.yaml");
    let errors = |dir: &str| {
        load_file(
            flow,
            &LoadOptions {
                sounds_dir: Some(PathBuf::from(dir)),
            },
        )
        .expect_err("prompts are missing")
        .0
    };
    let e = errors("tests/fixtures/no-such-sounds");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].kind, ErrorKind::MissingRecording);
    assert_eq!(e[0].pos, None);
    assert!(
        e[0].message
            .contains("tests/fixtures/no-such-sounds does not exist"),
        "{e:?}"
    );

    // A directory with no en/ or zh/ in it.
    let e = errors("tests/fixtures/flows");
    let shown: Vec<String> = e.iter().map(|e| e.message.clone()).collect();
    assert_eq!(
        shown,
        [
            "cannot check the `en` prompts: tests/fixtures/flows/en does not exist",
            "cannot check the `zh` prompts: tests/fixtures/flows/zh does not exist",
        ]
    );

    let e = errors("tests/fixtures/sounds");
    assert!(
        e.iter().all(|e| e.kind == ErrorKind::MissingRecording),
        "{e:?}"
    );
}
