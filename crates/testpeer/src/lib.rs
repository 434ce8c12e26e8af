//! The caller side that the Hotline gateway is tested and load-tested against:
//! G.711 µ-law ([`g711`]), RTP and RFC 4733 event packets ([`rtp`]), classic
//! pcap reading and writing ([`pcap`]), and raw SIP message parsing and
//! building ([`sip`]). Used by `hotline-loadgen` and by the end-to-end
//! harness (`hotline-e2e`), which both used to carry their own copies.
//!
//! What it is NOT for:
//! * Not for the gateway. It must never depend on a `hotline-*` gateway
//!   crate (`hotline-sip`, `hotline-media`, …), nor they on it: an
//!   independent peer is the point, so a bug in the gateway's SIP or media
//!   code cannot hide by being shared with the code that checks it.
//! * Not a SIP stack or an RTP stack: no transactions, dialogs, timers or
//!   sockets. Those stay with each caller (the load generator's async
//!   dialogs, the harness's blocking raw client), which differ on purpose.
//! * Not a test framework: library code here never panics on bad input;
//!   test-only helpers that panic stay in the harness.

#![warn(missing_docs)]

pub mod g711;
pub mod pcap;
pub mod rtp;
pub mod sip;
