//! Branch conditions (`if:` in a `branch` case): the parser, a printer, and
//! evaluation against a call's variables.
//!
//! The grammar is small and strict (docs/flows.md, "Conditions"); anything
//! else is an error pointing at the offending token:
//!
//! ```text
//! condition = variable                        true when set, not empty, not false or 0
//!           | variable op value
//!           | variable "matches" pattern
//! variable  = name { "." segment }            name: a letter or `_`, then letters, digits, `_`
//!                                             segment: letters, digits, `_` (`items.0` indexes a list)
//! op        = "==" | "!=" | "<" | "<=" | ">" | ">="
//! value     = number | "true" | "false" | word | quoted
//! pattern   = word | quoted                   a regular expression (unanchored)
//! number    = [ "-" ] digits [ "." digits ]
//! word      = one or more of: letters, digits, _ - . + : @ / * #
//! quoted    = '"' { any character but '"' } '"'
//!           | "'" { any character but "'" } "'"      (no escapes)
//! ```
//!
//! Spaces may separate the tokens and surround the condition; `matches` is a
//! word, so it needs a space after the variable. `<`, `<=`, `>`, `>=` take a
//! number. Nothing may follow the value.
//!
//! [`Condition`]'s `Display` prints the canonical form (single spaces, words
//! bare when they read back as the same text, else quoted); parsing that gives
//! an equal condition.

use std::fmt;

use regex::Regex;
use serde_json::Value;

/// `VARIABLE OP VALUE`, `VARIABLE matches PATTERN`, or a bare `VARIABLE`.
#[derive(Clone, Debug)]
pub struct Condition {
    /// The condition as written (trimmed), for graphs and logs.
    pub text: String,
    /// The variable tested, dotted for nested values (`order.status`, `items.0`).
    pub var: String,
    /// What is asked of the variable's value.
    pub test: Test,
}

/// Conditions are equal when they test the same thing: the variable and the
/// test, not how they were spelled (`text`).
impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.var == other.var && self.test == other.test
    }
}

/// What a [`Condition`] asks of its variable.
#[derive(Clone, Debug)]
pub enum Test {
    /// Set, not empty, not false or 0.
    Truthy,
    /// `VARIABLE OP VALUE`: `==` and `!=` compare as numbers when both sides are
    /// numbers, else as text; the ordering operators take numbers only.
    Compare(CompareOp, Literal),
    /// The variable's text matches the regular expression (anywhere).
    Matches(Regex),
}

impl PartialEq for Test {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Test::Truthy, Test::Truthy) => true,
            (Test::Compare(a, x), Test::Compare(b, y)) => a == b && x == y,
            (Test::Matches(a), Test::Matches(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// The operator of a `VARIABLE OP VALUE` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<` (numbers only)
    Lt,
    /// `<=` (numbers only)
    Le,
    /// `>` (numbers only)
    Gt,
    /// `>=` (numbers only)
    Ge,
}

impl CompareOp {
    /// The operator as written in a condition, e.g. `<=`.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }

    fn orders(self) -> bool {
        matches!(
            self,
            CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge
        )
    }
}

/// The value a variable is compared with.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// A bare number (`100`, `-2.5`); always finite.
    Number(f64),
    /// Bare `true` or `false`.
    Bool(bool),
    /// A bare word or quoted text.
    Text(String),
}

/// Why a condition was refused, and where: `at` counts characters into the
/// condition text (the offending token's first character).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionError {
    /// Characters into the condition text where the offending token starts (from 0).
    pub at: usize,
    /// What is wrong, phrased for the flow author.
    pub message: String,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConditionError {}

const OPERATORS: &str = "==, !=, <, <=, >, >=, matches";

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_var_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn is_op_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>')
}

/// Characters of a bare word (a value or pattern written without quotes).
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '+' | ':' | '@' | '/' | '*' | '#')
}

/// `-? digits (. digits)?`
fn is_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

/// A variable path: `name(.segment)*`, no empty segment, first starting with a letter or `_`.
pub fn is_variable(s: &str) -> bool {
    let mut parts = s.split('.');
    let first = parts.next().unwrap_or("");
    let seg = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    seg(first)
        && first
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && parts.all(seg)
}

