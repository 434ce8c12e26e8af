//! Property tests for the branch-condition parser (`if:` in flows).
//!
//! A small seeded generator (fastrand) builds condition strings from pieces of
//! the grammar — valid and invalid variables, operators, values, quotes,
//! spacing, trailing junk — then mutates some of them character by character.
//! For every string:
//!
//! - the parser returns (never panics), and an error points inside the text;
//! - an accepted string pretty-prints to a canonical form that parses to an
//!   equal condition, prints the same again, and evaluates the same on sample
//!   variable sets;
//! - strings built only from valid pieces are always accepted.
//!
//! The run is deterministic. `CONDITION_FUZZ_CASES=1000000` runs longer;
//! `CONDITION_FUZZ_SEED=n` picks another seed. A failure prints the seed and
//! the string.

use std::panic::{AssertUnwindSafe, catch_unwind};

use hotline_ivr::condition::{Condition, parse_condition};
use serde_json::{Value, json};

const VALID_VARS: &[&str] = &[
    "order.status",
    "order.amount",
    "a",
    "_x",
    "items.0",
    "items.1.name",
    "subscriber.renews_on",
    "x1.y_2",
    "flag",
    "empty",
    "missing.deep",
];
const INVALID_VARS: &[&str] = &[
    "9a", "a..b", "a.", ".a", "", "订单", "a-b", "$x", "a b", "${a}",
];
const VALID_OPS: &[&str] = &["==", "!=", "<", "<=", ">", ">=", "matches"];
const INVALID_OPS: &[&str] = &[
    "=", "===", "!==", "=>", "=<", "<>", "!", "is", "MATCHES", "match", "~=", "&&",
];
const WORDS: &[&str] = &[
    "paid",
    "pending",
    "true",
    "false",
    "True",
    "null",
    "李雷",
    "a/b",
    "+8613800000000",
    "1e5",
    "1.2.3",
    "2026-12-25",
    "10:30",
    "a@b.c",
    "*",
    "#",
    "-",
    "x-y_z",
    "café",
    "0x1F",
    ".5",
    "1.",
];
const JUNK: &[&str] = &[
    "(", ")", ",", "&&", "||", "and", "or", "\"", "'", "${y}", "=", "\u{3000}", ";", "{", "}",
    "\\", "|", "^9",
];
const SPACES: &[&str] = &["", " ", " ", " ", "  ", "\t", "\n", " \t "];
/// Characters mutations insert: grammar symbols, quotes, spaces, letters, digits, Unicode.
const ALPHABET: &[char] = &[
    '=', '!', '<', '>', '"', '\'', ' ', '\t', '$', '{', '}', '.', '-', '_', 'a', 'b', 'z', '0',
    '1', '9', '中', 'é', '\u{3000}', '#', '*', '(', ')', '^', '|', '\\', '+', ':', '/', '@', ',',
    'm', 'e', 's', '\n',
];

struct Gen {
    rng: fastrand::Rng,
}

