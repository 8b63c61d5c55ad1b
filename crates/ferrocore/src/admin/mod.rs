//! Admin commands: `ferrocore thing ...`, `ferrocore cert ...`, `ferrocore ca ...`,
//! `ferrocore policy ...`.
//!
//! Every command is a SigV4-signed HTTPS request to a running server's `iot` control plane
//! (never a read of its database), so a change made here raises the same events as one made
//! with the AWS CLI. Where the server is and which key signs: see [`config`].

mod certs;
mod client;
mod config;
mod csv;
mod device;
mod ops;
mod output;
mod passwd;
mod policy;
mod server_cert;
mod things;

use std::future::Future;

use clap::Subcommand;

pub use config::ConnFlags;
pub use passwd::PasswdArgs;
pub use policy::PolicyArgs;
pub use server_cert::{ServerCertArgs, run_server_cert};

use client::{CallError, Client};

#[derive(clap::Args)]
pub struct ThingArgs {
    #[command(subcommand)]
    command: ThingCommand,
    #[command(flatten)]
    conn: ConnFlags,
}

#[derive(Subcommand)]
enum ThingCommand {
    /// Create a thing with a new active certificate attached, and write the device's files
    /// (certificate.pem, private.key, root-ca.pem, device.json) into --out.
    Create(things::CreateArgs),
    /// Create one device per row of a CSV file, each into --out/<thingName>/.
    BulkCreate(things::BulkArgs),
    /// List things.
    List(things::ListArgs),
    /// Show a thing.
    Describe {
        name: String,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Delete a thing. Its certificates stay registered (revoke them with `cert revoke`).
    Delete {
        name: String,
        /// First detach the certificates attached to it (the server refuses to delete a thing
        /// that has any).
        #[arg(long)]
        detach: bool,
    },
}

#[derive(clap::Args)]
pub struct CertArgs {
    #[command(subcommand)]
    command: CertCommand,
    #[command(flatten)]
    conn: ConnFlags,
}

#[derive(Subcommand)]
enum CertCommand {
    /// List device certificates.
    List {
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show a certificate (ID or a unique prefix of it).
    Describe {
        id: String,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
        /// Print only the certificate PEM.
        #[arg(long, conflicts_with = "json")]
        pem: bool,
    },
    /// Set a certificate ACTIVE: devices may connect with it.
    Activate { id: String },
    /// Set a certificate INACTIVE: its devices are refused (and disconnected).
    Deactivate { id: String },
    /// Set a certificate REVOKED: its devices are refused (and disconnected).
    Revoke { id: String },
}

#[derive(clap::Args)]
pub struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
    #[command(flatten)]
    conn: ConnFlags,
}

#[derive(Subcommand)]
enum CaCommand {
    /// List registered CA certificates.
    List {
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Show a CA certificate (ID or a unique prefix of it).
    Describe {
        id: String,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// The certificate revocation list checked for devices this CA issued (a Ferrocore
    /// extension of the API).
    #[command(subcommand)]
    Crl(CrlCommand),
}

#[derive(Subcommand)]
enum CrlCommand {
    /// Set the CA's CRL from a PEM file (replaces the previous one).
    Set {
        /// CA certificate ID (or a unique prefix).
        ca_id: String,
        /// PEM file with one X509 CRL signed by the CA.
        file: std::path::PathBuf,
    },
    /// Show the CA's CRL: when it was issued, its next update, how many certificates it
    /// revokes.
    Show {
        /// CA certificate ID (or a unique prefix).
        ca_id: String,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
        /// Print only the CRL PEM.
        #[arg(long, conflicts_with = "json")]
        pem: bool,
    },
    /// Remove the CA's CRL.
    Clear {
        /// CA certificate ID (or a unique prefix).
        ca_id: String,
    },
}

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Said as `error: <message>`.
    Message(String),
    /// Already reported (e.g. per-row errors of a bulk run); just exit non-zero.
    Reported,
}

impl From<String> for Failure {
    fn from(m: String) -> Failure {
        Failure::Message(m)
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        Failure::Message(e.to_string())
    }
}

pub fn run_thing(args: ThingArgs) -> ! {
    let conn = args.conn.clone();
    run(&conn, move |client, settings| async move {
        match args.command {
            ThingCommand::Create(a) => things::create(&client, &settings, a).await,
            ThingCommand::BulkCreate(a) => things::bulk_create(&client, &settings, a).await,
            ThingCommand::List(a) => things::list(&client, a).await,
            ThingCommand::Describe { name, json } => things::describe(&client, &name, json).await,
            ThingCommand::Delete { name, detach } => things::delete(&client, &name, detach).await,
        }
    })
}

pub fn run_cert(args: CertArgs) -> ! {
    let conn = args.conn.clone();
    run(&conn, move |client, _| async move {
        match args.command {
            CertCommand::List { json } => certs::list(&client, json).await,
            CertCommand::Describe { id, json, pem } => {
                certs::describe(&client, &id, json, pem).await
            }
            CertCommand::Activate { id } => certs::set_status(&client, &id, "ACTIVE").await,
            CertCommand::Deactivate { id } => certs::set_status(&client, &id, "INACTIVE").await,
            CertCommand::Revoke { id } => certs::set_status(&client, &id, "REVOKED").await,
        }
    })
}

pub fn run_ca(args: CaArgs) -> ! {
    let conn = args.conn.clone();
    run(&conn, move |client, _| async move {
        match args.command {
            CaCommand::List { json } => certs::ca_list(&client, json).await,
            CaCommand::Describe { id, json } => certs::ca_describe(&client, &id, json).await,
            CaCommand::Crl(CrlCommand::Set { ca_id, file }) => {
                certs::crl_set(&client, &ca_id, &file).await
            }
            CaCommand::Crl(CrlCommand::Show { ca_id, json, pem }) => {
                certs::crl_show(&client, &ca_id, json, pem).await
            }
            CaCommand::Crl(CrlCommand::Clear { ca_id }) => certs::crl_clear(&client, &ca_id).await,
        }
    })
}

/// Runs a `ferrocore policy` command and exits with its status: 0 allowed / clean, 1 denied /
/// findings, 2 with one `error: ...` line when it could not run (as `grep` and `diff`).
pub fn run_policy(args: PolicyArgs) -> ! {
    let result = policy::run(args);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    match result {
        Ok(code) => std::process::exit(code),
        Err(Failure::Message(m)) => {
            eprintln!("error: {m}");
            std::process::exit(2)
        }
        Err(Failure::Reported) => std::process::exit(2),
    }
}

/// Runs `ferrocore passwd` and exits: 0 on success, 1 with one `error: ...` line.
pub fn run_passwd(args: PasswdArgs) -> ! {
    match passwd::run(args) {
        Ok(()) => std::process::exit(0),
        Err(Failure::Message(m)) => {
            eprintln!("error: {m}");
            std::process::exit(1)
        }
        Err(Failure::Reported) => std::process::exit(1),
    }
}

/// Resolves the connection, runs `command` on a small runtime, and exits: 0 on success, 1
/// with one `error: ...` line on failure.
fn run<F, Fut>(conn: &ConnFlags, command: F) -> !
where
    F: FnOnce(Client, config::Connection) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let result = (|| {
        let settings = config::resolve(conn, &config::Env::from_process())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        runtime.block_on(async {
            let client = Client::new(&settings)?;
            command(client, settings).await
        })
    })();
    let _ = std::io::Write::flush(&mut std::io::stdout());
    match result {
        Ok(()) => std::process::exit(0),
        Err(Failure::Message(m)) => {
            eprintln!("error: {m}");
            std::process::exit(1)
        }
        Err(Failure::Reported) => std::process::exit(1),
    }
}
