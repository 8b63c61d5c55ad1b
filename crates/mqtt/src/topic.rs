//! Topic names, topic filters, shared-subscription filters and the limits placed on them.

/// Limits on topics; AWS IoT Core's quotas are the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicLimits {
    /// Bytes in a topic name or filter (AWS: 256), not counting the `$aws/rules/<rule>/` and
    /// `$share/<group>/` prefixes.
    pub max_length: usize,
    /// Forward slashes (AWS: 7), not counting those prefixes.
    pub max_slashes: usize,
}

impl Default for TopicLimits {
    fn default() -> Self {
        TopicLimits {
            max_length: 256,
            max_slashes: 7,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic is empty")]
    Empty,
    #[error("topic contains a NUL character")]
    Nul,
    #[error("topic name contains a wildcard")]
    WildcardInName,
    #[error("wildcard must occupy a whole level, and '#' must be last")]
    MisplacedWildcard,
    #[error("topic has {0} slashes; at most {1} are allowed")]
    TooDeep(usize, usize),
    #[error("topic is {0} bytes long; at most {1} are allowed")]
    TooLong(usize, usize),
    #[error(
        "shared subscription needs $share/<group>/<filter> with a group free of '/', '+' and '#'"
    )]
    InvalidShare,
}

/// A `$share/<group>/<filter>` subscription split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    pub group: &'a str,
    pub filter: &'a str,
}

/// The prefix of AWS IoT basic-ingest topics, `$aws/rules/<rule-name>/`.
pub const AWS_RULES_PREFIX: &str = "$aws/rules/";
/// The prefix of shared subscriptions, `$share/<group>/`.
pub const SHARE_PREFIX: &str = "$share/";

/// Whether `s` contains `+` or `#`.
#[inline]
pub fn has_wildcards(s: &str) -> bool {
    s.bytes().any(|b| b == b'+' || b == b'#')
}

/// `topic` without a leading `$aws/rules/<rule-name>/`, which the limits do not count.
#[inline]
fn strip_rules_prefix(topic: &str) -> &str {
    match topic.strip_prefix(AWS_RULES_PREFIX) {
        Some(rest) => match rest.split_once('/') {
            Some((rule, tail)) if !rule.is_empty() => tail,
            _ => topic,
        },
        None => topic,
    }
}

/// Length and depth limits, applied to what follows the uncounted prefixes.
#[inline]
fn check_limits(counted: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    if counted.len() > limits.max_length {
        return Err(TopicError::TooLong(counted.len(), limits.max_length));
    }
    let slashes = counted.bytes().filter(|&b| b == b'/').count();
    if slashes > limits.max_slashes {
        return Err(TopicError::TooDeep(slashes, limits.max_slashes));
    }
    Ok(())
}

/// Checks a topic name of a PUBLISH (no wildcards).
pub fn validate_topic_name(topic: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    for b in topic.bytes() {
        match b {
            0 => return Err(TopicError::Nul),
            b'+' | b'#' => return Err(TopicError::WildcardInName),
            _ => {}
        }
    }
    check_limits(strip_rules_prefix(topic), limits)
}

/// Checks a topic filter of a SUBSCRIBE or UNSUBSCRIBE, `$share/` filters included.
pub fn validate_topic_filter(filter: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    if filter.as_bytes().contains(&0) {
        return Err(TopicError::Nul);
    }
    let inner = match parse_shared(filter) {
        Some(Ok(shared)) => shared.filter,
        Some(Err(e)) => return Err(e),
        None => filter,
    };
    check_wildcards(inner)?;
    check_limits(strip_rules_prefix(inner), limits)
}

/// `+` and `#` occupy whole levels and `#` comes last.
fn check_wildcards(filter: &str) -> Result<(), TopicError> {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        match level {
            "+" => {}
            "#" if levels.peek().is_none() => {}
            _ if has_wildcards(level) => return Err(TopicError::MisplacedWildcard),
            _ => {}
        }
    }
    Ok(())
}

/// Splits `$share/<group>/<filter>`; `None` when `filter` is not a shared subscription.
/// `Some(Err)` when it starts with `$share/` but is not well formed: the group must be
/// non-empty and free of `/`, `+` and `#`, and the filter non-empty. The filter itself is not
/// checked here ([`validate_topic_filter`] does).
pub fn parse_shared(filter: &str) -> Option<Result<SharedFilter<'_>, TopicError>> {
    let rest = filter.strip_prefix(SHARE_PREFIX)?;
    Some(match rest.split_once('/') {
        Some((group, filter))
            if !group.is_empty() && !has_wildcards(group) && !filter.is_empty() =>
        {
            Ok(SharedFilter { group, filter })
        }
        _ => Err(TopicError::InvalidShare),
    })
}

