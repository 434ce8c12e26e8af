//! The `set` node: sets variables from templates, then goes on.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{Kind, exit};
use crate::model::Template;
use crate::parse::{Context, Fields, Loader, Syntax, is_var_name};
use crate::step::{StepCx, set_path};
use crate::yaml::YamlValue;

/// `set`: sets call variables.
#[derive(Debug)]
pub struct SetVars {
    /// Name → text, in file order (`${…}` allowed).
    pub vars: Vec<(String, Template)>,
    /// Where to go next.
    pub next: String,
}

pub(crate) const SYNTAX: Syntax<SetVars> = Syntax {
    name: "set",
    keys: &["vars", "next"],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, _cx: &Context<'_>) -> Option<SetVars> {
    let mut vars = Vec::new();
    if let Some(y) = l.required(f, "vars") {
        match &y.value {
            YamlValue::Map(entries) => {
                for (k, v) in entries {
                    let name = l.text(k, "vars");
                    if let Some(n) = &name
                        && !is_var_name(n)
                    {
                        l.err(
                            k.pos,
                            format!("`{n}` is not a variable name (letters, digits, `_`, `.`)"),
                        );
                        continue;
                    }
                    let val = match &v.value {
                        YamlValue::Scalar { .. } if v.is_null() => Some(Template(String::new())),
                        _ => l.template(v, "vars"),
                    };
                    if let (Some(n), Some(val)) = (name, val) {
                        vars.push((n, val));
                    }
                }
            }
            _ => l.err(
                y.pos,
                format!(
                    "`vars` must map variable names to values, found {}",
                    y.describe()
                ),
            ),
        }
    }
    Some(SetVars {
        vars,
        next: l.req_target(f, "next")?,
    })
}

impl Kind for SetVars {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn exits(&self) -> Vec<(String, &str)> {
        vec![exit("", &self.next)]
    }

    fn enter(&self, it: &mut dyn StepCx, _now: Instant, _wall: DateTime<Utc>) -> Option<String> {
        for (k, t) in &self.vars {
            let v = it.render_value(t);
            // A copy of masked input stays masked.
            if it.uses_masked(t) {
                it.mask(k);
            }
            set_path(&mut it.vars, k, v);
        }
        Some(self.next.clone())
    }
}
