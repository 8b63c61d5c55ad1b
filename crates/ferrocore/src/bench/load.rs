//! Throughput scenarios (fan-in, fan-out, point-to-point): one tokio task per publisher and per
//! subscriber, each owning its socket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use ferrocore_mqtt::{Packet, ProtocolVersion, PubResp, QoS};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::sleep_until;

use super::conn::{Client, Dialer, MAX_PACKET, PublishTemplate, Stream, packet_name, read_u64};
use super::pace::Pacer;
use super::stats::{self, Counts, Percentiles, instant_at, now_ns};

/// Unthrottled publishers write this many PUBLISH packets per `write()`.
pub const BATCH: usize = 32;

/// The phases of a run on the bench clock (ns): publishing starts at `t0`, the measurement
/// window is `[w0, w1)`, publishers stop producing at `w1`, everything ends at `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    pub t0: u64,
    pub w0: u64,
    pub w1: u64,
    pub end: u64,
}

impl Timeline {
    pub fn new(t0: u64, warmup: Duration, duration: Duration, drain: Duration) -> Timeline {
        let w0 = t0 + warmup.as_nanos() as u64;
        let w1 = w0 + duration.as_nanos() as u64;
        Timeline {
            t0,
            w0,
            w1,
            end: w1 + drain.as_nanos() as u64,
        }
    }

