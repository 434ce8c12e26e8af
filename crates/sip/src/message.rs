//! The façade over the grammar parser: turns framed bytes into our own
//! request/response views and serializes what we send. Nothing outside this
//! module knows which SIP grammar crate is used.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use rsipstack::sip::typed;
use rsipstack::sip::{Header, SipMessage};

use crate::framing::{self, ContentLength, split_list};
use crate::transport::{Peer, Transport};

/// Methods we know by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Info,
    Update,
    Register,
    Subscribe,
    Notify,
    Message,
    Publish,
    Refer,
    Prack,
    Unknown(String),
}

impl Method {
    fn from_token(t: &str) -> Method {
        // RFC 3261 §7.1: method names are case-sensitive.
        match t {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "REGISTER" => Method::Register,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            "REFER" => Method::Refer,
            "PRACK" => Method::Prack,
            other => Method::Unknown(other.to_string()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Register => "REGISTER",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Refer => "REFER",
            Method::Prack => "PRACK",
            Method::Unknown(s) => s,
        }
    }

    /// Methods defined by RFCs that we deliberately do not serve (405, not 501).
    fn is_known_unsupported(&self) -> bool {
        matches!(
            self,
            Method::Register
                | Method::Subscribe
                | Method::Message
                | Method::Publish
                | Method::Refer
                | Method::Prack
        )
    }
}

/// The methods we serve, for Allow headers. NOTIFY is served in a dialog only
/// (the implicit subscription of a REFER we sent, RFC 3515); we send REFER
/// but do not accept one, so it is not listed.
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY";
/// The bodies we understand, for Accept headers.
pub(crate) const ACCEPT: &str =
    "application/sdp, application/dtmf-relay, application/dtmf, message/sipfrag";

/// A name-addr header (From, To, P-Asserted-Identity) reduced to what we use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NameAddr {
    pub display: Option<String>,
    pub user: String,
    pub tag: Option<String>,
}

/// The headers a response must echo (RFC 3261 §8.2.6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ReplyHeaders {
    pub vias: Vec<String>,
    pub from: String,
    pub to: String,
    pub to_has_tag: bool,
    pub call_id: String,
    pub cseq: String,
}

/// A request that passed our validation.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub method: Method,
    /// The Request-URI's user part or tel: number.
    pub uri_user: String,
    pub branch: String,
    /// The top Via's sent-by (host and port, lower case, no LWS): with the
    /// branch and method it identifies a non-INVITE server transaction
    /// (RFC 3261 §17.2.3).
    pub sent_by: String,
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: u32,
    /// Remote target: the URI in Contact.
    pub contact: Option<String>,
    /// Record-Route entries in received order.
    pub record_route: Vec<String>,
    pub max_forwards: Option<u32>,
    pub content_type: Option<String>,
    pub pai: Option<NameAddr>,
    /// The Event header's package name, lower-cased, without parameters (RFC 6665).
    pub event: Option<String>,
    /// The User-Agent header, for the edge policy's scanner check.
    pub user_agent: Option<String>,
    /// The Accept header's media ranges, lower-cased (`None`: no Accept).
    pub accept: Option<Vec<String>>,
    /// The Request-URI as received (Digest's `uri` must equal it).
    pub uri: String,
    /// Every Authorization header value, in order (RFC 3261 §22.2).
    pub authorization: Vec<String>,
    pub body: Vec<u8>,
    pub reply: ReplyHeaders,
}

/// A response, reduced to what client transactions and dialog creation need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Response {
    pub code: u16,
    /// The reason phrase (control characters removed).
    pub reason: String,
    pub call_id: String,
    /// The top Via's branch.
    pub branch: String,
    pub cseq: u32,
    pub cseq_method: String,
    /// The To header value as received (the remote tag included).
    pub to: String,
    pub to_tag: Option<String>,
    /// Remote target: the URI in the first Contact.
    pub contact: Option<String>,
    /// Record-Route entries in received order.
    pub record_route: Vec<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub(crate) enum Inbound {
    Request(Box<Request>),
    Response(Box<Response>),
}

