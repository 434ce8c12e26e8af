//! The loader and validator: YAML text → [`Flow`], or every problem found.
//!
//! One pass types the document by hand (so that a wrong key does not hide
//! the next one), recording node references and prompt names as it goes;
//! then whole-flow checks run on what was recorded: dangling references,
//! unreachable nodes, loops that never wait for the caller, missing prompts.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use regex::Regex;
use sha2::{Digest, Sha256};

pub use crate::condition::parse_condition;
use crate::error::{ErrorKind, FlowError, FlowErrors};
use crate::flow::*;
use crate::say;
use crate::yaml::{self, Pos, Yaml, YamlValue};

/// What the loader checks against besides the file itself.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Prompts must exist as `<sounds_dir>/<lang>/<name>.wav`; `None` skips that check.
    pub sounds_dir: Option<PathBuf>,
}

/// Reads and checks one flow file.
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Flow, FlowErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        FlowErrors(vec![FlowError {
            file: path.to_owned(),
            pos: None,
            message: format!("cannot read: {e}"),
            kind: ErrorKind::Flow,
        }])
    })?;
    load_str(path, &text, opts)
}

/// Checks flow text; `path` names it in errors and gives the default flow name.
///
/// Every check runs, as far as the document allows, even when others have
/// failed: one run reports every problem, sorted by line and column.
pub fn load_str(path: &Path, text: &str, opts: &LoadOptions) -> Result<Flow, FlowErrors> {
    let mut l = Loader {
        file: path.to_owned(),
        lines: text.lines().map(str::to_owned).collect(),
        errors: Vec::new(),
        refs: Vec::new(),
        prompts: Vec::new(),
        says: Vec::new(),
        edges: HashMap::new(),
        current: None,
        languages: None,
        callback_hours: Vec::new(),
    };
    let flow = match yaml::parse(text) {
        Ok(Some(root)) => l.flow(&root, path, text),
        Ok(None) => {
            l.err(
                Pos { line: 1, col: 1 },
                "the file is empty; a flow needs `start:` and `nodes:`",
            );
            None
        }
        Err(e) => {
            l.err(e.pos, format!("YAML syntax error: {}", e.message));
            None
        }
    };
    if let Some(flow) = &flow {
        l.check_graph(flow);
    }
    // Prompts are checked whenever the document could be read, even if the
    // flow has other errors: a misspelled prompt shows up in the same run.
    if let (Some(dir), Some(languages)) = (&opts.sounds_dir, l.languages.take()) {
        l.check_prompts(&languages, dir);
    }
    let mut errors = l.errors;
    errors.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.message.cmp(&b.message)));
    errors.dedup();
    match flow {
        Some(flow) if errors.is_empty() => Ok(flow),
        _ => Err(FlowErrors(errors)),
    }
}

/// A node reference seen while reading: from which node, to which id, where.
struct Ref {
    to: String,
    pos: Pos,
    key: String,
}

/// A callback slot's time: (slot name, local minute of day, where).
type SlotTime = (String, u16, Pos);
/// A callback node's `hours:` (node id, where) and its slot times.
type CallbackHours = (Option<(String, Pos)>, Vec<SlotTime>);

/// A `say` node's need for fragment prompts.
struct SayNeed {
    say_as: SayAs,
    pos: Pos,
}

struct Loader {
    file: PathBuf,
    /// The source, to place errors inside a scalar (a condition's bad token).
    lines: Vec<String>,
    errors: Vec<FlowError>,
    refs: Vec<Ref>,
    /// Prompt names as written, with where.
    prompts: Vec<(String, Pos)>,
    says: Vec<SayNeed>,
    /// Node id → ids it may go to (recorded even when the node has other errors).
    edges: HashMap<String, Vec<String>>,
    current: Option<String>,
    /// The flow's languages, once read (prompts are checked in each).
    languages: Option<Vec<String>>,
    /// `callback` nodes' `hours:` (an hours node id, where) and their slot
    /// times (name, minute, where): checked once every node is known.
    callback_hours: Vec<CallbackHours>,
}

/// A mapping being read: keys are marked as they are taken so leftovers are reported.
struct Fields<'y> {
    what: String,
    pos: Pos,
    entries: &'y [(Yaml, Yaml)],
    used: Vec<bool>,
}

impl<'y> Fields<'y> {
    fn take(&mut self, key: &str) -> Option<&'y Yaml> {
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

    fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k.as_str() == Some(key))
    }
}

/// Defaults every menu-like node falls back to.
#[derive(Default)]
struct Defaults {
    timeout: Option<Duration>,
    retries: Option<u32>,
    invalid_prompts: Vec<String>,
    timeout_prompts: Vec<String>,
    options: Vec<(char, String)>,
}

const TOP_KEYS: &[&str] = &[
    "flow",
    "description",
    "languages",
    "language",
    "start",
    "defaults",
    "nodes",
];
const DEFAULT_KEYS: &[&str] = &[
    "timeout",
    "retries",
    "invalid_prompt",
    "timeout_prompt",
    "options",
];
const COMMON_KEYS: &[&str] = &["type", "issue_type", "note"];
const KINDS: &[&str] = &[
    "play",
    "menu",
    "gather",
    "branch",
    "set",
    "hours",
    "language",
    "lookup",
    "say",
    "enqueue",
    "voicemail",
    "callback",
    "transfer",
    "hangup",
];

/// The outcomes a flow may set (docs/call-events.md, "Outcomes"); the
/// others follow from what the call did (queued, answered, voicemail …).
pub const FLOW_OUTCOMES: &[&str] = &["self_served", "ended_in_ivr", "failed"];

