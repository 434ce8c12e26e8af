//! The loader and validator: YAML text → [`Flow`], or every problem found.
//!
//! One pass types the document by hand (so that a wrong key does not hide
//! the next one), recording node references and prompt names as it goes;
//! then whole-flow checks run on what was recorded: dangling references,
//! unreachable nodes, loops that never wait for the caller, missing prompts.
//!
//! This is the dispatcher, above the flow and the node kinds: it reads the
//! flow's own keys and each node's `type:`, and hands the node's keys to
//! its kind's parser, registered in `KINDS`. The reading helpers those
//! parsers share live below the kinds, in `crate::parse`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use crate::condition::parse_condition;
use crate::error::{ErrorKind, FlowError, FlowErrors};
use crate::flow::{Flow, Node, NodeKind};
use crate::nodes;
use crate::parse::{Context, Defaults, Fields, Loader, Syntax};
pub use crate::parse::{FLOW_OUTCOMES, parse_duration};
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
    let mut l = Loader::new(path.to_owned(), text);
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
/// A kind's [`Syntax`] from its file under `nodes/`, its parser's result
/// wrapped in the kind's [`NodeKind`] variant: `kind!(file => Variant)`.
macro_rules! kind {
    ($file:ident => $variant:ident) => {
        Syntax {
            name: nodes::$file::SYNTAX.name,
            keys: nodes::$file::SYNTAX.keys,
            parse: |l, f, cx| (nodes::$file::SYNTAX.parse)(l, f, cx).map(NodeKind::$variant),
        }
    };
}

/// Every node kind, in the order error messages list them: one line each
/// (the kind's file under `nodes/` and its `NodeKind` variant).
pub(crate) const KINDS: &[Syntax<NodeKind>] = &[
    kind!(play => Play),
    kind!(menu => Menu),
    kind!(gather => Gather),
    kind!(branch => Branch),
    kind!(set => Set),
    kind!(hours => Hours),
    kind!(language => Language),
    kind!(lookup => Lookup),
    kind!(say => Say),
    kind!(enqueue => Enqueue),
    kind!(voicemail => Voicemail),
    kind!(callback => Callback),
    kind!(transfer => Transfer),
    kind!(hangup => Hangup),
    kind!(survey => Survey),
];

/// The `type:` names, for error messages.
fn kind_names() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// The dispatcher and the whole-flow checks; the helpers a kind's parser
/// calls are in [`crate::parse`].
impl Loader {
    fn err_recording(&mut self, pos: Option<Pos>, message: impl Into<String>) {
        self.errors.push(FlowError {
            file: self.file.clone(),
            pos,
            message: message.into(),
            kind: ErrorKind::MissingRecording,
        });
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
        let kind_of = |id: &str| nodes.iter().find(|n| n.id == id).map(|n| n.kind.as_kind());
        nodes::callback::check_hours(self, kind_of, &ids);
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
        if kind_name != "gather"
            && let Some(at) = f.key_pos("secure")
        {
            let _ = f.take("secure");
            self.err(
                at,
                format!(
                    "`secure` is only for gather nodes (it masks the digits a gather collects); {kind_name} node `{id}` cannot have it"
                ),
            );
        }
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

fn is_language_code(s: &str) -> bool {
    (2..=3).contains(&s.len()) && s.chars().all(|c| c.is_ascii_lowercase())
}

fn is_node_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
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
    use std::time::Duration;

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
