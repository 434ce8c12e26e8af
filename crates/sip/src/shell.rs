//! The thin tokio shell: owns the UDP socket, the TCP listener and the
//! optional TLS listener, runs the sans-IO [`Endpoint`] in one task and turns
//! its deadlines into sleeps. Outbound calls ([`SipHandle::originate`]) use
//! the same UDP socket.
//!
//! TCP and TLS connections are one kind of thing to the endpoint: numbered
//! from one counter, framed by [`TcpFramer`], counted against the same
//! per-source cap ([`ConnLimiter`]); a TLS connection's slot is taken before
//! its handshake, so a source cannot hold more half-open handshakes than
//! connections.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::CallKey;
use crate::endpoint::{Endpoint, EndpointConfig, Originate};
use crate::error::SipError;
use crate::event::SipEvent;
use crate::guard::{BanList, ConnLimiter, EdgeCounters, EdgeStats, GuardConfig};
use crate::transport::{Peer, TcpFramer, Transport};

/// Settings of the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipConfig {
    /// UDP and TCP listen address (same port for both).
    pub listen: SocketAddr,
    /// Server / User-Agent header value.
    pub user_agent: String,
    /// RFC 3261 T1.
    pub t1: Duration,
    /// The edge policy: trunks, rate limits, caps (`docs/security.md`).
    pub guard: GuardConfig,
    /// SIP over TLS on its own TCP port (e.g. 5061); `None`: off.
    pub tls: Option<SipTls>,
    /// Only SDES-SRTP calls (see [`EndpointConfig::require_srtp`]).
    pub require_srtp: bool,
}

/// The SIP-over-TLS listener: its address and the TLS server settings
/// (whose certificate resolver may swap certificates at any time).
#[derive(Clone)]
pub struct SipTls {
    /// TCP address of the TLS listener.
    pub listen: SocketAddr,
    /// The rustls server settings shared by every connection.
    pub server: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for SipTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipTls")
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SipTls {
    fn eq(&self, other: &Self) -> bool {
        self.listen == other.listen && Arc::ptr_eq(&self.server, &other.server)
    }
}

impl Eq for SipTls {}

/// How long a TLS client may take over its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            user_agent: "Hotline/0.1".to_string(),
            t1: Duration::from_millis(500),
            guard: GuardConfig::default(),
            tls: None,
            require_srtp: false,
        }
    }
}

/// Capacity of the event channel handed to the application.
const EVENT_CAPACITY: usize = 1024;
/// Largest UDP datagram we accept.
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams read without yielding after a wake-up (see `run`).
const UDP_BATCH: usize = 63;

#[derive(Debug)]
enum Command {
    Ring(CallKey),
    Answer(CallKey, SocketAddr, oneshot::Sender<Result<(), SipError>>),
    Reject(CallKey, u16),
    Hangup(CallKey),
    Refer(CallKey, String, oneshot::Sender<Result<(), SipError>>),
    Originate(Box<Originate>, oneshot::Sender<Result<CallKey, SipError>>),
    Draining(bool),
    Bans(oneshot::Sender<Vec<crate::guard::Ban>>),
    Unban(std::net::IpAddr, oneshot::Sender<bool>),
    RestoreBans(Vec<(std::net::IpAddr, std::time::Duration)>),
    Shutdown,
}

#[derive(Debug)]
enum TcpEvent {
    Opened {
        conn: u64,
        writer: mpsc::Sender<Vec<u8>>,
    },
    Message {
        peer: Peer,
        data: Vec<u8>,
    },
    Closed {
        conn: u64,
    },
}

/// Starts the SIP server.
#[derive(Debug)]
pub struct SipServer;