impl Gen {
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.rng.usize(..xs.len())]
    }

    fn chance(&mut self, percent: u8) -> bool {
        self.rng.u8(..100) < percent
    }

    fn number(&mut self) -> String {
        let sign = if self.chance(30) { "-" } else { "" };
        let int = match self.rng.u8(..10) {
            0 => "0".to_owned(),
            // Beyond i64 and beyond f64's integers.
            1 => (0..self.rng.usize(19..40))
                .map(|_| char::from(b'0' + self.rng.u8(..10)))
                .collect(),
            _ => self.rng.u64(..100_000).to_string(),
        };
        if self.chance(40) {
            let frac: String = (0..self.rng.usize(1..8))
                .map(|_| char::from(b'0' + self.rng.u8(..10)))
                .collect();
            format!("{sign}{int}.{frac}")
        } else {
            format!("{sign}{int}")
        }
    }

    fn quoted(&mut self) -> String {
        let q = if self.chance(50) { '"' } else { '\'' };
        let other = if q == '"' { '\'' } else { '"' };
        let n = self.rng.usize(..8);
        let mut s = String::new();
        for _ in 0..n {
            let c = match self.rng.u8(..10) {
                0 => other,
                1 => ' ',
                2 => ALPHABET[self.rng.usize(..ALPHABET.len())],
                _ => self.rng.alphanumeric(),
            };
            if c != q {
                s.push(c);
            }
        }
        format!("{q}{s}{q}")
    }

    /// A value that the grammar accepts after `op`.
    fn valid_value(&mut self, op: &str) -> String {
        match op {
            "<" | "<=" | ">" | ">=" => self.number(),
            "matches" => match self.rng.u8(..3) {
                0 => self
                    .pick(&["\"^9\"", "'a|b'", "\"[0-9]+$\"", "paid", "\"\"", "'x.y'"])
                    .to_owned(),
                1 => self.pick(WORDS).to_owned(),
                _ => self.quoted(),
            },
            _ => match self.rng.u8(..3) {
                0 => self.number(),
                1 => self.pick(WORDS).to_owned(),
                _ => self.quoted(),
            },
        }
    }

    /// A condition made only of valid pieces: must be accepted (unless the
    /// value is a regular expression the regex crate refuses — the words and
    /// quotes used here are all valid regexes except a few, checked below).
    fn valid(&mut self) -> String {
        let mut s = String::new();
        s += self.pick(SPACES);
        s += self.pick(VALID_VARS);
        if self.chance(80) {
            let op = self.pick(VALID_OPS);
            // `matches` is a word: it needs a space after the variable.
            s += if op == "matches" {
                " "
            } else {
                self.pick(SPACES)
            };
            s += op;
            let value = self.valid_value(op);
            let space = self.pick(SPACES);
            // …and before a bare-word pattern.
            s += if op == "matches" && space.is_empty() && !value.starts_with(['"', '\'']) {
                " "
            } else {
                space
            };
            s += &value;
        }
        s += self.pick(SPACES);
        s
    }

    /// Valid and invalid pieces, joined with or without spaces, maybe with junk.
    fn mixed(&mut self) -> String {
        let mut s = String::new();
        s += self.pick(SPACES);
        s += if self.chance(85) {
            self.pick(VALID_VARS)
        } else {
            self.pick(INVALID_VARS)
        };
        if self.chance(85) {
            s += self.pick(SPACES);
            let op = if self.chance(85) {
                self.pick(VALID_OPS)
            } else {
                self.pick(INVALID_OPS)
            };
            s += op;
            s += self.pick(SPACES);
            s += &match self.rng.u8(..10) {
                0 => self.pick(JUNK).to_owned(),
                1 => String::new(),
                2 => {
                    // An unbalanced quote.
                    let q = self.quoted();
                    q[..q.len() - 1].to_owned()
                }
                _ => self.valid_value(op),
            };
        }
        if self.chance(15) {
            s += self.pick(SPACES);
            s += self.pick(JUNK);
        }
        s += self.pick(SPACES);
        s
    }

    fn mutate(&mut self, s: String) -> String {
        let mut cs: Vec<char> = s.chars().collect();
        for _ in 0..self.rng.usize(1..4) {
            let at = self.rng.usize(..=cs.len());
            match self.rng.u8(..5) {
                0 | 1 => cs.insert(at, ALPHABET[self.rng.usize(..ALPHABET.len())]),
                2 if at < cs.len() => {
                    cs.remove(at);
                }
                3 if at + 1 < cs.len() => cs.swap(at, at + 1),
                4 => cs.truncate(at),
                _ => {}
            }
        }
        cs.into_iter().collect()
    }

    fn random_chars(&mut self) -> String {
        (0..self.rng.usize(..16))
            .map(|_| ALPHABET[self.rng.usize(..ALPHABET.len())])
            .collect()
    }

    fn any(&mut self) -> String {
        match self.rng.u8(..10) {
            0..=2 => self.valid(),
            3..=5 => self.mixed(),
            6..=8 => {
                let base = if self.chance(50) {
                    self.valid()
                } else {
                    self.mixed()
                };
                self.mutate(base)
            }
            _ => self.random_chars(),
        }
    }
}

/// Variable sets the conditions are evaluated on: every variable the
/// generator names, with numbers, numeric text, words, booleans, lists…
fn sample_vars() -> Vec<Value> {
    vec![
        json!({}),
        json!({
            "order": {"status": "paid", "amount": 120},
            "a": "paid", "_x": "0", "flag": true, "empty": "",
            "items": ["1e5", {"name": "李雷"}],
            "subscriber": {"renews_on": "2026-12-25"},
            "x1": {"y_2": "+8613800000000"},
        }),
        json!({
            "order": {"status": "pending", "amount": "99.5"},
            "a": 0, "_x": "true", "flag": "false", "empty": null,
            "items": [12345, {"name": "a/b"}],
            "subscriber": {"renews_on": ""},
            "x1": {"y_2": -3},
        }),
        json!({
            "order": {"status": "True", "amount": "-0"},
            "a": "a@b.c", "_x": 1.5, "flag": false, "empty": [],
            "items": ["#", {"name": "*"}],
            "subscriber": {"renews_on": {"x": 1}},
            "x1": {"y_2": "café"},
            "missing": {"deep": "10:30"},
        }),
    ]
}

