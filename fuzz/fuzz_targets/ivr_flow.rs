//! The YAML flow loader and validator (`hotline_ivr::load_str`), the graph
//! export and the simulator on whatever loads.
//!
//! Input: flow text; after a line `#%digits `, the rest of that line is
//! the simulated caller's key presses.
//!
//! Beyond "no panic":
//! - a rejected flow has at least one error, each at a position inside the
//!   text (line ≤ lines + 1), sorted, without duplicates;
//! - a loaded flow's start node exists, every exit of every node names a
//!   node of the flow, and node ids are unique;
//! - loading is deterministic (the same text gives the same errors);
//! - the simulator ends (it has its own step cap) on any loaded flow.
#![no_main]

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use hotline_ivr::sim::{SimOptions, simulate};
use hotline_ivr::{LoadOptions, load_str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let digits = text
        .lines()
        .find_map(|l| l.strip_prefix("#%digits "))
        .unwrap_or("1 2 #")
        .to_string();
    let path = Path::new("fuzz.yaml");
    let opts = LoadOptions::default();
    match load_str(path, text, &opts) {
        Err(errors) => {
            assert!(!errors.0.is_empty(), "rejected without a reason");
            // The YAML parser ends lines at LF, CRLF and a lone CR.
            let lines = text.replace("\r\n", "\n").split(['\n', '\r']).count();
            for e in &errors.0 {
                assert!(!e.message.is_empty());
                if let Some(pos) = e.pos {
                    assert!(
                        pos.line >= 1 && pos.line <= lines + 1,
                        "{e} outside the text"
                    );
                }
            }
            assert!(
                errors
                    .0
                    .windows(2)
                    .all(|w| w[0].pos <= w[1].pos && w[0] != w[1]),
                "errors unsorted or repeated"
            );
            let again = load_str(path, text, &opts).expect_err("second load passed");
            assert_eq!(
                errors.to_string(),
                again.to_string(),
                "loading is not deterministic"
            );
        }
        Ok(flow) => {
            assert!(flow.node(&flow.start).is_some(), "start node missing");
            let mut ids = HashSet::new();
            for node in &flow.nodes {
                assert!(
                    ids.insert(node.id.as_str()),
                    "duplicate node id {}",
                    node.id
                );
            }
            for node in &flow.nodes {
                for t in node.kind.targets() {
                    assert!(flow.node(t).is_some(), "{} exits to missing {t}", node.id);
                }
            }
            let _ = hotline_ivr::graph::mermaid(&flow);
            let sim = SimOptions {
                digits,
                ..SimOptions::default()
            };
            let _ = simulate(Arc::new(flow), &sim);
        }
    }
});
