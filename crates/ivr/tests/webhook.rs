//! A webhook lookup end to end against a local HTTP server: the interpreter
//! asks, the webhook performer POSTs, the answer (or its failure) steers the flow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hotline_ivr::interp::{Action, CallVars, Event, Interpreter};
use hotline_ivr::{LoadOptions, load_str, webhook};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FLOW: &str = r#"
start: vip
nodes:
  vip:
    type: lookup
    source: webhook
    url: URL
    params:
      caller: ${caller}
    into: crm
    timeout: 500ms
    next: check
    on_failure: failed
  check:
    type: branch
    cases:
      - if: crm.level == gold
        then: gold
    else: failed
  gold:
    type: hangup
    outcome: self_served
  failed:
    type: hangup
    outcome: failed
"#;

/// Serves one connection: records the request, answers `status` + `body` (or never, when `None`).
async fn serve_once(
    answer: Option<(u16, &'static str)>,
) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/crm/vip", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut req = Vec::new();
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_string();
            if let Some(i) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if req.len() >= i + 4 + len {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        match answer {
            Some((status, body)) => {
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
            }
            None => tokio::time::sleep(Duration::from_secs(5)).await,
        }
        String::from_utf8_lossy(&req).to_string()
    });
    (url, task)
}

/// Runs the flow, performing its webhook with the real client; returns the outcome.
async fn run(url: &str) -> String {
    let flow = Arc::new(
        load_str(
            "webhook.yaml".as_ref(),
            &FLOW.replace("URL", url),
            &LoadOptions::default(),
        )
        .unwrap(),
    );
    let mut it = Interpreter::new(
        flow,
        CallVars {
            caller: "+8613800000000".into(),
            ..CallVars::default()
        },
    );
    let t0 = Instant::now();
    let actions = it.handle(t0, Utc::now(), Event::Started);
    let (id, params, timeout) = actions
        .iter()
        .find_map(|a| match a {
            Action::Lookup {
                id,
                params,
                timeout,
                ..
            } => Some((*id, params.clone(), *timeout)),
            _ => None,
        })
        .expect("a lookup");
    assert_eq!(it.next_timeout(), Some(t0 + timeout));
    let result = webhook::post_json(url, &params, timeout).await;
    let actions = it.handle(
        t0 + Duration::from_millis(10),
        Utc::now(),
        Event::LookupResult { id, result },
    );
    assert!(it.is_finished());
    actions
        .iter()
        .find_map(|a| match a {
            Action::Record {
                kind: "outcome",
                data,
                ..
            } => data["outcome"].as_str().map(str::to_owned),
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn webhook_success_posts_json_and_branches_on_the_answer() {
    let (url, server) = serve_once(Some((200, r#"{"level":"gold","name":"Li"}"#))).await;
    assert_eq!(run(&url).await, "self_served", "the gold branch");
    let req = server.await.unwrap();
    assert!(req.starts_with("POST /crm/vip HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("Content-Type: application/json"));
    assert!(req.ends_with(r#"{"caller":"+8613800000000"}"#), "{req}");
}

#[tokio::test]
async fn webhook_http_error_takes_the_failure_branch() {
    let (url, _server) = serve_once(Some((500, r#"{"error":"boom"}"#))).await;
    assert_eq!(run(&url).await, "failed");
}

#[tokio::test]
async fn webhook_that_never_answers_times_out() {
    let (url, _server) = serve_once(None).await;
    let started = Instant::now();
    assert_eq!(run(&url).await, "failed");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn interpreter_gives_up_on_its_own_and_ignores_a_late_answer() {
    let flow = Arc::new(
        load_str(
            "webhook.yaml".as_ref(),
            &FLOW.replace("URL", "http://127.0.0.1:9/"),
            &LoadOptions::default(),
        )
        .unwrap(),
    );
    let mut it = Interpreter::new(flow, CallVars::default());
    let t0 = Instant::now();
    it.handle(t0, Utc::now(), Event::Started);
    let deadline = it.next_timeout().unwrap();
    // An early timer is ignored.
    assert!(it.handle(t0, Utc::now(), Event::TimerFired).is_empty());
    let actions = it.handle(deadline, Utc::now(), Event::TimerFired);
    assert!(actions.iter().any(
        |a| matches!(a, Action::Record { kind: "lookup", data, .. } if data["error"] == "timeout")
    ));
    assert!(it.is_finished());
    let late = it.handle(
        deadline,
        Utc::now(),
        Event::LookupResult {
            id: 1,
            result: Ok(Default::default()),
        },
    );
    assert!(late.is_empty());
}
