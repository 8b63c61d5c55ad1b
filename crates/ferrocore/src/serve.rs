//! `ferrocore serve`: settings, logging, the server identity, store, broker and listeners, and
//! a graceful stop on SIGTERM / SIGINT.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ferrocore_api::{ApiConfig, ApiState, DataPlane};
use ferrocore_broker::{Authentication, Broker};
use ferrocore_identity::custom_auth::{AuthorizerInvoker, BuiltInFunctions};
use ferrocore_identity::registry::{Arns, Registry};
use ferrocore_identity::x509::CaSigner;
use ferrocore_server::config::MetricsListen;
use ferrocore_server::custom_auth::{RegistryAuthenticator, watch_authorizers};
use ferrocore_server::devices::{DeviceAuth, DeviceVerifier, watch_registry};
use ferrocore_server::registry_events::publish_registry_events;
use ferrocore_server::tls::TlsState;
use ferrocore_server::{ConnectionHandler, ServeFlags, ServerOptions, Settings};
use ferrocore_server::{ListenerAddress, credentials, identity, metrics};
use ferrocore_shadow::ShadowService;
use ferrocore_store::Store;
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub flags: ServeFlags,
}

/// How long the broker gets to disconnect everyone and flush before the process exits anyway.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let settings = match Settings::from_flags(args.flags) {
        Ok(s) => s,
        Err(e) => fail(e),
    };
    if let Err(e) = init_logging(&settings) {
        fail(e);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("ferrocore")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(settings));
    runtime.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(()) => Ok(()),
        Err(e) => fail(format!("{e:#}")),
    }
}

/// Serves `/metrics` where the settings say. The default address being taken is a warning
/// (metrics are not worth refusing to start over); an address the user chose is an error.
async fn start_metrics(
    metrics: Option<MetricsListen>,
    broker: &Arc<Broker>,
    store: &Store,
) -> anyhow::Result<Option<ListenerAddress>> {
    let Some(m) = metrics else {
        return Ok(None);
    };
    let listener = match tokio::net::TcpListener::bind(m.address).await {
        Ok(l) => l,
        Err(e) if !m.explicit => {
            warn!(address = %m.address, error = %e, "no metrics: the default metrics address is not available (choose one with --listen-metrics, or off)");
            return Ok(None);
        }
        Err(e) => {
            return Err(anyhow::anyhow!(
                "cannot listen for metrics on {}: {e} (choose another with --listen-metrics, or \"off\")",
                m.address
            ));
        }
    };
    let address = listener.local_addr()?;
    let (broker, store) = (broker.clone(), store.clone());
    let router = metrics::router(Arc::new(move || metrics::Snapshot::of(&broker, &store)));
    tokio::spawn(metrics::serve(listener, router));
    Ok(Some(ListenerAddress {
        name: "metrics".into(),
        transport: "metrics".into(),
        address,
        tls: false,
        proxy_protocol: false,
        anonymous: false,
        custom_auth: false,
    }))
}

/// Prints one line and exits non-zero (the default `Error: ...` of `main` would add a
/// backtrace hint and debug formatting).
fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("error: {e}");
    std::process::exit(1)
}

fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let filter = match &settings.log_level {
        Some(level) => EnvFilter::try_new(level)
            .map_err(|e| anyhow::anyhow!("--log-level \"{level}\" is not a log filter ({e})"))?,
        None => match std::env::var("RUST_LOG") {
            Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(&v)
                .map_err(|e| anyhow::anyhow!("RUST_LOG \"{v}\" is not a log filter ({e})"))?,
            _ => EnvFilter::new("info"),
        },
    };
    use std::io::IsTerminal as _;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
    Ok(())
}