impl SipServer {
    /// Binds UDP and TCP on `cfg.listen` and spawns the endpoint task.
    /// Events arrive on the returned receiver; commands go through the handle.
    pub async fn bind(cfg: SipConfig) -> Result<(SipHandle, mpsc::Receiver<SipEvent>), SipError> {
        let (udp, tcp) = bind_pair(cfg.listen).await?;
        let local = udp.local_addr()?;
        let contact_addr = if local.ip().is_unspecified() {
            SocketAddr::new(guess_local_ip(local.ip()), local.port())
        } else {
            local
        };
        let conns = Arc::new(Mutex::new(ConnLimiter::new(cfg.guard.clone())));
        let tls = match &cfg.tls {
            Some(t) => {
                let l = TcpListener::bind(t.listen).await?;
                let local = l.local_addr()?;
                Some((l, local, t.server.clone()))
            }
            None => None,
        };
        let tls_contact_addr = tls.as_ref().map(|(_, local, _)| {
            if local.ip().is_unspecified() {
                SocketAddr::new(contact_addr.ip(), local.port())
            } else {
                *local
            }
        });
        let ep = Endpoint::new(EndpointConfig {
            contact_addr,
            tls_contact_addr,
            user_agent: cfg.user_agent,
            t1: cfg.t1,
            guard: cfg.guard,
            require_srtp: cfg.require_srtp,
            ..EndpointConfig::default()
        });
        let edge = ep.edge_counters();
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_CAPACITY);
        let (tcp_tx, tcp_rx) = mpsc::channel(1024);
        let gate = StreamGate {
            limiter: conns,
            edge: edge.clone(),
            conn_ids: Arc::new(AtomicU64::new(1)),
            bans: ep.ban_list(),
        };
        let tls_accept = tls.map(|(listener, tls_local, server)| {
            info!(local = %tls_local, "SIP listening on TLS");
            tokio::spawn(tls_accept_loop(
                listener,
                tokio_rustls::TlsAcceptor::from(server),
                tcp_tx.clone(),
                gate.clone(),
            ))
        });
        let accept = tokio::spawn(accept_loop(tcp, tcp_tx, gate));
        tokio::spawn(async move {
            run(ep, udp, tcp_rx, cmd_rx, ev_tx).await;
            accept.abort();
            if let Some(t) = tls_accept {
                t.abort();
            }
        });
        info!(%local, %contact_addr, "SIP listening on UDP and TCP");
        Ok((
            SipHandle {
                local,
                cmd: cmd_tx,
                edge,
            },
            ev_rx,
        ))
    }
}

/// Binds UDP first, then TCP on the same port; with port 0 retries if the
/// kernel's UDP choice is taken on TCP.
async fn bind_pair(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), SipError> {
    let mut last = None;
    for _ in 0..8 {
        let udp = UdpSocket::bind(listen).await?;
        let local = udp.local_addr()?;
        match TcpListener::bind(local).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if listen.port() == 0 => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last
        .unwrap_or_else(|| std::io::Error::other("cannot bind TCP"))
        .into())
}

/// The address to advertise when bound to a wildcard: the one the kernel
/// would use for an outside route (no packet is sent), else loopback.
fn guess_local_ip(wildcard: IpAddr) -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let (bind, target): (SocketAddr, SocketAddr) = if wildcard.is_ipv4() {
            (([0, 0, 0, 0], 0).into(), ([192, 0, 2, 1], 9).into())
        } else {
            (
                "[::]:0".parse().map_err(std::io::Error::other)?,
                "[2001:db8::1]:9".parse().map_err(std::io::Error::other)?,
            )
        };
        let s = std::net::UdpSocket::bind(bind)?;
        s.connect(target)?;
        Ok(s.local_addr()?.ip())
    };
    probe()
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Sends commands to the endpoint task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SipHandle {
    local: SocketAddr,
    cmd: mpsc::Sender<Command>,
    edge: Arc<EdgeCounters>,
}

impl SipHandle {
    /// The bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// What the edge policy refused so far (see `docs/security.md`).
    pub fn edge_stats(&self) -> EdgeStats {
        self.edge.snapshot()
    }

    async fn command(&self, c: Command) {
        if self.cmd.send(c).await.is_err() {
            debug!("SIP endpoint task has stopped; command dropped");
        }
    }