    pub fn in_window(&self, t: u64) -> bool {
        t >= self.w0 && t < self.w1
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Go {
    Wait,
    Start(Timeline),
    Abort,
}

/// Counters the progress bar reads while the run goes on, and the shared latency histogram.
pub struct Shared {
    pub sent: AtomicU64,
    pub recv: AtomicU64,
    pub errors: AtomicU64,
    pub ready: AtomicU64,
    pub hist: Mutex<Histogram<u64>>,
    /// Written into payload bytes 8..16 so subscribers ignore other runs' messages.
    pub tag: u64,
}

impl Shared {
    pub fn new(tag: u64) -> Shared {
        Shared {
            sent: AtomicU64::new(0),
            recv: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            hist: Mutex::new(stats::latency_histogram()),
            tag,
        }
    }
}

/// What every client of a timed run shares: how to connect, the QoS, the pace, the phases.
pub struct RunSpec {
    pub dialer: Arc<Dialer>,
    /// QoS of the publishes and the subscriptions.
    pub qos: QoS,
    /// Unacknowledged QoS 1/2 publishes per publisher, or updates awaiting an answer per thing.
    pub inflight: u16,
    /// Total publishes per second over all publishers; 0 = unthrottled.
    pub rate: u64,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
    pub connect_concurrency: usize,
}

/// What a throughput scenario needs to know.
pub struct LoadSpec {
    pub run: RunSpec,
    pub payload_size: usize,
    /// Topic of each publisher.
    pub pub_topics: Vec<String>,
    /// Filter of each subscriber.
    pub sub_filters: Vec<String>,
    pub fanout: u64,
    pub client_id_prefix: String,
}

/// The outcome of a timed run, with the scenario's counts.
#[derive(Debug, Default)]
pub struct RunOutcome<C> {
    pub counts: C,
    /// Of the messages (or answers) timed, sent in the window.
    pub latency: Percentiles,
    pub timeline: Option<Timeline>,
    pub errors: Vec<String>,
    pub setup_failed: bool,
}

pub type LoadOutcome = RunOutcome<Counts>;

impl<C> RunOutcome<C> {
    /// The same outcome with other counts, made from these by `f`, which may add errors.
    pub fn map<D>(self, f: impl FnOnce(C, &mut Vec<String>) -> D) -> RunOutcome<D> {
        let mut errors = self.errors;
        let counts = f(self.counts, &mut errors);
        RunOutcome {
            counts,
            latency: self.latency,
            timeline: self.timeline,
            errors,
            setup_failed: self.setup_failed,
        }
    }
}

#[derive(Debug, Default)]
struct TaskOutcome {
    sent_window: u64,
    delivered_window: u64,
    matched: u64,
    error: Option<String>,
}

/// Hooks the caller runs at the window edges (CPU / RSS sampling) and for progress.
pub trait Observer: Send {
    fn setup_progress(&mut self, ready: u64, total: u64);
    fn started(&mut self, tl: Timeline);
    fn window_start(&mut self);
    fn window_end(&mut self);
}

pub async fn run(spec: LoadSpec, shared: Arc<Shared>, obs: &mut dyn Observer) -> LoadOutcome {
    let spec = Arc::new(spec);
    let n_pub = spec.pub_topics.len();
    let n_sub = spec.sub_filters.len();
    let mut crew = Crew::new(&spec.run, shared.clone(), n_pub + n_sub);
    // Subscribers first, so that they are all subscribed before anything is published.
    for i in 0..n_sub {
        let shared = shared.clone();
        crew.spawn(
            format!("{}-s{i}", spec.client_id_prefix),
            vec![spec.sub_filters[i].clone()],
            move |client, tl| async move { subscriber(client, tl, &shared).await },
        );
    }
    for i in 0..n_pub {
        let client_id = format!("{}-p{i}", spec.client_id_prefix);
        let (spec, shared) = (spec.clone(), shared.clone());
        crew.spawn(client_id, Vec::new(), move |client, tl| async move {
            publisher(client, &spec, i, tl, &shared).await
        });
    }
    crew.run(obs).await.map(|tasks, errors| {
        let mut counts = Counts {
            fanout: spec.fanout,
            window: spec.run.duration,
            ..Counts::default()
        };
        for t in tasks {
            counts.sent_window += t.sent_window;
            counts.delivered_window += t.delivered_window;
            counts.delivered_of_window_sends += t.matched;
            errors.extend(t.error);
        }
        counts
    })
}

/// The client tasks of a run and the phases they share: each task connects and subscribes (at
/// most `connect_concurrency` at a time) and says it is ready; when all are, the timeline
/// starts and every task runs its body, which ends by itself at the end of the timeline.
pub struct Crew<T> {
    dialer: Arc<Dialer>,
    qos: QoS,
    phases: (Duration, Duration, Duration),
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    go_tx: watch::Sender<Go>,
    ready_tx: mpsc::Sender<Result<(), String>>,
    ready_rx: mpsc::Receiver<Result<(), String>>,
    handles: Vec<JoinHandle<T>>,
}

impl<T: Default + Send + 'static> Crew<T> {
    /// A crew of `size` clients (the size only bounds the setup channel).
    pub fn new(spec: &RunSpec, shared: Arc<Shared>, size: usize) -> Crew<T> {
        let (ready_tx, ready_rx) = mpsc::channel(size.max(1));
        Crew {
            dialer: spec.dialer.clone(),
            qos: spec.qos,
            phases: (spec.warmup, spec.duration, spec.drain),
            shared,
            permits: Arc::new(Semaphore::new(spec.connect_concurrency)),
            go_tx: watch::channel(Go::Wait).0,
            ready_tx,
            ready_rx,
            handles: Vec::with_capacity(size),
        }
    }

    /// Adds client `client_id`, subscribed to `filters` (at the crew's QoS), that runs `body`
    /// once the run starts.
    pub fn spawn<F, Fut>(&mut self, client_id: String, filters: Vec<String>, body: F)
    where
        F: FnOnce(Client, Timeline) -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send,
    {
        let index = self.handles.len();
        let (dialer, shared, permits) = (
            self.dialer.clone(),
            self.shared.clone(),
            self.permits.clone(),
        );
        let (qos, ready, go) = (self.qos, self.ready_tx.clone(), self.go_tx.subscribe());
        self.handles.push(tokio::spawn(async move {
            let setup = Setup {
                dialer: &dialer,
                qos,
                permits: &permits,
                shared: &shared,
                ready: &ready,
            };
            let Some(client) = setup.client(index, &client_id, &filters).await else {
                return T::default();
            };
            drop(ready);
            let Some(tl) = wait_go(go).await else {
                return T::default();
            };
            body(client, tl).await
        }));
    }

    /// Starts the timeline 20 ms after every client is ready, has `obs` sample the window's
    /// edges, and collects the outcome of every task that ends in time, with the latency the
    /// tasks recorded. When a setup fails the run is called off.
    pub async fn run(self, obs: &mut dyn Observer) -> RunOutcome<Vec<T>> {
        let Crew {
            phases: (warmup, duration, drain),
            shared,
            go_tx,
            ready_tx,
            mut ready_rx,
            handles,
            ..
        } = self;
        drop(ready_tx);
        let total = handles.len();
        let mut out = RunOutcome {
            counts: Vec::with_capacity(total),
            ..RunOutcome::default()
        };
        let mut ready = 0;
        while ready + out.errors.len() < total {
            match ready_rx.recv().await {
                Some(Ok(())) => ready += 1,
                Some(Err(e)) => out.errors.push(e),
                None => break,
            }
            obs.setup_progress(ready as u64, total as u64);
        }
        if ready < total {
            out.setup_failed = true;
            let _ = go_tx.send(Go::Abort);
            for h in handles {
                let _ = h.await;
            }
            if out.errors.is_empty() {
                out.errors.push("setup ended early".into());
            }
            return out;
        }

        let tl = Timeline::new(now_ns() + 20_000_000, warmup, duration, drain);
        out.timeline = Some(tl);
        let _ = go_tx.send(Go::Start(tl));
        obs.started(tl);
        sleep_until(instant_at(tl.w0)).await;
        obs.window_start();
        sleep_until(instant_at(tl.w1)).await;
        obs.window_end();

        // Every task ends by itself at `end` (+1 s for DISCONNECT); this bound is a backstop.
        let deadline = instant_at(tl.end) + Duration::from_secs(5);
        for h in handles {
            let abort = h.abort_handle();
            match tokio::time::timeout_at(deadline, h).await {
                Ok(Ok(t)) => out.counts.push(t),
                Ok(Err(e)) => out.errors.push(format!("task failed: {e}")),
                Err(_) => {
                    abort.abort();
                    out.errors.push("task did not end in time; aborted".into());
                }
            }
        }
        out.latency = Percentiles::of(&shared.hist.lock().unwrap_or_else(|e| e.into_inner()));
        out
    }
}

/// What a client task needs to connect, subscribe and say it is ready.
struct Setup<'a> {
    dialer: &'a Dialer,
    qos: QoS,
    permits: &'a Semaphore,
    shared: &'a Shared,
    ready: &'a mpsc::Sender<Result<(), String>>,
}

