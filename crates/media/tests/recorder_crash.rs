//! A recording survives its writer's crash: a child process writes 7 s of
//! audio and is killed with SIGKILL mid-call (no `finish`, no destructor);
//! the file it leaves is a valid WAV that a standard reader plays, its
//! header at most [`HEADER_EVERY_SECS`] behind, and the audio after the
//! header's count is on disk for crash recovery to reclaim.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use hotline_media::CallRecorder;
use hotline_media::recorder::HEADER_EVERY_SECS;

/// Set in the child: the path to record to.
const CHILD_ENV: &str = "HOTLINE_RECORDER_CRASH_CHILD";
/// Seconds of audio the child writes before it is killed.
const WRITTEN_SECS: u64 = 7;
const RATE: u64 = 8000;

/// A tone on each channel (different pitches), so silence is detectable.
fn frame(n: u64) -> ([i16; 160], [i16; 160]) {
    let mut left = [0i16; 160];
    let mut right = [0i16; 160];
    for i in 0..160 {
        let t = (n * 160 + i as u64) as f64 / RATE as f64;
        left[i] = (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16;
        right[i] = (6000.0 * (2.0 * std::f64::consts::PI * 697.0 * t).sin()) as i16;
    }
    (left, right)
}

/// The child: records, says so, and waits to be killed.
fn child(path: &Path) -> ! {
    let mut rec = CallRecorder::create(path).expect("create the recording");
    for n in 0..WRITTEN_SECS * 50 {
        let (l, r) = frame(n);
        rec.write_frame(&l, &r).expect("write a frame");
    }
    println!("written");
    std::thread::sleep(std::time::Duration::from_secs(120));
    // Never reached in the test: the parent kills us first.
    std::process::exit(3);
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hotline-recorder-crash-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_recording_killed_mid_call_is_a_playable_wav() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&path));
    }
    let dir = temp_dir();
    let path = dir.join("killed.wav");
    let mut kid = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_recording_killed_mid_call_is_a_playable_wav",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the child");
    let out = kid.stdout.take().unwrap();
    let said_written = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("written"));
    assert!(said_written, "the child did not finish writing");
    kid.kill().expect("SIGKILL the child");
    let status = kid.wait().unwrap();
    assert!(!status.success(), "the child was killed: {status:?}");

    // A standard reader opens it and plays what the header counts.
    let mut r = hound::WavReader::open(&path).expect("a valid WAV after the crash");
    assert_eq!((r.spec().channels, r.spec().sample_rate), (2, 8000));
    let counted = u64::from(r.duration());
    let header_secs = (WRITTEN_SECS / HEADER_EVERY_SECS) * HEADER_EVERY_SECS;
    assert_eq!(
        counted,
        header_secs * RATE,
        "the header counts the audio up to its last rewrite"
    );
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
    assert_eq!(samples.len() as u64, counted * 2);
    let peak = |ch: usize| {
        samples
            .iter()
            .skip(ch)
            .step_by(2)
            .map(|s| s.unsigned_abs())
            .max()
    };
    assert!(peak(0) > Some(7000), "the caller's channel holds the tone");
    assert!(peak(1) > Some(5000), "the gateway's channel holds the tone");
    let (l, _) = frame(counted / 160 - 1);
    let last_left = samples[samples.len() - 2];
    assert_eq!(
        last_left, l[159],
        "the last counted sample is the one written"
    );

    // The audio after the header's count is on disk, all but the write
    // buffer (16 KiB): crash recovery's header repair reclaims it.
    let on_disk = std::fs::metadata(&path).unwrap().len() - 44;
    let written = WRITTEN_SECS * RATE * 4;
    assert!(
        on_disk >= written - 16 * 1024 && on_disk <= written,
        "{on_disk} bytes of audio on disk of {written} written"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