    /// Sends 180 Ringing.
    pub async fn ring(&self, call: CallKey) {
        self.command(Command::Ring(call)).await;
    }

    /// Answers with 200 OK; RTP is received at `local_rtp`. Fails when the
    /// call can no longer be answered (e.g. a CANCEL won the race).
    pub async fn answer(&self, call: CallKey, local_rtp: SocketAddr) -> Result<(), SipError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Answer(call, local_rtp, tx)).await;
        rx.await.map_err(|_| SipError::Closed)?
    }

    /// Rejects an unanswered call with `code`.
    pub async fn reject(&self, call: CallKey, code: u16) {
        self.command(Command::Reject(call, code)).await;
    }

    /// Ends the call (BYE, or 480 before answer).
    pub async fn hangup(&self, call: CallKey) {
        self.command(Command::Hangup(call)).await;
    }

    /// Blind transfer: sends REFER with `Refer-To: <target>` (see
    /// [`Endpoint::refer`]). Fails when the call is not confirmed, already has
    /// a REFER in flight, or `target` is not a usable URI. The outcome arrives
    /// as `TransferAccepted`/`TransferFailed`/`TransferProgress` events.
    pub async fn refer(&self, call: CallKey, target: String) -> Result<(), SipError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Refer(call, target, tx)).await;
        rx.await.map_err(|_| SipError::Closed)?
    }

    /// Places an outbound call (see [`Endpoint::originate`]) and returns its
    /// key. Its events (`Ringing`, then `OutboundAnswered` … `Ended`, or
    /// `OutboundFailed`) arrive on the event receiver of
    /// [`SipServer::bind`], like those of inbound calls. Fails when the
    /// request is unusable ([`SipError::InvalidOriginate`]).
    pub async fn originate(&self, req: Originate) -> Result<CallKey, SipError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Originate(Box::new(req), tx)).await;
        rx.await.map_err(|_| SipError::Closed)?
    }

    /// The sources the edge policy drops right now (see
    /// [`crate::Guard::bans`]).
    pub async fn bans(&self) -> Result<Vec<crate::guard::Ban>, SipError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Bans(tx)).await;
        rx.await.map_err(|_| SipError::Closed)
    }

    /// Bans each address for its time left (bans saved before a restart).
    pub async fn restore_bans(&self, bans: Vec<(std::net::IpAddr, std::time::Duration)>) {
        self.command(Command::RestoreBans(bans)).await;
    }

    /// Lifts the ban on `ip`; false when it was not banned.
    pub async fn unban(&self, ip: std::net::IpAddr) -> Result<bool, SipError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Unban(ip, tx)).await;
        rx.await.map_err(|_| SipError::Closed)
    }

    /// While on, new INVITEs get 503.
    pub async fn set_draining(&self, on: bool) {
        self.command(Command::Draining(on)).await;
    }

    /// Stops the endpoint task and closes the sockets.
    pub async fn shutdown(&self) {
        self.command(Command::Shutdown).await;
    }
}

