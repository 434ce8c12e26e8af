//! Scripted SIPp callers: `tests/sipp/uac_ivr_script.xml` runs a body of
//! steps after the ACK (pauses, keys as SIP INFO, caller audio from a pcap,
//! hanging up or awaiting the gateway's BYE), generated here by [`script`].

use crate::gateway::Gateway;
use crate::sipp::Sipp;

/// One step of the caller in `uac_ivr_script.xml`, after the ACK.
pub enum Step {
    /// Wait this many milliseconds.
    Pause(u32),
    /// A key as SIP INFO (application/dtmf-relay), answered 200.
    Info(char),
    /// Start playing caller audio (a pcap, see `rtp::write_caller_pcap`) in
    /// the background; the script goes on at once.
    Audio(String),
    /// Wait (up to this many ms) for the gateway's BYE, answer 200, linger.
    AwaitBye(u32),
    /// Hang up: BYE, answered 200.
    Bye,
}

/// SIPp running `uac_ivr_script.xml` as caller `caller` (the From user;
/// `sipp` is the seeded "Demo Caller") with the body `script(caller, steps)`.
pub fn scripted_caller(gw: &Gateway, caller: &str, steps: &[Step]) -> Sipp {
    Sipp::new("uac_ivr_script.xml", gw)
        .var("CALLER", caller)
        .var("SCRIPT", script(caller, steps))
}

/// The scenario body for `{{SCRIPT}}`: CSeq numbers continue from the INVITE's 1.
pub fn script(caller: &str, steps: &[Step]) -> String {
    let from = format!(
        "From: \"e2e caller\" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]"
    );
    let contact = format!("Contact: <sip:{caller}@[local_ip]:[local_port];transport=[transport]>");
    let mut cseq = 1;
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Pause(ms) => out.push_str(&format!("  <pause milliseconds=\"{ms}\"/>\n\n")),
            Step::Info(key) => {
                cseq += 1;
                out.push_str(&format!(
                    r#"  <send retrans="500">
    <![CDATA[
      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {from}
      To: <sip:hotline@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      [routes]
      {contact}
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={key}
      Duration=160
    ]]>
  </send>

  <recv response="200"/>

"#
                ));
            }
            Step::Audio(pcap) => out.push_str(&format!(
                "  <nop>\n    <action>\n      <exec play_pcap_audio=\"{pcap}\"/>\n    </action>\n  </nop>\n\n"
            )),
            Step::Bye => {
                cseq += 1;
                out.push_str(&format!(
                    r#"  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      {from}
      To: <sip:hotline@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} BYE
      [routes]
      {contact}
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>

  <recv response="200" crlf="true"/>

"#
                ));
            }
            Step::AwaitBye(ms) => out.push_str(&format!(
                r#"  <recv request="BYE" timeout="{ms}"/>

  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      {contact}
      Content-Length: 0

    ]]>
  </send>

  <!-- Linger so a retransmitted BYE (lost 200) is answered again. -->
  <pause milliseconds="500"/>

"#
            )),
        }
    }
    out
}
