//! `hotline-loadgen floor`: what this machine's kernel charges for the
//! datagrams of N calls, with no gateway and no caller logic at all.
//!
//! Two ends stand for the two sides of N calls: each owns one connected
//! UDP socket per call; its sender thread, on its own 20 ms clock (at
//! real-time priority where allowed, as the gateway's clock thread), sends
//! one RTP-sized datagram (172 bytes: a PCMU frame and its header) from
//! every socket to the other end's socket, and its reader thread reads the
//! sockets every 40 ms with one `recvmmsg(2)` per socket (up to 8
//! datagrams) — the cheapest shape a socket-per-call media path can take,
//! the one the gateway's shell has.
//! Nothing is parsed, encoded or recorded. What it reports (each end's CPU,
//! datagrams sent against datagrams owed, the send pacing)
//! is the floor under any gateway and caller on this box: when the two
//! threads cannot keep up, neither can a real pair.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::mmsg::{BATCH, Batch};
use crate::stats::Histogram;

/// A PCMU frame (20 ms at 8 kHz) and its RTP header.
const DATAGRAM: usize = 172;
const SEND_EVERY: Duration = Duration::from_millis(20);
const READ_EVERY: Duration = Duration::from_millis(40);

#[derive(Args, Clone)]
pub struct FloorArgs {
    /// Calls: socket pairs, one datagram each way every 20 ms.
    #[arg(long, default_value_t = 2000)]
    pub calls: usize,
    /// Seconds to measure (after one second of warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One end's figures.
#[derive(Serialize, Debug)]
pub struct EndReport {
    /// CPU time of the end's two threads (sender and reader) over the
    /// measured window, % of a core.
    pub cpu_pct: f64,
    /// Datagrams sent in the window, and what N calls owe in it.
    pub sent: u64,
    pub owed: u64,
    /// Datagrams read from the end's sockets in the window.
    pub received: u64,
    /// CPU per datagram moved (sent + received), µs.
    pub us_per_datagram: f64,
    /// Each socket's send interval's deviation from 20 ms, ms — what a
    /// receiver's jitter buffer sees of the sender's pacing.
    pub send_dev_ms_p50: f64,
    pub send_dev_ms_p99: f64,
    /// How late a tick's last send left after the tick was due, p99, ms
    /// (the time one tick's sends take, when the end keeps up).
    pub tick_late_ms_p99: f64,
    /// Ticks dropped because the previous ones ran over.
    pub ticks_skipped: u64,
}

#[derive(Serialize, Debug)]
pub struct FloorReport {
    pub calls: usize,
    pub secs: f64,
    /// The whole machine's busy CPU over the window (/proc/stat), % of one
    /// core. Sampled by the kernel's tick, so it undercounts threads that
    /// run briefly between ticks (a light load); the ends' own CPU is exact.
    pub box_busy_pct: f64,
    pub cores: usize,
    pub a: EndReport,
    pub b: EndReport,
    /// What the two ends would need to move every datagram they owe, at
    /// the CPU per datagram measured: % of one core.
    pub demand_pct: f64,
    /// Both ends sent ≥ 99.9 % of what they owed: the box carries N calls'
    /// datagrams (the send deviation is reported, not judged: it is taken
    /// after each send returns, so it includes the loopback delivery the
    /// kernel runs inside the send).
    pub keeps_up: bool,
}

pub fn floor(args: &FloorArgs) -> anyhow::Result<bool> {
    let report = measure(args.calls, Duration::from_secs_f64(args.secs))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(report.keeps_up)
}

fn print_report(r: &FloorReport) {
    println!(
        "{} calls, {:.0} s: box {:.1} % of one core ({} cores); every datagram would need {:.0} %; \
         keeps up: {}",
        r.calls, r.secs, r.box_busy_pct, r.cores, r.demand_pct, r.keeps_up
    );
    for (name, e) in [("a", &r.a), ("b", &r.b)] {
        println!(
            "  end {name}: {:.1} % CPU, sent {} of {} owed, received {}, {:.2} µs/datagram, \
             send deviation p50 {:.2} / p99 {:.2} ms, tick's last send late p99 {:.2} ms, \
             {} ticks skipped",
            e.cpu_pct,
            e.sent,
            e.owed,
            e.received,
            e.us_per_datagram,
            e.send_dev_ms_p50,
            e.send_dev_ms_p99,
            e.tick_late_ms_p99,
            e.ticks_skipped
        );
    }
}

/// Binds `n` socket pairs on loopback, connects each to its partner and
/// runs the two ends for one second of warm-up and then `window`.
pub fn measure(n: usize, window: Duration) -> anyhow::Result<FloorReport> {
    crate::raise_nofile();
    let bind = || -> io::Result<UdpSocket> {
        let s = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        s.set_nonblocking(true)?;
        Ok(s)
    };
    let mut a = Vec::with_capacity(n);
    let mut b = Vec::with_capacity(n);
    for i in 0..n {
        let (x, y) = (bind(), bind());
        let (x, y) = (
            x.with_context(|| format!("binding socket {i} (open-file limit?)"))?,
            y.with_context(|| format!("binding socket {i} (open-file limit?)"))?,
        );
        x.connect(y.local_addr()?)?;
        y.connect(x.local_addr()?)?;
        a.push(x);
        b.push(y);
    }
    let warm = Duration::from_secs(1);
    let start = Instant::now() + Duration::from_millis(50);
    let from = start + warm;
    let spawn = |socks: Vec<UdpSocket>, offset: Duration| {
        std::thread::spawn(move || run_end(socks, start + offset, from, from + window))
    };
    // The two ends' clocks are 10 ms apart, as two independent boxes' are.
    let ta = spawn(a, Duration::ZERO);
    let tb = spawn(b, Duration::from_millis(10));
    sleep_until(from);
    let busy0 = box_busy();
    let t0 = Instant::now();
    sleep_until(from + window);
    let busy1 = box_busy();
    let wall = t0.elapsed().as_secs_f64();
    let a = ta.join().map_err(|_| anyhow::anyhow!("end a panicked"))??;
    let b = tb.join().map_err(|_| anyhow::anyhow!("end b panicked"))??;
    let box_busy_pct = match (busy0, busy1) {
        (Some(x), Some(y)) if wall > 0.0 => (y - x) / wall * 100.0,
        _ => f64::NAN,
    };
    let keeps_up = [&a, &b]
        .iter()
        .all(|e| e.sent as f64 >= e.owed as f64 * 0.999);
    // Each datagram owed is sent by one end and read by the other.
    let secs = window.as_secs_f64();
    let demand_pct = [(&a, &b), (&b, &a)]
        .iter()
        .map(|(me, other)| me.us_per_datagram * (me.owed + other.owed) as f64 / secs / 1e4)
        .sum();
    Ok(FloorReport {
        calls: n,
        secs,
        box_busy_pct,
        cores: std::thread::available_parallelism().map_or(1, |c| c.get()),
        a,
        b,
        demand_pct,
        keeps_up,
    })
}

/// One end, shaped as the gateway's media path is: a sender on a 20 ms
/// clock at real-time priority when the box allows it (the gateway's clock
/// thread), and a reader on a 40 ms one (its workers' receive tick).
fn run_end(
    socks: Vec<UdpSocket>,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<EndReport> {
    let socks = Arc::new(socks);
    let reader = {
        let socks = socks.clone();
        std::thread::spawn(move || read_end(&socks, start + READ_EVERY / 2, measure_from, end))
    };
    let send = send_end(&socks, start, measure_from, end);
    let read = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    let (send, (received, read_cpu)) = (send?, read?);
    let cpu = send.cpu + read_cpu;
    let secs = (end - measure_from).as_secs_f64();
    Ok(EndReport {
        cpu_pct: cpu / secs * 100.0,
        sent: send.sent,
        owed: send.ticks * socks.len() as u64,
        received,
        us_per_datagram: if send.sent + received > 0 {
            cpu * 1e6 / (send.sent + received) as f64
        } else {
            0.0
        },
        send_dev_ms_p50: send.dev.quantile_ms(0.5),
        send_dev_ms_p99: send.dev.quantile_ms(0.99),
        tick_late_ms_p99: send.late.quantile_ms(0.99),
        ticks_skipped: send.skipped,
    })
}

struct SendStats {
    cpu: f64,
    sent: u64,
    ticks: u64,
    skipped: u64,
    dev: Histogram,
    late: Histogram,
}

fn send_end(
    socks: &[UdpSocket],
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<SendStats> {
    raise_priority();
    let datagram = [0x80u8; DATAGRAM];
    let mut last_sent: Vec<Option<Instant>> = vec![None; socks.len()];
    let new_stats = || SendStats {
        cpu: 0.0,
        sent: 0,
        ticks: 0,
        skipped: 0,
        dev: Histogram::new(),
        late: Histogram::new(),
    };
    let mut st = new_stats();
    let (cpu, skipped) = every(SEND_EVERY, start, measure_from, end, |t| {
        if t.window_begins {
            st = new_stats();
        }
        for (s, last) in socks.iter().zip(last_sent.iter_mut()) {
            send(s, &datagram)?;
            st.sent += 1;
            let at = Instant::now();
            if let Some(prev) = last.replace(at) {
                let gap = at.duration_since(prev).as_micros() as i64;
                st.dev
                    .record((gap - SEND_EVERY.as_micros() as i64).unsigned_abs());
            }
        }
        st.late.record(t.due.elapsed().as_micros() as u64);
        st.ticks += 1;
        Ok(())
    })?;
    st.skipped = skipped;
    st.ticks += skipped;
    st.cpu = cpu;
    Ok(st)
}

/// Reads every socket every 40 ms; (datagrams read, CPU seconds) in the window.
fn read_end(
    socks: &[UdpSocket],
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<(u64, f64)> {
    let mut batch = Batch::new();
    let mut received = 0u64;
    let (cpu, _) = every(READ_EVERY, start, measure_from, end, |t| {
        if t.window_begins {
            received = 0;
        }
        for s in socks {
            received += read_all(&mut batch, s)?;
        }
        Ok(())
    })?;
    Ok((received, cpu))
}

/// One tick of [`every`].
struct Tick {
    /// When it was due.
    due: Instant,
    /// The first tick of the measured window: counting starts afresh.
    window_begins: bool,
}

/// Runs `tick` every `period` from `start` until `end`, sleeping between
/// ticks. Ticks a slow one ran past are skipped, as a pacer that keeps time
/// does, so the thread always sleeps before its next tick. Returns, from
/// the window's start, the calling thread's CPU seconds and the ticks
/// skipped.
fn every(
    period: Duration,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    mut tick: impl FnMut(Tick) -> io::Result<()>,
) -> io::Result<(f64, u64)> {
    let mut next = start;
    let mut in_window = false;
    let mut cpu0 = thread_cpu_secs();
    let mut skipped = 0u64;
    loop {
        sleep_until(next.min(end));
        let now = Instant::now();
        if now >= end {
            break;
        }
        let window_begins = !in_window && now >= measure_from;
        if window_begins {
            in_window = true;
            cpu0 = thread_cpu_secs();
            skipped = 0;
        }
        tick(Tick {
            due: next,
            window_begins,
        })?;
        next += period;
        while next <= Instant::now() {
            next += period;
            skipped += 1;
        }
    }
    Ok((thread_cpu_secs() - cpu0, skipped))
}

/// Best effort, as the gateway's media clock thread does: SCHED_FIFO 10
/// (root, CAP_SYS_NICE or an rtprio limit); otherwise normal priority.
fn raise_priority() -> bool {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: `pthread_self()` names the calling, live thread and `param`
    // outlives the call, which only reads it.
    unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
}

fn send(s: &UdpSocket, datagram: &[u8]) -> io::Result<()> {
    match s.send(datagram) {
        Ok(_) => Ok(()),
        // A full send buffer drops this datagram, as a full queue on the
        // wire would; ECONNREFUSED would mean the other end is gone.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reads what waits on `s`, `BATCH` at a time, until a batch comes back
/// short.
fn read_all(batch: &mut Batch, s: &UdpSocket) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = batch.recv(s)?;
        total += n as u64;
        if n < BATCH {
            return Ok(total);
        }
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

fn thread_cpu_secs() -> f64 {
    // SAFETY: clock_gettime writes the timespec it is given.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// Busy CPU seconds of the whole machine so far (all but idle and iowait).
fn box_busy() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    // SAFETY: sysconf has no preconditions.
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let busy: f64 = v.iter().sum::<f64>() - v[3] - v[4];
    Some(busy / tck)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handful of calls is far below any machine's floor: both ends send
    /// every datagram they owe and the other end reads every one of them.
    #[test]
    fn a_few_calls_move_every_datagram() {
        let r = measure(20, Duration::from_secs(1)).expect("floor runs");
        for e in [&r.a, &r.b] {
            // 1 s of 20 ms ticks, give or take the tick on the window's edge.
            assert!(e.owed >= 20 * 49, "owed {}", e.owed);
            assert!(e.sent + 20 >= e.owed, "sent {} of {}", e.sent, e.owed);
        }
        // What one end sent in the window, the other read, but for the
        // datagrams in flight at the window's edges (a reader woken late on
        // a loaded box reads them after the window): a tenth is room enough.
        let slack = r.a.sent.max(r.b.sent) / 10;
        assert!(r.b.received + slack >= r.a.sent, "{r:?}");
        assert!(r.a.received + slack >= r.b.sent, "{r:?}");
        assert!(r.a.cpu_pct > 0.0 && r.b.cpu_pct > 0.0, "{r:?}");
    }
}
