//! The parsing context node kinds' parsers run in: the reader of one flow
//! file ([`Loader`]) and its helpers for taking typed keys out of a YAML
//! mapping ([`Fields`]), reporting each problem with its line:column.
//!
//! Owns [`Loader`]'s state and the helpers every kind shares (text,
//! numbers, durations, prompts, node references, one-key choices,
//! outcomes), [`Syntax`] (how a kind is written) and what the whole flow
//! passes to a kind's parser ([`Context`], [`Defaults`]). The dispatcher
//! that reads a whole flow and picks a kind's parser by its `type:` is
//! [`crate::load`], above the node kinds; so are the whole-flow checks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;

use crate::error::{ErrorKind, FlowError};
use crate::model::{Choice, SayAs, Template};
use crate::yaml::{Pos, Yaml, YamlValue};

/// A node reference seen while reading: from which node, to which id, where.
pub(crate) struct Ref {
    pub(crate) to: String,
    pub(crate) pos: Pos,
    pub(crate) key: String,
}

/// A `say` node's need for fragment prompts.
pub(crate) struct SayNeed {
    pub(crate) say_as: SayAs,
    pub(crate) pos: Pos,
}

/// The reader of one flow file; node kinds' parsers (a [`Syntax`] each) call
/// its helpers to take their keys.
///
/// Its whole-flow state (errors, references, prompts, edges) is read by the
/// checks in [`crate::load`] once every node is read.
pub(crate) struct Loader {
    pub(crate) file: PathBuf,
    /// The source, to place errors inside a scalar (a condition's bad token).
    lines: Vec<String>,
    pub(crate) errors: Vec<FlowError>,
    pub(crate) refs: Vec<Ref>,
    /// Prompt names as written, with where.
    pub(crate) prompts: Vec<(String, Pos)>,
    pub(crate) says: Vec<SayNeed>,
    /// Node id → ids it may go to (recorded even when the node has other errors).
    pub(crate) edges: HashMap<String, Vec<String>>,
    /// The node being read.
    pub(crate) current: Option<String>,
    /// The flow's languages, once read (prompts are checked in each).
    pub(crate) languages: Option<Vec<String>>,
    /// `callback` nodes' `hours:` (an hours node id, where) and their slot
    /// times (name, minute, where): checked once every node is known.
    pub(crate) callback_hours: Vec<CallbackHours>,
}

/// A mapping being read: keys are marked as they are taken so leftovers are reported.
pub(crate) struct Fields<'y> {
    /// How errors name the mapping, e.g. "menu node `main`".
    pub(crate) what: String,
    pub(crate) pos: Pos,
    pub(crate) entries: &'y [(Yaml, Yaml)],
    used: Vec<bool>,
}

impl<'y> Fields<'y> {
    pub(crate) fn take(&mut self, key: &str) -> Option<&'y Yaml> {
        let mut found = None;
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if k.as_str() == Some(key) && !self.used[i] {
                self.used[i] = true;
                if found.is_none() {
                    found = Some(v);
                }
                // A second copy stays unused on purpose: it is reported as a duplicate.
                break;
            }
        }
        found
    }

    /// Where `key` is written (its first copy), if it is.
    pub(crate) fn key_pos(&self, key: &str) -> Option<Pos> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k.pos)
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k.as_str() == Some(key))
    }
}

/// Defaults every menu-like node falls back to.
#[derive(Default)]
pub(crate) struct Defaults {
    pub(crate) timeout: Option<Duration>,
    pub(crate) retries: Option<u32>,
    pub(crate) invalid_prompts: Vec<String>,
    pub(crate) timeout_prompts: Vec<String>,
    pub(crate) options: Vec<(char, String)>,
}

/// What the whole flow says that a node's parser may need.
pub(crate) struct Context<'a> {
    pub(crate) defaults: &'a Defaults,
    /// The flow's languages.
    pub(crate) languages: &'a [String],
}

/// How a node kind is written: its `type:` name, its own keys (besides
/// `type`, `issue_type` and `note`) and its parser, which reports its errors
/// and returns the node (`N`: the kind's struct in its file; a `NodeKind`
/// in [`crate::load::KINDS`]) when it could be built.
pub(crate) struct Syntax<N> {
    pub(crate) name: &'static str,
    pub(crate) keys: &'static [&'static str],
    pub(crate) parse: fn(&mut Loader, &mut Fields<'_>, &Context<'_>) -> Option<N>,
}

/// The outcomes a flow may set (docs/call-events.md, "Outcomes"); the
/// others follow from what the call did (queued, answered, voicemail …).
pub const FLOW_OUTCOMES: &[&str] = &["self_served", "ended_in_ivr", "failed"];

