//! `say`: digits, numbers and dates spoken by chaining short prompt fragments.
//!
//! English and Chinese build numbers differently ("twenty three" vs 二十三,
//! "two thousand and five" vs 两千零五), so composition is per language;
//! the fragment names are shared so one prompt list serves both. Any other
//! language falls back to the English rules.

use chrono::{Datelike, NaiveDate};

use crate::model::SayAs;

/// The `as:` spelling of `a`: `digits`, `number` or `date`.
pub fn as_name(a: SayAs) -> &'static str {
    match a {
        SayAs::Digits => "digits",
        SayAs::Number => "number",
        SayAs::Date => "date",
    }
}

/// Every fragment prompt `say … as` may use in `lang` (names without the language).
pub fn fragments(a: SayAs, lang: &str) -> Vec<String> {
    let digits = || (0..=9).map(|d| format!("digits/{d}"));
    let numbers = || {
        let mut v: Vec<String> = (0..=19)
            .chain((2..=9).map(|t| t * 10))
            .map(|n| format!("numbers/{n}"))
            .collect();
        v.push("numbers/hundred".into());
        v.push("numbers/thousand".into());
        v.push(if lang == "zh" {
            "numbers/ten-thousand".into()
        } else {
            "numbers/million".into()
        });
        v
    };
    match a {
        SayAs::Digits => digits().collect(),
        SayAs::Number => numbers(),
        SayAs::Date => {
            let mut v: Vec<String> = (1..=12)
                .map(|m| format!("months/{m}"))
                .chain((1..=31).map(|d| format!("ordinals/{d}")))
                .collect();
            if lang == "zh" {
                v.extend(digits());
                v.push("date/year".into());
            } else {
                v.extend(numbers());
            }
            v
        }
    }
}

/// The fragments that speak `value`, or why it cannot be spoken.
pub fn compose(a: SayAs, value: &str, lang: &str) -> Result<Vec<String>, String> {
    let value = value.trim();
    match a {
        SayAs::Digits => {
            let out: Vec<String> = value
                .chars()
                .filter_map(|c| match c {
                    '0'..='9' => Some(format!("digits/{c}")),
                    '*' => Some("digits/star".into()),
                    '#' => Some("digits/pound".into()),
                    _ => None,
                })
                .collect();
            if out.is_empty() {
                return Err(format!("`{value}` has no digits to say"));
            }
            Ok(out)
        }
        SayAs::Number => {
            let n: u64 = value
                .parse()
                .map_err(|_| format!("`{value}` is not a whole number"))?;
            Ok(number(n, lang))
        }
        SayAs::Date => {
            // Accept a bare date or the date part of a timestamp.
            let d = NaiveDate::parse_from_str(value.get(..10).unwrap_or(value), "%Y-%m-%d")
                .map_err(|_| format!("`{value}` is not a date like 2026-12-25"))?;
            let mut out = Vec::new();
            if lang == "zh" {
                for c in d.year().to_string().chars() {
                    out.push(format!("digits/{c}"));
                }
                out.push("date/year".into());
                out.push(format!("months/{}", d.month()));
                out.push(format!("ordinals/{}", d.day()));
            } else {
                out.push(format!("months/{}", d.month()));
                out.push(format!("ordinals/{}", d.day()));
                out.extend(number(d.year().max(0) as u64, lang));
            }
            Ok(out)
        }
    }
}

fn n(v: u64) -> String {
    format!("numbers/{v}")
}

/// The prompt fragments (`numbers/…`) that speak `v` in `lang`; languages
/// other than `zh` follow the English rules.
pub fn number(v: u64, lang: &str) -> Vec<String> {
    if lang == "zh" {
        if v >= 100_000_000 {
            // Beyond 亿 nobody listens anyway: read the digits.
            return v
                .to_string()
                .chars()
                .map(|c| format!("digits/{c}"))
                .collect();
        }
        return zh(v, false);
    }
    if v >= 1_000_000_000 {
        return v
            .to_string()
            .chars()
            .map(|c| format!("digits/{c}"))
            .collect();
    }
    en(v)
}