/// Whether `filter` matches `topic` (the reference definition, level by level; wildcards at the
/// first level never match topics starting with `$`). `a/#` matches `a` too. A shared
/// subscription is matched through its inner [`SharedFilter::filter`]; `matches` does not strip
/// `$share/<group>/` itself.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws() -> TopicLimits {
        TopicLimits::default()
    }

    #[test]
    fn topic_names() {
        assert_eq!(validate_topic_name("a/b/c", &aws()), Ok(()));
        assert_eq!(validate_topic_name("/", &aws()), Ok(()));
        assert_eq!(
            validate_topic_name("$aws/things/t/shadow/update", &aws()),
            Ok(())
        );
        assert_eq!(validate_topic_name("", &aws()), Err(TopicError::Empty));
        assert_eq!(validate_topic_name("a\0b", &aws()), Err(TopicError::Nul));
        assert_eq!(
            validate_topic_name("a/+", &aws()),
            Err(TopicError::WildcardInName)
        );
        assert_eq!(
            validate_topic_name("a#", &aws()),
            Err(TopicError::WildcardInName)
        );
    }

    #[test]
    fn limits_skip_the_rules_and_share_prefixes() {
        let deep7 = "1/2/3/4/5/6/7/8";
        assert_eq!(validate_topic_name(deep7, &aws()), Ok(()));
        assert_eq!(
            validate_topic_name(&format!("{deep7}/9"), &aws()),
            Err(TopicError::TooDeep(8, 7))
        );
        let rules = format!("$aws/rules/my_rule/{deep7}");
        assert_eq!(validate_topic_name(&rules, &aws()), Ok(()));
        assert_eq!(
            validate_topic_name(&format!("{rules}/9"), &aws()),
            Err(TopicError::TooDeep(8, 7))
        );
        // Without a rule name there is no prefix to skip.
        assert!(validate_topic_name(&format!("$aws/rules//{deep7}"), &aws()).is_err());
        let long = "x".repeat(256);
        assert_eq!(validate_topic_name(&long, &aws()), Ok(()));
        assert_eq!(
            validate_topic_name(&format!("{long}y"), &aws()),
            Err(TopicError::TooLong(257, 256))
        );
        assert_eq!(
            validate_topic_name(&format!("$aws/rules/r/{long}"), &aws()),
            Ok(())
        );
        assert_eq!(
            validate_topic_filter(&format!("$share/group/{deep7}"), &aws()),
            Ok(())
        );
        assert_eq!(
            validate_topic_filter(&format!("$share/g/{long}"), &aws()),
            Ok(())
        );
        assert_eq!(
            validate_topic_filter(&format!("$share/g/{deep7}/+"), &aws()),
            Err(TopicError::TooDeep(8, 7))
        );
        assert_eq!(
            validate_topic_filter(&format!("{deep7}/#"), &aws()),
            Err(TopicError::TooDeep(8, 7))
        );
    }

    #[test]
    fn topic_filters() {
        for ok in [
            "#",
            "+",
            "a/#",
            "a/+/b",
            "+/+",
            "/+",
            "+/",
            "a//b",
            "$SYS/#",
            "$share/g/#",
            "$share/g/a/+",
        ] {
            assert_eq!(validate_topic_filter(ok, &aws()), Ok(()), "{ok}");
        }
        for bad in [
            "a#",
            "a/#/b",
            "#/a",
            "a+/b",
            "a/+b",
            "++",
            "##",
            "$share/g/a/b#",
        ] {
            assert_eq!(
                validate_topic_filter(bad, &aws()),
                Err(TopicError::MisplacedWildcard),
                "{bad}"
            );
        }
        assert_eq!(validate_topic_filter("", &aws()), Err(TopicError::Empty));
        assert_eq!(validate_topic_filter("a/\0", &aws()), Err(TopicError::Nul));
        for bad in [
            "$share/",
            "$share/g",
            "$share/g/",
            "$share//a",
            "$share/g+/a",
            "$share/#/a",
            "$share/+/a",
        ] {
            assert_eq!(
                validate_topic_filter(bad, &aws()),
                Err(TopicError::InvalidShare),
                "{bad}"
            );
        }
        // `$share` alone, or `$sharex/...`, is an ordinary filter.
        assert_eq!(validate_topic_filter("$share", &aws()), Ok(()));
        assert_eq!(validate_topic_filter("$shared/a", &aws()), Ok(()));
    }

    #[test]
    fn shared_subscriptions() {
        assert_eq!(parse_shared("a/b"), None);
        assert_eq!(parse_shared("$share"), None);
        assert_eq!(
            parse_shared("$share/g/a/+"),
            Some(Ok(SharedFilter {
                group: "g",
                filter: "a/+"
            }))
        );
        assert_eq!(
            parse_shared("$share/g//"),
            Some(Ok(SharedFilter {
                group: "g",
                filter: "/"
            }))
        );
        assert_eq!(
            parse_shared("$share/g"),
            Some(Err(TopicError::InvalidShare))
        );
        assert_eq!(
            parse_shared("$share//x"),
            Some(Err(TopicError::InvalidShare))
        );
        assert_eq!(
            parse_shared("$share/g#/x"),
            Some(Err(TopicError::InvalidShare))
        );
        assert_eq!(
            parse_shared("$share/g/"),
            Some(Err(TopicError::InvalidShare))
        );
    }

    #[test]
    fn matching() {
        let yes = [
            ("a/b", "a/b"),
            ("a/+", "a/b"),
            ("a/#", "a/b/c"),
            ("a/#", "a"),
            ("#", "a"),
            ("#", "/"),
            ("+/+", "/"),
            ("+", ""),
            ("a/+/c", "a//c"),
            ("$SYS/#", "$SYS/x"),
            ("$aws/things/+/shadow/update", "$aws/things/t/shadow/update"),
            ("a/$x", "a/$x"),
            ("a/+", "a/$x"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t), "{f} should match {t}");
        }
        let no = [
            ("a/b", "a"),
            ("a", "a/b"),
            ("a/+", "a"),
            ("a/+", "a/b/c"),
            ("+", "/a"),
            ("#", "$SYS/x"),
            ("+/x", "$SYS/x"),
            ("+", "$"),
            ("#", "$aws/things/t"),
            ("a/b", "A/b"),
            ("/a", "a"),
        ];
        for (f, t) in no {
            assert!(!matches(f, t), "{f} should not match {t}");
        }
    }

    #[test]
    fn wildcards_detected() {
        assert!(has_wildcards("a/+"));
        assert!(has_wildcards("#"));
        assert!(!has_wildcards("a/b$c"));
    }
}