impl Setup<'_> {
    async fn client(&self, index: usize, client_id: &str, filters: &[String]) -> Option<Client> {
        let res = async {
            let _permit = self.permits.acquire().await?;
            let mut c = self.dialer.connect(index, client_id).await?;
            for f in filters {
                c.subscribe(f, self.qos, self.dialer.timeout).await?;
            }
            anyhow::Ok(c)
        }
        .await;
        match res {
            Ok(c) => {
                self.shared.ready.fetch_add(1, Ordering::Relaxed);
                let _ = self.ready.send(Ok(())).await;
                Some(c)
            }
            Err(e) => {
                self.shared.errors.fetch_add(1, Ordering::Relaxed);
                let _ = self.ready.send(Err(format!("{client_id}: {e:#}"))).await;
                None
            }
        }
    }
}

async fn wait_go(mut go: watch::Receiver<Go>) -> Option<Timeline> {
    loop {
        match *go.borrow_and_update() {
            Go::Start(tl) => return Some(tl),
            Go::Abort => return None,
            Go::Wait => {}
        }
        go.changed().await.ok()?;
    }
}

/// A task's latency samples (ns), added to the shared histogram in bulk so that tasks seldom
/// take its lock.
#[derive(Default)]
pub struct Samples(Vec<u64>);

impl Samples {
    const BULK: usize = 4096;

    pub fn record(&mut self, ns: u64) {
        self.0.push(ns);
    }

    pub fn flush_if_full(&mut self, shared: &Shared) {
        if self.0.len() >= Samples::BULK {
            self.flush(shared);
        }
    }

    pub fn flush(&mut self, shared: &Shared) {
        if self.0.is_empty() {
            return;
        }
        let mut h = shared.hist.lock().unwrap_or_else(|e| e.into_inner());
        for &v in &self.0 {
            h.saturating_record(v);
        }
        self.0.clear();
    }
}

