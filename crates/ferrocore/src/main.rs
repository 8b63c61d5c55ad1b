//! `ferrocore`: the gateway binary (`serve`), its admin commands (`thing`, `cert`, `ca`,
//! `policy`) and its load generator (`bench`).

mod admin;
mod bench;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ferrocore",
    version,
    about = "Self-hosted secure IoT gateway compatible with AWS IoT Core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(Box<serve::ServeArgs>),
    /// Things: create devices (one or from a CSV) with their certificate and files, list,
    /// describe, delete. Talks to a running server.
    Thing(Box<admin::ThingArgs>),
    /// Device certificates: list, describe, activate, deactivate, revoke. Talks to a running
    /// server.
    Cert(Box<admin::CertArgs>),
    /// CA certificates: list, describe, set or clear a CRL. Talks to a running server.
    Ca(Box<admin::CaArgs>),
    /// IoT policies: explain a decision (which statement allows or denies, for a certificate,
    /// a thing or policy files) and lint policy documents.
    Policy(Box<admin::PolicyArgs>),
    /// Add, update (argon2id) or delete a user of a password file for the built-in `password`
    /// authorizer (Mosquitto's format), like mosquitto_passwd. Edits the file locally.
    Passwd(Box<admin::PasswdArgs>),
    /// Server certificates of domain configurations: import (prints the ACM ARN for
    /// serverCertificateArns; --arn replaces one without a restart), list, delete. Talks to a
    /// running server.
    ServerCert(Box<admin::ServerCertArgs>),
    /// Generate MQTT load against a broker and report throughput and latency.
    Bench(Box<bench::BenchArgs>),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Bench(args) => bench::run(*args),
        Command::Thing(args) => admin::run_thing(*args),
        Command::Cert(args) => admin::run_cert(*args),
        Command::Ca(args) => admin::run_ca(*args),
        Command::Policy(args) => admin::run_policy(*args),
        Command::ServerCert(args) => admin::run_server_cert(*args),
        Command::Passwd(args) => admin::run_passwd(*args),
    }
}
