//! Device shadow scenarios: durable shadow updates per second (`shadow-update`: each thing's
//! device publishes `reported` updates and is answered on `update/accepted`) and the latency
//! from a `desired` update to the device's `update/delta` (`shadow-delta`: an app connection per
//! thing publishes `desired` updates, the thing's device listens for deltas).
//!
//! Every request carries its send time in its `clientToken` (`<run tag, 16 hex digits>-<ns>`),
//! which the service echoes in `update/accepted`, `update/rejected` and `update/delta`; so any
//! connection can time an answer, and answers to another run's requests are ignored, without
//! state shared between tasks. The service publishes these answers only once the update is
//! durable in its store, so an accepted answer is a durable update.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use ferrocore_mqtt::{Packet, Publish, QoS};
use tokio::io::AsyncReadExt;
use tokio::time::sleep_until;

use super::conn::{Client, MAX_PACKET, packet_name};
use super::load::{
    Crew, InflightIds, Io, Observer, RunOutcome, RunSpec, Samples, Shared, Timeline, encode_ack,
    write_or_flush,
};
use super::pace::Pacer;
use super::stats::{instant_at, now_ns};

/// Longest rejection answer kept as a sample for the report.
const REJECTION_SAMPLE_BYTES: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowMode {
    /// Devices publish `reported` updates, timed from the publish to `update/accepted`.
    Reported,
    /// Apps publish `desired` updates, timed from the publish to the device's `update/delta`.
    Desired,
}

impl ShadowMode {
    /// The section of the shadow document the updates write.
    pub fn section(self) -> &'static str {
        match self {
            ShadowMode::Reported => "reported",
            ShadowMode::Desired => "desired",
        }
    }

    /// The answer whose latency the scenario measures.
    fn timed(self) -> Answer {
        match self {
            ShadowMode::Reported => Answer::Accepted,
            ShadowMode::Desired => Answer::Delta,
        }
    }
}

/// What a shadow scenario needs to know.
pub struct ShadowSpec {
    /// Its in-flight bound is per thing, its rate is updates per second over all things (0: as
    /// fast as answers free in-flight slots).
    pub run: RunSpec,
    pub mode: ShadowMode,
    /// Thing names, one shadow each; a thing's device connects with its name as client id.
    pub things: Vec<String>,
    /// A named shadow of every thing instead of its classic shadow.
    pub shadow_name: Option<String>,
    /// Update documents are padded to at least this many bytes.
    pub min_document_size: usize,
}

/// The reserved topics of one shadow that the bench uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowTopics {
    pub update: String,
    pub accepted: String,
    pub rejected: String,
    pub delta: String,
}

impl ShadowTopics {
    pub fn new(thing: &str, shadow_name: Option<&str>) -> ShadowTopics {
        let prefix = match shadow_name {
            None => format!("$aws/things/{thing}/shadow"),
            Some(name) => format!("$aws/things/{thing}/shadow/name/{name}"),
        };
        ShadowTopics {
            update: format!("{prefix}/update"),
            accepted: format!("{prefix}/update/accepted"),
            rejected: format!("{prefix}/update/rejected"),
            delta: format!("{prefix}/update/delta"),
        }
    }

    fn answer(&self, topic: &str) -> Option<Answer> {
        if topic == self.accepted {
            Some(Answer::Accepted)
        } else if topic == self.delta {
            Some(Answer::Delta)
        } else if topic == self.rejected {
            Some(Answer::Rejected)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accepted,
    Rejected,
    Delta,
}

/// A request's `clientToken`: the run tag and the send time on the bench clock.
pub fn client_token(tag: u64, sent_ns: u64) -> String {
    format!("{tag:016x}-{sent_ns}")
}

/// The send time in a `clientToken` of the run tagged `tag`; `None` for another run's token or
/// anything else.
pub fn sent_ns_of(token: &str, tag: u64) -> Option<u64> {
    let (t, ns) = token.split_once('-')?;
    if t.len() != 16 || u64::from_str_radix(t, 16).ok()? != tag {
        return None;
    }
    ns.parse().ok()
}

/// The `clientToken` member of an answer document.
fn answer_token(payload: &[u8]) -> Option<Cow<'_, str>> {
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(rename = "clientToken", borrow)]
        client_token: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<Answer>(payload).ok()?.client_token
}

