//! Issue 13, "Recordings and personal data": a `gather` with `secure: true`
//! on the real gateway, driven by SIPp.
//!
//! The caller talks (a 440 Hz tone) all through the call and keys a card
//! number by RFC 4733 in the secure gather. The events show the keys
//! masked and the recording paused and resumed; the flow still branched on
//! the real digits; the WAV is silent on both channels over the paused
//! span, and not before or after it.

use hotline_e2e::events::{Event, assert_in_order, assert_well_formed, count, dump, find};
use hotline_e2e::flows::flows_dir;
use hotline_e2e::rtp::{self, CallerAudio};
use hotline_e2e::script::{Step, scripted_caller};
use hotline_e2e::{Gateway, wav};
use std::path::{Path, PathBuf};
use std::time::Duration;

const CALL_END_WAIT: Duration = Duration::from_secs(20);
const SIPP_LIMIT: Duration = Duration::from_secs(75);

/// 1 at the menu starts the secure gather; 4242 takes the `accepted` path,
/// anything else `refused`.
const SECURE_FLOW: &str = "\
flow: main
languages: [en]
start: menu
nodes:
  menu:
    type: menu
    prompt: main-menu
    options:
      1: card
    timeout: 15s
    retries: 0
    on_exhausted: refused
  card:
    type: gather
    prompt: enter-order
    into: card
    min_digits: 4
    max_digits: 4
    first_digit_timeout: 10s
    retries: 0
    secure: true
    next: check
    on_exhausted: refused
  check:
    type: branch
    cases:
      - if: card == \"4242\"
        then: accepted
    else: refused
  accepted:
    type: hangup
    prompt: thank-you
    outcome: self_served
  refused:
    type: hangup
    prompt: goodbye
";

fn tone(ms: u32) -> CallerAudio {
    CallerAudio::Tone { hz: 440.0, ms }
}

fn digit(d: char) -> CallerAudio {
    CallerAudio::Digit {
        digit: d,
        packets: 6,
    }
}

/// RMS of `channel` between `from_ms` and `to_ms` of the recording.
fn rms_between(channels: &[Vec<i16>], rate: u32, channel: usize, from_ms: i64, to_ms: i64) -> f64 {
    let at = |ms: i64| ((ms.max(0) as u64 * u64::from(rate)) / 1000) as usize;
    let samples = &channels[channel];
    let (a, b) = (at(from_ms).min(samples.len()), at(to_ms).min(samples.len()));
    assert!(
        b > a + 400,
        "window {from_ms}..{to_ms} ms outside the recording"
    );
    rtp::rms(&samples[a..b])
}

