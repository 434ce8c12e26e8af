//! Issue 11, flows as versioned documents, end to end: the gateway imports
//! its flows dir into the database; a version published through the admin
//! API is live for the next SIPp call (NOTIFY/LISTEN, the latency printed);
//! a rollback brings the old path back for the call after.

use std::path::Path;
use std::time::{Duration, Instant};

use hotline_e2e::events::{Event, dump, find};
use hotline_e2e::flows::flows_dir;
use hotline_e2e::script::{Step, scripted_caller};
use hotline_e2e::{Gateway, db, poll_until};
use serde_json::{Value, json};

const TOKEN: &str = "flow-publish-e2e-admin-token";
const CALL_END_WAIT: Duration = Duration::from_secs(20);

/// A one-menu flow: 1 says `{bye}` and hangs up.
fn small_flow(bye: &str) -> String {
    format!(
        "# e2e: publish\n\
         flow: main\n\
         languages: [en]\n\
         start: menu\n\
         nodes:\n  \
           menu:\n    \
             type: menu\n    \
             prompt: main-menu\n    \
             options:\n      \
               1: done\n    \
             timeout: 20s\n    \
             retries: 0\n    \
             on_exhausted: done\n  \
           done:\n    \
             type: hangup\n    \
             prompt: {bye}\n    \
             outcome: self_served\n"
    )
}

fn api(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let body = body.map(|b| b.to_string());
    let (code, text) = gw
        .http_request(method, path, &[("Authorization", &auth)], body.as_deref())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (code, v)
}

/// A call that presses 1: its events once it has ended.
fn call_pressing_one(gw: &Gateway) -> Vec<Event> {
    let run = scripted_caller(
        gw,
        "caller",
        &[Step::Pause(1000), Step::Info('1'), Step::AwaitBye(15_000)],
    )
    .timeout(Duration::from_secs(75))
    .run();
    run.assert_success();
    gw.wait_call_ended(&run.call_id, CALL_END_WAIT)
}

fn prompts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind() == "prompt_started")
        .map(|e| e.data_str("prompt").to_owned())
        .collect()
}

fn flow_version_of(gw: &Gateway, events: &[Event]) -> String {
    let sip = events[0].sip_call_id().replace('\'', "''");
    let sql = format!("SELECT flow_version FROM calls WHERE sip_call_id = '{sip}' AND complete");
    let data = gw.data_dir();
    poll_until(Duration::from_secs(10), || db::psql(&data, &sql).pop())
        .unwrap_or_else(|| panic!("no complete calls row; log:\n{}", gw.log_tail()))
        .remove(0)
}

/// Publishes (or rolls back) and waits for the gateway to load `want`:
/// the time from the request to the log line.
fn until_live(gw: &Gateway, want: &str, change: impl FnOnce()) -> Duration {
    let before = gw.loaded_flow_versions().len();
    let t0 = Instant::now();
    change();
    poll_until(Duration::from_secs(10), || {
        gw.loaded_flow_versions()[before..]
            .iter()
            .any(|v| v == want)
            .then_some(())
    })
    .unwrap_or_else(|| panic!("{want} not live within 10 s; log:\n{}", gw.log_tail()));
    t0.elapsed()
}