/// An update request, `{"state":{"<section>":{"seq":N}},"clientToken":"…"}`, with a `pad`
/// string in the section when that brings the document to `min_size` bytes.
pub fn update_document(section: &str, seq: u64, token: &str, min_size: usize) -> Vec<u8> {
    let head = format!(r#"{{"state":{{"{section}":{{"seq":{seq}"#);
    let tail = format!(r#"}}}},"clientToken":"{token}"}}"#);
    let mut doc = Vec::with_capacity(min_size.max(head.len() + tail.len()));
    doc.extend_from_slice(head.as_bytes());
    let unpadded = head.len() + tail.len();
    if unpadded < min_size {
        const PAD_OPEN: &[u8] = b",\"pad\":\"";
        // The member costs its opening and a closing quote besides the padding.
        let pad = (min_size - unpadded).saturating_sub(PAD_OPEN.len() + 1);
        doc.extend_from_slice(PAD_OPEN);
        doc.resize(doc.len() + pad, b'x');
        doc.push(b'"');
    }
    doc.extend_from_slice(tail.as_bytes());
    doc
}

/// Update and answer counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowCounts {
    /// Updates sent in the window (stamped in the window and written to the socket).
    pub sent_window: u64,
    /// `update/accepted` answers read during the window.
    pub accepted_window: u64,
    /// Updates sent in the window and accepted by the end of the drain.
    pub accepted_of_window_sends: u64,
    /// Updates sent in the window and rejected by the end of the drain.
    pub rejected_of_window_sends: u64,
    /// `update/delta` messages read during the window.
    pub deltas_window: u64,
    /// Deltas of updates sent in the window, read by the end of the drain.
    pub deltas_of_window_sends: u64,
    /// Updates that had no answer within the answer timeout (their slot was reused).
    pub timed_out: u64,
    /// The first `update/rejected` answer read (at most 200 bytes of it).
    pub rejection: Option<String>,
}

impl ShadowCounts {
    fn add(&mut self, o: &ShadowCounts) {
        self.sent_window += o.sent_window;
        self.accepted_window += o.accepted_window;
        self.accepted_of_window_sends += o.accepted_of_window_sends;
        self.rejected_of_window_sends += o.rejected_of_window_sends;
        self.deltas_window += o.deltas_window;
        self.deltas_of_window_sends += o.deltas_of_window_sends;
        self.timed_out += o.timed_out;
        if self.rejection.is_none() {
            self.rejection.clone_from(&o.rejection);
        }
    }

    /// Counts an answer to an update sent at `sent`, read at `read`.
    fn answered(&mut self, answer: Answer, sent: u64, read: u64, tl: &Timeline) {
        let (by_read, by_send) = match answer {
            Answer::Accepted => (
                Some(&mut self.accepted_window),
                &mut self.accepted_of_window_sends,
            ),
            Answer::Rejected => (None, &mut self.rejected_of_window_sends),
            Answer::Delta => (
                Some(&mut self.deltas_window),
                &mut self.deltas_of_window_sends,
            ),
        };
        if let Some(n) = by_read
            && tl.in_window(read)
        {
            *n += 1;
        }
        if tl.in_window(sent) {
            *by_send += 1;
        }
    }

    /// The answers the scenario times (accepted or deltas) read during the window.
    pub fn timed_window(&self, mode: ShadowMode) -> u64 {
        match mode {
            ShadowMode::Reported => self.accepted_window,
            ShadowMode::Desired => self.deltas_window,
        }
    }

    /// Share of the window's updates whose timed answer had not arrived when the drain ended.
    pub fn unanswered_pct(&self, mode: ShadowMode) -> f64 {
        let got = match mode {
            ShadowMode::Reported => self.accepted_of_window_sends,
            ShadowMode::Desired => self.deltas_of_window_sends,
        };
        if self.sent_window == 0 || got >= self.sent_window {
            0.0
        } else {
            100.0 * (self.sent_window - got) as f64 / self.sent_window as f64
        }
    }
}

pub type ShadowOutcome = RunOutcome<ShadowCounts>;

#[derive(Debug, Default)]
struct ClientOutcome {
    counts: ShadowCounts,
    error: Option<String>,
}

pub async fn run(spec: ShadowSpec, shared: Arc<Shared>, obs: &mut dyn Observer) -> ShadowOutcome {
    let spec = Arc::new(spec);
    let connections_per_thing = match spec.mode {
        ShadowMode::Reported => 1,
        ShadowMode::Desired => 2,
    };
    let mut crew = Crew::new(
        &spec.run,
        shared.clone(),
        spec.things.len() * connections_per_thing,
    );
    for (index, thing) in spec.things.iter().enumerate() {
        let topics = Arc::new(ShadowTopics::new(thing, spec.shadow_name.as_deref()));
        let answers = vec![topics.accepted.clone(), topics.rejected.clone()];
        let (requester_id, requester_filters) = match spec.mode {
            ShadowMode::Reported => (thing.clone(), answers),
            ShadowMode::Desired => {
                let (spec, shared, topics) = (spec.clone(), shared.clone(), topics.clone());
                crew.spawn(
                    thing.clone(),
                    vec![topics.delta.clone()],
                    move |c, tl| async move {
                        shadow_client(c, &spec, &topics, None, tl, &shared).await
                    },
                );
                (format!("{thing}-app"), answers)
            }
        };
        let (spec, shared) = (spec.clone(), shared.clone());
        crew.spawn(requester_id, requester_filters, move |c, tl| async move {
            shadow_client(c, &spec, &topics, Some(index), tl, &shared).await
        });
    }
    crew.run(obs).await.map(|clients, errors| {
        let mut counts = ShadowCounts::default();
        for c in clients {
            counts.add(&c.counts);
            errors.extend(c.error);
        }
        counts
    })
}

/// One connection of a thing: the requester (`requester` = its index among the things)
/// publishes updates, at most `inflight` awaiting an answer, and reads `update/accepted` and
/// `update/rejected`; the device of `shadow-delta` only reads `update/delta`.
async fn shadow_client(
    client: Client,
    spec: &ShadowSpec,
    topics: &ShadowTopics,
    requester: Option<usize>,
    tl: Timeline,
    shared: &Shared,
) -> ClientOutcome {
    let mut io = Io::new(client, 4096);
    let mut out = ClientOutcome::default();
    let mut samples = Samples::default();
    let mut ids = InflightIds::default();
    // Send times of the updates awaiting an answer, oldest first.
    let inflight = spec.run.inflight as usize;
    let mut awaiting: Vec<u64> = Vec::with_capacity(inflight);
    let pacer = requester
        .filter(|_| spec.run.rate > 0)
        .map(|i| Pacer::new(tl.t0, spec.run.rate, spec.things.len() as u64, i as u64));
    let mut produced: u64 = 0;
    // Updates in the write buffer, all stamped `unsent_ts`: sent once the buffer is written.
    let (mut unsent, mut unsent_ts) = (0u64, 0u64);
    let answer_timeout = spec.run.dialer.timeout.as_nanos() as u64;
    let timed = spec.mode.timed();
    let end = instant_at(tl.end);

    sleep_until(instant_at(tl.t0)).await;
    let result: anyhow::Result<()> = async {
        loop {
            let now = now_ns();
            if now >= tl.end {
                return Ok(());
            }
            let mut wake = tl.end;
            if requester.is_some() {
                // An answer that never comes must not stall the thing: its slot is reused.
                let before = awaiting.len();
                awaiting.retain(|&ts| now.saturating_sub(ts) < answer_timeout);
                out.counts.timed_out += (before - awaiting.len()) as u64;
                if let Some(&oldest) = awaiting.first() {
                    wake = wake.min(oldest + answer_timeout);
                }
                if io.wbuf.is_empty() && now < tl.w1 {
                    let mut n = inflight.saturating_sub(awaiting.len());
                    if let Some(p) = &pacer {
                        let next_due;
                        (n, next_due) = p.limit(n, produced, now);
                        if let Some(t) = next_due {
                            wake = wake.min(t.min(tl.w1));
                        }
                    }
                    if n > 0 {
                        let ts = now_ns();
                        let token = client_token(shared.tag, ts);
                        for _ in 0..n {
                            let document = update_document(
                                spec.mode.section(),
                                produced,
                                &token,
                                spec.min_document_size,
                            );
                            let packet_id = match spec.run.qos {
                                QoS::AtMostOnce => 0,
                                _ => ids
                                    .alloc()
                                    .ok_or_else(|| anyhow::anyhow!("no free packet id"))?,
                            };
                            let publish = Packet::Publish(Publish {
                                qos: spec.run.qos,
                                topic: topics.update.clone(),
                                packet_id,
                                payload: Bytes::from(document),
                                ..Default::default()
                            });
                            ferrocore_mqtt::encode(&publish, io.version, &mut io.wbuf)?;
                            awaiting.push(ts);
                            produced += 1;
                        }
                        (unsent, unsent_ts) = (n as u64, ts);
                    }
                }
            }
            io.rbuf.reserve(16 * 1024);
            tokio::select! {
                r = io.rd.read_buf(&mut io.rbuf) => {
                    if r? == 0 {
                        anyhow::bail!("connection closed by the broker");
                    }
                    let now = now_ns();
                    while let Some(p) = ferrocore_mqtt::decode(&mut io.rbuf, Some(io.version), MAX_PACKET)? {
                        match p {
                            Packet::Publish(p) => {
                                if p.qos == QoS::AtLeastOnce {
                                    encode_ack(Packet::PubAck, p.packet_id, io.version, &mut io.wbuf);
                                }
                                let Some(answer) = topics.answer(&p.topic) else { continue };
                                let sent = answer_token(&p.payload).and_then(|t| sent_ns_of(&t, shared.tag));
                                let Some(sent) = sent else { continue };
                                if answer != Answer::Delta
                                    && let Some(i) = awaiting.iter().position(|&t| t == sent)
                                {
                                    awaiting.remove(i);
                                }
                                out.counts.answered(answer, sent, now, &tl);
                                if answer == Answer::Rejected && out.counts.rejection.is_none() {
                                    let sample = &p.payload[..p.payload.len().min(REJECTION_SAMPLE_BYTES)];
                                    out.counts.rejection = Some(String::from_utf8_lossy(sample).into_owned());
                                }
                                if answer == timed {
                                    shared.recv.fetch_add(1, Ordering::Relaxed);
                                    if tl.in_window(sent) {
                                        samples.record(now.saturating_sub(sent));
                                    }
                                }
                            }
                            Packet::PubAck(a) => {
                                ids.release(a.packet_id);
                            }
                            Packet::PingResp => {}
                            Packet::Disconnect(d) => anyhow::bail!("DISCONNECT from broker, reason {:#04x}", d.reason),
                            other => anyhow::bail!("shadow client got unexpected {}", packet_name(&other)),
                        }
                    }
                    samples.flush_if_full(shared);
                }
                w = write_or_flush(&mut io.wr, &io.wbuf), if !io.wbuf.is_empty() || io.needs_flush => {
                    io.advance(w?)?;
                    if io.wbuf.is_empty() && unsent > 0 {
                        shared.sent.fetch_add(unsent, Ordering::Relaxed);
                        if tl.in_window(unsent_ts) {
                            out.counts.sent_window += unsent;
                        }
                        unsent = 0;
                    }
                }
                _ = sleep_until(instant_at(wake)) => {}
                _ = sleep_until(end) => return Ok(()),
            }
        }
    }
    .await;
    samples.flush(shared);
    if let Err(e) = result {
        shared.errors.fetch_add(1, Ordering::Relaxed);
        out.error = Some(format!("{}: {e:#}", topics.update));
    }
    io.close().await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn topics_of_classic_and_named_shadows() {
        let t = ShadowTopics::new("lamp-1", None);
        assert_eq!(t.update, "$aws/things/lamp-1/shadow/update");
        assert_eq!(t.accepted, "$aws/things/lamp-1/shadow/update/accepted");
        assert_eq!(t.rejected, "$aws/things/lamp-1/shadow/update/rejected");
        assert_eq!(t.delta, "$aws/things/lamp-1/shadow/update/delta");
        let n = ShadowTopics::new("lamp-1", Some("cfg"));
        assert_eq!(n.update, "$aws/things/lamp-1/shadow/name/cfg/update");
        assert_eq!(n.delta, "$aws/things/lamp-1/shadow/name/cfg/update/delta");
        assert_eq!(n.answer(&n.accepted), Some(Answer::Accepted));
        assert_eq!(n.answer(&n.rejected), Some(Answer::Rejected));
        assert_eq!(n.answer(&n.delta), Some(Answer::Delta));
        assert_eq!(n.answer(&t.accepted), None, "the classic shadow's answer");
        assert_eq!(
            n.answer("$aws/things/lamp-1/shadow/name/cfg/update/documents"),
            None
        );
    }

    #[test]
    fn client_tokens_carry_the_send_time_of_this_run() {
        let tag = 0x0123_4567_89ab_cdef;
        let token = client_token(tag, 42_000_000_123);
        assert!(token.len() <= 64, "AWS's clientToken limit: {token}");
        assert_eq!(sent_ns_of(&token, tag), Some(42_000_000_123));
        assert_eq!(sent_ns_of(&token, tag + 1), None, "another run");
        assert_eq!(
            sent_ns_of(&client_token(u64::MAX, u64::MAX), u64::MAX),
            Some(u64::MAX)
        );
        assert_eq!(
            sent_ns_of(&client_token(7, 1), 7),
            Some(1),
            "leading zeros kept"
        );
        for junk in [
            "",
            "-",
            "abc",
            "0123456789abcdef",
            "0123456789abcdef-",
            "7-1",
            "0123456789abcdef-x",
        ] {
            assert_eq!(sent_ns_of(junk, tag), None, "{junk:?}");
        }
    }

    #[test]
    fn answer_tokens_are_read_from_aws_shaped_answers() {
        let accepted = br#"{"state":{"reported":{"seq":3}},"metadata":{"reported":{"seq":{"timestamp":1700000000}}},"version":4,"timestamp":1700000000,"clientToken":"0000000000000007-99"}"#;
        assert_eq!(
            answer_token(accepted).as_deref(),
            Some("0000000000000007-99")
        );
        let rejected = br#"{"code":429,"message":"Too Many Requests","timestamp":1700000000,"clientToken":"t\"x"}"#;
        assert_eq!(answer_token(rejected).as_deref(), Some("t\"x"), "escapes");
        assert_eq!(
            answer_token(br#"{"code":400,"message":"Invalid JSON"}"#),
            None
        );
        assert_eq!(answer_token(b"not json"), None);
        assert_eq!(answer_token(br#"{"clientToken":7}"#), None);
    }

    #[test]
    fn update_documents_are_valid_and_padded() {
        let token = client_token(7, 123);
        let doc = update_document("reported", 5, &token, 0);
        let v: serde_json::Value = serde_json::from_slice(&doc).expect("JSON");
        assert_eq!(v["state"]["reported"]["seq"], 5);
        assert_eq!(v["clientToken"], token.as_str());
        assert_eq!(v.as_object().map(|o| o.len()), Some(2));
        for min in [
            doc.len() + 1,
            doc.len() + 8,
            doc.len() + 9,
            doc.len() + 100,
            8192,
        ] {
            let padded = update_document("desired", 5, &token, min);
            let v: serde_json::Value = serde_json::from_slice(&padded).expect("JSON");
            assert_eq!(v["state"]["desired"]["seq"], 5);
            assert!(v["state"]["desired"]["pad"].is_string());
            assert!(padded.len() >= min, "{} < {min}", padded.len());
            assert!(
                padded.len() <= min.max(doc.len() + 9),
                "{} for {min}",
                padded.len()
            );
        }
    }

    #[test]
    fn answers_are_counted_by_read_and_by_send_time() {
        let tl = Timeline::new(
            0,
            Duration::from_nanos(10),
            Duration::from_nanos(10),
            Duration::from_nanos(10),
        );
        let mut c = ShadowCounts {
            sent_window: 4,
            ..Default::default()
        };
        c.answered(Answer::Accepted, 5, 12, &tl); // warm-up update answered in the window
        c.answered(Answer::Accepted, 12, 15, &tl);
        c.answered(Answer::Accepted, 19, 22, &tl); // answered in the drain
        c.answered(Answer::Rejected, 13, 14, &tl);
        c.answered(Answer::Delta, 12, 16, &tl);
        assert_eq!((c.accepted_window, c.accepted_of_window_sends), (2, 2));
        assert_eq!(c.rejected_of_window_sends, 1);
        assert_eq!((c.deltas_window, c.deltas_of_window_sends), (1, 1));
        assert_eq!(c.timed_window(ShadowMode::Reported), 2);
        assert_eq!(c.timed_window(ShadowMode::Desired), 1);
        assert_eq!(c.unanswered_pct(ShadowMode::Reported), 50.0);
        assert_eq!(c.unanswered_pct(ShadowMode::Desired), 75.0);
        let mut total = ShadowCounts::default();
        total.add(&c);
        total.add(&c);
        assert_eq!(total.accepted_window, 4);
        assert_eq!(total.unanswered_pct(ShadowMode::Reported), 50.0);
        assert_eq!(
            ShadowCounts::default().unanswered_pct(ShadowMode::Desired),
            0.0
        );
    }
}
