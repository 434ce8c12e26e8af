//! `hotline-loadgen`: places real calls against a SIP IVR gateway — INVITE,
//! ACK, a PCMU tone both ways, an RFC 4733 digit, BYE — thousands at a time
//! from one SIP socket, one media thread and one RTP socket per call, and
//! reports setup latency, RTP timing seen by the receiver and failures.
//!
//! Also the small tools the load kit (`tests/load/run`) needs: `make-pcap`
//! (caller audio for SIPp), `pcap-jitter` (RTP inter-arrival deviation from
//! a tcpdump capture), `check-records` (every call has its record) and
//! `floor` (what the kernel alone charges for N calls' datagrams).

mod call;
mod floor;
mod mmsg;
mod pcap;
mod records;
mod rtp;
mod sip;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use tokio::net::UdpSocket;

use crate::call::{CallConfig, CallResult, Expect, Shared};
use crate::stats::quantile;

#[derive(Parser)]
#[command(
    name = "hotline-loadgen",
    about = "Places real SIP + RTP calls against the gateway and measures them",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Place calls (the default when no subcommand is given).
    Run(RunArgs),
    /// Write caller audio for SIPp's play_pcap_audio: tone, RFC 4733 digit, tone.
    MakePcap(pcap::MakePcapArgs),
    /// RTP inter-arrival deviation from 20 ms per stream in a tcpdump capture.
    PcapJitter(pcap::JitterArgs),
    /// Check the gateway's records (JSON-lines event log) for calls that walked.
    CheckRecords(records::CheckArgs),
    /// The kernel's floor: N calls' datagrams between two bare threads, no
    /// gateway; exits non-zero when this box cannot carry them.
    Floor(floor::FloorArgs),
}

