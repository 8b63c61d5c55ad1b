//! What the listener and device-authentication tests share: the `serve` flags, a server on
//! ephemeral ports and a client's trust in its root CA.

use std::path::Path;
use std::sync::Arc;

use clap::Parser;
use ferrocore_server::identity::ServerIdentity;
use ferrocore_server::tls::{ClientCertCheck, TlsState};
use ferrocore_server::{ConnectionHandler, RunningServer, ServeFlags, ServerOptions, Settings};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Parser)]
pub struct Cli {
    #[command(flatten)]
    pub flags: ServeFlags,
}

pub fn must<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Serves `handler` on `settings`' listeners (written to `listeners.json`) with `identity`'s
/// certificate, `client_check` deciding client certificates.
pub fn serve(
    settings: &Settings,
    identity: &ServerIdentity,
    handler: Arc<dyn ConnectionHandler>,
    client_check: impl ClientCertCheck,
) -> (RunningServer, Arc<TlsState>) {
    let tls = Arc::new(must(TlsState::new(identity, client_check), "tls"));
    let bound = must(ferrocore_server::bind_all(&settings.listeners), "bind");
    must(
        bound.write_listeners_json(&settings.data_dir),
        "listeners.json",
    );
    let server = must(
        bound.start(
            handler,
            Some(tls.clone()),
            ServerOptions::from_settings(settings),
        ),
        "start",
    );
    (server, tls)
}

/// Trust in the server's root CA (`root-ca.pem` in `data_dir`).
pub fn root_store(data_dir: &Path) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    let root = must(
        CertificateDer::from_pem_file(data_dir.join("root-ca.pem")),
        "root-ca.pem",
    );
    must(roots.add(root), "root");
    Arc::new(roots)
}
