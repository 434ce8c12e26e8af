//! `hotline serve`: start every part, run until SIGTERM, drain, stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hotline_call::{
    CallContext, CallRouter, CallSettings, EventLog, EventSink, MediaClock, builtin_flow,
};
use hotline_desk::{AgentDesk, DeskInput};
use hotline_media::{PromptCache, RtpPortPool};
use hotline_sip::{SipConfig, SipServer};
use hotline_webphone::{AgentMediaHub, HubConfig};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::http;
use crate::ivr::{GatewayLookups, LiveFlows};
use crate::records::Records;

pub async fn serve(mut cfg: Config) -> anyhow::Result<()> {
    // Before anything counts: the recorder behind `GET /metrics`.
    let metrics = crate::metrics::install()?;
    // Every path the gateway stores (recordings, voicemail) is absolute, so
    // a record means the same file whatever directory a reader runs in.
    cfg.data_dir = std::path::absolute(&cfg.data_dir)
        .with_context(|| format!("data dir {}", cfg.data_dir.display()))?;
    if let Some(forced) = cfg.force_hours {
        tracing::warn!(
            ?forced,
            "--force-hours: every `hours` node ignores the clock (for trying a flow, not for callers)"
        );
    }
    let recordings = cfg.data_dir.join("recordings");
    let voicemail = cfg.data_dir.join("voicemail");
    for dir in [&recordings, &voicemail] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // SIGTERM/SIGINT are ours from here on: one that arrives while the node
    // starts (its /healthz may already answer) waits for the start to end
    // and is then a drain like any other, not the default action's death.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // Before taking calls: the database (embedded unless DATABASE_URL), the
    // migrations, the writer (which replays a crash's spool first).
    let mut records = Records::start(
        cfg.database_url.as_deref(),
        &cfg.data_dir,
        cfg.retention.keys.clone(),
        &cfg.node_name,
    )
    .await?;
    // This node's lease; nodes whose lease expired get their calls closed.
    let lease = crate::records::spawn_lease(records.store(), cfg.node_name.clone(), cfg.node_lease);
    // Retention (docs/security.md): a pass now, then every interval.
    crate::retention::spawn(records.store(), &cfg.retention, &cfg.data_dir);

    // TLS (docs/security.md, "TLS and SRTP"): one certificate for HTTPS and
    // SIP over TLS, swapped on SIGHUP without touching the listeners.
    let cert_files = match &cfg.tls {
        Some((cert, key)) => {
            let files = crate::tls::CertFiles::load(cert, key)?;
            tracing::info!(cert = %cert.display(), sha256 = %files.fingerprint(), "TLS certificate loaded");
            Some(files)
        }
        None => None,
    };
    crate::tls::reload_on_sighup(cert_files.clone())?;

    let prompts = Arc::new(PromptCache::new(cfg.sounds_dir.clone()));
    match prompts.preload_dir() {
        Ok(n) => tracing::info!(count = n, dir = %cfg.sounds_dir.display(), "prompts loaded"),
        Err(e) => {
            tracing::warn!(error = %e, dir = %cfg.sounds_dir.display(), "prompts not preloaded")
        }
    }
    let builtin = builtin_flow(cfg.digit_timeout)
        .map_err(|e| anyhow::anyhow!("the built-in flow is invalid: {e}"))?;
    // The published flows of the database (the flows dir imported on first
    // start and followed for edits); the files alone if it does not answer.
    let flows = LiveFlows::open_db(
        records.store(),
        cfg.flows_dir.clone(),
        cfg.sounds_dir.clone(),
        cfg.entry_flow.clone(),
        builtin,
    )
    .await;
    tokio::spawn(flows.clone().watch());
    let ports = Arc::new(
        RtpPortPool::new(cfg.rtp_ports.0, cfg.rtp_ports.1)
            .map_err(|e| anyhow::anyhow!("RTP port range: {e}"))?,
    );

    // --- SIP edge policy (docs/security.md) ---
    for c in &cfg.sip_guard.trunk_auth {
        let by_address = cfg.sip_guard.trunks.iter().any(|t| t.name == c.trunk);
        tracing::info!(
            trunk = %c.trunk,
            user = %c.username,
            from = if by_address { "its --trunk addresses" } else { "any address" },
            "SIP trunk must authenticate (Digest)"
        );
    }
    if cfg.sip_guard.trunks.is_empty() && cfg.sip_guard.trunk_auth.is_empty() {
        tracing::warn!(
            "no --trunk configured: the gateway answers INVITEs from any address \
             (rate limits and caps still apply; see docs/security.md)"
        );
    } else {
        for t in &cfg.sip_guard.trunks {
            tracing::info!(trunk = %t, "SIP trunk allowed");
        }
        let address_free = cfg
            .sip_guard
            .trunk_auth
            .iter()
            .any(|c| !cfg.sip_guard.trunks.iter().any(|t| t.name == c.trunk));
        if address_free {
            tracing::info!("other addresses must authenticate (Digest) to call");
        } else {
            tracing::info!(refuse_unknown = ?cfg.sip_guard.refuse_unknown, "other addresses are refused");
        }
    }
    let sip_tls = match (cfg.sip_tls_listen, &cert_files) {
        (Some(listen), Some(files)) => Some(hotline_sip::SipTls {
            listen,
            server: files.server_config(&[])?,
        }),
        _ => None,
    };
    let (sip, sip_events) = SipServer::bind(SipConfig {
        listen: cfg.sip_listen,
        guard: cfg.sip_guard.clone(),
        tls: sip_tls,
        require_srtp: cfg.require_srtp,
        ..SipConfig::default()
    })
    .await
    .with_context(|| format!("cannot listen for SIP on {}", cfg.sip_listen))?;

    // Bans outlive a restart (docs/security.md, "Scanner and flood defence").
    crate::edge_api::spawn_ban_keeper(records.store(), sip.clone(), cfg.node_name.clone());

    let (event_tx, event_rx) = mpsc::channel(4096);
    // Where every call stands, for the live feed (live.rs).
    let board: crate::live::SharedBoard = Default::default();
    let event_rx = records.tee(event_rx, board.clone());
    let event_log =
        tokio::spawn(EventLog::new(&cfg.data_dir.join("call-events.jsonl")).run(event_rx));

    // Agents: one UDP port for every agent's WebRTC leg, and the desk that
    // routes queued calls to them (queues and agents from the database).
    let advertise = match (cfg.media_ip, cfg.agent_media_listen.ip().is_unspecified()) {
        (Some(ip), _) => Some(ip),
        (None, true) => {
            tracing::warn!(
                "agent media listens on all interfaces; advertising 127.0.0.1 (set --media-ip)"
            );
            Some(std::net::Ipv4Addr::LOCALHOST.into())
        }
        (None, false) => None,
    };
    let hub = AgentMediaHub::bind_with(
        cfg.agent_media_listen,
        HubConfig {
            advertise,
            ..HubConfig::default()
        },
    )
    .await
    .with_context(|| {
        format!(
            "cannot listen for agent media on {}",
            cfg.agent_media_listen
        )
    })?;
    let (queues, agents) = match crate::desk::load(&records.store()).await {
        Ok(config) => config,
        Err(e) => {
            tracing::warn!(error = %e, "queues and agents not loaded; queued calls hold until max wait");
            (Vec::new(), Vec::new())
        }
    };
    tracing::info!(
        queues = queues.len(),
        agents = agents.len(),
        "agent desk ready"
    );
    // A flow that enqueues to a queue nobody configured holds its callers
    // unanswered: say so at start, once per queue reference.
    crate::desk::warn_unknown_queues(&cfg.flows_dir, &cfg.sounds_dir, &queues);
    let desk = AgentDesk::start(queues, agents, hub);
    desk.send(DeskInput::SetDialPolicy(cfg.dial_policy.clone()))
        .await;
    // The cluster's one ACD (cluster.rs): the elected leader's desk decides
    // for every node sharing this database; the others forward to it.
    crate::cluster::start(records.store(), cfg.node_name.clone(), desk.clone()).await;

    // One dial rule for live calls and the admin's flow simulator.
    let dial_check = {
        let policy = cfg.dial_policy.clone();
        hotline_ivr::callback::DialCheck::new(move |n| policy.allows(n))
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let ctx = Arc::new(CallContext {
        sip: sip.clone(),
        prompts: prompts.clone(),
        ports,
        events: EventSink::new(event_tx),
        recordings_dir: recordings,
        voicemail_dir: voicemail,
        clock: MediaClock::start(),
        settings: CallSettings {
            rtp_timeout: cfg.rtp_timeout,
            answer_delay: cfg.answer_delay,
            media_ip: cfg.media_ip,
            queue_max_wait: cfg.queue_max_wait,
            forced_hours: cfg.force_hours,
            dial_check: Some(dial_check.clone()),
            // One owner: the writer's recovery uses the same name.
            node: cfg.node_name.clone(),
        },
        flows: flows.factory(),
        lookups: Arc::new(GatewayLookups {
            store: records.store(),
        }),
        desk: Some(desk.clone()),
        shutdown: shutdown_rx,
    });
    let router = CallRouter::new(ctx.clone());
    desk.send(DeskInput::SetDialer(router.dialer(cfg.callback_via)))
        .await;
    // Booked callbacks: due ones to the desk, its steps back to the table.
    crate::callback_book::start(records.store(), desk.clone()).await;
    let active = router.active();
    drop(ctx);
    let router_task = tokio::spawn(router.run(sip_events));

    let (draining_tx, draining_rx) = watch::channel(false);
    let listener = http::bind(cfg.http_listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", cfg.http_listen))?;
    let agent_states = crate::desk::live_states(records.store(), &desk);
    let admin = crate::admin::AdminState::new(records.store(), cfg.admin_token.as_deref())
        .with_recording_keys(cfg.retention.keys.clone())
        .with_flow_sounds(cfg.sounds_dir.clone())
        .with_prompt_cache(prompts.clone())
        .with_report_tz(cfg.report_tz.clone())
        .with_dial_check(dial_check)
        .with_live_states(agent_states.clone());
    crate::desk::follow_admin_changes(records.store(), desk.clone(), admin.changes());
    let login_limiter =
        crate::login_limit::SharedLimiter::new(crate::login_limit::LimitPolicy::default());
    let auth_store = records.store();
    let authenticate: crate::agent_ws::Authenticate = Arc::new(move |headers| {
        let store = auth_store.clone();
        Box::pin(async move { crate::agent_auth::agent_from_cookie(&store, &headers).await })
    });
    let metrics_prompts = prompts;
    let live_feed = crate::live::LiveFeed::start(crate::live::LiveSources {
        board,
        desk: desk.clone(),
        agents: agent_states,
        store: records.store(),
        tz: cfg.report_tz.clone(),
        service_level_target: cfg.service_level_target,
    });
    let (writer_stats, spool_dir) = records.writer_stats();
    let app = http::router(http::AppState {
        active: active.clone(),
        draining: draining_rx,
    })
    .merge(crate::admin::routes_with(
        admin,
        crate::openapi::routes()
            .merge(crate::live::routes(live_feed))
            .merge(crate::edge_api::routes(crate::edge_api::EdgeApi {
                sip: sip.clone(),
                store: records.store(),
            })),
    ))
    .merge(crate::agent_auth::agent_auth_routes(
        crate::agent_auth::AgentAuthState {
            secure_cookie: cert_files.is_some(),
            limiter: login_limiter.clone(),
            ..crate::agent_auth::AgentAuthState::new(records.store())
        },
    ))
    // The admin console: sign-in (one lockout shared with the desk's) and its pages.
    .merge(crate::admin_auth::routes(
        crate::admin_auth::AdminAuthState {
            secure_cookie: cert_files.is_some(),
            limiter: login_limiter,
            ..crate::admin_auth::AdminAuthState::new(records.store())
        },
    ))
    .merge(crate::admin_pages::routes())
    // Supervisors' listen / whisper / barge (same media hub as the agents').
    .merge(crate::monitor_ws::routes(crate::monitor_ws::MonitorWs {
        store: records.store(),
        desk: desk.clone(),
    }))
    .merge(sip_edge_routes(sip.clone()))
    .merge(crate::metrics::routes(crate::metrics::MetricsState {
        handle: metrics,
        allow: Arc::new(cfg.metrics_allow.clone()),
        active: active.clone(),
        desk: desk.clone(),
        sip: sip.clone(),
        prompts: metrics_prompts,
        writer: writer_stats,
        spool_dir,
        queues_seen: Default::default(),
    }))
    .merge(hotline_webphone::http::asset_routes())
    .merge(crate::agent_ws::routes(crate::agent_ws::AgentWs {
        authenticate,
        desk: desk.clone(),
        store: records.store(),
        allowed_origins: Arc::new(cfg.allowed_origins.clone()),
    }));
    let app = http::with_security_headers(app);
    match &cert_files {
        Some(files) => {
            let listener =
                crate::https::TlsListener::new(listener, files.server_config(&[b"http/1.1"])?)?;
            // `tap_io` only to borrow axum's peer-address plumbing (ConnectInfo).
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|_| ());
            let app = crate::https::with_hsts(app)
                .into_make_service_with_connect_info::<std::net::SocketAddr>();
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "HTTPS listener failed");
                }
            });
        }
        None => {
            if !cfg.http_listen.ip().is_loopback() {
                tracing::warn!(
                    http = %cfg.http_listen,
                    "the HTTP listener is not on a loopback address and has no certificate \
                     (--tls-cert/--tls-key): browsers refuse the microphone to pages over \
                     plain HTTP, so agents on other machines cannot use the softphone \
                     (docs/operations.md, \"HTTPS\")"
                );
            }
            tokio::spawn(async move {
                // The peer's address for the login limits and the socket's Origin rule.
                let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "HTTP listener failed");
                }
            });
        }
    }
    tracing::info!(
        sip = %sip.local_addr(),
        http = %cfg.http_listen,
        https = cert_files.is_some(),
        flows = %cfg.flows_dir.display(),
        "hotline is taking calls"
    );
    // systemd (Type=notify): ready once SIP, HTTP, the records and the
    // desk are up. Without NOTIFY_SOCKET this does nothing.
    notify_service_manager(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("taking calls"),
    ]);

    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }

    // Drain: refuse new calls (503), let the ones in progress finish.
    tracing::info!(active = active.get(), timeout = ?cfg.drain_timeout, "draining");
    notify_service_manager(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("draining: new calls get 503"),
    ]);
    let _ = draining_tx.send(true);
    sip.set_draining(true).await;
    if !wait_idle(&active, cfg.drain_timeout).await {
        tracing::warn!(
            active = active.get(),
            "drain timeout; hanging up the remaining calls"
        );
        let _ = shutdown_tx.send(true);
        wait_idle(&active, Duration::from_secs(5)).await;
    }
    // Give the last BYEs a moment to be answered before the socket goes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sip.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), router_task).await;
    match tokio::time::timeout(Duration::from_secs(5), event_log).await {
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "event log failed"),
        Err(_) => tracing::warn!("event log did not finish in time"),
        _ => {}
    }
    // A clean stop leaves no calls behind: give the lease up, so no other
    // node waits for it to expire.
    lease.abort();
    if let Err(e) = records.store().release_lease(&cfg.node_name).await {
        tracing::warn!(error = %e, "node lease not released (it will expire)");
    }
    records.finish().await;
    tracing::info!("stopped");
    Ok(())
}

/// Tells the service manager (systemd's `NOTIFY_SOCKET`) our state; a
/// failure costs a warning, never the gateway.
fn notify_service_manager(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "could not notify the service manager (NOTIFY_SOCKET)");
    }
}

/// `GET /sip-edge`: the SIP edge policy's counters as JSON (docs/security.md).
fn sip_edge_routes(sip: hotline_sip::SipHandle) -> axum::Router {
    axum::Router::new().route(
        "/sip-edge",
        axum::routing::get(move || {
            let stats = sip.edge_stats();
            async move {
                let map: serde_json::Map<String, serde_json::Value> = stats
                    .fields()
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), (*v).into()))
                    .collect();
                axum::Json(serde_json::Value::Object(map))
            }
        }),
    )
}

async fn wait_idle(active: &hotline_call::ActiveCalls, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while active.get() > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}