/// A callback slot's time: (slot name, local minute of day, where).
pub(crate) type SlotTime = (String, u16, Pos);
/// A `callback` node's `hours:` (node id, where) and its slot times, checked
/// by the callback kind once every node is known.
pub(crate) type CallbackHours = (Option<(String, Pos)>, Vec<SlotTime>);

impl Loader {
    /// A reader for the flow text `text` from `file` (named in errors).
    pub(crate) fn new(file: PathBuf, text: &str) -> Self {
        Loader {
            file,
            lines: text.lines().map(str::to_owned).collect(),
            errors: Vec::new(),
            refs: Vec::new(),
            prompts: Vec::new(),
            says: Vec::new(),
            edges: HashMap::new(),
            current: None,
            languages: None,
            callback_hours: Vec::new(),
        }
    }

    pub(crate) fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(FlowError {
            file: self.file.clone(),
            pos: Some(pos),
            message: message.into(),
            kind: ErrorKind::Flow,
        });
    }

    /// Where the character `offset` of scalar `y` (whose text is `text`) is
    /// in the file: exact on the first line of a plain or block scalar and in
    /// a one-line quoted scalar without escapes; else the scalar's start.
    pub(crate) fn pos_in_scalar(&self, y: &Yaml, text: &str, offset: usize) -> Pos {
        let Some(line) = self.lines.get(y.pos.line.wrapping_sub(1)) else {
            return y.pos;
        };
        let src: Vec<char> = line.chars().skip(y.pos.col.saturating_sub(1)).collect();
        let t: Vec<char> = text.chars().collect();
        let first = t.iter().position(|c| *c == '\n').unwrap_or(t.len());
        let skip = if offset <= first && src.starts_with(&t[..first]) {
            0
        } else if matches!(src.first(), Some('"' | '\''))
            && src[1..].starts_with(&t)
            && src.get(t.len() + 1) == src.first()
        {
            1
        } else {
            return y.pos;
        };
        Pos {
            line: y.pos.line,
            col: y.pos.col + skip + offset.min(t.len()),
        }
    }

    pub(crate) fn fields<'y>(&mut self, y: &'y Yaml, what: &str) -> Option<Fields<'y>> {
        match &y.value {
            YamlValue::Map(entries) => Some(Fields {
                what: what.to_owned(),
                pos: y.pos,
                entries,
                used: vec![false; entries.len()],
            }),
            _ => {
                self.err(
                    y.pos,
                    format!(
                        "{what} must be a mapping (key: value lines), found {}",
                        y.describe()
                    ),
                );
                None
            }
        }
    }

    /// Reports keys nobody took: unknown ones and duplicates.
    pub(crate) fn finish(&mut self, f: Fields<'_>, allowed: &[&str]) {
        for (i, (k, _)) in f.entries.iter().enumerate() {
            if f.used[i] {
                continue;
            }
            let name = k.as_str().unwrap_or("?");
            if allowed.contains(&name) {
                self.err(k.pos, format!("duplicate key `{name}` in {}", f.what));
            } else {
                self.err(
                    k.pos,
                    format!(
                        "unknown key `{name}` in {}; expected one of: {}",
                        f.what,
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    pub(crate) fn required<'y>(&mut self, f: &mut Fields<'y>, key: &str) -> Option<&'y Yaml> {
        let v = f.take(key);
        if v.is_none() {
            self.err(f.pos, format!("{} is missing `{key}`", f.what));
        }
        v
    }

    pub(crate) fn text(&mut self, y: &Yaml, key: &str) -> Option<String> {
        match &y.value {
            YamlValue::Scalar { text, .. } if !y.is_null() => Some(text.clone()),
            _ => {
                self.err(
                    y.pos,
                    format!("`{key}` must be text, found {}", y.describe()),
                );
                None
            }
        }
    }

    pub(crate) fn opt_text(&mut self, f: &mut Fields<'_>, key: &str) -> Option<String> {
        let y = f.take(key)?;
        self.text(y, key)
    }

    pub(crate) fn req_text(&mut self, f: &mut Fields<'_>, key: &str) -> Option<String> {
        let y = self.required(f, key)?;
        self.text(y, key)
    }

    pub(crate) fn template(&mut self, y: &Yaml, key: &str) -> Option<Template> {
        let t = self.text(y, key)?;
        let mut rest = t.as_str();
        while let Some(i) = rest.find("${") {
            match rest[i..].find('}') {
                Some(j) => rest = &rest[i + j + 1..],
                None => {
                    self.err(y.pos, format!("`{key}`: `${{` without a closing `}}`"));
                    return None;
                }
            }
        }
        Some(Template(t))
    }

    pub(crate) fn bool(&mut self, f: &mut Fields<'_>, key: &str, default: bool) -> bool {
        let Some(y) = f.take(key) else { return default };
        match (&y.value, y.as_str()) {
            (YamlValue::Scalar { plain: true, .. }, Some("true" | "yes" | "on")) => true,
            (YamlValue::Scalar { plain: true, .. }, Some("false" | "no" | "off")) => false,
            _ => {
                self.err(
                    y.pos,
                    format!("`{key}` must be true or false, found {}", show(y)),
                );
                default
            }
        }
    }

    pub(crate) fn int(&mut self, f: &mut Fields<'_>, key: &str, min: i64, max: i64) -> Option<i64> {
        let y = f.take(key)?;
        match y.as_str().and_then(|s| s.parse::<i64>().ok()) {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.err(
                    y.pos,
                    format!("`{key}` must be between {min} and {max}, found {n}"),
                );
                None
            }
            None => {
                self.err(
                    y.pos,
                    format!("`{key}` must be a whole number, found {}", show(y)),
                );
                None
            }
        }
    }

    pub(crate) fn duration(&mut self, f: &mut Fields<'_>, key: &str) -> Option<Duration> {
        let y = f.take(key)?;
        match y.as_str().and_then(parse_duration) {
            Some(d) if !d.is_zero() && d <= Duration::from_secs(3600) => Some(d),
            _ => {
                self.err(
                    y.pos,
                    format!(
                        "`{key}` must be a duration like 5s, 500ms or 2m (at most 1h), found {}",
                        show(y)
                    ),
                );
                None
            }
        }
    }

    /// `prompt: name` or `prompt: [a, b]`.
    pub(crate) fn prompt_list(&mut self, y: &Yaml, key: &str) -> Vec<String> {
        let items: Vec<&Yaml> = match &y.value {
            YamlValue::Seq(items) => items.iter().collect(),
            _ => vec![y],
        };
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                YamlValue::Scalar { text, .. } if !item.is_null() => {
                    let name = text.trim().trim_end_matches(".wav").to_owned();
                    if name.is_empty()
                        || name.starts_with('/')
                        || name.split('/').any(|s| s.is_empty() || s == "..")
                    {
                        self.err(item.pos, format!("`{key}`: `{text}` is not a prompt name (like `welcome` or `menus/main`)"));
                        continue;
                    }
                    self.prompts.push((name.clone(), item.pos));
                    out.push(name);
                }
                _ => self.err(
                    item.pos,
                    format!(
                        "`{key}` must be a prompt name or a list of them, found {}",
                        item.describe()
                    ),
                ),
            }
        }
        out
    }

    pub(crate) fn opt_prompts(&mut self, f: &mut Fields<'_>, key: &str) -> Vec<String> {
        match f.take(key) {
            Some(y) => self.prompt_list(y, key),
            None => Vec::new(),
        }
    }

    /// A node id this node goes to; recorded for the graph checks.
    pub(crate) fn target(&mut self, y: &Yaml, key: &str) -> Option<String> {
        let id = self.text(y, key)?;
        if let Some(from) = &self.current {
            self.edges.entry(from.clone()).or_default().push(id.clone());
        }
        self.refs.push(Ref {
            to: id.clone(),
            pos: y.pos,
            key: key.to_owned(),
        });
        Some(id)
    }

    pub(crate) fn req_target(&mut self, f: &mut Fields<'_>, key: &str) -> Option<String> {
        let y = self.required(f, key)?;
        self.target(y, key)
    }

    pub(crate) fn opt_target(&mut self, f: &mut Fields<'_>, key: &str) -> Option<String> {
        let y = f.take(key)?;
        self.target(y, key)
    }

    pub(crate) fn key_char(&mut self, k: &Yaml) -> Option<char> {
        let s = k.as_str().unwrap_or("");
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Some(c),
            _ => {
                self.err(
                    k.pos,
                    format!("`{s}` is not a phone key; use one of 0-9, \"*\" or \"#\""),
                );
                None
            }
        }
    }

    /// `options:` key → value (node id when `targets`, else a plain label).
    pub(crate) fn options(&mut self, y: &Yaml, key: &str, targets: bool) -> Vec<(char, String)> {
        let YamlValue::Map(entries) = &y.value else {
            self.err(
                y.pos,
                format!(
                    "`{key}` must map keys to {}, found {}",
                    if targets { "node ids" } else { "values" },
                    y.describe()
                ),
            );
            return Vec::new();
        };
        let mut out: Vec<(char, String)> = Vec::new();
        for (k, v) in entries {
            let c = self.key_char(k);
            let val = if targets {
                self.target(v, key)
            } else {
                self.text(v, key)
            };
            if let (Some(c), Some(val)) = (c, val) {
                if out.iter().any(|(d, _)| *d == c) {
                    self.err(k.pos, format!("key `{c}` appears twice in `{key}`"));
                    continue;
                }
                out.push((c, val));
            }
        }
        out
    }

    pub(crate) fn choice(
        &mut self,
        f: &mut Fields<'_>,
        d: &Defaults,
        options_key: &str,
        targets: bool,
    ) -> Choice {
        let prompts = match self.required(f, "prompt") {
            Some(y) => self.prompt_list(y, "prompt"),
            None => Vec::new(),
        };
        let options = match self.required(f, options_key) {
            Some(y) => self.options(y, options_key, targets),
            None => Vec::new(),
        };
        let invalid_prompts = match f.take("invalid_prompt") {
            Some(y) => self.prompt_list(y, "invalid_prompt"),
            None => d.invalid_prompts.clone(),
        };
        let timeout_prompts = match f.take("timeout_prompt") {
            Some(y) => self.prompt_list(y, "timeout_prompt"),
            None => d.timeout_prompts.clone(),
        };
        Choice {
            prompts,
            barge_in: self.bool(f, "barge_in", true),
            options,
            timeout: self
                .duration(f, "timeout")
                .or(d.timeout)
                .unwrap_or(Duration::from_secs(5)),
            retries: self
                .int(f, "retries", 0, 9)
                .map(|n| n as u32)
                .or(d.retries)
                .unwrap_or(2),
            invalid_prompts,
            timeout_prompts,
        }
    }

    /// `outcome:` on play, say and hangup: one of [`FLOW_OUTCOMES`] (the
    /// call record ignores any other, so a typo would silently count the
    /// call as something else).
    pub(crate) fn outcome(&mut self, f: &mut Fields<'_>) -> Option<String> {
        let y = f.take("outcome")?;
        let o = self.text(y, "outcome")?;
        if FLOW_OUTCOMES.contains(&o.as_str()) {
            Some(o)
        } else {
            self.err(
                y.pos,
                format!(
                    "`outcome` must be one of {}, found `{o}`",
                    FLOW_OUTCOMES.join(", ")
                ),
            );
            None
        }
    }

    /// `on_exhausted`, whose absence is the "menu with no timeout path" error.
    pub(crate) fn exhausted(&mut self, f: &mut Fields<'_>, kind: &str) -> Option<String> {
        match f.take("on_exhausted") {
            Some(y) => self.target(y, "on_exhausted"),
            None => {
                self.err(
                    f.pos,
                    format!("{} has no timeout path: add `on_exhausted:` (where to go when the caller presses nothing or keeps pressing wrong keys)", f.what.replace(&format!("{kind} node"), kind)),
                );
                None
            }
        }
    }

    pub(crate) fn regex(&mut self, y: &Yaml, key: &str) -> Option<Regex> {
        let src = self.text(y, key)?;
        match crate::condition::compile_regex(&format!("^(?:{src})$")) {
            Ok(r) => Some(r),
            Err(why) => {
                self.err(
                    y.pos,
                    format!("`{key}` is not a valid regular expression: {why}"),
                );
                None
            }
        }
    }

    pub(crate) fn template_map(&mut self, y: &Yaml, key: &str) -> Vec<(String, Template)> {
        let YamlValue::Map(entries) = &y.value else {
            self.err(
                y.pos,
                format!("`{key}` must map names to values, found {}", y.describe()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            if let (Some(name), Some(t)) = (self.text(k, key), self.template(v, key)) {
                out.push((name, t));
            }
        }
        out
    }
}

fn show(y: &Yaml) -> String {
    match y.as_str() {
        Some(s) => format!("`{s}`"),
        None => y.describe().to_owned(),
    }
}

/// `5s`, `500ms`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "sec" | "secs" | "seconds" => n,
        "m" | "min" | "minutes" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    // `try_`: a duration past `Duration::MAX` (a fuzzer's `9999…9h`) is
    // not a duration, not a panic.
    Duration::try_from_secs_f64(secs).ok()
}

pub(crate) fn is_var_name(s: &str) -> bool {
    crate::condition::is_variable(s)
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_and_absurd_ones_are_refused_without_a_panic() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5 m"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        // Found by `tests/fuzz/run ivr_flow` (3.49 M executions): panicked
        // in Duration::from_secs_f64.
        assert_eq!(parse_duration("99999999999999999999999999h"), None);
        assert_eq!(parse_duration("1e400"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("NaN"), None);
    }
}
