//! Masking a caller's number (or name): `*` over every occurrence, in JSON
//! values and in JSON-lines files patched in place.
//!
//! An occurrence is the token with no ASCII letter or digit right before or
//! after it (`+8613800138000` inside `sip:+8613800138000@gw` is one;
//! `1001` inside `10012` is not), and only in string *values*: object keys
//! and numbers are never touched, so a masked event still parses as its
//! kind. The mask has the token's length in bytes, which lets a JSON-lines
//! file that a running gateway is appending to be patched in place: no
//! byte moves, no append is lost.

use std::fs::OpenOptions;
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde_json::Value;

/// Tokens shorter than this are never masked (they would hit everything).
pub const MIN_TOKEN: usize = 3;

/// True for a token worth masking: long enough and not masked already.
pub fn maskable(token: &str) -> bool {
    token.len() >= MIN_TOKEN && !token.bytes().all(|b| b == b'*')
}

/// Writes `*` over every bounded occurrence of each token in `bytes`;
/// returns how many were masked.
pub fn mask_bytes(bytes: &mut [u8], tokens: &[&str]) -> usize {
    let mut n = 0;
    for token in tokens.iter().filter(|t| maskable(t)) {
        let t = token.as_bytes();
        let mut i = 0;
        while i + t.len() <= bytes.len() {
            if &bytes[i..i + t.len()] == t
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
                && bytes
                    .get(i + t.len())
                    .is_none_or(|b| !b.is_ascii_alphanumeric())
            {
                bytes[i..i + t.len()].fill(b'*');
                n += 1;
                i += t.len();
            } else {
                i += 1;
            }
        }
    }
    n
}

/// Masks the tokens in a string; true when it changed.
pub fn mask_str(s: &mut String, tokens: &[&str]) -> bool {
    let mut bytes = std::mem::take(s).into_bytes();
    let n = mask_bytes(&mut bytes, tokens);
    // Whole UTF-8 tokens replaced by ASCII: still UTF-8.
    *s = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into());
    n > 0
}

/// Masks the tokens in every string value (not key) of `v`; true when it changed.
pub fn mask_json(v: &mut Value, tokens: &[&str]) -> bool {
    match v {
        Value::String(s) => mask_str(s, tokens),
        Value::Array(a) => a
            .iter_mut()
            .fold(false, |changed, x| mask_json(x, tokens) | changed),
        Value::Object(o) => o
            .values_mut()
            .fold(false, |changed, x| mask_json(x, tokens) | changed),
        _ => false,
    }
}

/// Masks the tokens in the string values of one JSON text (a line of a
/// JSON-lines file), in place; returns how many were masked.
pub fn mask_json_text(line: &mut [u8], tokens: &[&str]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < line.len() {
        if line[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < line.len() && line[j] != b'"' {
            j += if line[j] == b'\\' { 2 } else { 1 };
        }
        let end = j.min(line.len());
        let mut k = end + 1;
        while k < line.len() && line[k].is_ascii_whitespace() {
            k += 1;
        }
        let is_key = line.get(k) == Some(&b':');
        if !is_key {
            n += mask_bytes(&mut line[start..end], tokens);
        }
        i = end + 1;
    }
    n
}

/// Which lines of a JSON-lines file to mask, and what in them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskRule {
    /// Only lines containing this text (a call id); `None`: every line.
    pub within: Option<String>,
    /// What to mask there.
    pub tokens: Vec<String>,
}

