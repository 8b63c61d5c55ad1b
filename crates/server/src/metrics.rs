//! Prometheus metrics at `/metrics`, in the text exposition format, on their own listener
//! (loopback by default: the numbers say who is connected and what is denied).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use ferrocore_broker::{Broker, Denials};
use ferrocore_store::{Store, StoreStats};

/// What one scrape reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub connections: usize,
    pub denials: Denials,
    pub store: StoreStats,
}

impl Snapshot {
    pub fn of(broker: &Broker, store: &Store) -> Snapshot {
        Snapshot {
            connections: broker.connection_count(),
            denials: broker.denials(),
            store: store.stats(),
        }
    }
}

/// The snapshot in Prometheus's text format.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    metric(
        "ferrocore_connections",
        "gauge",
        "Open MQTT connections.",
        &[("", s.connections as u64)],
    );
    let d = &s.denials;
    metric(
        "ferrocore_policy_denials_total",
        "counter",
        "Requests an IoT policy denied, by action.",
        &[
            ("{action=\"iot:Connect\"}", d.connect),
            ("{action=\"iot:Publish\"}", d.publish),
            ("{action=\"iot:RetainPublish\"}", d.retain_publish),
            ("{action=\"iot:Subscribe\"}", d.subscribe),
            ("{action=\"iot:Receive\"}", d.receive),
            ("{action=\"data-plane\"}", d.data_plane),
        ],
    );
    metric(
        "ferrocore_store_ops_committed_total",
        "counter",
        "Store operations written by committed group commits.",
        &[("", s.store.ops_committed)],
    );
    metric(
        "ferrocore_store_group_commits_total",
        "counter",
        "Store group commits, by result.",
        &[
            ("{result=\"committed\"}", s.store.groups_committed),
            ("{result=\"failed\"}", s.store.groups_failed),
        ],
    );
    out
}

/// The `/metrics` route over a snapshot source.
pub fn router(snapshot: Arc<dyn Fn() -> Snapshot + Send + Sync>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let body = render(&snapshot());
            async move {
                let mut response = body.into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                response
            }
        }),
    )
}

/// Serves `router` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) {
    if let Err(e) = axum::serve(listener, router).await {
        tracing::warn!(error = %e, "the metrics listener stopped");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn renders_every_counter_with_help_and_type() {
        let s = Snapshot {
            connections: 3,
            denials: Denials {
                publish: 7,
                ..Denials::default()
            },
            store: StoreStats {
                ops_committed: 11,
                groups_committed: 5,
                groups_failed: 1,
            },
        };
        let text = render(&s);
        assert!(text.contains("# TYPE ferrocore_connections gauge\nferrocore_connections 3\n"));
        assert!(text.contains("ferrocore_policy_denials_total{action=\"iot:Publish\"} 7\n"));
        assert!(text.contains("ferrocore_policy_denials_total{action=\"iot:Connect\"} 0\n"));
        assert!(text.contains("ferrocore_policy_denials_total{action=\"data-plane\"} 0\n"));
        assert!(text.contains("ferrocore_store_group_commits_total{result=\"failed\"} 1\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value.parse::<u64>().unwrap();
        }
    }
}