fn kind_keys(kind: &str) -> Vec<&'static str> {
    let own: &[&str] = match kind {
        "play" => &["prompt", "barge_in", "next", "outcome"],
        "menu" => &[
            "prompt",
            "barge_in",
            "options",
            "timeout",
            "retries",
            "invalid_prompt",
            "timeout_prompt",
            "on_exhausted",
        ],
        "gather" => &[
            "prompt",
            "min_digits",
            "max_digits",
            "finish_key",
            "first_digit_timeout",
            "inter_digit_timeout",
            "retries",
            "pattern",
            "into",
            "invalid_prompt",
            "timeout_prompt",
            "next",
            "on_exhausted",
        ],
        "branch" => &["cases", "else"],
        "set" => &["vars", "next"],
        "hours" => &[
            "time_zone",
            "weekly",
            "holidays",
            "open",
            "closed",
            "holiday",
        ],
        "language" => &[
            "set",
            "prompt",
            "barge_in",
            "options",
            "timeout",
            "retries",
            "invalid_prompt",
            "timeout_prompt",
            "next",
        ],
        "lookup" => &[
            "source",
            "url",
            "params",
            "into",
            "timeout",
            "next",
            "on_not_found",
            "on_failure",
        ],
        "say" => &[
            "before", "value", "as", "after", "barge_in", "next", "outcome",
        ],
        "enqueue" => &["queue", "priority", "data"],
        "voicemail" => &["prompt", "max_seconds", "beep", "next"],
        "callback" => &[
            "prompt",
            "barge_in",
            "slots",
            "number",
            "timeout",
            "retries",
            "invalid_prompt",
            "timeout_prompt",
            "next",
            "on_exhausted",
            "queue",
            "hours",
            "slot_times",
            "on_no_number",
        ],
        "transfer" => &["to", "method"],
        "hangup" => &["prompt", "outcome"],
        _ => &[],
    };
    COMMON_KEYS.iter().chain(own).copied().collect()
}