/// Why a message was not accepted, and what to do about it.
#[derive(Debug)]
pub(crate) enum Rejection {
    /// Answer statelessly with this status.
    Reply {
        code: u16,
        reason: String,
        reply: Box<ReplyHeaders>,
        extra: Vec<(&'static str, String)>,
    },
    /// Not answerable (no Via, an ACK, a response): drop with one warning.
    Drop(String),
}

/// Parses one datagram or framed stream message.
pub(crate) fn parse(data: &[u8], transport: Transport) -> Result<Inbound, Rejection> {
    let Some(end) = framing::header_end(data) else {
        let head = framing::normalize_head(data);
        return Err(reject(&head, 400, "Truncated message"));
    };
    let head = framing::normalize_head(data.get(..end.head_len).unwrap_or_default());
    let start = head.split("\r\n").next().unwrap_or_default();
    if start.starts_with("SIP/") {
        let body = data.get(end.body_start..).unwrap_or_default();
        return parse_response(start, &head, body, transport);
    }

    let parts: Vec<&str> = start.split_whitespace().collect();
    let [method_tok, uri, version] = parts.as_slice() else {
        return Err(reject(&head, 400, "Malformed Request-Line"));
    };
    if !method_tok.bytes().all(is_token_byte) {
        return Err(reject(&head, 400, "Malformed method"));
    }
    if *version != "SIP/2.0" {
        return Err(reject(&head, 505, "Version Not Supported"));
    }
    let method = Method::from_token(method_tok);

    // RFC 3261 §18.3: we check Content-Length ourselves.
    let available = data.get(end.body_start..).unwrap_or_default();
    let body: &[u8] = match framing::content_length(data.get(..end.head_len).unwrap_or_default()) {
        ContentLength::Invalid => return Err(reject(&head, 400, "Bad Content-Length")),
        ContentLength::Conflicting => {
            return Err(reject(&head, 400, "Conflicting Content-Length headers"));
        }
        ContentLength::Value(n) => match available.get(..n) {
            Some(b) => b,
            None => return Err(reject(&head, 400, "Body shorter than Content-Length")),
        },
        // RFC 3261 §18.3: on UDP a missing Content-Length means "to the end of the datagram".
        ContentLength::Absent if transport == Transport::Udp => available,
        ContentLength::Absent => &[],
    };

    let scraped = framing::scrape(&head);
    let reply = scraped_reply(&scraped).map_err(|why| Rejection::Drop(why.to_string()))?;
    let fail = |code: u16, reason: &str| -> Rejection {
        if method == Method::Ack {
            // RFC 3261 §17: an ACK is never answered.
            Rejection::Drop(format!("bad ACK: {reason}"))
        } else {
            Rejection::Reply {
                code,
                reason: reason.to_string(),
                reply: Box::new(reply.clone()),
                extra: Vec::new(),
            }
        }
    };
    for (name, what) in [
        ("from", "Missing From header"),
        ("to", "Missing To header"),
        ("call-id", "Missing Call-ID header"),
        ("cseq", "Missing CSeq header"),
    ] {
        if !scraped.iter().any(|(n, v)| n == name && !v.is_empty()) {
            return Err(fail(400, what));
        }
    }
    // RFC 3261 §7.3.1 / RFC 4475 §3.3.8: these may appear once only.
    for (name, what) in [
        ("from", "Multiple From headers"),
        ("to", "Multiple To headers"),
        ("call-id", "Multiple Call-ID headers"),
        ("cseq", "Multiple CSeq headers"),
        ("max-forwards", "Multiple Max-Forwards headers"),
    ] {
        // From and To may not be lists either; a Call-ID may hold `"`
        // and `<` without meaning (RFC 4475 §3.1.1.2), so it is not split.
        let count: usize = scraped
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| match name {
                // `x>,` is a list too: appending our tag to it would make
                // the From of our own BYE two headers.
                "from" | "to" => top_level_commas(v) + 1,
                _ => 1,
            })
            .sum();
        if count > 1 {
            return Err(fail(400, what));
        }
    }
    // Every Via value must be one (RFC 4475 §3.1.2.1: `;;,;,,` is not).
    let vias_ok = scraped
        .iter()
        .filter(|(n, _)| n == "via")
        .flat_map(|(_, v)| split_keep_empty(v))
        .all(|v| parse_via(v).is_some());
    if !vias_ok {
        // Answered with the top Via only (its empty parameters dropped by
        // `response_via`): the rest cannot be echoed as a valid header.
        return Err(match fail(400, "Bad Via header") {
            Rejection::Reply {
                code,
                reason,
                mut reply,
                extra,
            } => {
                reply.vias.truncate(1);
                Rejection::Reply {
                    code,
                    reason,
                    reply,
                    extra,
                }
            }
            drop => drop,
        });
    }
    let cseq_raw = reply.cseq.clone();
    let mut cseq_parts = cseq_raw.split_whitespace();
    let (Some(seq), Some(cseq_method), None) =
        (cseq_parts.next(), cseq_parts.next(), cseq_parts.next())
    else {
        return Err(fail(400, "Bad CSeq"));
    };
    let Ok(cseq) = seq.parse::<u32>() else {
        return Err(fail(400, "Bad CSeq number"));
    };
    if cseq_method != method.as_str() {
        return Err(fail(400, "CSeq method does not match Request-Line"));
    }
    if let Method::Unknown(_) = method {
        return Err(fail(501, "Not Implemented"));
    }
    if method.is_known_unsupported() {
        let mut r = fail(405, "Method Not Allowed");
        if let Rejection::Reply { extra, .. } = &mut r {
            extra.push(("Allow", ALLOW.to_string()));
        }
        return Err(r);
    }
    // RFC 3261 §8.2.2.1: a scheme we do not serve is 416; a Request-URI
    // that is no URI (`<sip:...>`, RFC 4475 §3.1.2.7) or carries headers
    // (§3.1.2.11) is 400.
    if let Err((code, why)) = check_request_uri(uri) {
        return Err(fail(code, why));
    }
    // RFC 3261 §8.2.2.3: we support no extension, so any Require is 420
    // with the tokens listed in Unsupported (never for CANCEL or ACK).
    if !matches!(method, Method::Cancel | Method::Ack) {
        let required: Vec<String> = scraped
            .iter()
            .filter(|(n, _)| n == "require")
            .flat_map(|(_, v)| split_list(v))
            .collect();
        if !required.is_empty() {
            let mut r = fail(420, "Bad Extension");
            if let Rejection::Reply { extra, .. } = &mut r {
                extra.push(("Unsupported", required.join(", ")));
            }
            return Err(r);
        }
    }