struct Cursor<'a> {
    cs: &'a [char],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.cs.get(self.i).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.i += 1;
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        self.cs[start..self.i].iter().collect()
    }

    /// The next run of non-space characters, shortened for messages.
    fn token_at(&self, at: usize) -> String {
        let t: String = self.cs[at..]
            .iter()
            .take_while(|c| !is_space(**c))
            .collect();
        shorten(&t)
    }

    /// Everything from `at` to the end, trimmed and shortened for messages.
    fn rest_at(&self, at: usize) -> String {
        let t: String = self.cs[at..].iter().collect();
        shorten(t.trim())
    }

    /// A quoted text or a bare word; `what` names it in messages.
    /// Returns (as written, content, quoted).
    fn word_or_quoted(
        &mut self,
        what: &str,
        after: &str,
    ) -> Result<(String, String, bool), ConditionError> {
        let start = self.i;
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                let close = self.cs[start + 1..].iter().position(|c| *c == q);
                let Some(len) = close else {
                    return Err(ConditionError {
                        at: start,
                        message: format!(
                            "unbalanced quote: the {q} before `{}` is never closed",
                            shorten(&self.cs[start + 1..].iter().collect::<String>())
                        ),
                    });
                };
                let inner: String = self.cs[start + 1..start + 1 + len].iter().collect();
                self.i = start + len + 2;
                Ok((format!("{q}{inner}{q}"), inner, true))
            }
            Some(c) if is_word_char(c) => {
                let w = self.take_while(is_word_char);
                Ok((w.clone(), w, false))
            }
            Some('$') => Err(ConditionError {
                at: start,
                message: format!(
                    "`{}`: a condition compares a variable with a fixed {what}; `${{…}}` is not allowed here",
                    self.token_at(start)
                ),
            }),
            Some(_) => {
                let token = self.token_at(start);
                let run: String = token.chars().take_while(|c| is_op_char(*c)).collect();
                let hint = if !run.is_empty() {
                    format!(
                        " (`{after}{run}` is not an operator{})",
                        suggest_op(&format!("{after}{run}"))
                            .map(|s| format!("; use `{s}`"))
                            .unwrap_or_default()
                    )
                } else {
                    String::new()
                };
                Err(ConditionError {
                    at: start,
                    message: format!(
                        "expected a {what} after `{after}`, found `{token}`{hint}; {}",
                        if what == "value" {
                            "a value is a number, true, false, a word, or text in quotes"
                        } else {
                            "put the regular expression in quotes, like \"^9\""
                        }
                    ),
                })
            }
            None => Err(ConditionError {
                at: start,
                message: format!("expected a {what} after `{after}`"),
            }),
        }
    }

    /// Only spaces may follow the last token.
    fn end(&mut self, last: &str) -> Result<(), ConditionError> {
        self.skip_space();
        if self.i == self.cs.len() {
            return Ok(());
        }
        let at = self.i;
        let rest = self.rest_at(at);
        let first = self.token_at(at);
        let combine = ["and", "or", "&&", "||", "AND", "OR", "&", "|"];
        let message = if combine.contains(&first.as_str()) {
            format!(
                "unexpected `{rest}` after `{last}`: conditions cannot be combined with `{first}`; test one thing per case (cases are tried in order)"
            )
        } else {
            format!(
                "unexpected `{rest}` after `{last}`: a condition ends with its value (put text with spaces or symbols in quotes)"
            )
        };
        Err(ConditionError { at, message })
    }
}

fn shorten(s: &str) -> String {
    const MAX: usize = 24;
    if s.chars().count() > MAX {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    } else {
        s.to_owned()
    }
}

/// The operator someone probably meant by a run of `=!<>` that is not one.
fn suggest_op(run: &str) -> Option<&'static str> {
    match run {
        "=" | "===" | "====" => Some("=="),
        "!==" | "!" | "<>" | "=!" | "!===" => Some("!="),
        "=<" | "<==" => Some("<="),
        "=>" | ">==" => Some(">="),
        _ => None,
    }
}

