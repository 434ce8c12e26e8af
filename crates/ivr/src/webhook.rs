//! The webhook performer: POST the lookup's params as JSON, read a JSON object back.
//!
//! A deliberately small HTTP/1.1 client over tokio (plain `http://` only,
//! one request per connection, `Connection: close`) so the gateway does not
//! pull in a full HTTP stack for one POST. For HTTPS endpoints put a local
//! proxy in front. The whole exchange is bounded by the lookup's timeout.

use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Performs a webhook lookup: `Ok(object)` on a 2xx JSON object, else `Err(reason)`.
pub async fn post_json(
    url: &str,
    body: &Map<String, Value>,
    timeout: Duration,
) -> Result<Map<String, Value>, String> {
    match tokio::time::timeout(timeout, exchange(url, body)).await {
        Ok(r) => r,
        Err(_) => Err("timeout".into()),
    }
}

async fn exchange(url: &str, body: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// webhooks are supported, not {url}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:80")
    };
    let mut stream = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let payload = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: hotline-ivr\r\n\r\n",
        payload.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(&payload)
        .await
        .map_err(|e| e.to_string())?;
    let mut resp = Vec::new();
    // Bounded read: a webhook answer is small; refuse anything over 1 MiB.
    let mut limited = stream.take(1 << 20);
    limited
        .read_to_end(&mut resp)
        .await
        .map_err(|e| e.to_string())?;
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let head = String::from_utf8_lossy(&resp[..split]);
    let status: u16 = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("malformed HTTP status line")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let raw = &resp[split + 4..];
    let body = if chunked { dechunk(raw)? } else { raw.to_vec() };
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}"));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the webhook did not answer a JSON object".into()),
        Err(e) => Err(format!("the webhook answered invalid JSON: {e}")),
    }
}

fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
}
