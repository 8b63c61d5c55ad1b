//! Custom authentication for the connection scenarios: what each client presents in CONNECT
//! (a username naming the authorizer, a password) and the authorizer's function, which the
//! bench serves itself on a loopback address so that a slow function never limits the rate:
//!
//! - `webhook`: answers every POST with AWS's authorizer answer JSON — authenticated, a fixed
//!   allow-all policy, refresh and disconnect after 24 h (so the broker caches the answer for
//!   a day) — without looking at the request, and counts the calls.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use bytes::Bytes;
use clap::ValueEnum;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::conn::Login;

/// The authorizer function the bench serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CustomAuth {
    /// An HTTP webhook answering AWS's authorizer answer JSON with a fixed allow policy.
    Webhook,
}

/// The function's name in labels and summaries.
pub fn kind_name(kind: CustomAuth) -> &'static str {
    match kind {
        CustomAuth::Webhook => "webhook",
    }
}

/// What the function's requests are, in the summary.
pub fn requests_name(kind: CustomAuth) -> &'static str {
    match kind {
        CustomAuth::Webhook => "webhook calls",
    }
}

/// The password every client sends to the webhook (which does not check it).
const WEBHOOK_PASSWORD: &[u8] = b"bench-password";

/// The webhook's answer to every call.
const WEBHOOK_ANSWER: &str = r#"{"isAuthenticated":true,"principalId":"bench","disconnectAfterInSeconds":86400,"refreshAfterInSeconds":86400,"policyDocuments":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}]}"#;

/// The CONNECT username: `bench`, naming `authorizer` the way AWS's devices do if given (else
/// the listener's or the account's default authorizer decides).
pub fn username(authorizer: Option<&str>) -> String {
    match authorizer {
        Some(name) => format!("bench?x-amz-customauthorizer-name={name}"),
        None => "bench".to_owned(),
    }
}

/// What the clients of a run present.
pub fn login(kind: CustomAuth, authorizer: Option<&str>) -> Login {
    let password = match kind {
        CustomAuth::Webhook => Bytes::from_static(WEBHOOK_PASSWORD),
    };
    Login {
        username: username(authorizer),
        password,
    }
}

/// The running function server; counts the requests it has answered.
pub struct AuthServer {
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl AuthServer {
    /// Serves `kind` on `addr` (HTTP/1.1, one task per connection) until dropped.
    pub async fn start(kind: CustomAuth, addr: SocketAddr) -> anyhow::Result<AuthServer> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listen on {addr} for the {kind:?} authorizer function"))?;
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let counter = counter.clone();
                        async move {
                            // Read the whole body, so that a keep-alive connection stays usable.
                            let _ = req.into_body().collect().await;
                            counter.fetch_add(1, Ordering::Relaxed);
                            Ok::<_, Infallible>(answer(kind))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Ok(AuthServer { requests, task })
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(kind: CustomAuth) -> Response<Full<Bytes>> {
    let body = match kind {
        CustomAuth::Webhook => Bytes::from_static(WEBHOOK_ANSWER.as_bytes()),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_names_the_authorizer_as_devices_do() {
        assert_eq!(
            username(Some("hook")),
            "bench?x-amz-customauthorizer-name=hook"
        );
        assert_eq!(username(None), "bench");
    }

    #[test]
    fn webhook_answer_is_a_valid_allow() {
        let answer =
            ferrocore_identity::custom_auth::AuthorizerAnswer::from_json(WEBHOOK_ANSWER.as_bytes())
                .expect("AWS's answer format");
        assert!(answer.authenticated);
    }
}
