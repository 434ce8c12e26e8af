//! Our own message framing in front of the grammar parser: header/body split,
//! Content-Length (RFC 3261 §18.3), UTF-8 repair and a header scraper for
//! building error responses when the full parse fails.

/// Where the header section ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeaderEnd {
    /// Length of the header section (start line + headers), without the blank line.
    pub head_len: usize,
    /// Offset of the first body byte.
    pub body_start: usize,
}

/// Finds the blank line ending the header section (CRLFCRLF, or a bare LFLF
/// from sloppy senders).
pub(crate) fn header_end(data: &[u8]) -> Option<HeaderEnd> {
    let crlf = find(data, b"\r\n\r\n").map(|p| HeaderEnd {
        head_len: p,
        body_start: p + 4,
    });
    let lf = find(data, b"\n\n").map(|p| HeaderEnd {
        head_len: p,
        body_start: p + 2,
    });
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.head_len <= b.head_len { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The Content-Length header as found in a header section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ContentLength {
    Absent,
    Value(usize),
    Invalid,
    /// Two Content-Length headers that disagree (RFC 4475 §3.3.9): the
    /// framing is unknowable; over a stream the connection must go.
    Conflicting,
}

/// Reads Content-Length (or compact `l`) ourselves: the grammar parser
/// silently treats a bad value as 0. Repeated with the same value it is
/// taken; repeated with another, [`ContentLength::Conflicting`].
pub(crate) fn content_length(head: &[u8]) -> ContentLength {
    let mut found = ContentLength::Absent;
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let name = name.trim_ascii();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = value.get(1..).unwrap_or_default().trim_ascii();
        if value.is_empty() || value.len() > 12 || !value.iter().all(u8::is_ascii_digit) {
            return ContentLength::Invalid;
        }
        let this = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(ContentLength::Invalid, ContentLength::Value);
        found = match (found, this) {
            (ContentLength::Absent, this) => this,
            (ContentLength::Value(a), ContentLength::Value(b)) if a == b => found,
            (_, ContentLength::Invalid) => return ContentLength::Invalid,
            _ => return ContentLength::Conflicting,
        };
    }
    found
}

/// The header section as text with CRLF line ends. Non-UTF-8 bytes become
/// U+FFFD: the grammar parser would otherwise stop at the first such byte and
/// lose every header after it (a Latin-1 display name must not cost the call).
pub(crate) fn normalize_head(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
    }
    out
}

/// Header lines of a (possibly broken) message, unfolded, with compact names
/// expanded and lower-cased. Used only to build an error response.
pub(crate) fn scrape(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split('\n').skip(1) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            // RFC 3261 §7.3.1: a line starting with whitespace continues the previous one.
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = canonical_name(name.trim());
        out.push((name, value.trim().to_string()));
    }
    out
}

/// Lower-case long form of a header name (RFC 3261 §7.3.3 compact forms).
pub(crate) fn canonical_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let long = match lower.as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "s" => "subject",
        "e" => "content-encoding",
        // RFC 6665 / RFC 3515 compact forms.
        "o" => "event",
        "r" => "refer-to",
        "b" => "referred-by",
        _ => return lower,
    };
    long.to_string()
}

/// Splits a header value on commas outside quotes and angle brackets,
/// keeping empty elements (`a,,b` is three); untrimmed.
pub(crate) fn split_list_raw(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped, mut start) = (false, 0usize, false, 0);
    for (i, ch) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle += 1,
            '>' if !quoted => angle = angle.saturating_sub(1),
            ',' if !quoted && angle == 0 => {
                out.push(value.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value.get(start..).unwrap_or_default());
    out
}

/// Splits a header value on commas outside quotes and angle brackets
/// (elements trimmed, empty ones dropped).
pub(crate) fn split_list(value: &str) -> Vec<String> {
    split_list_raw(value)
        .into_iter()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_forms() {
        assert_eq!(content_length(b"A\r\nl: 12\r\n"), ContentLength::Value(12));
        assert_eq!(
            content_length(b"A\r\ncontent-LENGTH :  3"),
            ContentLength::Value(3)
        );
        assert_eq!(
            content_length(b"A\r\nContent-Length: x"),
            ContentLength::Invalid
        );
        assert_eq!(
            content_length(b"A\r\nContent-Length:"),
            ContentLength::Invalid
        );
        assert_eq!(content_length(b"A\r\nX: 1"), ContentLength::Absent);
        assert_eq!(
            content_length(b"A\r\nContent-Length: 3\r\nl: 3"),
            ContentLength::Value(3)
        );
        assert_eq!(
            content_length(b"A\r\nContent-Length: 13\r\nX: y\r\nContent-Length: 5"),
            ContentLength::Conflicting
        );
    }

    #[test]
    fn scrape_unfolds_and_expands() {
        let h = scrape("INVITE x SIP/2.0\r\nv: SIP/2.0/UDP a\r\n ;branch=z9hG4bK1\r\ni: c\r\n");
        assert_eq!(
            h[0],
            ("via".into(), "SIP/2.0/UDP a ;branch=z9hG4bK1".into())
        );
        assert_eq!(h[1], ("call-id".into(), "c".into()));
    }

    #[test]
    fn list_split_respects_quotes() {
        assert_eq!(
            split_list(r#""a, b" <sip:x>, <sip:y;lr>"#),
            vec![r#""a, b" <sip:x>"#.to_string(), "<sip:y;lr>".to_string()]
        );
    }
}
