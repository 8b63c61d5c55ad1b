//! `ferrocore bench`: the load generator.

#[derive(clap::Args)]
pub struct BenchArgs {}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let _ = args;
    anyhow::bail!("not yet")
}
