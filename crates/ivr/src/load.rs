//! The loader and validator: YAML text → [`Flow`], or every problem found.
//!
//! One pass types the document by hand (so that a wrong key does not hide
//! the next one), recording node references and prompt names as it goes;
//! then whole-flow checks run on what was recorded: dangling references,
//! unreachable nodes, loops that never wait for the caller, missing prompts.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;
use sha2::{Digest, Sha256};

pub use crate::condition::parse_condition;
use crate::error::{ErrorKind, FlowError, FlowErrors};
use crate::flow::*;
use crate::nodes;
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

/// A `say` node's need for fragment prompts.
pub(crate) struct SayNeed {
    pub(crate) say_as: SayAs,
    pub(crate) pos: Pos,
}

/// The reader of one flow file; node kinds' parsers (a [`Syntax`] each) call
/// its helpers to take their keys.
pub(crate) struct Loader {
    file: PathBuf,
    /// The source, to place errors inside a scalar (a condition's bad token).
    lines: Vec<String>,
    errors: Vec<FlowError>,
    refs: Vec<Ref>,
    /// Prompt names as written, with where.
    prompts: Vec<(String, Pos)>,
    pub(crate) says: Vec<SayNeed>,
    /// Node id → ids it may go to (recorded even when the node has other errors).
    pub(crate) edges: HashMap<String, Vec<String>>,
    /// The node being read.
    pub(crate) current: Option<String>,
    /// The flow's languages, once read (prompts are checked in each).
    languages: Option<Vec<String>>,
    /// `callback` nodes' `hours:` (an hours node id, where) and their slot
    /// times (name, minute, where): checked once every node is known.
    pub(crate) callback_hours: Vec<nodes::callback::CallbackHours>,
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
/// and returns the node when it could be built.
pub(crate) struct Syntax {
    pub(crate) name: &'static str,
    pub(crate) keys: &'static [&'static str],
    pub(crate) parse: fn(&mut Loader, &mut Fields<'_>, &Context<'_>) -> Option<NodeKind>,
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
/// Every node kind, in the order error messages list them: one line each
/// (the kind's file under `nodes/`).
pub(crate) const KINDS: &[Syntax] = &[
    nodes::play::SYNTAX,
    nodes::menu::SYNTAX,
    nodes::gather::SYNTAX,
    nodes::branch::SYNTAX,
    nodes::set::SYNTAX,
    nodes::hours::SYNTAX,
    nodes::language::SYNTAX,
    nodes::lookup::SYNTAX,
    nodes::say::SYNTAX,
    nodes::enqueue::SYNTAX,
    nodes::voicemail::SYNTAX,
    nodes::callback::SYNTAX,
    nodes::transfer::SYNTAX,
    nodes::hangup::SYNTAX,
];

/// The outcomes a flow may set (docs/call-events.md, "Outcomes"); the
/// others follow from what the call did (queued, answered, voicemail …).
pub const FLOW_OUTCOMES: &[&str] = &["self_served", "ended_in_ivr", "failed"];

/// The `type:` names, for error messages.
fn kind_names() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

impl Loader {
    pub(crate) fn err(&mut self, pos: Pos, message: impl Into<String>) {
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
        nodes::callback::check_hours(self, &nodes, &ids);
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
                format!("node `{id}` has no `type`; use one of: {}", kind_names()),
            );
            self.untyped_targets(&f);
            return None;
        };
        let Some(kind_name) = self.text(type_y, "type") else {
            self.untyped_targets(&f);
            return None;
        };
        let Some(syntax) = KINDS.iter().find(|k| k.name == kind_name) else {
            self.err(
                type_y.pos,
                format!(
                    "unknown node type `{kind_name}`; use one of: {}",
                    kind_names()
                ),
            );
            self.untyped_targets(&f);
            return None;
        };
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
        let cx = Context {
            defaults: d,
            languages,
        };
        let kind = (syntax.parse)(self, &mut f, &cx);
        let allowed: Vec<&str> = COMMON_KEYS.iter().chain(syntax.keys).copied().collect();
        self.finish(f, &allowed);
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

    /// Each kind in `KINDS` is a `NodeKind` of the same name, and the
    /// simulator's every-kind fixture has one of each.
    #[test]
    fn every_kind_is_registered_and_in_the_all_kinds_fixture() {
        let flow = load_file(
            Path::new("tests/fixtures/all-kinds.yaml"),
            &LoadOptions::default(),
        )
        .expect("all-kinds.yaml loads");
        let mut seen: Vec<&str> = flow.nodes.iter().map(|n| n.kind.name()).collect();
        seen.sort_unstable();
        seen.dedup();
        let mut kinds: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        kinds.sort_unstable();
        assert_eq!(seen, kinds);
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
