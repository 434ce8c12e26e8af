//! A read-only view of what the endpoint's parser makes of one message,
//! with the bytes the endpoint would send back built the way it builds them.
//! For the fuzz targets (`fuzz/`) and diagnostics: the endpoint itself does
//! not use it, and it changes no state.

use crate::message::{self, Inbound, Rejection, ResponseSpec, build_request, build_response};
use crate::transport::Peer;

/// What [`inspect`] found in one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inspected {
    /// A request that passed validation (the endpoint would act on it).
    Request {
        /// The method token, e.g. `INVITE`.
        method: String,
        /// The Call-ID.
        call_id: String,
        /// The CSeq number.
        cseq: u32,
        /// The top Via's branch (synthesised for RFC 2543 peers).
        branch: String,
        /// The request again, from what the parser kept: its method, a
        /// `sip:` Request-URI with the user part it read, the Vias, From,
        /// To, Call-ID, CSeq, Contact and Record-Route as received, and
        /// the body with its Content-Type.
        reserialized: Vec<u8>,
        /// A `200 OK` to it, built as the endpoint builds its responses
        /// (echoed headers, our To tag, `rport`/`received` on the top Via).
        reply: Vec<u8>,
    },
    /// A response.
    Response {
        /// The status code.
        code: u16,
        /// The Call-ID.
        call_id: String,
        /// The CSeq number.
        cseq: u32,
        /// The CSeq method.
        cseq_method: String,
    },
    /// A request refused with a stateless answer.
    Refused {
        /// The status of the answer (400, 416, 420, 505, ...).
        code: u16,
        /// The answer as the endpoint sends it.
        reply: Vec<u8>,
    },
    /// Dropped without an answer (no Via, a bad ACK, an unusable response).
    Dropped,
}

/// Parses one datagram or framed stream message from `peer` as
/// [`Endpoint::handle_input`](crate::Endpoint::handle_input) does (before
/// any transaction or dialog lookup and without the edge policy).
pub fn inspect(data: &[u8], peer: Peer) -> Inspected {
    const SERVER: &str = "Hotline/0.1";
    match message::parse(data, peer.transport) {
        Ok(Inbound::Request(req)) => {
            let mut headers: Vec<(&str, String)> =
                req.reply.vias.iter().map(|v| ("Via", v.clone())).collect();
            headers.push(("From", req.reply.from.clone()));
            headers.push(("To", req.reply.to.clone()));
            headers.push(("Call-ID", req.call_id.clone()));
            headers.push(("CSeq", req.reply.cseq.clone()));
            if let Some(c) = &req.contact {
                headers.push(("Contact", format!("<{c}>")));
            }
            for rr in &req.record_route {
                headers.push(("Record-Route", rr.clone()));
            }
            let ctype = req
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".to_string());
            let body = (!req.body.is_empty()).then_some((ctype.as_str(), req.body.as_slice()));
            let uri = if req.uri_user.is_empty() {
                "sip:hotline.invalid".to_string()
            } else {
                format!("sip:{}@hotline.invalid", req.uri_user)
            };
            let reserialized = build_request(req.method.as_str(), &uri, &headers, body);
            let reply = build_response(
                &req.reply,
                &peer,
                &ResponseSpec {
                    code: 200,
                    reason: "OK",
                    to_tag: Some("inspect"),
                    record_route: &req.record_route,
                    extra: &[],
                    body: None,
                    server: SERVER,
                },
            );
            Inspected::Request {
                method: req.method.as_str().to_string(),
                call_id: req.call_id,
                cseq: req.cseq,
                branch: req.branch,
                reserialized,
                reply,
            }
        }
        Ok(Inbound::Response(resp)) => Inspected::Response {
            code: resp.code,
            call_id: resp.call_id,
            cseq: resp.cseq,
            cseq_method: resp.cseq_method,
        },
        Err(Rejection::Reply {
            code,
            reason,
            reply,
            extra,
        }) => Inspected::Refused {
            code,
            reply: build_response(
                &reply,
                &peer,
                &ResponseSpec {
                    code,
                    reason: &reason,
                    to_tag: Some("inspect"),
                    record_route: &[],
                    extra: &extra,
                    body: None,
                    server: SERVER,
                },
            ),
        },
        Err(Rejection::Drop(_)) => Inspected::Dropped,
    }
}