/// Parses one condition; see the module docs for the grammar.
pub fn parse_condition(text: &str) -> Result<Condition, ConditionError> {
    let cs: Vec<char> = text.chars().collect();
    let mut p = Cursor { cs: &cs, i: 0 };
    p.skip_space();
    if p.i == cs.len() {
        return Err(ConditionError {
            at: 0,
            message: "the condition is empty; write a variable, or a comparison like `order.status == paid`".into(),
        });
    }
    let var_at = p.i;
    let var = p.take_while(is_var_char);
    if !var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return Err(ConditionError {
            at: var_at,
            message: format!(
                "`{}` must start with a variable name, like `order.status == shipped`",
                shorten(text.trim())
            ),
        });
    }
    if !is_variable(&var) {
        return Err(ConditionError {
            at: var_at,
            message: format!(
                "`{var}` is not a variable name: use names of letters, digits and `_` joined by single dots, like `order.status`"
            ),
        });
    }
    p.skip_space();
    let cond = |test| Condition {
        text: text.trim().to_owned(),
        var: var.clone(),
        test,
    };
    let op_at = p.i;
    let Some(c) = p.peek() else {
        return Ok(cond(Test::Truthy));
    };
    if is_op_char(c) {
        let run = p.take_while(is_op_char);
        let op = match run.as_str() {
            "==" => CompareOp::Eq,
            "!=" => CompareOp::Ne,
            "<" => CompareOp::Lt,
            "<=" => CompareOp::Le,
            ">" => CompareOp::Gt,
            ">=" => CompareOp::Ge,
            _ => {
                let hint = suggest_op(&run)
                    .map(|s| format!("; use `{s}`"))
                    .unwrap_or_else(|| format!("; use one of {OPERATORS}"));
                return Err(ConditionError {
                    at: op_at,
                    message: format!("`{run}` is not an operator{hint}"),
                });
            }
        };
        p.skip_space();
        let value_at = p.i;
        if p.peek().is_none() {
            return Err(ConditionError {
                at: value_at,
                message: format!("nothing to compare `{var}` with after `{run}`"),
            });
        }
        let (raw, content, quoted) = p.word_or_quoted("value", &run)?;
        let value = if quoted {
            Literal::Text(content)
        } else if is_number(&content) {
            match content.parse::<f64>() {
                Ok(n) if n.is_finite() => Literal::Number(n),
                _ => {
                    return Err(ConditionError {
                        at: value_at,
                        message: format!("`{}` is too large a number", shorten(&raw)),
                    });
                }
            }
        } else if content == "true" || content == "false" {
            Literal::Bool(content == "true")
        } else {
            Literal::Text(content)
        };
        if op.orders() && !matches!(value, Literal::Number(_)) {
            return Err(ConditionError {
                at: value_at,
                message: format!(
                    "`{}` is not a number; <, <=, >, >= compare numbers (like 100 or -2.5, unquoted)",
                    shorten(&raw)
                ),
            });
        }
        p.end(&raw)?;
        return Ok(cond(Test::Compare(op, value)));
    }
    let word = p.take_while(|c| c.is_alphanumeric() || c == '_');
    if word != "matches" {
        return Err(ConditionError {
            at: op_at,
            message: format!(
                "expected an operator ({OPERATORS}) after `{var}`, found `{}`",
                p.token_at(op_at)
            ),
        });
    }
    p.skip_space();
    let pattern_at = p.i;
    if p.peek().is_none() {
        return Err(ConditionError {
            at: pattern_at,
            message: "`matches` needs a regular expression after it, like `matches \"^9\"`".into(),
        });
    }
    let (raw, pattern, _) = p.word_or_quoted("regular expression", "matches")?;
    let re = compile_regex(&pattern).map_err(|why| ConditionError {
        at: pattern_at,
        message: format!(
            "`{}` is not a valid regular expression: {why}",
            shorten(&pattern)
        ),
    })?;
    p.end(&raw)?;
    Ok(cond(Test::Matches(re)))
}

/// Largest compiled program a flow's regular expression may have. The
/// patterns of an IVR (digit strings, a leading `9`) compile to a few KiB;
/// the regex crate's default (10 MiB) lets one line of a flow file take
/// most of a second to compile, on every load and validation.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Deepest nesting of groups and repetitions a flow's pattern may have.
const REGEX_NEST_LIMIT: u32 = 50;

