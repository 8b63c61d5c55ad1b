//! The `${ferrocore:+}` / `${ferrocore:#}` extension against a plain reference
//! implementation of MQTT topic-filter matching (MQTT 5 §4.7): for random filters turned into
//! `topic/` resource patterns and random topic names, a policy allows exactly the topics the
//! filter matches.

#![allow(clippy::unwrap_used)]

use ferrocore_policy::{Action, Arns, PolicySet, Request};
use proptest::prelude::*;

/// MQTT's rule, level by level: `+` is one level, `#` (last) the rest including the parent
/// level, and a wildcard at the first level never matches a topic starting with `$`.
fn mqtt_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let filter: Vec<&str> = filter.split('/').collect();
    let topic: Vec<&str> = topic.split('/').collect();
    fn go(f: &[&str], t: &[&str]) -> bool {
        match (f.first(), t.first()) {
            (Some(&"#"), _) => true,
            (None, None) => true,
            (Some(&"+"), Some(_)) => go(&f[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&f[1..], &t[1..]),
            _ => false,
        }
    }
    go(&filter, &topic)
}

/// The filter as a resource pattern: wildcards as the extension, literal levels escaped.
fn pattern(filter: &str) -> String {
    let levels: Vec<String> = filter
        .split('/')
        .map(|level| match level {
            "+" => "${ferrocore:+}".to_owned(),
            "#" => "${ferrocore:#}".to_owned(),
            _ => level
                .replace('$', "${$}")
                .replace('*', "${*}")
                .replace('?', "${?}"),
        })
        .collect();
    format!(
        "arn:aws:iot:us-east-1:123456789012:topic/{}",
        levels.join("/")
    )
}

fn policy_allows(filter: &str, topic: &str) -> bool {
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iot:Publish","Resource":{}}}]}}"#,
        serde_json::to_string(&pattern(filter)).unwrap()
    );
    let set = PolicySet::parse([("p", policy.as_str())]).unwrap();
    let arns = Arns::new("us-east-1", "123456789012");
    set.evaluate(Action::Publish, &arns.topic(topic), &Request::new())
        .is_allowed()
}

fn level() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("$x".to_owned()),
        Just("*".to_owned()),
        Just("a?".to_owned()),
        "[ab$]{1,3}",
    ]
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..5)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("a topic name is not empty", |t| !t.is_empty())
}

fn filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![3 => level(), 2 => Just("+".to_owned())], 0..4),
        any::<bool>(),
    )
        .prop_map(|(mut levels, hash)| {
            if hash || levels.is_empty() {
                levels.push("#".to_owned());
            }
            levels.join("/")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn extension_matches_like_mqtt(filter in filter(), topic in topic()) {
        prop_assert_eq!(policy_allows(&filter, &topic), mqtt_matches(&filter, &topic),
            "filter {:?} topic {:?}", filter, topic);
    }

    /// Topics built to match the filter are allowed (random pairs rarely match).
    #[test]
    fn matching_topics_are_allowed(filter in filter(), fill in prop::collection::vec(level(), 0..3)) {
        let mut topic_levels = Vec::new();
        let mut fill = fill.into_iter();
        for level in filter.split('/') {
            match level {
                "+" => topic_levels.push(fill.next().unwrap_or_default()),
                "#" => topic_levels.extend(fill.by_ref()),
                other => topic_levels.push(other.to_owned()),
            }
        }
        let topic = topic_levels.join("/");
        prop_assume!(!topic.is_empty());
        prop_assert_eq!(policy_allows(&filter, &topic), mqtt_matches(&filter, &topic),
            "filter {:?} topic {:?}", filter, topic);
    }
}

#[test]
fn examples() {
    for (filter, topic, expected) in [
        ("a/#", "a", true),
        ("a/#", "a/", true),
        ("a/#", "a/b/c", true),
        ("a/#", "ab", false),
        ("#", "$aws/things/x", false),
        ("+/x", "$SYS/x", false),
        ("$SYS/#", "$SYS/x", true),
        ("a/+/$x", "a/b/$x", true),
        ("a/+", "a/", true),
        ("a/+", "a/b/c", false),
        ("+/+", "/x", true),
        ("a/+/#", "a/b", true),
        ("a/+/#", "a", false),
        ("a/*", "a/*", true),
        ("a/*", "a/b", false),
    ] {
        assert_eq!(policy_allows(filter, topic), expected, "{filter} {topic}");
        assert_eq!(mqtt_matches(filter, topic), expected, "{filter} {topic}");
    }
}
