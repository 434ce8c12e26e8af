//! Hot reload: a valid change is a new version for new calls; an invalid one
//! is refused and the previous version stays; a call keeps its version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hotline_ivr::interp::{Action, CallVars, Event, Interpreter};
use hotline_ivr::{FlowSet, LoadOptions};

fn flow(prompt: &str) -> String {
    format!("start: hi\nnodes:\n  hi:\n    type: hangup\n    prompt: {prompt}\n")
}

#[test]
fn reload_keeps_calls_on_their_version_and_refuses_broken_files() {
    let dir = std::env::temp_dir().join(format!("hotline-ivr-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("main.yaml");
    std::fs::write(&file, flow("first")).unwrap();
    let mut set = FlowSet::load(&dir, LoadOptions::default()).unwrap();
    let v1 = set.get("main").unwrap();
    assert!(set.reload_if_changed().is_none());

    // A call starts on version 1.
    let mut call = Interpreter::new(Arc::clone(&v1), CallVars::default());

    // A broken edit: refused, version 1 stays live.
    std::fs::write(
        &file,
        "start: hi\nnodes:\n  hi:\n    type: hangup\n    promt: x\n",
    )
    .unwrap();
    let report = set.reload();
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0]
            .to_string()
            .contains("main.yaml:5:5: unknown key `promt`")
    );
    assert!(Arc::ptr_eq(&set.get("main").unwrap(), &v1));

    // A good edit: new calls get version 2 (mtime may not tick within a test, so reload directly).
    std::fs::write(&file, flow("second")).unwrap();
    let report = set.reload();
    assert!(report.errors.is_empty());
    assert_eq!(report.updated.len(), 1);
    let v2 = set.get("main").unwrap();
    assert_ne!(v1.version, v2.version);

    // The call in progress still plays version 1's prompt.
    let actions = call.handle(
        Instant::now() + Duration::from_secs(1),
        Utc::now(),
        Event::Started,
    );
    assert!(actions.contains(&Action::Play {
        prompts: vec!["en/first".into()],
        barge_in: false
    }));

    // A removed file removes its flow.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(set.reload().removed, ["main"]);
    let _ = std::fs::remove_dir_all(&dir);
}
