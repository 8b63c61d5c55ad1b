//! Group-commit throughput of the store on the persistent-session publish path.
//!
//! `cargo run --release -p ferrocore-store --features testing --example store_bench -- [messages] [tasks] [process|fsync] [payload bytes] [offline|online]`
//!
//! `offline`: each message is one `PutOutbound` (the subscriber is offline); `online`: it is
//! also sent and acknowledged (`SetOutboundState`, `DeleteOutbound`), three operations.

use ferrocore_store::{Durability, Store, conformance::put_outbound_load};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let ops: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let tasks: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let durability = match args.next().as_deref() {
        None | Some("process") => Durability::Process,
        Some("fsync") => Durability::Fsync,
        Some(other) => return Err(format!("durability {other:?}: process or fsync").into()),
    };
    let payload: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(64);
    let online = match args.next().as_deref() {
        None | Some("offline") => false,
        Some("online") => true,
        Some(other) => return Err(format!("mode {other:?}: offline or online").into()),
    };
    let dir = tempfile::tempdir()?;
    let store = Store::open_sqlite(&dir.path().join("bench.sqlite"), durability).await?;
    let (ops, secs, stats) = put_outbound_load(&store, tasks, ops, payload, online).await;
    println!(
        "{durability:?}, {}: {ops} messages ({payload}-byte payloads) from {tasks} tasks awaiting each PutOutbound: \
         {secs:.3} s, {:.0} messages/s, {:.0} ops/s, {} group commits = {:.0} commits/s, {:.1} ops per commit",
        if online { "online" } else { "offline" },
        ops as f64 / secs,
        stats.ops_committed as f64 / secs,
        stats.groups_committed,
        stats.groups_committed as f64 / secs,
        stats.ops_committed as f64 / stats.groups_committed.max(1) as f64,
    );
    store.close().await?;
    Ok(())
}
