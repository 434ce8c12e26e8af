//! The `transfer` node: sends the call to a SIP URI (REFER or a new INVITE);
//! the flow ends.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::Kind;
use crate::model::TransferMethod;
use crate::parse::{Context, Fields, Loader, Syntax};
use crate::step::{Action, StepCx};

/// `transfer`: sends the call to another SIP address; the flow ends there.
#[derive(Debug)]
pub struct Transfer {
    /// The target URI (`sip:…`).
    pub to: String,
    /// REFER (the default) or a new INVITE.
    pub method: TransferMethod,
}

pub(crate) const SYNTAX: Syntax<Transfer> = Syntax {
    name: "transfer",
    keys: &["to", "method"],
    parse,
};

fn parse(l: &mut Loader, f: &mut Fields<'_>, _cx: &Context<'_>) -> Option<Transfer> {
    let to = l.required(f, "to").and_then(|y| {
        let t = l.text(y, "to")?;
        if !(t.starts_with("sip:") || t.starts_with("sips:") || t.starts_with("tel:")) {
            l.err(
                y.pos,
                format!("`to` must be a SIP URI (sip:user@host), found `{t}`"),
            );
        }
        Some(t)
    });
    let method = match f.take("method") {
        Some(y) => match l.text(y, "method").as_deref() {
            Some("invite") => Some(TransferMethod::Invite),
            Some("refer") => Some(TransferMethod::Refer),
            Some(other) => {
                l.err(
                    y.pos,
                    format!("`method` must be invite or refer, found `{other}`"),
                );
                None
            }
            None => None,
        },
        None => Some(TransferMethod::Refer),
    };
    Some(Transfer {
        to: to?,
        method: method?,
    })
}

impl Kind for Transfer {
    fn name(&self) -> &'static str {
        SYNTAX.name
    }

    fn exits(&self) -> Vec<(String, &str)> {
        Vec::new()
    }

    fn shape(&self) -> (&'static str, &'static str) {
        ("([", "])")
    }

    fn enter(&self, it: &mut dyn StepCx, _now: Instant, _wall: DateTime<Utc>) -> Option<String> {
        let nid = it.node_id();
        it.record(
            "transfer",
            nid,
            json!({ "target": self.to, "method": self.method.name() }),
        );
        it.out.push(Action::Transfer {
            target: self.to.clone(),
            method: self.method,
        });
        it.finish();
        None
    }
}
