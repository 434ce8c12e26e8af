//! Prometheus counters of the SIP endpoint (docs/operations.md, "Metrics"),
//! through the `metrics` facade: a no-op until the binary installs a
//! recorder, so the sans-IO core and its tests are unchanged by them.
//!
//! Labels are bounded: a method we do not know by name is `other`, a status
//! code outside [`EXACT_CODES`] is its class (`4xx`). Nothing about the
//! peer (address, number, Call-ID) is ever a label.

use std::time::Duration;

/// SIP requests (`direction` `in`: received, `out`: sent by us).
pub const REQUESTS: &str = "hotline_sip_requests_total";
/// SIP responses (`direction` `in`: received, `out`: sent by us).
pub const RESPONSES: &str = "hotline_sip_responses_total";
/// An inbound INVITE to our 200 OK.
pub const INVITE_ANSWER: &str = "hotline_sip_invite_answer_seconds";

/// Methods counted by name; any other is `other`.
const METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "INFO",
    "UPDATE",
    "REGISTER",
    "SUBSCRIBE",
    "NOTIFY",
    "MESSAGE",
    "PUBLISH",
    "REFER",
    "PRACK",
];

/// Status codes counted exactly; any other is its class (`1xx` … `6xx`).
pub const EXACT_CODES: [u16; 21] = [
    100, 180, 183, 200, 202, 400, 401, 403, 404, 405, 407, 408, 415, 480, 481, 486, 487, 488, 500,
    501, 503,
];

/// The `method` label of `method`.
pub fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// The `code` label of `code`.
pub fn code_label(code: u16) -> &'static str {
    const EXACT: [&str; 21] = [
        "100", "180", "183", "200", "202", "400", "401", "403", "404", "405", "407", "408", "415",
        "480", "481", "486", "487", "488", "500", "501", "503",
    ];
    if let Some(i) = EXACT_CODES.iter().position(|c| *c == code) {
        return EXACT.get(i).copied().unwrap_or("other");
    }
    match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        6 => "6xx",
        _ => "other",
    }
}

/// A request received (`in`) or sent (`out`).
pub(crate) fn request(direction: &'static str, method: &str) {
    metrics::counter!(REQUESTS, "direction" => direction, "method" => method_label(method))
        .increment(1);
}

/// A response received (`in`) or sent (`out`) to a `method` request.
pub(crate) fn response(direction: &'static str, method: &str, code: u16) {
    metrics::counter!(
        RESPONSES,
        "direction" => direction,
        "method" => method_label(method),
        "code" => code_label(code),
    )
    .increment(1);
}

/// The method of a CSeq header value (`1 INVITE`).
pub(crate) fn cseq_method(cseq: &str) -> &str {
    cseq.split_whitespace().nth(1).unwrap_or("")
}

/// An inbound call answered `after` its INVITE arrived.
pub(crate) fn invite_answered(after: Duration) {
    metrics::histogram!(INVITE_ANSWER).record(after.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(method_label("INVITE"), "INVITE");
        assert_eq!(method_label("invite"), "other");
        assert_eq!(method_label("XYZZY"), "other");
        assert_eq!(code_label(200), "200");
        assert_eq!(code_label(486), "486");
        assert_eq!(code_label(499), "4xx");
        assert_eq!(code_label(699), "6xx");
        assert_eq!(code_label(42), "other");
        assert_eq!(cseq_method("1 INVITE"), "INVITE");
        assert_eq!(cseq_method("junk"), "");
    }
}