#[test]
fn a_secure_gather_masks_the_card_number_and_silences_the_recording() {
    let flows = flows_dir("recording_pause_flows", SECURE_FLOW);
    let flows_path = flows.path().to_str().expect("utf-8 temp path");
    let gw = Gateway::start_with(
        "recording_pause",
        &["--entry-flow", "main", "--flows-dir", flows_path],
    );
    // Talk over the menu, press 1, talk through the gather's prompt, key
    // 4242 with talk between the keys, and talk on until the goodbye.
    let mut audio = vec![tone(1200), digit('1'), tone(2500)];
    for d in "4242".chars() {
        audio.push(digit(d));
        audio.push(tone(400));
    }
    audio.push(tone(4000));
    let pcap_path: PathBuf = gw.dir().join("card.pcap");
    rtp::write_caller_pcap(&pcap_path, &audio);
    let pcap = pcap_path.to_str().expect("utf-8 temp path").to_string();
    let run = scripted_caller(
        &gw,
        "+15550100001",
        &[Step::Audio(pcap), Step::AwaitBye(30_000)],
    )
    .timeout(SIPP_LIMIT)
    .run();
    run.assert_success();
    let evs = gw.wait_call_ended(&run.call_id, CALL_END_WAIT);
    assert_well_formed(&evs);

    // The path: the branch saw 4242.
    let nodes: Vec<&str> = evs
        .iter()
        .filter(|e| e.kind() == "node_entered")
        .filter_map(|e| e.raw["node"].as_str())
        .collect();
    assert_eq!(
        nodes,
        ["menu", "card", "check", "accepted"],
        "{}",
        dump(&evs)
    );
    assert_in_order(
        &evs,
        &[
            ("digit", &[("digit", "1"), ("transport", "rfc4733")]),
            ("node_entered", &[("kind", "gather")]),
            ("recording_paused", &[("reason", "secure_gather")]),
            ("digit", &[("digit", "*"), ("masked", "true")]),
            ("digit", &[("digit", "*"), ("masked", "true")]),
            ("digit", &[("digit", "*"), ("masked", "true")]),
            ("digit", &[("digit", "*"), ("masked", "true")]),
            (
                "input",
                &[("input", "****"), ("into", "card"), ("length", "4")],
            ),
            ("recording_resumed", &[("reason", "secure_gather")]),
            ("outcome", &[("outcome", "self_served")]),
            ("hangup", &[("ended_by", "gateway")]),
            ("recording", &[]),
            ("call_ended", &[]),
        ],
    );
    assert_eq!(count(&evs, "recording_paused"), 1, "{}", dump(&evs));
    assert_eq!(count(&evs, "recording_resumed"), 1, "{}", dump(&evs));
    // Not one key of the card number anywhere in the call's events.
    let shown: Vec<&str> = evs
        .iter()
        .filter(|e| e.kind() == "digit")
        .map(|e| e.data_str("digit"))
        .collect();
    assert_eq!(shown, ["1", "*", "*", "*", "*"], "{}", dump(&evs));
    // (Addresses, ports and file names may hold any digits by chance.)
    for e in &evs {
        if matches!(e.kind(), "call_started" | "answered" | "recording") {
            continue;
        }
        let data = e.data().to_string();
        assert!(!data.contains("4242"), "the card number leaked: {}", e.raw);
    }
    let log = std::fs::read_to_string(gw.log_path()).unwrap_or_default();
    for shown in ["\"4242\"", "=4242", ": 4242", "digit=4", "digit=2"] {
        assert!(
            !log.contains(shown),
            "the card number is in the log ({shown})"
        );
    }

    // The recording, against the events' clock: it starts at the answer.
    let answered = find(&evs, "answered").at_us();
    let ms = |e: &Event| (e.at_us() - answered) / 1000;
    let paused = ms(find(&evs, "recording_paused"));
    let resumed = ms(find(&evs, "recording_resumed"));
    let paused_ms = find(&evs, "recording_resumed").data()["paused_ms"]
        .as_i64()
        .unwrap_or(-1);
    assert!(
        (paused_ms - (resumed - paused)).abs() <= 50,
        "paused_ms {paused_ms} vs {} between the events",
        resumed - paused
    );
    assert!(resumed - paused > 2500, "the span: {paused}..{resumed} ms");
    let path = PathBuf::from(find(&evs, "recording").data_str("path"));
    let (channels, rate) = wav::read_channels(Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(channels.len(), 2);
    let len_ms = (channels[0].len() as i64 * 1000) / i64::from(rate);
    let call_ms = ms(find(&evs, "hangup"));
    assert!(
        (len_ms - call_ms).abs() <= 300,
        "the WAV keeps the call's time: {len_ms} ms vs {call_ms} ms of call"
    );
    // Margins of 150 ms absorb the jitter between the event stamps and the
    // media clock's frames.
    for (ch, name) in [(0, "caller"), (1, "gateway")] {
        let before = rms_between(&channels, rate, ch, paused - 900, paused - 150);
        let during = rms_between(&channels, rate, ch, paused + 150, resumed - 150);
        let after = rms_between(&channels, rate, ch, resumed + 150, resumed + 900);
        eprintln!(
            "{name} channel RMS: {before:.0} before, {during:.0} during ({paused}..{resumed} ms), {after:.0} after the pause"
        );
        assert_eq!(during, 0.0, "{name} channel not silent while paused");
        assert!(
            before > 300.0,
            "{name} channel silent before the pause: {before:.0}"
        );
        assert!(
            after > 300.0,
            "{name} channel silent after the pause: {after:.0}"
        );
    }
}