    // The grammar parser sees repaired UTF-8 and no body; we keep our body.
    // The Request-Line goes to it with single spaces (RFC 4475 §3.1.2.9:
    // extra SP between its elements is tolerated).
    let mut wire = format!("{method_tok} {uri} {version}").into_bytes();
    if let Some(rest) = head.find("\r\n").and_then(|i| head.get(i..)) {
        wire.extend_from_slice(rest.as_bytes());
    }
    wire.extend_from_slice(b"\r\n\r\n");
    let msg = match rsipstack::sip::parser::parse_message(&wire) {
        Ok(SipMessage::Request(r)) => r,
        Ok(SipMessage::Response(_)) => return Err(fail(400, "Malformed request")),
        Err(e) => {
            return Err(fail(
                400,
                &format!("Malformed request: {}", short(&e.to_string())),
            ));
        }
    };

    let mut vias = Vec::new();
    let mut from = None;
    let mut to = None;
    let mut call_id = None;
    let mut contact = None;
    let mut record_route = Vec::new();
    let mut max_forwards = None;
    let mut content_type = None;
    let mut pai = None;
    for h in msg.headers.iter() {
        match h {
            Header::Via(v) => vias.extend(split_list(v.value())),
            Header::From(v) if from.is_none() => from = Some(v.value().to_string()),
            Header::To(v) if to.is_none() => to = Some(v.value().to_string()),
            Header::CallId(v) if call_id.is_none() => call_id = Some(v.value().trim().to_string()),
            Header::Contact(v) if contact.is_none() => {
                contact = split_list(v.value()).first().map(|c| addr_spec(c))
            }
            Header::RecordRoute(v) => record_route.extend(split_list(v.value())),
            Header::MaxForwards(v) if max_forwards.is_none() => {
                let Ok(n) = v.value().trim().parse::<u32>() else {
                    return Err(fail(400, "Bad Max-Forwards"));
                };
                max_forwards = Some(n);
            }
            Header::ContentType(v) if content_type.is_none() => {
                content_type = Some(v.value().trim().to_ascii_lowercase())
            }
            Header::PAssertedIdentity(v) if pai.is_none() => {
                pai = split_list(v.value())
                    .first()
                    .and_then(|p| name_addr(p).ok())
            }
            _ => {}
        }
    }
    let Some(top_via) = vias.first() else {
        return Err(Rejection::Drop("no Via".into()));
    };
    // The Contact is the Request-URI of our requests in the dialog (BYE,
    // REFER): one we could not send (a control character, a space, an
    // unclosed `<`) is refused now, not echoed broken later.
    if contact.as_deref().is_some_and(|c| !usable_target(c)) {
        return Err(fail(400, "Bad Contact header"));
    }
    // RFC 3261 §8.1.1.8: a request that sets the dialog's remote target
    // carries a SIP or SIPS URI in Contact.
    if matches!(method, Method::Invite | Method::Update)
        && contact.as_deref().is_some_and(|c| {
            let scheme = c.split(':').next().unwrap_or_default();
            !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips"))
        })
    {
        return Err(fail(400, "Contact is not a SIP URI"));
    }
    let Some(via) = parse_via(top_via) else {
        return Err(fail(400, "Bad Via header"));
    };
    let (Some(from_raw), Some(to_raw), Some(call_id)) = (from, to, call_id) else {
        return Err(fail(400, "Missing mandatory header"));
    };
    if call_id.is_empty() {
        return Err(fail(400, "Empty Call-ID"));
    }
    let Ok(from) = name_addr(&from_raw) else {
        return Err(fail(400, "Bad From header"));
    };
    // RFC 2543 peers may send no Contact: our requests in the dialog then go
    // to the From URI, which must be one we can send.
    if method == Method::Invite && contact.is_none() && !usable_target(&addr_spec(&from_raw)) {
        return Err(fail(400, "Bad From header"));
    }
    let Ok(to) = name_addr(&to_raw) else {
        return Err(fail(400, "Bad To header"));
    };
    // An INVITE's To becomes the From of our requests in the dialog, with
    // our tag added: it must still parse then.
    if method == Method::Invite
        && to.tag.is_none()
        && name_addr(&format!("{to_raw};tag=x")).is_err()
    {
        return Err(fail(400, "Bad To header"));
    }
    let branch = match via.branch {
        Some(b) if !b.is_empty() => b,
        // RFC 3261 §17.2.3: pre-3261 peers have no usable branch; synthesize a
        // stable key so their retransmissions still match.
        _ => format!(
            "rfc2543;{};{};{}",
            call_id,
            cseq,
            from.tag.as_deref().unwrap_or("")
        ),
    };
    let event = scraped.iter().find(|(n, _)| n == "event").map(|(_, v)| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    let reply = ReplyHeaders {
        vias: vias.clone(),
        from: from_raw,
        to_has_tag: to.tag.is_some(),
        to: to_raw,
        call_id: call_id.clone(),
        cseq: cseq_raw,
    };
    let accept = scraped.iter().any(|(n, _)| n == "accept").then(|| {
        scraped
            .iter()
            .filter(|(n, _)| n == "accept")
            .flat_map(|(_, v)| split_list(v))
            .map(|range| {
                range
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect()
    });
    Ok(Inbound::Request(Box::new(Request {
        method,
        uri_user: uri_user(uri),
        branch,
        sent_by: via.sent_by,
        from,
        to,
        call_id,
        cseq,
        contact,
        record_route,
        max_forwards,
        content_type,
        pai,
        event,
        user_agent: scraped
            .iter()
            .find(|(n, _)| n == "user-agent")
            .map(|(_, v)| v.clone()),
        accept,
        uri: uri.to_string(),
        authorization: scraped
            .iter()
            .filter(|(n, _)| n == "authorization")
            .map(|(_, v)| v.clone())
            .collect(),
        body: body.to_vec(),
        reply,
    })))
}

fn parse_response(
    start: &str,
    head: &str,
    available: &[u8],
    transport: Transport,
) -> Result<Inbound, Rejection> {
    let mut parts = start.splitn(3, ' ');
    let code = parts
        .nth(1)
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|c| (100..700).contains(c))
        .ok_or_else(|| Rejection::Drop("bad Status-Line".into()))?;
    let reason: String = parts
        .next()
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect();
    let scraped = framing::scrape(head);
    let get = |name: &str| {
        scraped
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let call_id =
        get("call-id").ok_or_else(|| Rejection::Drop("response without Call-ID".into()))?;
    let via = get("via")
        .and_then(|v| split_list(v).into_iter().next())
        .ok_or_else(|| Rejection::Drop("response without Via".into()))?;
    let branch = typed::Via::parse(&via)
        .ok()
        .and_then(|v| v.branch().map(|b| b.value().to_string()))
        .ok_or_else(|| Rejection::Drop("response without branch".into()))?;
    let mut cseq_parts = get("cseq").unwrap_or_default().split_whitespace();
    let (Some(cseq), Some(cseq_method)) = (
        cseq_parts.next().and_then(|n| n.parse::<u32>().ok()),
        cseq_parts.next(),
    ) else {
        return Err(Rejection::Drop("response without a usable CSeq".into()));
    };
    let to = get("to").unwrap_or_default().to_string();
    let to_tag = name_addr(&to).ok().and_then(|t| t.tag);
    let contact = get("contact")
        .and_then(|c| split_list(c).into_iter().next())
        .map(|c| addr_spec(&c))
        .filter(|c| usable_target(c));
    let record_route = scraped
        .iter()
        .filter(|(n, _)| n == "record-route")
        .flat_map(|(_, v)| split_list(v))
        .collect();
    let content_type = get("content-type").map(|v| v.trim().to_ascii_lowercase());
    // RFC 3261 §18.3, as for requests; a response we cannot frame is dropped.
    let body: &[u8] = match framing::content_length(head.as_bytes()) {
        ContentLength::Invalid | ContentLength::Conflicting => {
            return Err(Rejection::Drop("bad Content-Length".into()));
        }
        ContentLength::Value(n) => available
            .get(..n)
            .ok_or_else(|| Rejection::Drop("body shorter than Content-Length".into()))?,
        ContentLength::Absent if transport == Transport::Udp => available,
        ContentLength::Absent => &[],
    };
    Ok(Inbound::Response(Box::new(Response {
        code,
        reason,
        call_id: call_id.trim().to_string(),
        branch,
        cseq,
        cseq_method: cseq_method.to_string(),
        to,
        to_tag,
        contact,
        record_route,
        content_type,
        body: body.to_vec(),
    })))
}

/// Builds a rejection from scraped headers, or a drop when no Via exists to route it.
fn reject(head: &str, code: u16, reason: &str) -> Rejection {
    let is_ack = head.starts_with("ACK ");
    let is_response = head.starts_with("SIP/");
    match scraped_reply(&framing::scrape(head)) {
        Ok(reply) if !is_ack && !is_response => Rejection::Reply {
            code,
            reason: reason.to_string(),
            reply: Box::new(reply),
            extra: Vec::new(),
        },
        Ok(_) => Rejection::Drop(format!("{reason} (not answerable)")),
        Err(why) => Rejection::Drop(format!("{reason}; {why}")),
    }
}

fn scraped_reply(scraped: &[(String, String)]) -> Result<ReplyHeaders, &'static str> {
    let all = |name: &str| -> Vec<String> {
        scraped
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| split_list(v))
            .collect()
    };
    let first = |name: &str| -> String {
        scraped
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let vias = all("via");
    if vias.is_empty() {
        return Err("no Via to route a response");
    }
    let to = first("to");
    Ok(ReplyHeaders {
        vias,
        from: first("from"),
        to_has_tag: name_addr(&to).map(|t| t.tag.is_some()).unwrap_or(true),
        to,
        call_id: first("call-id"),
        cseq: first("cseq"),
    })
}

fn is_token_byte(b: u8) -> bool {
    // RFC 3261 §25.1 token characters.
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Splits a header value on commas outside quotes, keeping empty elements
/// (`a,,b` is three), trimmed.
fn split_keep_empty(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, ch) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(value.get(start..i).unwrap_or_default().trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value.get(start..).unwrap_or_default().trim());
    out
}

/// Commas outside quotes and angle brackets: a From or To holding one is
/// a list (RFC 3261 §7.3.1), even when an element is empty.
fn top_level_commas(value: &str) -> usize {
    framing::split_list_raw(value).len() - 1
}

/// What we use of one Via value.
#[derive(Debug, PartialEq, Eq)]
struct ViaParts {
    /// host[:port], lower case, without LWS.
    sent_by: String,
    branch: Option<String>,
}

/// Checks one Via value (RFC 3261 §20.42, LWS allowed where the grammar
/// allows it): `SIP / 2.0 / transport sent-by *( ; param )`, no empty
/// parameter, no parameter `name=` without a value.
fn parse_via(raw: &str) -> Option<ViaParts> {
    let mut parts = raw.split(';');
    let first = parts.next()?;
    let mut pieces = first.splitn(3, '/');
    let (name, version, rest) = (pieces.next()?, pieces.next()?, pieces.next()?);
    if !is_token(name.trim()) || !is_token(version.trim()) {
        return None;
    }
    let (transport, sent_by) = rest.trim_start().split_once(char::is_whitespace)?;
    if !is_token(transport) {
        return None;
    }
    // sent-by = host [ COLON port ]; LWS only around the colon.
    let words: Vec<&str> = sent_by.split_whitespace().collect();
    let joined_ok = words
        .windows(2)
        .all(|w| w[0].ends_with(':') || w[1].starts_with(':'));
    let sent_by: String = words.concat().to_ascii_lowercase();
    if sent_by.is_empty()
        || !joined_ok
        || !sent_by
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
    {
        return None;
    }
    let mut branch = None;
    for p in parts {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p.trim(), None),
        };
        if !is_token(name) || value.is_some_and(str::is_empty) {
            return None;
        }
        if name.eq_ignore_ascii_case("branch") {
            branch = value.map(str::to_string);
        }
    }
    Some(ViaParts { sent_by, branch })
}

