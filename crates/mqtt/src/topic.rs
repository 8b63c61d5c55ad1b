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
        TopicLimits { max_length: 256, max_slashes: 7 }
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
    #[error("shared subscription needs $share/<group>/<filter> with a group free of '/', '+' and '#'")]
    InvalidShare,
}

/// A `$share/<group>/<filter>` subscription split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedFilter<'a> {
    pub group: &'a str,
    pub filter: &'a str,
}

/// Checks a topic name of a PUBLISH (no wildcards).
pub fn validate_topic_name(topic: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    let _ = (topic, limits);
    todo!("topic")
}

/// Checks a topic filter of a SUBSCRIBE or UNSUBSCRIBE, `$share/` filters included.
pub fn validate_topic_filter(filter: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    let _ = (filter, limits);
    todo!("topic")
}

/// Splits `$share/<group>/<filter>`; `None` when `filter` is not a shared subscription.
/// `Some(Err)` when it starts with `$share/` but is not well formed.
pub fn parse_shared(filter: &str) -> Option<Result<SharedFilter<'_>, TopicError>> {
    let _ = filter;
    todo!("topic")
}

/// Whether `filter` matches `topic` (the reference definition, level by level; wildcards at the
/// first level never match topics starting with `$`).
pub fn matches(filter: &str, topic: &str) -> bool {
    let _ = (filter, topic);
    todo!("topic")
}