/// Compiles a flow's regular expression within [`REGEX_SIZE_LIMIT`] and
/// [`REGEX_NEST_LIMIT`]; on failure, the reason in one line.
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(REGEX_NEST_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "too large (it compiles to more than {} KiB; write it shorter, \
                 e.g. `\\d{{4,16}}` rather than spelling the digits out)",
                limit / 1024
            ),
            e => {
                let msg = e.to_string();
                msg.lines()
                    .rfind(|l| l.starts_with("error:"))
                    .unwrap_or("invalid")
                    .trim_start_matches("error: ")
                    .to_owned()
            }
        })
}

/// Text as a bare word when it reads back as the same text, else in quotes.
fn write_text(f: &mut fmt::Formatter<'_>, s: &str, value: bool) -> fmt::Result {
    let bare = !s.is_empty()
        && s.chars().all(is_word_char)
        && !(value && (is_number(s) || s == "true" || s == "false"));
    if bare {
        f.write_str(s)
    } else if s.contains('"') {
        // The parser has no escapes, so parsed text never holds both quotes.
        write!(f, "'{s}'")
    } else {
        write!(f, "\"{s}\"")
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // f64's Display never uses an exponent, so this reads back as a number.
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Text(s) => write_text(f, s, true),
        }
    }
}

/// The canonical spelling: `var`, `var OP value`, `var matches pattern`.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.var)?;
        match &self.test {
            Test::Truthy => Ok(()),
            Test::Compare(op, v) => write!(f, " {} {v}", op.symbol()),
            Test::Matches(re) => {
                f.write_str(" matches ")?;
                write_text(f, re.as_str(), false)
            }
        }
    }
}