/// Checks the Request-URI: `Err((status, reason))` for one we cannot serve.
fn check_request_uri(uri: &str) -> Result<(), (u16, &'static str)> {
    const MALFORMED: (u16, &str) = (400, "Malformed Request-URI");
    let (scheme, rest) = uri.split_once(':').ok_or(MALFORMED)?;
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok || rest.is_empty() || !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(MALFORMED);
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        // The userinfo may hold `?` and `;`; the host part may not hold headers.
        let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        if hostport.contains('?') {
            return Err((400, "Headers in Request-URI"));
        }
        let hostport = hostport.split(';').next().unwrap_or_default();
        if hostport.is_empty() || !port_ok(hostport) {
            return Err(MALFORMED);
        }
        return Ok(());
    }
    if scheme.eq_ignore_ascii_case("tel") {
        return Ok(());
    }
    Err((416, "Unsupported URI Scheme"))
}

/// The header parameters of a name-addr / addr-spec header value (From,
/// To): after `>` when the URI is in angle brackets, else from the first
/// `;`. `None` when a quoted string or `<` is left open (RFC 4475 §3.1.2.6).
fn header_params(raw: &str) -> Option<&str> {
    let (mut quoted, mut escaped, mut open) = (false, false, None);
    for (i, ch) in raw.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match ch {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted && open.is_none() => open = Some(i),
            '>' if !quoted && open.is_some() => return raw.get(i + 1..),
            ';' if !quoted && open.is_none() => return raw.get(i..),
            _ => {}
        }
    }
    (!quoted && open.is_none()).then_some("")
}

