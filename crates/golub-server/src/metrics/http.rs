//! The metrics endpoint: a small HTTP/1.1 server (axum) that answers `GET /metrics` with
//! the OpenMetrics text of [`Metrics`], and 404 for any other path. It runs until the
//! server shuts down; a scrape in progress then finishes first.

use super::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use golub_store::Store;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::warn;

/// The content type of prometheus-client's text encoder.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Scrape {
    metrics: Arc<Metrics>,
    store: Store,
}

/// Serves `/metrics` on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    store: Store,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape { metrics, store });
    let stop = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        warn!(error = %e, "metrics endpoint stopped");
    }
}

async fn scrape(State(s): State<Scrape>) -> Response {
    // The queue count reads the database: off the runtime.
    match tokio::task::spawn_blocking(move || s.metrics.render(&s.store)).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