#[derive(Args, Clone)]
struct RunArgs {
    /// The gateway's SIP address (UDP).
    #[arg(long, default_value = "127.0.0.1:5060")]
    target: SocketAddr,
    /// Our SIP address (port 0: any).
    #[arg(long, default_value = "127.0.0.1:0")]
    local: SocketAddr,
    /// Calls to place (with --concurrency).
    #[arg(long, conflicts_with = "rate")]
    calls: Option<u64>,
    /// At most this many calls at once [default: --calls].
    #[arg(long, conflicts_with = "rate")]
    concurrency: Option<usize>,
    /// New calls per second while ramping up to --concurrency.
    #[arg(long, default_value_t = 100.0)]
    ramp: f64,
    /// New calls per second (with --duration) instead of --calls.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds to place calls at --rate.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// The caller hangs up this long after the answer if the gateway has not.
    #[arg(long, default_value_t = 15.0)]
    call_secs: f64,
    /// Send the digit this long after the answer (none if absent).
    #[arg(long)]
    digit_at: Option<f64>,
    /// The DTMF key to send.
    #[arg(long, default_value_t = '1')]
    digit: char,
    /// Expected end [default: gateway-bye with --digit-at before --call-secs, else caller-bye].
    #[arg(long, value_enum)]
    expect: Option<ExpectArg>,
    /// Local RTP ports LOW-HIGH (even ports used) [default: any free port].
    #[arg(long, value_name = "LOW-HIGH")]
    rtp_ports: Option<String>,
    /// Call-ID prefix (to find the calls in the gateway's records).
    #[arg(long, default_value = "lg")]
    call_id_prefix: String,
    /// Write one JSON line per call (call_id, answered, walked, failure…).
    #[arg(long, value_name = "FILE")]
    calls_file: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum ExpectArg {
    GatewayBye,
    CallerBye,
}

#[derive(Serialize)]
struct Summary {
    attempted: u64,
    answered: u64,
    walked: u64,
    failed: u64,
    failures: std::collections::BTreeMap<String, u64>,
    max_concurrent: usize,
    invite_retransmissions: u64,
    bye_retransmissions: u64,
    ended_by_gateway: u64,
    ended_by_caller: u64,
    setup_ms_p50: f64,
    setup_ms_p99: f64,
    setup_ms_max: f64,
    rtp_sent: u64,
    rtp_received: u64,
    rtp_lost: u64,
    rtp_intervals: u64,
    rtp_deviation_ms_p50: f64,
    rtp_deviation_ms_p99: f64,
    rtp_deviation_ms_max: f64,
    elapsed_secs: f64,
    /// This process's CPU time (user + system) over its run, and as % of
    /// one core averaged over `elapsed_secs`: the caller's share of the box.
    cpu_secs: f64,
    cpu_pct: f64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        None => run(cli.run),
        Some(Cmd::Run(a)) => run(a),
        Some(Cmd::MakePcap(a)) => pcap::make_pcap(&a).map(|()| true),
        Some(Cmd::PcapJitter(a)) => pcap::jitter(&a),
        Some(Cmd::CheckRecords(a)) => records::check(&a),
        Some(Cmd::Floor(a)) => floor::floor(&a),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("hotline-loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// This process's CPU time so far (user + system), seconds.
fn process_cpu_secs() -> f64 {
    // SAFETY: getrusage writes the rusage it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

/// Raises the soft open-file limit to the hard one (one RTP socket per call).
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn port_pool(spec: &str) -> anyhow::Result<Vec<u16>> {
    let (lo, hi) = spec.split_once('-').context("--rtp-ports wants LOW-HIGH")?;
    let lo: u16 = lo.trim().parse().context("--rtp-ports LOW")?;
    let hi: u16 = hi.trim().parse().context("--rtp-ports HIGH")?;
    if lo > hi {
        bail!("--rtp-ports: LOW > HIGH");
    }
    // Even ports, lowest handed out first (pop from the end).
    Ok((lo..=hi).filter(|p| p % 2 == 0).rev().collect())
}

fn run(args: RunArgs) -> anyhow::Result<bool> {
    raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> anyhow::Result<bool> {
    let expect = match args.expect {
        Some(ExpectArg::GatewayBye) => Expect::GatewayBye,
        Some(ExpectArg::CallerBye) => Expect::CallerBye,
        None if args.digit_at.is_some_and(|d| d < args.call_secs) => Expect::GatewayBye,
        None => Expect::CallerBye,
    };
    if rtp::dtmf_event(args.digit).is_none() {
        bail!("--digit must be 0-9, *, # or A-D");
    }
    let sock = UdpSocket::bind(args.local)
        .await
        .context("bind SIP socket")?;
    {
        use std::os::fd::AsRawFd;
        rtp::set_rcvbuf(sock.as_raw_fd(), 8 << 20);
    }
    let local = sock.local_addr()?;
    let ports = match &args.rtp_ports {
        Some(spec) => Some(Mutex::new(port_pool(spec)?)),
        None => None,
    };
    let (media_tx, media_rx) = std::sync::mpsc::channel();
    let media_thread = std::thread::Builder::new()
        .name("loadgen-media".into())
        .spawn(move || rtp::run(media_rx))?;
    let shared = Arc::new(Shared {
        sock: Arc::new(sock),
        local,
        target: args.target,
        routes: Mutex::new(Default::default()),
        media: media_tx.clone(),
        ports,
        cfg: CallConfig {
            call_secs: args.call_secs,
            digit_at: args.digit_at,
            digit: args.digit,
            expect,
            prefix: args.call_id_prefix.clone(),
        },
        active: AtomicUsize::new(0),
        max_active: AtomicUsize::new(0),
    });
    let dispatcher = tokio::spawn(call::dispatch(shared.clone()));

    let started = Instant::now();
    let mut handles = Vec::new();
    if let Some(rate) = args.rate {
        if rate <= 0.0 {
            bail!("--rate must be > 0");
        }
        let total = (rate * args.duration).round() as u64;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        for id in 0..total {
            tick.tick().await;
            handles.push(tokio::spawn(call::run_call(shared.clone(), id)));
        }
    } else {
        let total = args.calls.unwrap_or(1);
        let conc = args.concurrency.unwrap_or(total as usize).max(1);
        let slots = Arc::new(tokio::sync::Semaphore::new(conc));
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.ramp.max(0.1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for id in 0..total {
            let permit = slots.clone().acquire_owned().await?;
            tick.tick().await;
            let shared = shared.clone();
            handles.push(tokio::spawn(async move {
                let r = call::run_call(shared, id).await;
                drop(permit);
                r
            }));
        }
    }
    let mut results: Vec<CallResult> = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(r) => results.push(r),
            Err(e) => results.push(CallResult {
                failure: Some(format!("call task: {e}")),
                ..Default::default()
            }),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (hist_tx, hist_rx) = tokio::sync::oneshot::channel();
    let _ = media_tx.send(rtp::Cmd::Finish { reply: hist_tx });
    let hist = hist_rx.await.unwrap_or_default();
    drop(media_tx);
    drop(shared.media.clone());
    dispatcher.abort();
    let max_active = shared.max_active.load(Ordering::Relaxed);
    drop(shared);
    let _ = media_thread.join();

    if let Some(path) = &args.calls_file {
        let mut text = String::new();
        for r in &results {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    }

    let mut setups: Vec<f64> = results.iter().filter_map(|r| r.setup_ms).collect();
    setups.sort_by(f64::total_cmp);
    let mut failures = std::collections::BTreeMap::new();
    for r in &results {
        if let Some(f) = &r.failure {
            // Group "too little audio: 12 packets in…" style reasons by their head.
            let key = f.split(':').next().unwrap_or(f).to_owned();
            *failures.entry(key).or_insert(0) += 1;
        }
    }
    let cpu_secs = process_cpu_secs();
    let s = Summary {
        attempted: results.len() as u64,
        answered: results.iter().filter(|r| r.answered).count() as u64,
        walked: results.iter().filter(|r| r.walked).count() as u64,
        failed: results.iter().filter(|r| !r.walked).count() as u64,
        failures,
        max_concurrent: max_active,
        invite_retransmissions: results
            .iter()
            .map(|r| u64::from(r.invite_retransmissions))
            .sum(),
        bye_retransmissions: results
            .iter()
            .map(|r| u64::from(r.bye_retransmissions))
            .sum(),
        ended_by_gateway: results
            .iter()
            .filter(|r| r.ended_by == Some("gateway"))
            .count() as u64,
        ended_by_caller: results
            .iter()
            .filter(|r| r.ended_by == Some("caller"))
            .count() as u64,
        setup_ms_p50: quantile(&setups, 0.5),
        setup_ms_p99: quantile(&setups, 0.99),
        setup_ms_max: setups.last().copied().unwrap_or(0.0),
        rtp_sent: results.iter().map(|r| r.rtp_sent).sum(),
        rtp_received: results.iter().map(|r| r.rtp_received).sum(),
        rtp_lost: results.iter().map(|r| r.rtp_lost).sum(),
        rtp_intervals: hist.count(),
        rtp_deviation_ms_p50: hist.quantile_ms(0.5),
        rtp_deviation_ms_p99: hist.quantile_ms(0.99),
        rtp_deviation_ms_max: hist.max_ms(),
        elapsed_secs: elapsed,
        cpu_secs,
        cpu_pct: if elapsed > 0.0 {
            cpu_secs / elapsed * 100.0
        } else {
            0.0
        },
    };
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "attempted {} answered {} walked {} failed {} (max concurrent {}, {:.1} s, caller CPU {:.1} %)",
            s.attempted,
            s.answered,
            s.walked,
            s.failed,
            s.max_concurrent,
            s.elapsed_secs,
            s.cpu_pct
        );
        for (reason, n) in &s.failures {
            println!("  failure: {reason}: {n}");
        }
        println!(
            "retransmissions: INVITE {} BYE {}; ended by gateway {} caller {}",
            s.invite_retransmissions, s.bye_retransmissions, s.ended_by_gateway, s.ended_by_caller
        );
        println!(
            "INVITE->200 ms: p50 {:.2} p99 {:.2} max {:.2}",
            s.setup_ms_p50, s.setup_ms_p99, s.setup_ms_max
        );
        println!(
            "RTP: sent {} received {} lost {}; deviation from 20 ms: p50 {:.2} ms p99 {:.2} ms max {:.2} ms ({} intervals)",
            s.rtp_sent,
            s.rtp_received,
            s.rtp_lost,
            s.rtp_deviation_ms_p50,
            s.rtp_deviation_ms_p99,
            s.rtp_deviation_ms_max,
            s.rtp_intervals
        );
    }
    Ok(s.failed == 0 && s.attempted > 0)
}