/// Packet ids in use by a publisher (QoS 1/2), so an id is never reused while unacknowledged.
pub struct InflightIds {
    bits: Vec<u64>,
    next: u16,
    count: usize,
}

impl Default for InflightIds {
    fn default() -> Self {
        InflightIds {
            bits: vec![0; 1024],
            next: 1,
            count: 0,
        }
    }
}

impl InflightIds {
    pub fn count(&self) -> usize {
        self.count
    }

    /// The next free id (never 0), or `None` when all 65,535 are in use.
    pub fn alloc(&mut self) -> Option<u16> {
        if self.count >= u16::MAX as usize {
            return None;
        }
        loop {
            let id = self.next;
            self.next = if self.next == u16::MAX {
                1
            } else {
                self.next + 1
            };
            let (w, b) = (id as usize / 64, id as usize % 64);
            if self.bits[w] & (1 << b) == 0 {
                self.bits[w] |= 1 << b;
                self.count += 1;
                return Some(id);
            }
        }
    }

    /// Frees `id`; false if it was not in use (a duplicate or stray acknowledgement).
    pub fn release(&mut self, id: u16) -> bool {
        let (w, b) = (id as usize / 64, id as usize % 64);
        if id == 0 || self.bits[w] & (1 << b) == 0 {
            return false;
        }
        self.bits[w] &= !(1 << b);
        self.count -= 1;
        true
    }
}

pub fn encode_ack(
    kind: fn(PubResp) -> Packet,
    packet_id: u16,
    version: ProtocolVersion,
    out: &mut BytesMut,
) {
    let p = kind(PubResp {
        packet_id,
        ..Default::default()
    });
    // Acks of a valid id always encode.
    let _ = ferrocore_mqtt::encode(&p, version, out);
}

pub struct Io {
    pub rd: ReadHalf<Stream>,
    pub wr: WriteHalf<Stream>,
    pub rbuf: BytesMut,
    pub wbuf: BytesMut,
    pub version: ProtocolVersion,
    /// TLS may hold written bytes until flushed.
    pub needs_flush: bool,
}

impl Io {
    pub fn new(c: Client, wcap: usize) -> Io {
        let (rd, wr) = tokio::io::split(c.stream);
        let mut rbuf = c.rbuf;
        rbuf.reserve(64 * 1024);
        Io {
            rd,
            wr,
            rbuf,
            wbuf: BytesMut::with_capacity(wcap),
            version: c.version,
            needs_flush: false,
        }
    }

    /// Accounts for the result of [`write_or_flush`].
    pub fn advance(&mut self, written: Option<usize>) -> anyhow::Result<()> {
        match written {
            Some(0) => anyhow::bail!("write returned 0"),
            Some(n) => {
                self.wbuf.advance(n);
                self.needs_flush = true;
            }
            None => self.needs_flush = false,
        }
        Ok(())
    }

    /// Best-effort DISCONNECT, bounded.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let mut b = BytesMut::new();
            let _ = ferrocore_mqtt::encode(
                &Packet::Disconnect(Default::default()),
                self.version,
                &mut b,
            );
            let _ = self.wr.write_all(&b).await;
            let _ = self.wr.shutdown().await;
        })
        .await;
    }
}

/// Messages of one batch (all stamped `ts`) at the front of the write buffer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Batch {
    n: u64,
    ts: u64,
    bytes: usize,
    counted: u64,
}

impl Batch {
    /// Records `w` more bytes written; returns how many messages that completed.
    fn written(&mut self, w: usize, msg_len: usize) -> u64 {
        self.bytes += w;
        let done = ((self.bytes / msg_len.max(1)) as u64).min(self.n);
        let new = done - self.counted;
        self.counted = done;
        new
    }
}

/// Writes from `wbuf` (`Some(bytes written)`), or flushes when it is empty (`None`).
pub async fn write_or_flush(
    wr: &mut WriteHalf<Stream>,
    wbuf: &[u8],
) -> std::io::Result<Option<usize>> {
    if wbuf.is_empty() {
        wr.flush().await.map(|()| None)
    } else {
        wr.write(wbuf).await.map(Some)
    }
}

