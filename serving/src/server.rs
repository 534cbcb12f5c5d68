//! The service's lifecycle, whole: open the album, start the job workers and the hourly
//! purge, accept connections, and stop cleanly. `album serve` is a thin front over
//! [`serve`]; tests run it on a loopback socket.
//!
//! Connections are served by hyper directly rather than through `axum::serve`, which
//! gives hyper no timer and so no time-out on reading a request's headers: a client
//! that opens a connection and sends half a request line would hold it for ever. Here
//! each connection gets [`ServeConfig::header_read_timeout`]; the body's idle time-out
//! and the whole request's time-out are layers of [`crate::app`].
//!
//! Stopping (the `shutdown` future completes: Ctrl-C or SIGTERM in `album serve`): the
//! listener closes, requests in flight get [`ServeConfig::drain_timeout`] to finish,
//! then the workers stop between jobs (a job cut short by a crash is claimed again once
//! its lease runs out, by this instance's next start or by another instance).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, FromRef};
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::app::{AppState, app};
use crate::config::ServeConfig;
use crate::error::Result;
use crate::jobs::Workers;
use crate::service::accounts::Accounts;

/// The album opened and its workers started, not yet accepting connections.
pub struct Server {
    state: AppState,
    workers: Workers,
    listener: TcpListener,
}

impl Server {
    /// Opens the album (database, blobs, model bundle) and starts the job workers,
    /// which load their models first: every set-up error is reported here, before any
    /// request is taken.
    pub async fn start(config: ServeConfig, listener: TcpListener) -> Result<Server> {
        let state = AppState::open(config)?;
        let workers = {
            let state = state.clone();
            tokio::task::spawn_blocking(move || Workers::start(&state)).await??
        };
        Ok(Server {
            state,
            workers,
            listener,
        })
    }

    /// Serves until `shutdown` completes, then stops cleanly.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let Server {
            state,
            workers,
            listener,
        } = self;
        let purge = tokio::spawn(purge_every_hour(state.clone()));
        let router = app(state.clone());
        accept_until(&listener, router, &state.config, shutdown).await;
        drop(listener);
        purge.abort();
        tokio::task::spawn_blocking(move || workers.stop()).await?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Runs the album service on `listener` until `shutdown` completes.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    Server::start(config, listener).await?.run(shutdown).await
}

/// Runs only the job workers, no HTTP (`album serve --workers-only`), until `shutdown`
/// completes: the heavy models (classifier, faces, montages) on a machine of their own,
/// sharing the API instances' database and blobs and claiming jobs from the same queue
/// under leases (see [`crate::jobs`]).
pub async fn work_only(config: ServeConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    let state = AppState::open(config)?;
    let workers = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || Workers::start(&state)).await??
    };
    tracing::info!(workers = state.config.workers, "workers only: running jobs");
    shutdown.await;
    tracing::info!("stopping: the workers finish their current jobs");
    tokio::task::spawn_blocking(move || workers.stop()).await?;
    Ok(())
}

/// Accepts connections until `shutdown`, then waits for those in flight.
async fn accept_until(
    listener: &TcpListener,
    router: Router,
    config: &ServeConfig,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // out of file descriptors, most likely: wait for some to close
                    tracing::warn!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // answers go out at once, not held back by Nagle's algorithm for more bytes
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, %peer, "setting TCP_NODELAY");
        }
        let service = TowerToHyperService::new(with_peer(router.clone(), peer));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended");
            }
        });
    }
    tracing::info!("stopping: no new connections; requests in flight finish");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(config.drain_timeout) => {
            tracing::warn!(
                "requests still running after {:?} were cut off",
                config.drain_timeout
            );
        }
    }
}

/// The router, with each request told the peer's address (sign-in failures are counted
/// per address too), as `into_make_service_with_connect_info` would.
fn with_peer(
    router: Router,
    peer: SocketAddr,
) -> impl tower::Service<
    Request<Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    router.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    })
}

/// Trash past its days and expired sessions, once an hour, off the async threads.
async fn purge_every_hour(state: AppState) {
    loop {
        let worker = state.clone();
        let purged = tokio::task::spawn_blocking(move || {
            (
                worker.photos.purge_expired(),
                Accounts::from_ref(&worker).purge_expired_sessions(),
            )
        })
        .await;
        match purged {
            Ok((photos, sessions)) => {
                match photos {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(photos = n, "purged from the trash"),
                    Err(error) => tracing::error!(%error, "automatic purge"),
                }
                if let Err(error) = sessions {
                    tracing::error!(%error, "removing expired sessions");
                }
            }
            Err(error) => tracing::error!(%error, "automatic purge"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
