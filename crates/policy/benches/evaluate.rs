//! Nanoseconds per authorization of a publish against 10 attached policies of 10 statements
//! each, with policy variables (issue 4's benchmark).
//!
//! `cargo bench -p ferrocore-policy --bench evaluate`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ferrocore_policy::{Action, Arns, PolicySet, Request, ThingContext};

/// Policy `i` of 10: ten statements, most with variables, two of them Deny.
fn policy(i: usize) -> String {
    let a = "arn:aws:iot:us-east-1:123456789012";
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{"Effect": "Allow", "Action": "iot:Connect", "Resource": "{a}:client/${{iot:Connection.Thing.ThingName}}"}},
    {{"Effect": "Allow", "Action": "iot:Publish", "Resource": "{a}:topic/p{i}/${{iot:Connection.Thing.ThingName}}/telemetry/*"}},
    {{"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
      "Resource": "{a}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/shadow/p{i}/*"}},
    {{"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "{a}:topicfilter/p{i}/${{iot:ClientId}}/*"}},
    {{"Effect": "Allow", "Action": "iot:Receive", "Resource": "{a}:topic/p{i}/${{iot:ClientId}}/*"}},
    {{"Effect": "Deny", "Action": "iot:Publish", "Resource": "{a}:topic/p{i}/${{iot:ClientId}}/admin/*"}},
    {{"Effect": "Allow", "Action": "iot:Publish",
      "Resource": "{a}:topic/site/${{iot:Connection.Thing.Attributes[site]}}/p{i}/*"}},
    {{"Effect": "Allow", "Action": "iot:Publish", "Resource": "{a}:topic/typed/p{i}/*",
      "Condition": {{"StringEquals": {{"iot:Connection.Thing.ThingTypeName": "sensor-{i}"}}}}}},
    {{"Effect": "Deny", "Action": "iot:Publish", "Resource": "{a}:topic/restricted/p{i}/*"}},
    {{"Effect": "Allow", "Action": "iot:Publish", "Resource": "{a}:topic/group{i}/${{iot:ClientId}}/*"}}
  ]
}}"#
    )
}

fn bench(c: &mut Criterion) {
    let texts: Vec<String> = (0..10).map(policy).collect();
    let set = PolicySet::parse(
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("policy-{i}"), t.as_str())),
    )
    .unwrap_or_else(|(name, e)| panic!("{name}: {e}"));
    assert_eq!(
        set.policies()
            .iter()
            .map(|p| p.statement_count())
            .sum::<usize>(),
        100
    );
    let arns = Arns::new("us-east-1", "123456789012");
    let req = Request::new().with_client_id("sensor-0042").with_thing(
        ThingContext::new("sensor-0042")
            .with_type("sensor-3")
            .with_attribute("site", "plant-7"),
    );

    let allowed_last = arns.topic("group9/sensor-0042/readings");
    let allowed_first = arns.topic("p0/sensor-0042/telemetry/temp");
    let denied = arns.topic("restricted/p9/x");
    let implicit = arns.topic("nobody/grants/this");
    assert!(
        set.evaluate(Action::Publish, &allowed_last, &req)
            .is_allowed()
    );
    assert!(
        set.evaluate(Action::Publish, &allowed_first, &req)
            .is_allowed()
    );
    assert!(!set.evaluate(Action::Publish, &denied, &req).is_allowed());
    assert!(!set.evaluate(Action::Publish, &implicit, &req).is_allowed());

    let mut g = c.benchmark_group("publish, 10 policies x 10 statements");
    g.bench_function("allowed by the first policy", |b| {
        b.iter(|| {
            set.evaluate(
                black_box(Action::Publish),
                black_box(&allowed_first),
                black_box(&req),
            )
        })
    });
    g.bench_function("allowed by the last policy", |b| {
        b.iter(|| {
            set.evaluate(
                black_box(Action::Publish),
                black_box(&allowed_last),
                black_box(&req),
            )
        })
    });
    g.bench_function("explicit deny", |b| {
        b.iter(|| {
            set.evaluate(
                black_box(Action::Publish),
                black_box(&denied),
                black_box(&req),
            )
        })
    });
    g.bench_function("implicit deny (every statement checked)", |b| {
        b.iter(|| {
            set.evaluate(
                black_box(Action::Publish),
                black_box(&implicit),
                black_box(&req),
            )
        })
    });
    let mut buf = String::new();
    g.bench_function("topic ARN into a reused buffer + decision", |b| {
        b.iter(|| {
            arns.write_topic(black_box("group9/sensor-0042/readings"), &mut buf);
            set.evaluate(Action::Publish, &buf, black_box(&req))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