async fn run(
    mut ep: Endpoint,
    udp: UdpSocket,
    mut tcp_rx: mpsc::Receiver<TcpEvent>,
    mut cmd_rx: mpsc::Receiver<Command>,
    events: mpsc::Sender<SipEvent>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut conns: HashMap<u64, mpsc::Sender<Vec<u8>>> = HashMap::new();
    loop {
        let deadline = ep.poll_timeout();
        let sleep_to = tokio::time::Instant::from_std(
            deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600)),
        );
        tokio::select! {
            r = udp.recv_from(&mut buf) => match r {
                Ok((n, from)) => {
                    let data = buf.get(..n).unwrap_or_default();
                    ep.handle_input(Instant::now(), Peer::udp(from), data);
                    // Take what else is queued (bounded) before the next
                    // select: under a flood, one wake-up and one timer
                    // reset per batch instead of per datagram.
                    for _ in 0..UDP_BATCH {
                        match udp.try_recv_from(&mut buf) {
                            Ok((n, from)) => {
                                let data = buf.get(..n).unwrap_or_default();
                                ep.handle_input(Instant::now(), Peer::udp(from), data);
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(e) => {
                                debug!(error = %e, "UDP receive failed");
                                break;
                            }
                        }
                    }
                }
                // E.g. ICMP port unreachable reported on the next recv on some systems.
                Err(e) => warn!(error = %e, "UDP receive failed"),
            },
            Some(ev) = tcp_rx.recv() => match ev {
                TcpEvent::Opened { conn, writer } => { conns.insert(conn, writer); }
                TcpEvent::Message { peer, data } => ep.handle_input(Instant::now(), peer, &data),
                TcpEvent::Closed { conn } => { conns.remove(&conn); }
            },
            cmd = cmd_rx.recv() => {
                let Some(cmd) = cmd else { break };
                let now = Instant::now();
                let r = match cmd {
                    Command::Ring(c) => ep.ring(now, &c),
                    Command::Answer(c, rtp, reply) => {
                        let r = ep.answer(now, &c, rtp);
                        let _ = reply.send(r);
                        Ok(())
                    }
                    Command::Reject(c, code) => ep.reject(now, &c, code),
                    Command::Hangup(c) => ep.hangup(now, &c),
                    Command::Refer(c, target, reply) => {
                        let _ = reply.send(ep.refer(now, &c, &target));
                        Ok(())
                    }
                    Command::Originate(req, reply) => {
                        let _ = reply.send(ep.originate(now, *req));
                        Ok(())
                    }
                    Command::Draining(on) => { ep.set_draining(on); Ok(()) }
                    Command::Bans(reply) => { let _ = reply.send(ep.bans(now)); Ok(()) }
                    Command::Unban(ip, reply) => { let _ = reply.send(ep.unban(now, ip)); Ok(()) }
                    Command::RestoreBans(bans) => {
                        for (ip, left) in bans {
                            ep.restore_ban(now, ip, left);
                        }
                        Ok(())
                    }
                    Command::Shutdown => break,
                };
                if let Err(e) = r {
                    warn!(error = %e, "SIP command refused");
                }
            },
            _ = tokio::time::sleep_until(sleep_to), if deadline.is_some() => {
                ep.handle_timeout(Instant::now());
            }
        }
        while let Some(t) = ep.poll_transmit() {
            match t.peer.transport {
                Transport::Udp => {
                    if let Err(e) = udp.send_to(&t.data, t.peer.addr).await {
                        warn!(peer = %t.peer, error = %e, "UDP send failed");
                        ep.handle_transport_error(Instant::now(), t.peer);
                    }
                }
                // We never open TCP or TLS connections: replies and BYEs reuse
                // the caller's connection, and are dropped if it is gone.
                Transport::Tcp | Transport::Tls => match conns.get(&t.peer.conn) {
                    Some(w) => {
                        if w.try_send(t.data).is_err() {
                            warn!(peer = %t.peer, "TCP connection backed up or closed; message dropped");
                        }
                    }
                    None => warn!(peer = %t.peer, "TCP connection gone; message dropped"),
                },
            }
        }
        while let Some(ev) = ep.poll_event() {
            if events.send(ev).await.is_err() {
                debug!("event receiver dropped");
            }
        }
    }
    info!("SIP endpoint task stopped");
}

/// Releases a connection's slot in the per-source count when its reader ends.
struct ConnSlot {
    limiter: Arc<Mutex<ConnLimiter>>,
    ip: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        if let Ok(mut l) = self.limiter.lock() {
            l.close(self.ip);
        }
    }
}

/// Who may open a stream connection: not a banned source, and no more than
/// the per-source cap. Shared by the TCP and TLS listeners.
#[derive(Clone)]
struct StreamGate {
    limiter: Arc<Mutex<ConnLimiter>>,
    edge: Arc<EdgeCounters>,
    conn_ids: Arc<AtomicU64>,
    bans: Arc<BanList>,
}

