//! A YAML document as a tree of spanned nodes, built from saphyr-parser events.
//!
//! Our own tree rather than a serde mapping so that the loader can report
//! every problem (not just the first) with its line and column, and so that
//! duplicate mapping keys stay visible (a duplicate node id is an error the
//! admin must see, not a silent overwrite).

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// A position in a flow file: line and column, both from 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// The line, from 1.
    pub line: usize,
    /// The column in characters, from 1.
    pub col: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Self {
        Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }
}

/// One YAML value with where it starts.
#[derive(Clone, Debug)]
pub struct Yaml {
    /// Where the value starts.
    pub pos: Pos,
    /// A scalar, a sequence or a mapping.
    pub value: YamlValue,
}

/// The three kinds of YAML value.
#[derive(Clone, Debug)]
pub enum YamlValue {
    /// A scalar as written; `plain` is false for quoted and block scalars,
    /// which are always strings (`"1"` is text, `1` may be a number).
    Scalar {
        /// The scalar's text, unquoted.
        text: String,
        /// `false` for quoted and block scalars.
        plain: bool,
    },
    /// A sequence, in file order.
    Seq(Vec<Yaml>),
    /// Entries in file order; duplicate keys kept.
    Map(Vec<(Yaml, Yaml)>),
}

/// A syntax error from the YAML parser.
#[derive(Clone, Debug)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub pos: Pos,
    /// The parser's message.
    pub message: String,
}

impl Yaml {
    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            YamlValue::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// True for a plain `~`, `null` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, YamlValue::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What kind of YAML value this is, for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match &self.value {
            YamlValue::Scalar { .. } if self.is_null() => "nothing",
            YamlValue::Scalar { .. } => "a single value",
            YamlValue::Seq(_) => "a list",
            YamlValue::Map(_) => "a mapping",
        }
    }

    /// The value as JSON (plain scalars typed as YAML 1.2 core: null, bools, numbers).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            YamlValue::Scalar { text, plain } => {
                if !plain {
                    return Value::String(text.clone());
                }
                if self.is_null() {
                    return Value::Null;
                }
                match text.as_str() {
                    "true" | "True" | "TRUE" => return Value::Bool(true),
                    "false" | "False" | "FALSE" => return Value::Bool(false),
                    _ => {}
                }
                if let Ok(i) = text.parse::<i64>() {
                    return Value::from(i);
                }
                if text.contains('.')
                    && let Ok(f) = text.parse::<f64>()
                    && let Some(n) = serde_json::Number::from_f64(f)
                {
                    return Value::Number(n);
                }
                Value::String(text.clone())
            }
            YamlValue::Seq(items) => Value::Array(items.iter().map(Yaml::to_json).collect()),
            YamlValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Parses the first document of `text`. An empty document is `Ok(None)`.
pub fn parse(text: &str) -> Result<Option<Yaml>, SyntaxError> {
    // Anchors are kept so that aliases resolve to a copy of the anchored node.
    let mut anchors: Vec<Option<Yaml>> = Vec::new();
    // Open collections: (start, items, anchor id); maps use items pairwise.
    let mut stack: Vec<(Pos, bool, Vec<Yaml>, usize)> = Vec::new();
    let mut root: Option<Yaml> = None;
    let mut docs = 0;
    for ev in Parser::new_from_str(text) {
        let (ev, span) = ev.map_err(|e| SyntaxError {
            pos: Pos {
                line: e.marker().line(),
                col: e.marker().col() + 1,
            },
            message: e.info().to_owned(),
        })?;
        let pos = Pos::from_span(&span);
        let done: Option<Yaml> = match ev {
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    return Err(SyntaxError {
                        pos,
                        message: "a flow file holds one YAML document; remove the second `---`"
                            .into(),
                    });
                }
                None
            }
            Event::Scalar(text, style, anchor, _) => {
                let node = Yaml {
                    pos,
                    value: YamlValue::Scalar {
                        text: text.into_owned(),
                        plain: style == ScalarStyle::Plain,
                    },
                };
                remember(&mut anchors, anchor, &node);
                Some(node)
            }
            Event::Alias(id) => match anchors.get(id).cloned().flatten() {
                Some(mut node) => {
                    node.pos = pos;
                    Some(node)
                }
                None => {
                    return Err(SyntaxError {
                        pos,
                        message: "alias to an unknown anchor".into(),
                    });
                }
            },
            Event::SequenceStart(anchor, _) => {
                stack.push((pos, false, Vec::new(), anchor));
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push((pos, true, Vec::new(), anchor));
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (start, is_map, items, anchor) = stack.pop().expect("balanced events");
                let value = if is_map {
                    let mut entries = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        entries.push((k, v));
                    }
                    YamlValue::Map(entries)
                } else {
                    YamlValue::Seq(items)
                };
                let node = Yaml { pos: start, value };
                remember(&mut anchors, anchor, &node);
                Some(node)
            }
            _ => None,
        };
        if let Some(node) = done {
            match stack.last_mut() {
                Some((_, _, items, _)) => items.push(node),
                None => root = Some(node),
            }
        }
    }
    Ok(root)
}

fn remember(anchors: &mut Vec<Option<Yaml>>, id: usize, node: &Yaml) {
    if id == 0 {
        return;
    }
    if anchors.len() <= id {
        anchors.resize(id + 1, None);
    }
    anchors[id] = Some(node.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_duplicates_kept() {
        let y = parse("a: 1\nb:\n  - x\n  - \"y\"\na: 2\n")
            .unwrap()
            .unwrap();
        let YamlValue::Map(entries) = &y.value else {
            panic!("map")
        };
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2].0.pos, Pos { line: 5, col: 1 });
        let YamlValue::Seq(items) = &entries[1].1.value else {
            panic!("seq")
        };
        assert_eq!(items[1].pos, Pos { line: 4, col: 5 });
        assert_eq!(y.to_json()["b"][1], "y");
    }

    #[test]
    fn syntax_error_has_a_position() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.line >= 1, "{e:?}");
    }
}