impl Loader {
    fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(FlowError {
            file: self.file.clone(),
            pos: Some(pos),
            message: message.into(),
            kind: ErrorKind::Flow,
        });
    }

    fn err_recording(&mut self, pos: Option<Pos>, message: impl Into<String>) {
        self.errors.push(FlowError {
            file: self.file.clone(),
            pos,
            message: message.into(),
            kind: ErrorKind::MissingRecording,
        });
    }

    /// Where the character `offset` of scalar `y` (whose text is `text`) is
    /// in the file: exact on the first line of a plain or block scalar and in
    /// a one-line quoted scalar without escapes; else the scalar's start.
    fn pos_in_scalar(&self, y: &Yaml, text: &str, offset: usize) -> Pos {
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

    fn fields<'y>(&mut self, y: &'y Yaml, what: &str) -> Option<Fields<'y>> {
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
    fn finish(&mut self, f: Fields<'_>, allowed: &[&str]) {
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

    fn required<'y>(&mut self, f: &mut Fields<'y>, key: &str) -> Option<&'y Yaml> {
        let v = f.take(key);
        if v.is_none() {
            self.err(f.pos, format!("{} is missing `{key}`", f.what));
        }
        v
    }

    fn text(&mut self, y: &Yaml, key: &str) -> Option<String> {
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

    fn opt_text(&mut self, f: &mut Fields<'_>, key: &str) -> Option<String> {
        let y = f.take(key)?;
        self.text(y, key)
    }

    fn req_text(&mut self, f: &mut Fields<'_>, key: &str) -> Option<String> {
        let y = self.required(f, key)?;
        self.text(y, key)
    }

    fn template(&mut self, y: &Yaml, key: &str) -> Option<Template> {
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

    fn bool(&mut self, f: &mut Fields<'_>, key: &str, default: bool) -> bool {
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

    fn int(&mut self, f: &mut Fields<'_>, key: &str, min: i64, max: i64) -> Option<i64> {
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

    fn duration(&mut self, f: &mut Fields<'_>, key: &str) -> Option<Duration> {
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
    fn prompt_list(&mut self, y: &Yaml, key: &str) -> Vec<String> {
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

    fn opt_prompts(&mut self, f: &mut Fields<'_>, key: &str) -> Vec<String> {
        match f.take(key) {
            Some(y) => self.prompt_list(y, key),
            None => Vec::new(),
        }
    }

    /// A node id this node goes to; recorded for the graph checks.
    fn target(&mut self, y: &Yaml, key: &str) -> Option<String> {
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

    fn req_target(&mut self, f: &mut Fields<'_>, key: &str) -> Option<String> {
        let y = self.required(f, key)?;
        self.target(y, key)
    }

    fn opt_target(&mut self, f: &mut Fields<'_>, key: &str) -> Option<String> {
        let y = f.take(key)?;
        self.target(y, key)
    }

    fn key_char(&mut self, k: &Yaml) -> Option<char> {
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
    fn options(&mut self, y: &Yaml, key: &str, targets: bool) -> Vec<(char, String)> {
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

    fn choice(
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

    fn flow(&mut self, root: &Yaml, path: &Path, text: &str) -> Option<Flow> {
        let mut f = self.fields(root, "the flow")?;
        let name = self.opt_text(&mut f, "flow").unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "flow".into())
        });
        let description = self.opt_text(&mut f, "description");
        let mut languages = Vec::new();
        if let Some(y) = f.take("languages") {
            let items: Vec<&Yaml> = match &y.value {
                YamlValue::Seq(items) => items.iter().collect(),
                _ => vec![y],
            };
            for item in items {
                if let Some(lang) = self.text(item, "languages") {
                    if !is_language_code(&lang) {
                        self.err(
                            item.pos,
                            format!("`{lang}` is not a language code (like en or zh)"),
                        );
                    } else if languages.contains(&lang) {
                        self.err(item.pos, format!("language `{lang}` is listed twice"));
                    } else {
                        languages.push(lang);
                    }
                }
            }
        }
        if languages.is_empty() {
            languages.push("en".to_owned());
        }
        self.languages = Some(languages.clone());
        let default_language = match f.take("language") {
            Some(y) => match self.text(y, "language") {
                Some(l) if languages.contains(&l) => l,
                Some(l) => {
                    self.err(
                        y.pos,
                        format!(
                            "language `{l}` is not in `languages` ({})",
                            languages.join(", ")
                        ),
                    );
                    languages[0].clone()
                }
                None => languages[0].clone(),
            },
            None => languages[0].clone(),
        };
        let start_y = self.required(&mut f, "start");
        let start = start_y.and_then(|y| self.target(y, "start"));
        let defaults = match f.take("defaults") {
            Some(y) => self.defaults(y),
            None => Defaults::default(),
        };
        let mut nodes = Vec::new();
        let mut ids: HashMap<String, Pos> = HashMap::new();
        let mut all_ok = true;
        if let Some(ny) = self.required(&mut f, "nodes") {
            match &ny.value {
                YamlValue::Map(entries) if !entries.is_empty() => {
                    for (k, v) in entries {
                        let Some(id) = self.text(k, "node id") else {
                            continue;
                        };
                        if let Some(first) = ids.get(&id) {
                            self.err(
                                k.pos,
                                format!(
                                    "duplicate node id `{id}` (first defined at line {})",
                                    first.line
                                ),
                            );
                            all_ok = false;
                            // Still read it, for its own errors and prompts; its
                            // exits are not the first node's, so record no edges.
                            let _ = self.node(&id, k.pos, v, &defaults, &languages);
                            continue;
                        }
                        if !is_node_id(&id) {
                            self.err(
                                k.pos,
                                format!(
                                    "node id `{id}` may only use letters, digits, `-`, `_` and `.`"
                                ),
                            );
                        }
                        ids.insert(id.clone(), k.pos);
                        self.current = Some(id.clone());
                        self.edges.entry(id.clone()).or_default();
                        match self.node(&id, k.pos, v, &defaults, &languages) {
                            Some(n) => nodes.push(n),
                            None => all_ok = false,
                        }
                        self.current = None;
                    }
                }
                _ => self.err(
                    ny.pos,
                    format!(
                        "`nodes` must map node ids to nodes, found {}",
                        ny.describe()
                    ),
                ),
            }
        }
        self.finish(f, TOP_KEYS);
        // Dangling references are checked here, against every declared id, so
        // that a node with its own errors does not also make its callers wrong.
        let refs = std::mem::take(&mut self.refs);
        for r in &refs {
            if !ids.contains_key(&r.to) {
                let hint = closest(&r.to, ids.keys().map(String::as_str))
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                self.err(
                    r.pos,
                    format!(
                        "`{}` goes to `{}`, which is not a node of this flow{hint}",
                        r.key, r.to
                    ),
                );
            }
        }
        for (hours, times) in std::mem::take(&mut self.callback_hours) {
            let Some((id, pos)) = hours else { continue };
            match nodes.iter().find(|n| n.id == id).map(|n| &n.kind) {
                Some(NodeKind::Hours(h)) => {
                    for (slot, m, at) in times {
                        // A schedule that is never open (an emergency
                        // closure) books for now; any other must contain the time.
                        let never_open = h.weekly.iter().all(Vec::is_empty);
                        if !never_open && !crate::callback::ever_open_at(h, m) {
                            self.err(at, format!("slot `{slot}` at {:02}:{:02} is outside `{id}`'s opening hours on every day", m / 60, m % 60));
                        }
                    }
                }
                Some(other) => self.err(
                    pos,
                    format!(
                        "`hours` must name an hours node; `{id}` is a {} node",
                        other.name()
                    ),
                ),
                None if ids.contains_key(&id) => {} // that node has its own errors
                None => self.err(
                    pos,
                    format!("`hours` names `{id}`, which is not a node of this flow"),
                ),
            }
        }
        let start = match start {
            Some(start) if all_ok && self.errors.is_empty() => start,
            start => {
                // Keep checking the graph on what was read, for a complete report.
                self.check_edges(start.as_deref(), &ids, &nodes);
                return None;
            }
        };
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n): (usize, &Node)| (n.id.clone(), i))
            .collect();
        let version = {
            let digest = Sha256::digest(text.as_bytes());
            digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
        };
        Some(Flow {
            name,
            version,
            path: path.to_owned(),
            description,
            languages,
            default_language,
            start,
            nodes,
            index,
        })
    }

    fn defaults(&mut self, y: &Yaml) -> Defaults {
        let Some(mut f) = self.fields(y, "`defaults`") else {
            return Defaults::default();
        };
        let d = Defaults {
            timeout: self.duration(&mut f, "timeout"),
            retries: self.int(&mut f, "retries", 0, 9).map(|n| n as u32),
            invalid_prompts: self.opt_prompts(&mut f, "invalid_prompt"),
            timeout_prompts: self.opt_prompts(&mut f, "timeout_prompt"),
            options: match f.take("options") {
                // Global options belong to no node; their edges are added per menu below.
                Some(y) => {
                    let before = self.current.take();
                    let o = self.options(y, "options", true);
                    self.current = before;
                    o
                }
                None => Vec::new(),
            },
        };
        self.finish(f, DEFAULT_KEYS);
        d
    }

    fn node(
        &mut self,
        id: &str,
        pos: Pos,
        y: &Yaml,
        d: &Defaults,
        languages: &[String],
    ) -> Option<Node> {
        let mut f = self.fields(y, &format!("node `{id}`"))?;
        let Some(type_y) = f.take("type") else {
            self.err(
                pos,
                format!(
                    "node `{id}` has no `type`; use one of: {}",
                    KINDS.join(", ")
                ),
            );
            self.untyped_targets(&f);
            return None;
        };
        let Some(kind_name) = self.text(type_y, "type") else {
            self.untyped_targets(&f);
            return None;
        };
        if !KINDS.contains(&kind_name.as_str()) {
            self.err(
                type_y.pos,
                format!(
                    "unknown node type `{kind_name}`; use one of: {}",
                    KINDS.join(", ")
                ),
            );
            self.untyped_targets(&f);
            return None;
        }
        f.what = format!("{kind_name} node `{id}`");
        let issue_type = self.opt_text(&mut f, "issue_type");
        if let Some(it) = &issue_type
            && !it
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            self.err(
                pos,
                format!("issue type `{it}` may only use letters, digits, `.`, `_` and `-`"),
            );
        }
        let _ = f.take("note");
        let before = self.errors.len();
        let kind = self.kind(&kind_name, &mut f, d, languages);
        self.finish(f, &kind_keys(&kind_name));
        let kind = kind?;
        (self.errors.len() == before).then(|| Node {
            id: id.to_owned(),
            pos,
            issue_type,
            kind,
        })
    }

    /// `outcome:` on play, say and hangup: one of [`FLOW_OUTCOMES`] (the
    /// call record ignores any other, so a typo would silently count the
    /// call as something else).
    fn outcome(&mut self, f: &mut Fields<'_>) -> Option<String> {
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

    /// `slot_times: {slot: "HH:MM", …}`.
    fn slot_times(&mut self, f: &mut Fields<'_>) -> Vec<SlotTime> {
        let Some(y) = f.take("slot_times") else {
            return Vec::new();
        };
        let YamlValue::Map(map) = &y.value else {
            self.err(
                y.pos,
                format!(
                    "`slot_times` must map slot names to times (\"09:30\"), found {}",
                    y.describe()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let (Some(name), Some(t)) = (k.as_str(), v.as_str()) else {
                self.err(v.pos, "a slot time is `name: \"HH:MM\"`");
                continue;
            };
            match hhmm(t).filter(|&m| m < 24 * 60) {
                Some(m) => out.push((name.to_owned(), m, v.pos)),
                None => self.err(v.pos, format!("`{t}` is not a time of day (HH:MM)")),
            }
        }
        out
    }

    fn kind(
        &mut self,
        kind: &str,
        f: &mut Fields<'_>,
        d: &Defaults,
        languages: &[String],
    ) -> Option<NodeKind> {
        Some(match kind {
            "play" => {
                let prompts = match self.required(f, "prompt") {
                    Some(y) => self.prompt_list(y, "prompt"),
                    None => Vec::new(),
                };
                let outcome = self.outcome(f);
                NodeKind::Play(Play {
                    prompts,
                    barge_in: self.bool(f, "barge_in", false),
                    next: self.req_target(f, "next")?,
                    outcome,
                })
            }
            "menu" => {
                let mut choice = self.choice(f, d, "options", true);
                // Flow-wide options (e.g. 0 for an agent) join every menu that does not use the key.
                for (k, to) in &d.options {
                    if choice.option(*k).is_none() {
                        choice.options.push((*k, to.clone()));
                        if let Some(from) = &self.current {
                            self.edges.entry(from.clone()).or_default().push(to.clone());
                        }
                    }
                }
                let on_exhausted = self.exhausted(f, "menu");
                NodeKind::Menu(Menu {
                    choice,
                    on_exhausted: on_exhausted?,
                })
            }
            "gather" => {
                let prompts = match self.required(f, "prompt") {
                    Some(y) => self.prompt_list(y, "prompt"),
                    None => Vec::new(),
                };
                let min_digits = self.int(f, "min_digits", 1, 64).unwrap_or(1) as usize;
                let max_pos = f.pos;
                let max_digits = self.int(f, "max_digits", 1, 64).unwrap_or(20) as usize;
                if max_digits < min_digits {
                    self.err(
                        max_pos,
                        format!(
                            "`max_digits` ({max_digits}) is less than `min_digits` ({min_digits})"
                        ),
                    );
                }
                let finish_key = match f.take("finish_key") {
                    Some(y) if y.is_null() || y.as_str() == Some("none") => None,
                    Some(y) => self.key_char(y),
                    None => Some('#'),
                };
                let pattern = match f.take("pattern") {
                    Some(y) => self.regex(y, "pattern"),
                    None => None,
                };
                let first = self
                    .duration(f, "first_digit_timeout")
                    .or(d.timeout)
                    .unwrap_or(Duration::from_secs(5));
                let inter = self
                    .duration(f, "inter_digit_timeout")
                    .unwrap_or(Duration::from_secs(3));
                let retries = self
                    .int(f, "retries", 0, 9)
                    .map(|n| n as u32)
                    .or(d.retries)
                    .unwrap_or(2);
                let into = self.req_text(f, "into");
                if let Some(v) = &into
                    && !is_var_name(v)
                {
                    self.err(
                        f.pos,
                        format!("`into`: `{v}` is not a variable name (letters, digits, `_`, `.`)"),
                    );
                }
                let invalid_prompts = match f.take("invalid_prompt") {
                    Some(y) => self.prompt_list(y, "invalid_prompt"),
                    None => d.invalid_prompts.clone(),
                };
                let timeout_prompts = match f.take("timeout_prompt") {
                    Some(y) => self.prompt_list(y, "timeout_prompt"),
                    None => d.timeout_prompts.clone(),
                };
                let next = self.req_target(f, "next");
                let on_exhausted = self.exhausted(f, "gather");
                NodeKind::Gather(DigitCollector {
                    prompts,
                    min_digits,
                    max_digits,
                    finish_key,
                    first_digit_timeout: first,
                    inter_digit_timeout: inter,
                    retries,
                    pattern,
                    into: into?,
                    invalid_prompts,
                    timeout_prompts,
                    next: next?,
                    on_exhausted: on_exhausted?,
                })
            }
            "branch" => {
                let mut cases = Vec::new();
                if let Some(y) = self.required(f, "cases") {
                    match &y.value {
                        YamlValue::Seq(items) => {
                            for item in items {
                                if let Some(c) = self.case(item) {
                                    cases.push(c);
                                }
                            }
                        }
                        _ => self.err(
                            y.pos,
                            format!(
                                "`cases` must be a list of `- if: … then: …`, found {}",
                                y.describe()
                            ),
                        ),
                    }
                }
                let otherwise = self.req_target(f, "else");
                NodeKind::Branch(Branch {
                    cases,
                    otherwise: otherwise?,
                })
            }
            "set" => {
                let mut vars = Vec::new();
                if let Some(y) = self.required(f, "vars") {
                    match &y.value {
                        YamlValue::Map(entries) => {
                            for (k, v) in entries {
                                let name = self.text(k, "vars");
                                if let Some(n) = &name
                                    && !is_var_name(n)
                                {
                                    self.err(k.pos, format!("`{n}` is not a variable name (letters, digits, `_`, `.`)"));
                                    continue;
                                }
                                let val = match &v.value {
                                    YamlValue::Scalar { .. } if v.is_null() => {
                                        Some(Template(String::new()))
                                    }
                                    _ => self.template(v, "vars"),
                                };
                                if let (Some(n), Some(val)) = (name, val) {
                                    vars.push((n, val));
                                }
                            }
                        }
                        _ => self.err(
                            y.pos,
                            format!(
                                "`vars` must map variable names to values, found {}",
                                y.describe()
                            ),
                        ),
                    }
                }
                NodeKind::Set(SetVars {
                    vars,
                    next: self.req_target(f, "next")?,
                })
            }
            "hours" => self.hours(f)?,
            "language" => {
                let set = match f.take("set") {
                    Some(y) => {
                        let l = self.text(y, "set");
                        if let Some(l) = &l
                            && !languages.contains(l)
                        {
                            self.err(
                                y.pos,
                                format!(
                                    "language `{l}` is not in the flow's `languages` ({})",
                                    languages.join(", ")
                                ),
                            );
                        }
                        if f.has("options") || f.has("prompt") {
                            self.err(y.pos, "a language node either `set`s a language or asks with `prompt` and `options`, not both");
                        }
                        l
                    }
                    None => None,
                };
                let choice = if set.is_some() {
                    Choice {
                        prompts: Vec::new(),
                        barge_in: true,
                        options: Vec::new(),
                        timeout: Duration::from_secs(5),
                        retries: 0,
                        invalid_prompts: Vec::new(),
                        timeout_prompts: Vec::new(),
                    }
                } else {
                    let opts_y = f
                        .entries
                        .iter()
                        .find(|(k, _)| k.as_str() == Some("options"))
                        .map(|(_, v)| v);
                    let c = self.choice(f, d, "options", false);
                    for (_, l) in &c.options {
                        if !languages.contains(l) {
                            let pos = opts_y.map(|y| y.pos).unwrap_or(f.pos);
                            self.err(
                                pos,
                                format!(
                                    "language `{l}` is not in the flow's `languages` ({})",
                                    languages.join(", ")
                                ),
                            );
                        }
                    }
                    c
                };
                NodeKind::Language(LanguageChoice {
                    set,
                    choice,
                    next: self.req_target(f, "next")?,
                })
            }
            "lookup" => {
                let source_y = self.required(f, "source");
                let url = f.take("url");
                let source = match source_y.and_then(|y| self.text(y, "source").map(|s| (s, y.pos)))
                {
                    Some((s, pos)) => match s.as_str() {
                        "subscriber_by_caller_id" => Some(LookupSource::SubscriberByCallerId),
                        "order_by_number" => Some(LookupSource::OrderByNumber),
                        "webhook" => {
                            match url.and_then(|u| self.text(u, "url").map(|t| (t, u.pos))) {
                                Some((u, upos)) => {
                                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                                        self.err(upos, format!("`url` must start with http:// or https://, found `{u}`"));
                                    }
                                    Some(LookupSource::Webhook { url: u })
                                }
                                None => {
                                    if url.is_none() {
                                        self.err(pos, "a webhook lookup needs `url`");
                                    }
                                    None
                                }
                            }
                        }
                        other => {
                            self.err(pos, format!("unknown lookup source `{other}`; use subscriber_by_caller_id, order_by_number or webhook"));
                            None
                        }
                    },
                    None => None,
                };
                if let (Some(u), Some(s)) = (url, &source)
                    && !matches!(s, LookupSource::Webhook { .. })
                {
                    self.err(u.pos, "`url` only applies to `source: webhook`");
                }
                let params = match f.take("params") {
                    Some(y) => self.template_map(y, "params"),
                    None => Vec::new(),
                };
                if source == Some(LookupSource::OrderByNumber)
                    && !params.iter().any(|(k, _)| k == "number")
                {
                    self.err(
                        f.pos,
                        "an order_by_number lookup needs `params: {number: …}`",
                    );
                }
                let into = self.opt_text(f, "into").unwrap_or_else(|| "lookup".into());
                if !is_var_name(&into) {
                    self.err(f.pos, format!("`into`: `{into}` is not a variable name"));
                }
                let timeout = self
                    .duration(f, "timeout")
                    .unwrap_or(Duration::from_secs(3));
                let next = self.req_target(f, "next");
                let on_not_found = self.opt_target(f, "on_not_found");
                let on_failure = self.req_target(f, "on_failure");
                NodeKind::Lookup(Lookup {
                    source: source?,
                    params,
                    into,
                    timeout,
                    next: next?,
                    on_not_found,
                    on_failure: on_failure?,
                })
            }
            "say" => {
                let before = self.opt_prompts(f, "before");
                let value = self
                    .required(f, "value")
                    .and_then(|y| self.template(y, "value"));
                let say_as = match self.required(f, "as") {
                    Some(y) => match self.text(y, "as").as_deref() {
                        Some("digits") => Some(SayAs::Digits),
                        Some("number") => Some(SayAs::Number),
                        Some("date") => Some(SayAs::Date),
                        Some(other) => {
                            self.err(
                                y.pos,
                                format!("`as` must be digits, number or date, found `{other}`"),
                            );
                            None
                        }
                        None => None,
                    }
                    .inspect(|&a| {
                        self.says.push(SayNeed {
                            say_as: a,
                            pos: y.pos,
                        })
                    }),
                    None => None,
                };
                let after = self.opt_prompts(f, "after");
                let barge_in = self.bool(f, "barge_in", false);
                let next = self.req_target(f, "next");
                let outcome = self.outcome(f);
                NodeKind::Say(Say {
                    before,
                    value: value?,
                    say_as: say_as?,
                    after,
                    barge_in,
                    next: next?,
                    outcome,
                })
            }
            "enqueue" => {
                let queue = self.req_text(f, "queue");
                let priority = self.int(f, "priority", -1000, 1000).unwrap_or(0);
                let data = match f.take("data") {
                    Some(y) => self.template_map(y, "data"),
                    None => Vec::new(),
                };
                NodeKind::Enqueue(Enqueue {
                    queue: queue?,
                    priority,
                    data,
                })
            }
            "voicemail" => NodeKind::Voicemail(Voicemail {
                prompts: self.opt_prompts(f, "prompt"),
                max_seconds: self.int(f, "max_seconds", 5, 600).unwrap_or(120) as u32,
                beep: self.bool(f, "beep", true),
                next: self.req_target(f, "next")?,
            }),
            "callback" => {
                let choice = self.choice(f, d, "slots", false);
                let number = match f.take("number") {
                    Some(y) => self.template(y, "number"),
                    None => Some(Template("${caller}".into())),
                };
                let queue = self.opt_text(f, "queue");
                let hours = f
                    .take("hours")
                    .and_then(|y| Some((self.text(y, "hours")?, y.pos)));
                let slot_times = self.slot_times(f);
                let next = self.req_target(f, "next");
                let on_exhausted = self.exhausted(f, "callback");
                let on_no_number = self.opt_target(f, "on_no_number");
                if !slot_times.is_empty() && hours.is_none() {
                    let pos = slot_times[0].2;
                    self.err(pos, "`slot_times` needs `hours:` (the hours node whose open days the slots fall on)");
                }
                self.callback_hours
                    .push((hours.clone(), slot_times.clone()));
                NodeKind::Callback(Callback {
                    choice,
                    number: number?,
                    queue,
                    hours: hours.map(|h| h.0),
                    slot_times: slot_times.into_iter().map(|(n, m, _)| (n, m)).collect(),
                    next: next?,
                    on_exhausted: on_exhausted?,
                    on_no_number,
                })
            }
            "transfer" => {
                let to = self.required(f, "to").and_then(|y| {
                    let t = self.text(y, "to")?;
                    if !(t.starts_with("sip:") || t.starts_with("sips:") || t.starts_with("tel:")) {
                        self.err(
                            y.pos,
                            format!("`to` must be a SIP URI (sip:user@host), found `{t}`"),
                        );
                    }
                    Some(t)
                });
                let method = match f.take("method") {
                    Some(y) => match self.text(y, "method").as_deref() {
                        Some("invite") => Some(TransferMethod::Invite),
                        Some("refer") => Some(TransferMethod::Refer),
                        Some(other) => {
                            self.err(
                                y.pos,
                                format!("`method` must be invite or refer, found `{other}`"),
                            );
                            None
                        }
                        None => None,
                    },
                    None => Some(TransferMethod::Refer),
                };
                NodeKind::Transfer(Transfer {
                    to: to?,
                    method: method?,
                })
            }
            "hangup" => NodeKind::Hangup(Hangup {
                prompts: self.opt_prompts(f, "prompt"),
                outcome: self.outcome(f),
            }),
            _ => return None,
        })
    }

    /// A node of unknown type still names where it goes and what it plays;
    /// read those so the graph checks do not call its successors unreachable
    /// and a misspelled prompt is reported in the same run.
    fn untyped_targets(&mut self, f: &Fields<'_>) {
        for (k, v) in f.entries {
            if let Some(
                key @ ("prompt" | "invalid_prompt" | "timeout_prompt" | "before" | "after"),
            ) = k.as_str()
            {
                self.prompt_list(v, key);
                continue;
            }
            if matches!(
                k.as_str(),
                Some(
                    "next"
                        | "on_exhausted"
                        | "on_failure"
                        | "on_not_found"
                        | "open"
                        | "closed"
                        | "holiday"
                        | "else"
                )
            ) {
                self.target(v, k.as_str().unwrap_or(""));
            }
        }
    }

    /// `on_exhausted`, whose absence is the "menu with no timeout path" error.
    fn exhausted(&mut self, f: &mut Fields<'_>, kind: &str) -> Option<String> {
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

    fn regex(&mut self, y: &Yaml, key: &str) -> Option<Regex> {
        let src = self.text(y, key)?;
        match Regex::new(&format!("^(?:{src})$")) {
            Ok(r) => Some(r),
            Err(e) => {
                let msg = e.to_string();
                let last = msg
                    .lines()
                    .rfind(|l| l.starts_with("error:"))
                    .unwrap_or("invalid")
                    .trim_start_matches("error: ");
                self.err(
                    y.pos,
                    format!("`{key}` is not a valid regular expression: {last}"),
                );
                None
            }
        }
    }

    fn template_map(&mut self, y: &Yaml, key: &str) -> Vec<(String, Template)> {
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

    fn case(&mut self, item: &Yaml) -> Option<Case> {
        let mut f = self.fields(item, "a branch case")?;
        let cond = self.required(&mut f, "if").and_then(|y| {
            let text = self.text(y, "if")?;
            match parse_condition(&text) {
                Ok(c) => Some(c),
                Err(e) => {
                    let pos = self.pos_in_scalar(y, &text, e.at);
                    self.err(pos, format!("`if`: {e}"));
                    None
                }
            }
        });
        let next = self.req_target(&mut f, "then");
        self.finish(f, &["if", "then"]);
        Some(Case {
            condition: cond?,
            next: next?,
        })
    }

    fn hours(&mut self, f: &mut Fields<'_>) -> Option<NodeKind> {
        let tz = self.required(f, "time_zone").and_then(|y| {
            let t = self.text(y, "time_zone")?;
            match t.parse::<Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    self.err(y.pos, format!("unknown time zone `{t}`; use an IANA name like Asia/Shanghai or Europe/London"));
                    None
                }
            }
        });
        let mut weekly: [Vec<(u16, u16)>; 7] = Default::default();
        let mut weekly_ok = true;
        if let Some(y) = self.required(f, "weekly") {
            match &y.value {
                YamlValue::Map(entries) => {
                    for (k, v) in entries {
                        let days = k.as_str().and_then(parse_days);
                        let Some(days) = days else {
                            self.err(k.pos, format!("`{}` is not a day or day range; use mon…sun, mon-fri, weekdays, weekend or daily", k.as_str().unwrap_or("?")));
                            weekly_ok = false;
                            continue;
                        };
                        let ranges = match v.as_str() {
                            Some(s) => match parse_ranges(s) {
                                Ok(r) => r,
                                Err(e) => {
                                    self.err(v.pos, e);
                                    weekly_ok = false;
                                    continue;
                                }
                            },
                            None => {
                                self.err(v.pos, "opening hours must read like \"09:00-18:00\" or \"09:00-12:00, 13:00-17:30\" or closed");
                                weekly_ok = false;
                                continue;
                            }
                        };
                        for d in days {
                            weekly[d].extend(ranges.iter().copied());
                        }
                    }
                }
                _ => {
                    self.err(
                        y.pos,
                        format!(
                            "`weekly` must map days to opening hours, found {}",
                            y.describe()
                        ),
                    );
                    weekly_ok = false;
                }
            }
        }
        let mut holidays = Vec::new();
        if let Some(y) = f.take("holidays") {
            match &y.value {
                YamlValue::Seq(items) => {
                    for item in items {
                        match item
                            .as_str()
                            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                        {
                            Some(d) => holidays.push(d),
                            None => self.err(
                                item.pos,
                                format!(
                                    "holiday `{}` is not a date like 2026-12-25",
                                    item.as_str().unwrap_or("?")
                                ),
                            ),
                        }
                    }
                }
                _ => self.err(
                    y.pos,
                    format!("`holidays` must be a list of dates, found {}", y.describe()),
                ),
            }
        }
        let open = self.req_target(f, "open");
        let closed = self.req_target(f, "closed");
        let holiday = self.opt_target(f, "holiday");
        if !weekly_ok {
            return None;
        }
        Some(NodeKind::Hours(BusinessHours {
            time_zone: tz?,
            weekly,
            holidays,
            open: open?,
            closed: closed?,
            holiday,
        }))
    }

    /// Graph checks on the edges recorded while reading (also when some nodes had errors).
    fn check_edges(&mut self, start: Option<&str>, ids: &HashMap<String, Pos>, nodes: &[Node]) {
        let waits: HashMap<&str, bool> = nodes
            .iter()
            .map(|n| (n.id.as_str(), n.kind.waits_for_caller()))
            .collect();
        // Unreachable nodes: walk from start (when it is a node).
        if let Some(start) = start.filter(|s| ids.contains_key(*s)) {
            let mut seen: HashSet<&str> = HashSet::new();
            let mut todo = vec![start];
            while let Some(n) = todo.pop() {
                if !seen.insert(n) {
                    continue;
                }
                for to in self.edges.get(n).into_iter().flatten() {
                    if ids.contains_key(to) {
                        todo.push(to);
                    }
                }
            }
            let mut unreachable: Vec<(&String, &Pos)> = ids
                .iter()
                .filter(|(id, _)| !seen.contains(id.as_str()))
                .collect();
            unreachable.sort_by_key(|(_, p)| **p);
            for (id, pos) in unreachable {
                self.err(
                    *pos,
                    format!("node `{id}` is never reached from `start` (`{start}`)"),
                );
            }
        }
        // Loops with no exit: a strongly connected group of nodes in which none
        // waits for the caller and none leads out of the group.
        let mut order: Vec<(&String, &Pos)> = ids.iter().collect();
        order.sort_by_key(|(_, p)| **p);
        let names: Vec<&str> = order.iter().map(|(id, _)| id.as_str()).collect();
        let at: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let adj: Vec<Vec<usize>> = names
            .iter()
            .map(|n| {
                self.edges
                    .get(*n)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| at.get(t.as_str()).copied())
                    .collect()
            })
            .collect();
        for group in strongly_connected(&adj) {
            let cyclic = group.len() > 1 || adj[group[0]].contains(&group[0]);
            if !cyclic {
                continue;
            }
            let members: HashSet<usize> = group.iter().copied().collect();
            // A node whose parse failed has unknown behaviour; do not accuse its loop.
            if group.iter().any(|&i| !waits.contains_key(names[i])) {
                continue;
            }
            let waits_somewhere = group.iter().any(|&i| waits[names[i]]);
            let leads_out = group
                .iter()
                .any(|&i| adj[i].iter().any(|t| !members.contains(t)));
            if !waits_somewhere && !leads_out {
                let mut sorted = group.clone();
                sorted.sort();
                let path: Vec<String> = sorted.iter().map(|&i| format!("`{}`", names[i])).collect();
                self.err(
                    *order[sorted[0]].1,
                    format!("loop with no exit: {} go round forever without waiting for the caller or leading elsewhere", path.join(", ")),
                );
            }
        }
    }

    fn check_graph(&mut self, flow: &Flow) {
        let ids: HashMap<String, Pos> = flow.nodes.iter().map(|n| (n.id.clone(), n.pos)).collect();
        self.check_edges(Some(&flow.start), &ids, &flow.nodes);
    }

    fn check_prompts(&mut self, languages: &[String], dir: &Path) {
        let prompts = std::mem::take(&mut self.prompts);
        let says = std::mem::take(&mut self.says);
        if !dir.is_dir() {
            // One error, not one per prompt: the directory is what is wrong.
            if !prompts.is_empty() || !says.is_empty() {
                self.err_recording(
                    None,
                    format!(
                        "cannot check prompts: the sounds directory {} does not exist",
                        dir.display()
                    ),
                );
            }
            return;
        }
        // A language with no directory at all is one error, not one per prompt.
        let absent: Vec<&str> = languages
            .iter()
            .map(String::as_str)
            .filter(|l| !dir.join(l).is_dir())
            .collect();
        if !prompts.is_empty() || !says.is_empty() {
            for l in &absent {
                self.err_recording(
                    None,
                    format!(
                        "cannot check the `{l}` prompts: {} does not exist",
                        dir.join(l).display()
                    ),
                );
            }
        }
        let mut cache: HashMap<PathBuf, bool> = HashMap::new();
        let mut exists = |p: PathBuf| *cache.entry(p.clone()).or_insert_with(|| p.is_file());
        for (name, pos) in &prompts {
            let files: Vec<PathBuf> = match name.split_once('/') {
                // `zh/for-chinese`: one language, as written.
                Some((first, _)) if languages.iter().any(|l| l == first) => {
                    if absent.contains(&first) {
                        Vec::new()
                    } else {
                        vec![dir.join(format!("{name}.wav"))]
                    }
                }
                _ => languages
                    .iter()
                    .filter(|l| !absent.contains(&l.as_str()))
                    .map(|l| dir.join(l).join(format!("{name}.wav")))
                    .collect(),
            };
            let missing: Vec<String> = files
                .into_iter()
                .filter(|f| !exists(f.clone()))
                .map(|f| f.display().to_string())
                .collect();
            if !missing.is_empty() {
                self.err_recording(
                    Some(*pos),
                    format!(
                        "prompt `{name}` has no recording: {} missing",
                        missing.join(", ")
                    ),
                );
            }
        }
        for need in says {
            for lang in languages.iter().filter(|l| !absent.contains(&l.as_str())) {
                let missing: Vec<String> = say::fragments(need.say_as, lang)
                    .into_iter()
                    .filter(|frag| !exists(dir.join(lang).join(format!("{frag}.wav"))))
                    .collect();
                if !missing.is_empty() {
                    let shown: Vec<&str> = missing.iter().take(3).map(String::as_str).collect();
                    let more = if missing.len() > 3 {
                        format!(" and {} more", missing.len() - 3)
                    } else {
                        String::new()
                    };
                    self.err_recording(
                        Some(need.pos),
                        format!(
                            "`as: {}` in `{lang}` needs prompts missing from {}: {}{more}",
                            say::as_name(need.say_as),
                            dir.join(lang).display(),
                            shown.join(", ")
                        ),
                    );
                }
            }
        }
    }
}

/// Tarjan's algorithm, iterative enough for flows of any sane size.
fn strongly_connected(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.adj[v] {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                group.push(w);
                if w == v {
                    break;
                }
            }
            s.out.push(group);
        }
    }
    let n = adj.len();
    let mut s = State {
        adj,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
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
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn is_language_code(s: &str) -> bool {
    (2..=3).contains(&s.len()) && s.chars().all(|c| c.is_ascii_lowercase())
}

fn is_node_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub(crate) fn is_var_name(s: &str) -> bool {
    crate::condition::is_variable(s)
}

/// `mon`, `mon-fri`, `weekdays`, `weekend`, `daily` → day indexes, Monday = 0.
fn parse_days(s: &str) -> Option<Vec<usize>> {
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let day = |d: &str| {
        DAYS.iter()
            .position(|x| *x == d.trim().to_ascii_lowercase())
    };
    match s.trim().to_ascii_lowercase().as_str() {
        "daily" => return Some((0..7).collect()),
        "weekdays" => return Some((0..5).collect()),
        "weekend" | "weekends" => return Some(vec![5, 6]),
        _ => {}
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                if b < a {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(day(part)?),
        }
    }
    Some(out)
}

/// `09:00-18:00, 19:00-21:00` or `closed` → minute ranges.
fn parse_ranges(s: &str) -> Result<Vec<(u16, u16)>, String> {
    if s.trim().eq_ignore_ascii_case("closed") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let bad = || format!("`{}` is not a time range like 09:00-18:00", part.trim());
        let (a, b) = part.split_once('-').ok_or_else(bad)?;
        let (a, b) = (hhmm(a).ok_or_else(bad)?, hhmm(b).ok_or_else(bad)?);
        if b <= a {
            return Err(format!("`{}` ends before it starts", part.trim()));
        }
        out.push((a, b));
    }
    Ok(out)
}

fn hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// The nearest id by edit distance, for "did you mean" hints.
fn closest<'a>(to: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb))
                    .min(row[j] + 1)
                    .min(row[j + 1] + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    candidates
        .map(|c| (distance(to, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("5 parsecs"), None);
    }

    #[test]
    fn schedules() {
        assert_eq!(parse_days("mon-fri").unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(parse_days("sat,sun").unwrap(), vec![5, 6]);
        assert!(parse_days("fri-mon").is_none());
        assert_eq!(
            parse_ranges("09:00-12:00, 13:00-24:00").unwrap(),
            vec![(540, 720), (780, 1440)]
        );
        assert!(parse_ranges("18:00-09:00").is_err());
        assert!(parse_ranges("9-5").is_err());
    }
}
#[cfg(test)]
mod position_tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        load_str(Path::new("t.yaml"), text, &LoadOptions::default())
            .expect_err("broken")
            .0
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn condition_errors_point_at_the_token_in_characters() {
        let flow = "start: b\nnodes:\n  b:\n    type: branch\n    cases:\n      - {then: e, if: x == \"李雷\" y}\n      - if: 'x === 1'\n      - if: |\n          x === 1\n    else: e\n  e:\n    type: hangup\n";
        let e = errors(flow);
        let want = [
            // In a flow mapping after non-ASCII text: columns count characters.
            "t.yaml:6:33: `if`: unexpected `y` after `\"李雷\"`",
            "t.yaml:7:9: a branch case is missing `then`",
            // Single-quoted: past the quote.
            "t.yaml:7:16: `if`: `===` is not an operator; use `==`",
            "t.yaml:8:9: a branch case is missing `then`",
            // A block scalar: on its first line.
            "t.yaml:9:13: `if`: `===` is not an operator; use `==`",
        ];
        assert_eq!(e.len(), want.len(), "{e:?}");
        for (e, want) in e.iter().zip(want) {
            assert!(e.starts_with(want), "{e} does not start with {want}");
        }
    }
}