/// The value of header parameter `name` (LWS around `=` allowed, RFC 3261 §25.1).
fn param_value<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim())
            .filter(|v| !v.is_empty())
    })
}

fn short(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(80).collect()
}

/// Parses From/To/P-Asserted-Identity with the grammar crate.
fn name_addr(raw: &str) -> Result<NameAddr, ()> {
    let params = header_params(raw).ok_or(())?;
    let parsed = typed::From::parse(raw).map_err(|_| ())?;
    let display = parsed
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    Ok(NameAddr {
        display,
        user: uri_user(&parsed.uri.to_string()),
        // Our own reading: the grammar crate misses `;tag = x` (RFC 4475 §3.1.1.1).
        tag: param_value(params, "tag")
            .map(str::to_string)
            .or_else(|| parsed.tag().map(|t| t.value().to_string())),
    })
}

/// Whether a `host[:port]` has no port or a port of 1–5 digits that fits in
/// 16 bits (RFC 3261 §25.1 `port = 1*DIGIT`): `host:` or `host:5o60` is
/// refused here, before a dialog would copy it into our own requests.
fn port_ok(hostport: &str) -> bool {
    let port = match hostport.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((_, "")) => return true,
            Some((_, after)) => match after.strip_prefix(':') {
                Some(p) => p,
                None => return false,
            },
            None => return false,
        },
        None => match hostport.rsplit_once(':') {
            Some((_, p)) => p,
            None => return true,
        },
    };
    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
}

/// Whether a Contact's (or From's) URI can be the Request-URI of a request
/// we send: one our own Request-URI check would accept and the grammar
/// crate reads with a host (it takes the first `?` as the start of URI
/// headers, so `sip:?a@host` is legal userinfo to us and no host to it).
fn usable_target(uri: &str) -> bool {
    check_request_uri(uri).is_ok() && rsipstack::sip::uri::parse_uri(uri).is_ok()
}

/// The URI inside a name-addr (`"x" <uri>;p` → `uri`) or the bare addr-spec.
pub(crate) fn addr_spec(v: &str) -> String {
    let v = v.trim();
    if let Some(start) = v.find('<') {
        let rest = v.get(start + 1..).unwrap_or_default();
        return rest
            .split('>')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
    }
    v.split(';').next().unwrap_or_default().trim().to_string()
}