#[test]
fn a_published_version_takes_the_next_call_and_a_rollback_restores_the_old_path() {
    let flows = flows_dir("flow_publish_flows", &small_flow("goodbye"));
    let token_file = flows.path().join("admin-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let gw = Gateway::start_with(
        "flow_publish",
        &[
            "--entry-flow",
            "main",
            "--flows-dir",
            path_str(flows.path()),
            "--admin-token-file",
            path_str(&token_file),
        ],
    );

    // First start: the flows dir is version 1, published, author `import`.
    let (code, list) = api(&gw, "GET", "/api/flows", None);
    assert_eq!(code, 200, "{list}");
    assert_eq!(list[0]["name"], "main", "{list}");
    assert_eq!(list[0]["published"], 1, "{list}");
    assert_eq!(list[0]["last_editor"], "import", "{list}");
    let evs = call_pressing_one(&gw);
    assert_eq!(
        prompts(&evs),
        ["en/main-menu", "en/goodbye"],
        "{}",
        dump(&evs)
    );
    assert_eq!(find(&evs, "flow_started").data_str("version"), "v1");
    assert_eq!(flow_version_of(&gw, &evs), "v1");

    // A new version saved and published through the API.
    let (code, v2) = api(
        &gw,
        "POST",
        "/api/flows/main/versions",
        Some(json!({ "yaml": small_flow("thank-you"), "based_on": 1, "comment": "e2e" })),
    );
    assert_eq!(code, 201, "{v2}");
    assert_eq!(v2["version"], 2);
    let latency = until_live(&gw, "v2", || {
        let (code, p) = api(&gw, "POST", "/api/flows/main/versions/2/publish", None);
        assert_eq!(code, 200, "{p}");
    });
    eprintln!("[flow_publish] publish -> live on the gateway: {latency:?}");
    assert!(
        latency < Duration::from_secs(5),
        "publish took {latency:?} to be live"
    );
    let evs = call_pressing_one(&gw);
    assert_eq!(
        prompts(&evs),
        ["en/main-menu", "en/thank-you"],
        "{}",
        dump(&evs)
    );
    assert_eq!(find(&evs, "flow_started").data_str("version"), "v2");
    assert_eq!(flow_version_of(&gw, &evs), "v2");

    // Rollback to v1: a new version v3 with v1's text; the old path again.
    let latency = until_live(&gw, "v3", || {
        let (code, rb) = api(
            &gw,
            "POST",
            "/api/flows/main/rollback",
            Some(json!({ "version": 1 })),
        );
        assert_eq!(code, 201, "{rb}");
        assert_eq!(rb["rollback_of"], 1, "{rb}");
    });
    eprintln!("[flow_publish] rollback -> live on the gateway: {latency:?}");
    let evs = call_pressing_one(&gw);
    assert_eq!(
        prompts(&evs),
        ["en/main-menu", "en/goodbye"],
        "{}",
        dump(&evs)
    );
    assert_eq!(find(&evs, "flow_started").data_str("version"), "v3");

    // The flows dir edited now: the console's version wins, the file is a draft.
    let file = flows.path().join("main.yaml");
    let tmp = file.with_extension("yaml.tmp");
    std::fs::write(&tmp, small_flow("sorry-invalid")).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let notice = poll_until(Duration::from_secs(10), || {
        let (_, list) = api(&gw, "GET", "/api/flows", None);
        list[0]["notice"].as_str().map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no notice for the file edit; log:\n{}", gw.log_tail()));
    assert_eq!(
        notice,
        "published v3 from the console wins; file saved as draft v4"
    );
    assert!(
        std::fs::read_to_string(gw.log_path())
            .unwrap()
            .contains("published v3 from the console wins; file saved as draft v4"),
        "the log says what won"
    );
    let evs = call_pressing_one(&gw);
    assert_eq!(
        prompts(&evs),
        ["en/main-menu", "en/goodbye"],
        "{}",
        dump(&evs)
    );
}

/// A database that does not answer at start: the gateway runs the flows
/// dir's files (logged) and calls get the file's version (its hash).
#[test]
fn without_its_database_the_gateway_runs_the_files() {
    let flows = flows_dir("flow_publish_nodb_flows", &small_flow("thank-you"));
    let gw = Gateway::start_with(
        "flow_publish_nodb",
        &[
            "--entry-flow",
            "main",
            "--flows-dir",
            path_str(flows.path()),
            // Nothing listens on port 1.
            "--database-url",
            "postgres://hotline@127.0.0.1:1/hotline",
        ],
    );
    let log = std::fs::read_to_string(gw.log_path()).unwrap();
    assert!(
        log.contains("running the flows dir's files"),
        "the fallback is logged; log:\n{}",
        gw.log_tail()
    );
    let evs = call_pressing_one(&gw);
    assert_eq!(
        prompts(&evs),
        ["en/main-menu", "en/thank-you"],
        "{}",
        dump(&evs)
    );
    let version = find(&evs, "flow_started").data_str("version");
    assert!(
        version.len() == 12 && version.chars().all(|c| c.is_ascii_hexdigit()),
        "a file's version is its hash: {version}"
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}
