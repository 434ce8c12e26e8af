//! The `language` node: sets the call's language, or asks for it with one key.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Kind, exit};
use crate::model::Choice;
use crate::parse::{Context, Fields, Loader, Syntax};
use crate::step::{Question, StepCx};

/// `language`: sets the call's language, or asks the caller for one.
#[derive(Debug)]
pub struct LanguageChoice {
    /// Set this language at once (no question asked).
    pub set: Option<String>,
    /// Or ask: options map keys to languages; silence keeps the current one.
    pub choice: Choice,
    /// Where to go next, also after silence (the language is then unchanged).
    pub next: String,
}

pub(crate) const SYNTAX: Syntax<LanguageChoice> = Syntax {
    name: "language",
    keys: &[
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
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, cx: &Context<'_>) -> Option<LanguageChoice> {
    let (d, languages) = (cx.defaults, cx.languages);
    let set = match f.take("set") {
        Some(y) => {
            let lang = l.text(y, "set");
            if let Some(lang) = &lang
                && !languages.contains(lang)
            {
                l.err(
                    y.pos,
                    format!(
                        "language `{lang}` is not in the flow's `languages` ({})",
                        languages.join(", ")
                    ),
                );
            }
            if f.has("options") || f.has("prompt") {
                l.err(
                    y.pos,
                    "a language node either `set`s a language or asks with `prompt` and `options`, not both",
                );
            }
            lang
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
        let c = l.choice(f, d, "options", false);
        for (_, lang) in &c.options {
            if !languages.contains(lang) {
                let pos = opts_y.map(|y| y.pos).unwrap_or(f.pos);
                l.err(
                    pos,
                    format!(
                        "language `{lang}` is not in the flow's `languages` ({})",
                        languages.join(", ")
                    ),
                );
            }
        }
        c
    };
    Some(LanguageChoice {
        set,
        choice,
        next: l.req_target(f, "next")?,
    })
}

impl Kind for LanguageChoice {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn waits_for_caller(&self) -> bool {
        !self.choice.options.is_empty()
    }

    fn exits(&self) -> Vec<(String, &str)> {
        vec![exit("", &self.next)]
    }

    fn shape(&self) -> (&'static str, &'static str) {
        ("{", "}")
    }

    fn enter(&self, it: &mut dyn StepCx, now: Instant, wall: DateTime<Utc>) -> Option<String> {
        match &self.set {
            Some(lang) => {
                let nid = it.node_id();
                it.set_language(lang, nid);
                Some(self.next.clone())
            }
            None => it.ask(&self.choice, now, wall),
        }
    }

    fn question(&self) -> Option<Question<'_>> {
        // Running out of tries keeps the current language and goes on.
        Some(Question {
            choice: &self.choice,
            on_exhausted: &self.next,
        })
    }

    fn chosen(
        &self,
        it: &mut dyn StepCx,
        key: char,
        lang: &str,
        now: Instant,
        wall: DateTime<Utc>,
    ) {
        let nid = it.node_id();
        it.record(
            "input",
            nid.clone(),
            json!({ "input": key.to_string(), "language": lang }),
        );
        it.set_language(lang, nid);
        it.run_from(self.next.clone(), now, wall);
    }
}
