//! `ferrocore`: the gateway binary (`serve`) and its load generator (`bench`).

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
    /// Generate MQTT load against a broker and report throughput and latency.
    Bench(Box<bench::BenchArgs>),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Bench(args) => bench::run(*args),
    }
}