fn en(v: u64) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        0..=19 => out.push(n(v)),
        20..=99 => {
            out.push(n(v / 10 * 10));
            if v % 10 != 0 {
                out.push(n(v % 10));
            }
        }
        100..=999 => {
            out.push(n(v / 100));
            out.push("numbers/hundred".into());
            if v % 100 != 0 {
                out.extend(en(v % 100));
            }
        }
        1000..=999_999 => {
            out.extend(en(v / 1000));
            out.push("numbers/thousand".into());
            if v % 1000 != 0 {
                out.extend(en(v % 1000));
            }
        }
        _ => {
            out.extend(en(v / 1_000_000));
            out.push("numbers/million".into());
            if v % 1_000_000 != 0 {
                out.extend(en(v % 1_000_000));
            }
        }
    }
    out
}

/// Chinese: 十 alone at the start (十五) but 一十 inside (一百一十五), 零 for a gap.
fn zh(v: u64, inner: bool) -> Vec<String> {
    let mut out = Vec::new();
    let unit = |out: &mut Vec<String>, big: u64, name: &str, v: u64| {
        out.extend(zh(v / big, false));
        out.push(format!("numbers/{name}"));
        let rest = v % big;
        if rest != 0 {
            if rest < big / 10 {
                out.push(n(0));
            }
            out.extend(zh(rest, true));
        }
    };
    match v {
        0..=9 => out.push(n(v)),
        10..=19 => {
            if inner {
                out.push(n(1));
            }
            out.push(n(v));
        }
        20..=99 => {
            out.push(n(v / 10 * 10));
            if v % 10 != 0 {
                out.push(n(v % 10));
            }
        }
        100..=999 => unit(&mut out, 100, "hundred", v),
        1000..=9999 => unit(&mut out, 1000, "thousand", v),
        _ => unit(&mut out, 10_000, "ten-thousand", v),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(v: Vec<String>) -> String {
        v.iter()
            .map(|s| s.rsplit('/').next().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn english_numbers() {
        assert_eq!(short(number(0, "en")), "0");
        assert_eq!(short(number(23, "en")), "20 3");
        assert_eq!(short(number(115, "en")), "1 hundred 15");
        assert_eq!(short(number(2026, "en")), "2 thousand 20 6");
        assert_eq!(short(number(3_000_001, "en")), "3 million 1");
    }

    #[test]
    fn chinese_numbers() {
        assert_eq!(short(number(15, "zh")), "15");
        assert_eq!(short(number(115, "zh")), "1 hundred 1 15");
        assert_eq!(short(number(105, "zh")), "1 hundred 0 5");
        assert_eq!(short(number(2005, "zh")), "2 thousand 0 5");
        assert_eq!(short(number(2026, "zh")), "2 thousand 0 20 6");
        assert_eq!(short(number(1010, "zh")), "1 thousand 0 1 10");
        assert_eq!(short(number(2126, "zh")), "2 thousand 1 hundred 20 6");
        assert_eq!(short(number(30_000, "zh")), "3 ten-thousand");
    }

    #[test]
    fn dates_by_language() {
        assert_eq!(
            compose(SayAs::Date, "2027-03-01", "en").unwrap().join(" "),
            "months/3 ordinals/1 numbers/2 numbers/thousand numbers/20 numbers/7"
        );
        assert_eq!(
            compose(SayAs::Date, "2027-03-01", "zh").unwrap().join(" "),
            "digits/2 digits/0 digits/2 digits/7 date/year months/3 ordinals/1"
        );
        assert!(compose(SayAs::Date, "soon", "en").is_err());
        assert_eq!(compose(SayAs::Digits, "12-3#", "en").unwrap().len(), 4);
    }

    #[test]
    fn every_composed_fragment_is_listed() {
        for lang in ["en", "zh"] {
            let frags = fragments(SayAs::Number, lang);
            for v in [
                0, 7, 10, 19, 20, 99, 100, 101, 110, 999, 1000, 1010, 9999, 10_000, 12_345,
                99_999_999,
            ] {
                for f in number(v, lang) {
                    assert!(frags.contains(&f), "{lang} {v}: {f}");
                }
            }
        }
    }
}
