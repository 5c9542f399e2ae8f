//! Serving the router over HTTP/1 with timers, so that slow clients cannot hold the server
//! (README, "Security model"): hyper's connection builder closes a connection whose request
//! head has not arrived within [`HEAD_TIMEOUT`] (hyper's header-read timer also runs while a
//! kept-alive connection waits for its next request, so idle connections close after that
//! too, well within [`IDLE_TIMEOUT`]); the router answers `408` to a request whose body has
//! not arrived within [`BODY_TIMEOUT`] (tower-http's `TimeoutLayer`, in `http::router`). At
//! start the open-file soft limit is raised to the hard limit, so idle sockets from one client
//! cannot use up the descriptors everyone else needs.

use std::{future::Future, net::SocketAddr, time::Duration};

use axum::{extract::ConnectInfo, Router};
use hyper::{body::Incoming, Request};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// A request head must arrive within this.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A request (its body included) must arrive and be answered within this.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest an idle kept-alive connection stays open (the head timer closes it sooner).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// How long a stop waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// Raises the open-file soft limit to the hard limit; the limits after, when they could be read.
pub fn raise_open_file_limit() -> Option<(u64, u64)> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => {
            let hard = rlimit::Resource::NOFILE
                .get()
                .map(|(_, h)| h)
                .unwrap_or(soft);
            Some((soft, hard))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            None
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then waits up to [`DRAIN`] for the
/// connections in flight. Each request carries its peer address (`ConnectInfo`), as
/// `axum::serve` gives it; every socket gets `TCP_NODELAY` (a response written in pieces must
/// not wait for the client's delayed ACK).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before it was taken:
                    // wait a moment rather than spin, and go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let service = router
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            });
        let conn = http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period; closing them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timers_are_the_documented_ones() {
        assert_eq!(HEAD_TIMEOUT, Duration::from_secs(10));
        assert_eq!(BODY_TIMEOUT, Duration::from_secs(30));
        assert!(HEAD_TIMEOUT <= IDLE_TIMEOUT);
    }
}