impl Condition {
    /// Whether the condition holds for these call variables (a JSON object;
    /// dotted names walk into objects, numeric segments into lists).
    pub fn holds(&self, vars: &Value) -> bool {
        let v = get_path(vars, &self.var);
        match &self.test {
            Test::Truthy => match v {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => !s.is_empty() && s != "0" && s != "false",
                Some(Value::Number(n)) => n.as_f64() != Some(0.0),
                Some(Value::Array(a)) => !a.is_empty(),
                Some(Value::Object(o)) => !o.is_empty(),
            },
            Test::Matches(re) => v.and_then(value_text).is_some_and(|s| re.is_match(&s)),
            Test::Compare(op, want) => {
                let Some(have) = v else {
                    return *op == CompareOp::Ne;
                };
                let have_num = match have {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                let want_num = match want {
                    Literal::Number(n) => Some(*n),
                    Literal::Text(s) => s.trim().parse::<f64>().ok(),
                    Literal::Bool(_) => None,
                };
                if op.orders() {
                    return match (have_num, want_num) {
                        (Some(a), Some(b)) => match op {
                            CompareOp::Lt => a < b,
                            CompareOp::Le => a <= b,
                            CompareOp::Gt => a > b,
                            _ => a >= b,
                        },
                        _ => false,
                    };
                }
                // Numbers compare as numbers; anything else as text.
                let same = match (have_num, want_num, want) {
                    (Some(a), Some(b), _) => a == b,
                    (_, _, Literal::Number(_)) => false,
                    (_, _, Literal::Bool(b)) => value_text(have).as_deref() == Some(&b.to_string()),
                    (_, _, Literal::Text(s)) => value_text(have).as_deref() == Some(s.as_str()),
                };
                same == (*op == CompareOp::Eq)
            }
        }
    }
}

/// The value at a dotted path in a JSON object.
pub(crate) fn get_path<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = root;
    for part in path.split('.') {
        v = match v {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// A JSON value as the text a caller would see (`None` for null).
pub(crate) fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(s: &str) -> ConditionError {
        parse_condition(s).expect_err(s)
    }

    #[test]
    fn documented_forms_parse() {
        let c = parse_condition("order.status == \"shipped\"").unwrap();
        assert_eq!(c.var, "order.status");
        assert_eq!(
            c.test,
            Test::Compare(CompareOp::Eq, Literal::Text("shipped".into()))
        );
        assert_eq!(
            parse_condition("subscriber.found").unwrap().test,
            Test::Truthy
        );
        assert_eq!(
            parse_condition("order.amount > 100").unwrap().test,
            Test::Compare(CompareOp::Gt, Literal::Number(100.0))
        );
        assert_eq!(
            parse_condition("x==-2.5").unwrap().test,
            Test::Compare(CompareOp::Eq, Literal::Number(-2.5))
        );
        assert_eq!(
            parse_condition("flag != true").unwrap().test,
            Test::Compare(CompareOp::Ne, Literal::Bool(true))
        );
        assert!(matches!(
            parse_condition("order_number matches \"^9\"").unwrap().test,
            Test::Matches(ref r) if r.as_str() == "^9"
        ));
        assert_eq!(
            parse_condition("items.0 == 'it''").unwrap_err().at,
            15,
            "a quote closes at the first same quote"
        );
    }

    #[test]
    fn everything_else_is_refused_at_its_token() {
        let e = err("order.status === paid");
        assert_eq!(e.at, 13);
        assert_eq!(e.message, "`===` is not an operator; use `==`");
        assert_eq!(err("order.status == paid extra").at, 21);
        assert_eq!(err("x == \"paid").at, 5);
        assert!(err("x == \"paid").message.contains("unbalanced quote"));
        assert_eq!(err("x == paid\"").at, 9);
        assert_eq!(err("x = 1").message, "`=` is not an operator; use `==`");
        assert_eq!(err("x == ${y}").at, 5);
        assert_eq!(err("x < abc").at, 4);
        assert_eq!(err("x < \"5\"").at, 4);
        assert_eq!(err("x matches (").at, 10);
        assert_eq!(err("x matches \"(\"").at, 10);
        assert_eq!(err("== 3").at, 0);
        assert_eq!(err("  9x == 3").at, 2);
        assert_eq!(err("a..b == 3").at, 0);
        assert_eq!(err("a. == 3").at, 0);
        assert_eq!(err("x is 3").at, 2);
        assert_eq!(err("x ==").at, 4);
        assert_eq!(err("x matches").at, 9);
        assert_eq!(err("").at, 0);
        assert!(
            err("a == 1 and b == 2")
                .message
                .contains("cannot be combined")
        );
        assert_eq!(
            err("x > 1e5").message,
            "`1e5` is not a number; <, <=, >, >= compare numbers (like 100 or -2.5, unquoted)"
        );
        assert_eq!(
            err("x == =paid").message,
            "expected a value after `==`, found `=paid` (`===` is not an operator; use `==`); a value is a number, true, false, a word, or text in quotes"
        );
    }

    #[test]
    fn printing_reads_back() {
        for (src, printed) in [
            ("a", "a"),
            ("  a.b   ==paid ", "a.b == paid"),
            ("a == \"paid\"", "a == paid"),
            ("a == \"two words\"", "a == \"two words\""),
            ("a == '\"q\"'", "a == '\"q\"'"),
            ("a == \"100\"", "a == \"100\""),
            ("a == \"true\"", "a == \"true\""),
            ("a == 1.50", "a == 1.5"),
            ("a >= -0", "a >= -0"),
            ("a matches \"^9\"", "a matches \"^9\""),
            ("a matches 'x|y'", "a matches \"x|y\""),
            ("a matches abc", "a matches abc"),
            ("a == \"\"", "a == \"\""),
        ] {
            let c = parse_condition(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(c.to_string(), printed, "{src}");
            assert_eq!(parse_condition(printed).unwrap(), c, "{src}");
        }
    }

    #[test]
    fn evaluation() {
        let vars = json!({
            "order": {"status": "paid", "amount": "120", "n": 3},
            "flag": true,
            "empty": "",
            "list": ["a"],
        });
        let holds = |s: &str| parse_condition(s).unwrap().holds(&vars);
        assert!(holds("order.status == paid"));
        assert!(!holds("order.status == \"= paid\""));
        assert!(holds("order.amount > 100"));
        assert!(holds("order.amount == 120.0"));
        assert!(holds("order.n == \"3\""));
        assert!(holds("flag == true"));
        assert!(holds("flag == \"true\""));
        assert!(!holds("empty"));
        assert!(holds("list.0 == a"));
        assert!(holds("missing != x"));
        assert!(!holds("missing == x"));
        assert!(!holds("missing < 3"));
        assert!(holds("order.status matches ai"), "a bare word pattern");
        assert!(holds("order.status matches '^p'"));
    }
}