/// Raises the soft open-files limit towards the hard one when `max_connections` needs it (as
/// Go's runtime does), and returns the limit in effect.
fn raise_open_files_limit(max_connections: usize) -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let current = limit.current?;
    // Room for the listeners, the database and the runtime.
    let wanted = (max_connections as u64).saturating_add(256);
    if current >= wanted {
        return Some(current);
    }
    let raised = limit.maximum.map_or(wanted, |max| wanted.min(max));
    if raised > current
        && setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(raised),
                maximum: limit.maximum,
            },
        )
        .is_ok()
    {
        return Some(raised);
    }
    Some(current)
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let data_dir = settings.data_dir.clone();
    identity::create_data_dir(&data_dir)?;
    ferrocore_server::remove_listeners_json(&data_dir);

    if settings.dev {
        let open = settings
            .listeners
            .iter()
            .any(|l| l.anonymous && l.anonymous_policy.is_none());
        warn!("==================================================================");
        if open {
            warn!("DEVELOPMENT MODE (--dev): plain MQTT without TLS, and ANONYMOUS");
            warn!("clients may publish and subscribe to ANYTHING. Never in production.");
        } else {
            warn!("DEVELOPMENT MODE (--dev): plain MQTT without TLS for ANONYMOUS");
            warn!("clients (limited by --anonymous-policy). Never in production.");
        }
        warn!("==================================================================");
    }
    for l in settings.listeners.iter().filter(|l| l.anonymous) {
        match &l.anonymous_policy {
            None => {
                warn!(listener = %l.name, address = %l.address, "listener admits anonymous clients with an allow-all policy")
            }
            Some(p) => {
                info!(listener = %l.name, address = %l.address, policy = %p.path.display(), "listener admits anonymous clients with their policy")
            }
        }
    }
    for l in settings
        .listeners
        .iter()
        .filter(|l| l.custom_auth && !l.tls())
    {
        warn!("==================================================================");
        warn!(listener = %l.name, address = %l.address, "PLAIN listener with custom authentication: tokens and PASSWORDS");
        warn!(listener = %l.name, "cross the network IN CLEAR (allow_plaintext_passwords = true).");
        warn!("==================================================================");
    }
    if let Some(limit) = raise_open_files_limit(settings.admission.max_connections)
        && (settings.admission.max_connections as u64) > limit
    {
        info!(
            max_connections = settings.admission.max_connections,
            open_files_limit = limit,
            "the open-files limit caps connections below --max-connections (raise the hard limit, ulimit -Hn, to allow more)"
        );
    }

    let host = identity::host_name();
    let identity = identity::load_or_create(&data_dir, &settings.endpoint_names, host.as_deref())?;
    if identity.created_root {
        info!(root_ca = %identity.root_ca_path().display(), "created a root CA; devices trust this file");
    }
    if identity.issued_server_cert {
        info!(names = ?identity.server_names, "issued a server certificate");
    }
    let (admin, generated) =
        credentials::load_or_create(&data_dir, settings.aws.admin_key.as_ref())?;
    if generated {
        info!(
            credentials = %data_dir.join(credentials::CREDENTIALS_FILE).display(),
            "created admin credentials for the AWS APIs (mode 0600)"
        );
    }
    // Bind before opening the store, so a port in use fails fast.
    let bound = ferrocore_server::bind_all(&settings.listeners)?;

    let store = Store::open_sqlite(&data_dir.join("ferrocore.db"), settings.durability)
        .await
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    let registry = Arc::new(
        Registry::open(
            store.clone(),
            Arns {
                region: settings.aws.region.clone(),
                account_id: settings.aws.account_id.clone(),
            },
        )
        .await
        .context("cannot load the registry")?,
    );
    registry.set_policy_limits(settings.policy_limits);
    // Device certificates: checked against the registry in every TLS handshake and again at
    // MQTT CONNECT; a registry change that makes one fail closes its connections.
    let devices = DeviceAuth::new(registry.clone());
    // Custom authorizers: one invoker (cache, breakers, webhook client) for devices and
    // TestInvokeAuthorizer; a change of an authorizer drops what it knew of it, then
    // re-authenticates the connections it admitted (watch_authorizers, once the broker runs).
    let authorizer_invoker = Arc::new(AuthorizerInvoker::new(
        settings.authorizer_invoker.clone(),
        built_in_functions(&settings, &registry)?,
    ));
    let broker = Broker::start_with_auth(
        settings.broker.clone(),
        store.clone(),
        Authentication {
            certificates: Some(devices.clone()),
            custom: Some(RegistryAuthenticator::new(
                registry.clone(),
                authorizer_invoker.clone(),
                settings
                    .listeners
                    .iter()
                    .filter_map(|l| Some((l.name.clone(), l.default_authorizer.clone()?)))
                    .collect(),
            )),
        },
    )
    .await
    .context("cannot start the broker")?;
    watch_registry(&devices, &broker);
    watch_authorizers(&registry, &authorizer_invoker, &broker);
    publish_registry_events(&registry, &broker);
    let tls = Arc::new(
        TlsState::new(&identity, DeviceVerifier::new(devices, &broker))
            .context("TLS setup failed")?,
    );
    // Domain configurations: certificates by SNI, replaced when the registry changes.
    ferrocore_server::domains::watch_domains(&registry, &tls);
    ferrocore_server::domains::watch_domain_connections(&registry, &broker);
    spawn_tls_reload_on_sighup(
        tls.clone(),
        data_dir.clone(),
        settings.endpoint_names.clone(),
        host.clone(),
    );
    let device_ca_key = std::fs::read(data_dir.join(identity::DEVICE_CA_KEY))
        .context("cannot read the device CA key")?;
    let device_ca = CaSigner::from_pem(identity.device_ca_pem.as_bytes(), &device_ca_key)
        .context("the device CA in the data directory is unusable")?;
    // Device shadows answer their reserved topics from now on, and the HTTPS data plane.
    let shadows = ShadowService::start(&broker, store.clone(), settings.shadow.clone());
    let api = ApiState::new(
        registry.clone(),
        Arc::new(move |key_id: &str| {
            (key_id == admin.access_key_id).then(|| admin.secret_access_key().to_owned())
        }),
        Arc::new(device_ca),
        ApiConfig {
            region: settings.aws.region.clone(),
            account_id: settings.aws.account_id.clone(),
            endpoint_address: settings
                .endpoint_names
                .first()
                .cloned()
                .unwrap_or_else(|| "localhost".to_owned()),
            max_body_bytes: ferrocore_api::DEFAULT_MAX_BODY_BYTES,
        },
    )
    .with_data_plane(DataPlane {
        broker: broker.clone(),
        shadows,
    })
    .with_authorizer_invoker(authorizer_invoker);
    let mut options = ServerOptions::from_settings(&settings);
    options.api = Some(ferrocore_api::router(Arc::new(api)));

    let handler: Arc<dyn ConnectionHandler> = broker.clone();
    let mut running = bound.start(handler, Some(tls), options)?;
    let mut addresses = running.addresses().to_vec();
    addresses.extend(start_metrics(settings.metrics, &broker, &store).await?);
    let endpoint_url = running
        .addresses()
        .iter()
        .find(|l| l.transport == "https")
        .map(|l| {
            let host = settings
                .endpoint_names
                .first()
                .map_or("localhost", String::as_str);
            format!("https://{host}:{}", l.address.port())
        });
    credentials::write_aws_config(
        &data_dir,
        &settings.aws.region,
        endpoint_url.as_deref(),
        &identity.root_ca_path(),
    )?;
    // Last: scripts and tests take listeners.json as the sign that the server is ready.
    ferrocore_server::write_listeners_json(&data_dir, &addresses)?;
    for l in &addresses {
        info!(listener = %l.name, transport = %l.transport, address = %l.address, "listening");
    }
    info!(data_dir = %data_dir.display(), "ferrocore is ready");

    let signal = wait_for_signal()
        .await
        .context("cannot install signal handlers")?;
    info!(signal, "shutting down");
    // A second signal stops at once.
    tokio::spawn(async {
        if wait_for_signal().await.is_ok() {
            eprintln!("error: second signal during shutdown; exiting now");
            std::process::exit(130);
        }
    });

    running.stop_accepting().await;
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, broker.shutdown())
        .await
        .is_err()
    {
        error!("the broker did not finish shutting down in {SHUTDOWN_TIMEOUT:?}");
    }
    let closed = store.close().await;
    ferrocore_server::remove_listeners_json(&data_dir);
    closed.context("closing the store failed")?;
    info!("stopped");
    Ok(())
}