fn check_one(seed: u64, s: &str, vars: &[Value]) -> Result<Option<Condition>, String> {
    let parsed = catch_unwind(AssertUnwindSafe(|| parse_condition(s)))
        .map_err(|_| format!("seed {seed}: parse_condition panicked on {s:?}"))?;
    let c = match parsed {
        Err(e) => {
            if e.at > s.chars().count() {
                return Err(format!(
                    "seed {seed}: error position {} beyond the end of {s:?}",
                    e.at
                ));
            }
            if e.message.is_empty() {
                return Err(format!("seed {seed}: empty error message for {s:?}"));
            }
            return Ok(None);
        }
        Ok(c) => c,
    };
    let printed = c.to_string();
    let again = parse_condition(&printed).map_err(|e| {
        format!("seed {seed}: {s:?} printed as {printed:?}, which does not parse: {e}")
    })?;
    if again != c {
        return Err(format!(
            "seed {seed}: {s:?} printed as {printed:?} reads back differently:\n{c:?}\n{again:?}"
        ));
    }
    if again.to_string() != printed {
        return Err(format!(
            "seed {seed}: printing is not stable: {s:?} → {printed:?} → {:?}",
            again.to_string()
        ));
    }
    for v in vars {
        if c.holds(v) != again.holds(v) {
            return Err(format!(
                "seed {seed}: {s:?} and its printed form {printed:?} disagree on {v}"
            ));
        }
    }
    Ok(Some(c))
}

fn cases() -> usize {
    std::env::var("CONDITION_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

fn seed() -> u64 {
    std::env::var("CONDITION_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x001f_1075_eed5)
}

#[test]
fn accepted_conditions_round_trip_and_nothing_panics() {
    let seed = seed();
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(seed),
    };
    let vars = sample_vars();
    let (mut accepted, mut refused) = (0usize, 0usize);
    let mut failures = Vec::new();
    for _ in 0..cases() {
        let s = g.any();
        match check_one(seed, &s, &vars) {
            Ok(Some(_)) => accepted += 1,
            Ok(None) => refused += 1,
            Err(e) => failures.push(e),
        }
        if failures.len() >= 10 {
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The generator must exercise both sides.
    let total = accepted + refused;
    eprintln!("seed {seed}: {accepted} accepted, {refused} refused");
    assert!(accepted * 5 > total, "only {accepted} of {total} accepted");
    assert!(refused * 5 > total, "only {refused} of {total} refused");
}

#[test]
fn every_string_of_the_grammar_is_accepted() {
    let seed = seed() ^ 0x5eed;
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(seed),
    };
    let vars = sample_vars();
    for _ in 0..cases() / 4 {
        let s = g.valid();
        match check_one(seed, &s, &vars) {
            Ok(Some(c)) => assert_eq!(c.text, s.trim(), "text is the condition as written"),
            Ok(None) => {
                let e = parse_condition(&s).unwrap_err();
                // A quoted regular expression may itself be invalid (`"(a"`);
                // that is the only reason to refuse a grammatical string.
                assert!(
                    e.message.contains("is not a valid regular expression"),
                    "seed {seed}: {s:?} is in the grammar but was refused: {e}"
                );
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn the_issue_examples() {
    // `===` is not `==`: refused at the operator, not read as the text `= paid`.
    let e = parse_condition("order.status === paid").unwrap_err();
    assert_eq!(e.at, 13);
    for bad in [
        "order.status == paid extra",
        "order.status == \"paid",
        "order.status == 'paid",
        "order.status == paid'",
        "order.status = paid",
        "order.status == ${x}",
        "a == 1 && b == 2",
    ] {
        assert!(parse_condition(bad).is_err(), "{bad} accepted");
    }
    let paid = json!({"order": {"status": "paid"}});
    assert!(
        parse_condition("order.status == paid")
            .unwrap()
            .holds(&paid)
    );
}