async fn publisher(
    client: Client,
    spec: &LoadSpec,
    index: usize,
    tl: Timeline,
    shared: &Shared,
) -> TaskOutcome {
    let template = match PublishTemplate::new(
        &spec.pub_topics[index],
        spec.run.qos,
        spec.payload_size,
        client.version,
    ) {
        Ok(t) => t,
        Err(e) => {
            return TaskOutcome {
                error: Some(format!("publisher {index}: {e:#}")),
                ..Default::default()
            };
        }
    };
    let mut window = spec.run.inflight as usize;
    if let Some(m) = client.server_receive_max {
        window = window.min(m as usize);
    }
    let pacer = (spec.run.rate > 0).then(|| {
        Pacer::new(
            tl.t0,
            spec.run.rate,
            spec.pub_topics.len() as u64,
            index as u64,
        )
    });
    let mut io = Io::new(client, template.len() * BATCH + 64);
    let mut ids = InflightIds::default();
    let mut out = TaskOutcome::default();
    let mut produced: u64 = 0;
    // The batch at the front of `wbuf`: each message counts as sent once fully written.
    let mut batch = Batch::default();
    let msg_len = template.len();
    let qos0 = spec.run.qos == QoS::AtMostOnce;
    let end = instant_at(tl.end);

    sleep_until(instant_at(tl.t0)).await;
    let result: anyhow::Result<()> = async {
        loop {
            let now = now_ns();
            if now >= tl.end {
                return Ok(());
            }
            let mut wake = tl.end;
            if io.wbuf.is_empty() && now < tl.w1 {
                let space = if qos0 { BATCH } else { window.saturating_sub(ids.count()) };
                let mut n = space.min(BATCH);
                if let Some(p) = &pacer {
                    let next_due;
                    (n, next_due) = p.limit(n, produced, now);
                    if let Some(t) = next_due {
                        wake = t.min(tl.w1);
                    }
                } else if n == 0 {
                    wake = tl.w1; // window full: woken by acknowledgements
                }
                if n > 0 {
                    let ts = now_ns();
                    for _ in 0..n {
                        let id = if qos0 { 0 } else { ids.alloc().unwrap_or(0) };
                        template.append(&mut io.wbuf, ts, shared.tag, id);
                    }
                    produced += n as u64;
                    batch = Batch { n: n as u64, ts, ..Batch::default() };
                }
            }
            io.rbuf.reserve(16 * 1024);
            tokio::select! {
                r = io.rd.read_buf(&mut io.rbuf) => {
                    if r? == 0 {
                        anyhow::bail!("connection closed by the broker");
                    }
                    while let Some(p) = ferrocore_mqtt::decode(&mut io.rbuf, Some(io.version), MAX_PACKET)? {
                        match p {
                            Packet::PubAck(a) | Packet::PubComp(a) => {
                                ids.release(a.packet_id);
                            }
                            Packet::PubRec(a) => {
                                encode_ack(Packet::PubRel, a.packet_id, io.version, &mut io.wbuf);
                            }
                            Packet::PingResp => {}
                            Packet::Disconnect(d) => anyhow::bail!("DISCONNECT from broker, reason {:#04x}", d.reason),
                            other => anyhow::bail!("publisher got unexpected {}", packet_name(&other)),
                        }
                    }
                }
                w = write_or_flush(&mut io.wr, &io.wbuf), if !io.wbuf.is_empty() || io.needs_flush => {
                    let w = w?;
                    io.advance(w)?;
                    let done = batch.written(w.unwrap_or(0), msg_len);
                    if done > 0 {
                        shared.sent.fetch_add(done, Ordering::Relaxed);
                        if tl.in_window(batch.ts) {
                            out.sent_window += done;
                        }
                    }
                }
                _ = sleep_until(instant_at(wake)) => {}
                _ = sleep_until(end) => return Ok(()),
            }
        }
    }
    .await;
    if let Err(e) = result {
        shared.errors.fetch_add(1, Ordering::Relaxed);
        out.error = Some(format!("publisher {index}: {e:#}"));
    }
    io.close().await;
    out
}