/// SIGHUP loads the server certificate and key from the data directory again (issuing a new
/// one if it nears expiry) and serves it to new connections; open ones keep theirs.
fn spawn_tls_reload_on_sighup(
    tls: Arc<TlsState>,
    data_dir: std::path::PathBuf,
    endpoint_names: Vec<String>,
    host: Option<String>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        warn!("cannot install the SIGHUP handler; certificate reload by signal is off");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let loaded = tokio::task::spawn_blocking({
                let (data_dir, endpoint_names, host) =
                    (data_dir.clone(), endpoint_names.clone(), host.clone());
                move || identity::load_or_create(&data_dir, &endpoint_names, host.as_deref())
            })
            .await;
            match loaded {
                Ok(Ok(id)) => match tls.reload(&id) {
                    Ok(()) => {
                        info!(names = ?id.server_names, issued = id.issued_server_cert, "reloaded the server certificate")
                    }
                    Err(e) => {
                        error!(error = %e, "server certificate reload failed; keeping the old one")
                    }
                },
                Ok(Err(e)) => {
                    error!(error = %e, "server certificate reload failed; keeping the old one")
                }
                Err(e) => {
                    error!(error = %e, "server certificate reload failed; keeping the old one")
                }
            }
        }
    });
}

async fn wait_for_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => Ok("SIGTERM"),
        _ = int.recv() => Ok("SIGINT"),
    }
}

/// The built-in authorizer functions of the configuration (`[[authorizer_function]]`).
fn built_in_functions(
    settings: &Settings,
    registry: &Arc<Registry>,
) -> anyhow::Result<BuiltInFunctions> {
    let mut functions = BuiltInFunctions::new();
    for spec in &settings.authorizer_functions {
        let context = ferrocore_authorizers::FunctionContext {
            registry: Arc::clone(registry),
            base_dir: spec.base_dir.clone(),
        };
        let function = ferrocore_authorizers::build(&spec.kind, &spec.options, &context)
            .map_err(|error| anyhow::anyhow!("{}: {error}", spec.context))?;
        info!(name = %spec.name, kind = %spec.kind, "built-in authorizer function ferrocore:function/{}", spec.name);
        functions.insert(spec.name.clone(), function);
    }
    Ok(functions)
}