/// User part of a SIP URI, or the number of a tel: URI.
pub(crate) fn uri_user(uri: &str) -> String {
    let uri = addr_spec(uri);
    let (scheme, rest) = uri.split_once(':').unwrap_or(("", &uri));
    if scheme.eq_ignore_ascii_case("tel") {
        return rest.split(';').next().unwrap_or_default().to_string();
    }
    match rest.rsplit_once('@') {
        Some((user, _)) => user
            .split([':', ';'])
            .next()
            .unwrap_or_default()
            .to_string(),
        None => String::new(),
    }
}

/// Where a `sip:` URI (a Request-URI, Contact or Route entry) points: its
/// host, which must be an IP address (we do no DNS, RFC 3263), the port
/// (5060 by default) and the `transport` parameter (UDP by default).
pub(crate) fn uri_destination(uri: &str) -> Result<(SocketAddr, Transport), &'static str> {
    // A bare URI keeps its parameters (`addr_spec` would treat them as header parameters).
    let uri = if uri.contains('<') {
        addr_spec(uri)
    } else {
        uri.trim().to_string()
    };
    let (scheme, rest) = uri.split_once(':').ok_or("not a URI")?;
    if !scheme.eq_ignore_ascii_case("sip") {
        return Err("only sip: URIs can be called (no sips:/TLS, no tel:)");
    }
    let rest = rest.split('?').next().unwrap_or_default();
    let mut parts = rest.split(';');
    let userhost = parts.next().unwrap_or_default();
    let hostport = match userhost.rsplit_once('@') {
        Some((_, h)) => h,
        None => userhost,
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("bad IPv6 reference")?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let ip: IpAddr = host
        .parse()
        .map_err(|_| "the host must be an IP address (no DNS)")?;
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("bad port")?,
        None => 5060,
    };
    let mut transport = Transport::Udp;
    for p in parts {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        if name.trim().eq_ignore_ascii_case("transport") {
            transport = match value.trim().to_ascii_lowercase().as_str() {
                "udp" => Transport::Udp,
                "tcp" => Transport::Tcp,
                "tls" => Transport::Tls,
                _ => return Err("unsupported transport"),
            };
        }
    }
    Ok((SocketAddr::new(ip, port), transport))
}

/// The top Via for a response: RFC 3261 §18.2.1 `received` when the source
/// address differs from sent-by; RFC 3581 §4 `rport` filled in (and then
/// `received` always added).
fn response_via(raw: &str, source: SocketAddr) -> String {
    let sent_by_ip = typed::Via::parse(raw)
        .ok()
        .and_then(|v| match &v.sent_by().host {
            rsipstack::sip::Host::IpAddr(ip) => Some(*ip),
            rsipstack::sip::Host::Domain(d) => d.0.parse::<IpAddr>().ok(),
        });
    let mut need_received = sent_by_ip != Some(source.ip());
    let mut parts = raw.split(';');
    let mut out = parts.next().unwrap_or_default().trim_end().to_string();
    for p in parts {
        let p = p.trim();
        let name = p.split('=').next().unwrap_or_default().trim();
        if p.is_empty() || name.eq_ignore_ascii_case("received") {
            continue;
        }
        if name.eq_ignore_ascii_case("rport") && !p.contains('=') {
            let _ = write!(out, ";rport={}", source.port());
            need_received = true;
            continue;
        }
        out.push(';');
        out.push_str(p);
    }
    if need_received {
        let _ = write!(out, ";received={}", source.ip());
    }
    out
}

/// The status code of a `message/sipfrag` body (RFC 3420) whose first line
/// is a Status-Line, as in a REFER's NOTIFY (RFC 3515 §2.4.5):
/// `SIP/2.0 180 Ringing` → 180.
pub(crate) fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(body);
    let line = text.trim_start().lines().next()?;
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse::<u16>().ok().filter(|c| (100..700).contains(c))
}

/// Standard reason phrases for the codes we send.
pub(crate) fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => match code / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// What goes into one response besides the echoed headers.
pub(crate) struct ResponseSpec<'a> {
    pub code: u16,
    pub reason: &'a str,
    /// Our To tag, added when the request's To has none.
    pub to_tag: Option<&'a str>,
    pub record_route: &'a [String],
    pub extra: &'a [(&'a str, String)],
    pub body: Option<(&'a str, &'a [u8])>,
    pub server: &'a str,
}

/// Serializes a response (RFC 3261 §8.2.6.2). Responses go to the packet's
/// source address (symmetric response routing, RFC 3581), so Via only
/// documents what we saw.
pub(crate) fn build_response(
    reply: &ReplyHeaders,
    peer: &Peer,
    spec: &ResponseSpec<'_>,
) -> Vec<u8> {
    crate::metrics::response("out", crate::metrics::cseq_method(&reply.cseq), spec.code);
    let mut s = String::with_capacity(512);
    let reason: String = spec.reason.chars().filter(|c| !c.is_control()).collect();
    let _ = write!(s, "SIP/2.0 {} {}\r\n", spec.code, reason);
    for (i, via) in reply.vias.iter().enumerate() {
        if i == 0 {
            let _ = write!(s, "Via: {}\r\n", response_via(via, peer.addr));
        } else {
            let _ = write!(s, "Via: {via}\r\n");
        }
    }
    for rr in spec.record_route {
        let _ = write!(s, "Record-Route: {rr}\r\n");
    }
    let _ = write!(s, "From: {}\r\n", reply.from);
    match spec.to_tag {
        Some(tag) if !reply.to_has_tag => {
            let _ = write!(s, "To: {};tag={tag}\r\n", reply.to);
        }
        _ => {
            let _ = write!(s, "To: {}\r\n", reply.to);
        }
    }
    let _ = write!(s, "Call-ID: {}\r\n", reply.call_id);
    let _ = write!(s, "CSeq: {}\r\n", reply.cseq);
    for (name, value) in spec.extra {
        let _ = write!(s, "{name}: {value}\r\n");
    }
    let _ = write!(s, "Server: {}\r\n", spec.server);
    finish(s, spec.body)
}