impl StreamGate {
    /// The connection's slot in the per-source count, or `None`: close it
    /// at once (no reader, no writer, no endpoint state).
    fn admit(&self, addr: SocketAddr, what: &str) -> Option<ConnSlot> {
        if self.bans.is_banned(addr.ip(), Instant::now()) {
            self.edge.count_banned_drop();
            debug!(%addr, "{what} connection closed: the source is banned");
            return None;
        }
        let admitted = self
            .limiter
            .lock()
            .map(|mut l| l.try_open(addr.ip()))
            .unwrap_or(true);
        if !admitted {
            self.edge.count_tcp_refused();
            debug!(%addr, "{what} connection refused: too many from this source");
            return None;
        }
        Some(ConnSlot {
            limiter: self.limiter.clone(),
            ip: addr.ip(),
        })
    }
}

async fn accept_loop(listener: TcpListener, tx: mpsc::Sender<TcpEvent>, gate: StreamGate) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let Some(slot) = gate.admit(addr, "TCP") else {
                    drop(stream);
                    continue;
                };
                let conn = gate.conn_ids.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let (rd, wr) = stream.into_split();
                let (wtx, wrx) = mpsc::channel(256);
                // Registered before the reader starts, so the endpoint knows
                // the connection before its first message.
                if tx
                    .send(TcpEvent::Opened { conn, writer: wtx })
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::spawn(write_loop(wr, wrx));
                let peer = Peer::tcp(addr, conn);
                let tx = tx.clone();
                let bans = gate.bans.clone();
                tokio::spawn(async move {
                    read_loop(rd, peer, tx, &bans).await;
                    drop(slot);
                });
            }
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                warn!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// As [`accept_loop`] for the TLS listener: the same per-source cap, then
/// the handshake in the connection's own task (at most
/// [`TLS_HANDSHAKE_TIMEOUT`]), then the same framing.
async fn tls_accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    tx: mpsc::Sender<TcpEvent>,
    gate: StreamGate,
) {
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "TLS accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = gate.admit(addr, "TLS") else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        let conn = gate.conn_ids.fetch_add(1, Ordering::Relaxed);
        let bans = gate.bans.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        debug!(%addr, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        debug!(%addr, "TLS handshake timed out");
                        return;
                    }
                };
            let (rd, wr) = tokio::io::split(tls);
            let (wtx, wrx) = mpsc::channel(256);
            if tx
                .send(TcpEvent::Opened { conn, writer: wtx })
                .await
                .is_err()
            {
                return;
            }
            tokio::spawn(write_loop(wr, wrx));
            read_loop(rd, Peer::tls(addr, conn), tx, &bans).await;
            drop(slot);
        });
    }
}

/// Reads a stream connection's messages until it closes, breaks framing,
/// or its source is banned (then the connection is closed at its next
/// message: a ban drops a source's streams as it drops its datagrams).
async fn read_loop(
    mut rd: impl AsyncRead + Unpin,
    peer: Peer,
    tx: mpsc::Sender<TcpEvent>,
    bans: &BanList,
) {
    let mut framer = TcpFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    'conn: loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                debug!(%peer, error = %e, "stream read failed");
                break;
            }
        };
        framer.push(buf.get(..n).unwrap_or_default());
        loop {
            match framer.pop() {
                Ok(Some(data)) => {
                    if bans.is_banned(peer.addr.ip(), Instant::now()) {
                        debug!(%peer, "closing stream connection: the source is banned");
                        break 'conn;
                    }
                    if tx.send(TcpEvent::Message { peer, data }).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    warn!(%peer, error = %e, "closing stream connection");
                    break 'conn;
                }
            }
        }
    }
    let _ = tx.send(TcpEvent::Closed { conn: peer.conn }).await;
}

async fn write_loop(mut wr: impl AsyncWrite + Unpin, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(data) = rx.recv().await {
        if wr.write_all(&data).await.is_err() {
            break;
        }
    }
}