async fn subscriber(client: Client, tl: Timeline, shared: &Shared) -> TaskOutcome {
    let mut io = Io::new(client, 4096);
    let mut out = TaskOutcome::default();
    let mut samples = Samples::default();
    let end = instant_at(tl.end);
    let result: anyhow::Result<()> = async {
        // Messages that arrive before `start` (a persistent session's backlog) are read but
        // not counted.
        loop {
            io.rbuf.reserve(64 * 1024);
            tokio::select! {
                r = io.rd.read_buf(&mut io.rbuf) => {
                    if r? == 0 {
                        anyhow::bail!("connection closed by the broker");
                    }
                    let now = now_ns();
                    let mut got = 0u64;
                    while let Some(p) = ferrocore_mqtt::decode(&mut io.rbuf, Some(io.version), MAX_PACKET)? {
                        match p {
                            Packet::Publish(p) => {
                                match p.qos {
                                    QoS::AtMostOnce => {}
                                    QoS::AtLeastOnce => encode_ack(Packet::PubAck, p.packet_id, io.version, &mut io.wbuf),
                                    QoS::ExactlyOnce => encode_ack(Packet::PubRec, p.packet_id, io.version, &mut io.wbuf),
                                }
                                let Some(ts) = read_u64(&p.payload, 0) else { continue };
                                if p.payload.len() >= 16 && read_u64(&p.payload, 8) != Some(shared.tag) {
                                    continue; // another run's message
                                }
                                got += 1;
                                if tl.in_window(now) {
                                    out.delivered_window += 1;
                                }
                                if tl.in_window(ts) {
                                    out.matched += 1;
                                    samples.record(now.saturating_sub(ts));
                                }
                            }
                            Packet::PubRel(r) => encode_ack(Packet::PubComp, r.packet_id, io.version, &mut io.wbuf),
                            Packet::PingResp => {}
                            Packet::Disconnect(d) => anyhow::bail!("DISCONNECT from broker, reason {:#04x}", d.reason),
                            other => anyhow::bail!("subscriber got unexpected {}", packet_name(&other)),
                        }
                    }
                    shared.recv.fetch_add(got, Ordering::Relaxed);
                    samples.flush_if_full(shared);
                }
                w = write_or_flush(&mut io.wr, &io.wbuf), if !io.wbuf.is_empty() || io.needs_flush => {
                    io.advance(w?)?;
                }
                _ = sleep_until(end) => return Ok(()),
            }
        }
    }
    .await;
    samples.flush(shared);
    if let Err(e) = result {
        shared.errors.fetch_add(1, Ordering::Relaxed);
        out.error = Some(format!("subscriber: {e:#}"));
    }
    io.close().await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_window() {
        let tl = Timeline::new(
            100,
            Duration::from_nanos(10),
            Duration::from_nanos(50),
            Duration::from_nanos(5),
        );
        assert_eq!((tl.w0, tl.w1, tl.end), (110, 160, 165));
        assert!(!tl.in_window(109));
        assert!(tl.in_window(110));
        assert!(tl.in_window(159));
        assert!(!tl.in_window(160));
    }

    #[test]
    fn batch_counts_whole_messages_written() {
        let mut b = Batch {
            n: 3,
            ts: 1,
            ..Batch::default()
        };
        assert_eq!(b.written(50, 100), 0);
        assert_eq!(b.written(60, 100), 1);
        assert_eq!(b.written(190, 100), 2);
        // Trailing PUBRELs after the batch complete no further message.
        assert_eq!(b.written(8, 100), 0);
    }

    #[test]
    fn inflight_ids_never_reuse_an_unacked_id() {
        let mut ids = InflightIds::default();
        let first = ids.alloc();
        assert_eq!(first, Some(1));
        // Ack everything but id 1, through a full wrap of the id space.
        for _ in 0..70_000 {
            let id = ids.alloc().expect("free id");
            assert_ne!(id, 0);
            assert_ne!(id, 1);
            assert!(ids.release(id));
        }
        assert_eq!(ids.count(), 1);
        assert!(!ids.release(2), "double release");
        assert!(ids.release(1));
        assert_eq!(ids.count(), 0);
        // Exhaustion.
        for _ in 0..u16::MAX {
            assert!(ids.alloc().is_some());
        }
        assert_eq!(ids.alloc(), None);
    }
}