/// Serializes a request we originate.
pub(crate) fn build_request(
    method: &str,
    uri: &str,
    headers: &[(&str, String)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    crate::metrics::request("out", method);
    let mut s = String::with_capacity(512);
    let _ = write!(s, "{method} {uri} SIP/2.0\r\n");
    for (name, value) in headers {
        let _ = write!(s, "{name}: {value}\r\n");
    }
    finish(s, body)
}

fn finish(mut s: String, body: Option<(&str, &[u8])>) -> Vec<u8> {
    match body {
        Some((ctype, b)) => {
            let _ = write!(
                s,
                "Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                b.len()
            );
            let mut out = s.into_bytes();
            out.extend_from_slice(b);
            out
        }
        None => {
            s.push_str("Content-Length: 0\r\n\r\n");
            s.into_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_users() {
        assert_eq!(uri_user("sip:alice@example.com"), "alice");
        assert_eq!(uri_user("<sip:bob:pw@h;transport=tcp>"), "bob");
        assert_eq!(uri_user("tel:+15551234567;phone-context=x"), "+15551234567");
        assert_eq!(uri_user("sip:example.com"), "");
    }

    #[test]
    fn uri_destinations() {
        let d = |u: &str| uri_destination(u);
        assert_eq!(
            d("sip:+15551234567@127.0.0.1:5090"),
            Ok(("127.0.0.1:5090".parse().unwrap(), Transport::Udp))
        );
        assert_eq!(
            d("<sip:bob@192.0.2.4;transport=TCP;lr>"),
            Ok(("192.0.2.4:5060".parse().unwrap(), Transport::Tcp))
        );
        assert_eq!(
            d("sip:[2001:db8::1]:5070;lr"),
            Ok(("[2001:db8::1]:5070".parse().unwrap(), Transport::Udp))
        );
        assert_eq!(
            d("sip:p1.example.com;lr"),
            Err("the host must be an IP address (no DNS)")
        );
        assert!(d("tel:+15551234567").is_err());
        assert!(d("sips:bob@192.0.2.4").is_err());
        assert!(d("sip:bob@192.0.2.4:0").is_err());
        assert!(d("sip:bob@192.0.2.4:99999").is_err());
        assert!(d("sip:bob@192.0.2.4;transport=sctp").is_err());
        assert!(d("sip:bob@[2001:db8::1").is_err());
        assert!(d("garbage").is_err());
        assert!(d("").is_err());
    }

    #[test]
    fn responses_for_client_transactions() {
        let msg = "SIP/2.0 200 OK fine\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc;rport=5060\r\n\
            Record-Route: <sip:198.51.100.2;lr>, <sip:198.51.100.1;lr>\r\nRecord-Route: <sip:198.51.100.3;lr>\r\n\
            From: <sip:hotline@192.0.2.10>;tag=ours\r\nt: <sip:bob@192.0.2.4>;tag=theirs\r\n\
            Call-ID: c9\r\nCSeq: 7 INVITE\r\nm: \"Bob\" <sip:bob@192.0.2.4:5070>;expires=60\r\n\
            c: Application/SDP\r\nl: 3\r\n\r\nv=0trailing";
        let Ok(Inbound::Response(r)) = parse(msg.as_bytes(), Transport::Udp) else {
            panic!("not a response")
        };
        assert_eq!((r.code, r.reason.as_str()), (200, "OK fine"));
        assert_eq!((r.cseq, r.cseq_method.as_str()), (7, "INVITE"));
        assert_eq!(r.branch, "z9hG4bKabc");
        assert_eq!(r.to, "<sip:bob@192.0.2.4>;tag=theirs");
        assert_eq!(r.to_tag.as_deref(), Some("theirs"));
        assert_eq!(r.contact.as_deref(), Some("sip:bob@192.0.2.4:5070"));
        assert_eq!(
            r.record_route,
            [
                "<sip:198.51.100.2;lr>",
                "<sip:198.51.100.1;lr>",
                "<sip:198.51.100.3;lr>"
            ]
        );
        assert_eq!(r.content_type.as_deref(), Some("application/sdp"));
        assert_eq!(r.body, b"v=0");
        for bad in [
            "SIP/2.0 200 OK\r\n\r\n",
            "SIP/2.0 2000 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n",
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: x\r\nCSeq: one INVITE\r\n\r\n",
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 9\r\n\r\nv=0",
        ] {
            assert!(
                matches!(
                    parse(bad.as_bytes(), Transport::Udp),
                    Err(Rejection::Drop(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 180 Ringing"), Some(180));
        assert_eq!(
            sipfrag_status(b"SIP/2.0 486 Busy Here\r\nContent-Length: 0\r\n"),
            Some(486)
        );
        assert_eq!(sipfrag_status(b"\r\nSIP/2.0 603 Decline\r\n"), Some(603));
        assert_eq!(sipfrag_status(b"INVITE sip:x@y SIP/2.0\r\n"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 2000 OK"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 099 Low"), None);
        assert_eq!(sipfrag_status(b""), None);
    }

    #[test]
    fn via_values() {
        let v = parse_via("SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(
            (v.sent_by.as_str(), v.branch.as_deref()),
            ("192.0.2.2", Some("390skdjuw"))
        );
        let v = parse_via("SIP / 2.0 / TCP  Spindle.example.com : 5061 ;  branch  =   z9hG4bK9  ")
            .unwrap();
        assert_eq!(v.sent_by, "spindle.example.com:5061");
        assert_eq!(v.branch.as_deref(), Some("z9hG4bK9"));
        assert_eq!(
            parse_via("SIP/2.0/UDP [2001:db8::1]:5060").unwrap().branch,
            None
        );
        for bad in [
            "SIP/2.0/UDP 192.0.2.15;;",
            ";",
            "",
            "SIP/2.0/UDP",
            "SIP/2.0 192.0.2.1",
            "SIP/2.0/UDP 192.0.2.1 5060",
            "SIP/2.0/UDP 192.0.2.1;branch=",
            "SIP/2.0/UDP h<x>",
        ] {
            assert_eq!(parse_via(bad), None, "{bad}");
        }
        assert_eq!(split_keep_empty("a;;,;,,"), ["a;;", ";", "", ""]);
        assert_eq!(split_keep_empty("a;p=\"x,y\", b"), ["a;p=\"x,y\"", "b"]);
    }

    #[test]
    fn request_uris() {
        for ok in [
            "sip:user@example.com",
            "SIP:user@example.com;transport=tcp",
            "sips:user@[2001:db8::1]:5061",
            "sip:user;par=u%40example.net@example.com",
            "sip:crazy?,/;;*:&it+has=1@example.com",
            "tel:+15551234567",
        ] {
            assert_eq!(check_request_uri(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check_request_uri("nobodyKnowsThisScheme:totallyopaquecontent")
                .unwrap_err()
                .0,
            416
        );
        assert_eq!(
            check_request_uri("soap.beep://192.0.2.103:3002")
                .unwrap_err()
                .0,
            416
        );
        for bad in [
            "<sip:user@example.com>",
            "sip:",
            "sip:user@",
            "nocolon",
            "1sip:x@y",
            "sip:user@example.com?Route=%3Csip:example.com%3E",
            // A port must be 1*DIGIT in 16 bits (found by fuzzing: a Contact
            // of `<sip:alice@192.0.2.1:>` became the Request-URI of our BYE,
            // which our own parser then refused).
            "sip:alice@192.0.2.1:",
            "sip:alice@192.0.2.1:5o60",
            "sip:alice@192.0.2.1:65536;transport=tcp",
            "sips:user@[2001:db8::1]:",
            "sips:user@[2001:db8::1]x",
            "sip:[2001:db8::1",
        ] {
            assert_eq!(check_request_uri(bad).unwrap_err().0, 400, "{bad}");
        }
        assert_eq!(check_request_uri("sip:alice@192.0.2.1:65535;lr"), Ok(()));
    }

    #[test]
    fn an_invite_whose_contact_has_an_empty_port_is_refused() {
        let msg = "INVITE sip:100@192.0.2.10 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKi2;rport\r\n\
            Max-Forwards: 70\r\nFrom: \"Alice\" <sip:alice@192.0.2.1>;tag=a1\r\n\
            To: <sip:100@192.0.2.10>\r\nCall-ID: c2\r\nCSeq: 1 INVITE\r\n\
            Contact: <sip:alice@192.0.2.1:>\r\nContent-Length: 0\r\n\r\n";
        let Err(Rejection::Reply { code, reason, .. }) = parse(msg.as_bytes(), Transport::Udp)
        else {
            panic!("accepted a Contact with an empty port")
        };
        assert_eq!((code, reason.as_str()), (400, "Bad Contact header"));
    }

    #[test]
    fn name_addr_tags_and_quotes() {
        let t = |raw: &str| name_addr(raw).map(|n| n.tag);
        assert_eq!(
            t(" sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"),
            Ok(Some("1918181833n".into()))
        );
        assert_eq!(
            t("\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com> ; tag = 98asjd8"),
            Ok(Some("98asjd8".into()))
        );
        assert_eq!(t("<sip:a@b;tag=no>;x=1"), Ok(None));
        assert_eq!(t("\"a;tag=no\" <sip:a@b>"), Ok(None));
        assert!(name_addr("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(name_addr("<sip:j.user@example.com").is_err());
    }

    #[test]
    fn via_received_and_rport() {
        let src: SocketAddr = "192.0.2.9:6000".parse().unwrap();
        assert_eq!(
            response_via("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport", src),
            "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=6000;received=192.0.2.9"
        );
        assert_eq!(
            response_via("SIP/2.0/UDP 192.0.2.9:6000;branch=z9hG4bK1", src),
            "SIP/2.0/UDP 192.0.2.9:6000;branch=z9hG4bK1"
        );
        let v6: SocketAddr = "[2001:db8::1]:5060".parse().unwrap();
        assert_eq!(
            response_via("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1", v6),
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1"
        );
    }
}
