//! One clock tick's RTP sends — one 172-byte datagram from each of N call
//! sockets — through io_uring (one submission) against one `sendto` per
//! datagram (the pacer before). Receivers on loopback are drained by a
//! thread, so the kernel's delivery is in both figures, as in the gateway.
//! The figure is the sending thread's CPU time (user + system, from
//! `CLOCK_THREAD_CPUTIME_ID`), not wall time: the cost the clock thread
//! pays, however busy the rest of the machine is.
//!
//! `cargo bench -p hotline-call --bench pacer_send`

use std::hint::black_box;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hotline_call::batch_send::BatchSender;

const RECEIVERS: usize = 8;

fn tick(c: &mut Criterion) {
    let stop = Arc::new(AtomicBool::new(false));
    let rxs: Vec<UdpSocket> = (0..RECEIVERS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let addrs: Vec<_> = rxs.iter().map(|s| s.local_addr().unwrap()).collect();
    let drain_stop = stop.clone();
    let drain = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !drain_stop.load(Ordering::Relaxed) {
            let mut got = false;
            for s in &rxs {
                while s.recv_from(&mut buf).is_ok() {
                    got = true;
                }
            }
            if !got {
                std::thread::yield_now();
            }
        }
    });
    let frame = [0x80u8; 172];
    let mut group = c.benchmark_group("rtp_tick");
    for calls in [300usize, 1000] {
        let sockets: Vec<UdpSocket> = (0..calls)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for (name, mut tx) in [
            ("sendto", BatchSender::plain()),
            ("io_uring", BatchSender::new()),
        ] {
            if name == "io_uring" && !tx.batched() {
                eprintln!("io_uring unavailable: skipping its figure");
                continue;
            }
            group.bench_with_input(BenchmarkId::new(name, calls), &calls, |b, _| {
                b.iter_custom(|iters| {
                    let start = thread_cpu();
                    for _ in 0..iters {
                        for (i, s) in sockets.iter().enumerate() {
                            tx.stage(s, addrs[i % RECEIVERS], black_box(&frame));
                        }
                        tx.send();
                    }
                    thread_cpu().saturating_sub(start)
                })
            });
            eprintln!("{name} {calls}: {} datagrams refused", tx.take_errors());
        }
    }
    group.finish();
    stop.store(true, Ordering::Relaxed);
    drain.join().unwrap();
}

/// This thread's CPU time so far.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec the call writes.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

criterion_group!(benches, tick);
criterion_main!(benches);