/// Patches a JSON-lines file in place: in each complete line a rule
/// selects, the rule's tokens are masked (same length, so nothing moves
/// and a concurrent appender is unaffected). With `dry_run` nothing is
/// written. Returns the number of lines changed (or that would be). A
/// missing file is no lines.
pub fn mask_jsonl_file(path: &Path, rules: &[MaskRule], dry_run: bool) -> io::Result<u64> {
    if rules.is_empty() {
        return Ok(0);
    }
    let file = match OpenOptions::new().read(true).write(!dry_run).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::with_capacity(256 * 1024, &file);
    let mut line = Vec::with_capacity(4096);
    let mut offset = 0u64;
    let mut changed = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            // The end, or a line still being appended: left alone.
            break;
        }
        let mut hits = 0;
        for rule in rules {
            let applies = rule
                .within
                .as_deref()
                .is_none_or(|w| contains(&line, w.as_bytes()));
            if applies {
                let tokens: Vec<&str> = rule.tokens.iter().map(String::as_str).collect();
                hits += mask_json_text(&mut line, &tokens);
            }
        }
        if hits > 0 {
            changed += 1;
            if !dry_run {
                file.write_all_at(&line, offset)?;
            }
        }
        offset += n as u64;
    }
    if changed > 0 && !dry_run {
        file.sync_data()?;
    }
    Ok(changed)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_bounded_occurrences_in_string_values() {
        let mut v = json!({
            "caller": "+8613800138000",
            "uri": "sip:+8613800138000@gw",
            "other": "+86138001380001",
            "n": 8613800138000u64,
            "+8613800138000": "key stays",
            "list": ["x +8613800138000 y"],
        });
        assert!(mask_json(&mut v, &["+8613800138000"]));
        assert_eq!(v["caller"], "**************");
        assert_eq!(v["uri"], "sip:**************@gw");
        assert_eq!(v["other"], "+86138001380001");
        assert_eq!(v["n"], 8613800138000u64);
        assert_eq!(v["+8613800138000"], "key stays");
        assert_eq!(v["list"][0], "x ************** y");
        assert!(!mask_json(&mut v, &["+8613800138000"]), "idempotent");
        assert!(!mask_json(&mut json!({"a": "12"}), &["12"]), "too short");
    }

    #[test]
    fn a_jsonl_file_is_patched_in_place_by_rule() {
        let dir = std::env::temp_dir().join(format!("hotline-mask-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.jsonl");
        let text = concat!(
            "{\"call_id\":\"aaa\",\"kind\":\"call_started\",\"data\":{\"caller\":\"5550001\",\"caller_name\":\"Ann Lee\"}}\n",
            "{\"call_id\":\"bbb\",\"kind\":\"call_started\",\"data\":{\"caller\":\"5550001\",\"caller_name\":\"Ann Lee\"}}\n",
            "{\"call_id\":\"ccc\",\"kind\":\"x\",\"data\":{\"s\":\"a \\\"5550001\\\" b\"}}\n",
            "{\"call_id\":\"aaa\",\"kind\":\"partial\",\"data\":{\"caller\":\"5550001\""
        );
        std::fs::write(&path, text).unwrap();
        let rules = [MaskRule {
            within: Some("aaa".into()),
            tokens: vec!["5550001".into(), "Ann Lee".into()],
        }];
        assert_eq!(mask_jsonl_file(&path, &rules, true).unwrap(), 1);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "dry run");
        assert_eq!(mask_jsonl_file(&path, &rules, false).unwrap(), 1);
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(after.len(), text.len());
        let lines: Vec<&str> = after.split('\n').collect();
        assert!(lines[0].contains("\"caller\":\"*******\",\"caller_name\":\"*******\""));
        assert!(lines[1].contains("5550001"), "another call's line");
        assert!(lines[3].contains("5550001"), "an incomplete line is left");
        let everywhere = [MaskRule {
            within: None,
            tokens: vec!["5550001".into()],
        }];
        assert_eq!(mask_jsonl_file(&path, &everywhere, false).unwrap(), 2);
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(after.matches("5550001").count(), 1, "{after}");
        for l in after.lines().take(3) {
            serde_json::from_str::<Value>(l).unwrap();
        }
        assert_eq!(mask_jsonl_file(&path, &everywhere, false).unwrap(), 0);
    }
}
