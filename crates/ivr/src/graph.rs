//! `hotline flows graph`: a flow as a Mermaid flowchart (paste into any Markdown viewer).

use std::fmt::Write as _;

use crate::flow::Flow;

fn mermaid_id(id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("n_{safe}")
}

fn escape(s: &str) -> String {
    s.replace('"', "#quot;").replace('|', "#124;")
}

/// The flow as `flowchart TD` Mermaid text: shapes by kind, edges labelled by key or branch.
pub fn mermaid(flow: &Flow) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "flowchart TD");
    let _ = writeln!(
        s,
        "  start((\"{} v{}\")) --> {}",
        escape(&flow.name),
        flow.version,
        mermaid_id(&flow.start)
    );
    for n in &flow.nodes {
        let mut label = format!("{}<br/><i>{}</i>", escape(&n.id), n.kind.name());
        if let Some(it) = &n.issue_type {
            let _ = write!(label, "<br/>{}", escape(it));
        }
        let (open, close) = n.kind.as_kind().shape();
        let _ = writeln!(s, "  {}{open}\"{label}\"{close}", mermaid_id(&n.id));
    }
    for n in &flow.nodes {
        for (label, to) in n.kind.exits() {
            if label.is_empty() {
                let _ = writeln!(s, "  {} --> {}", mermaid_id(&n.id), mermaid_id(to));
            } else {
                let _ = writeln!(
                    s,
                    "  {} -->|\"{}\"| {}",
                    mermaid_id(&n.id),
                    escape(&label),
                    mermaid_id(to)
                );
            }
        }
    }
    s
}
