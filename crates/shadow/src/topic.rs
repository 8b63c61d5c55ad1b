//! Shadow names and AWS's reserved shadow topics.

/// Which shadow: a thing's classic shadow or one of its named shadows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShadowKey {
    pub thing: String,
    /// `None`: the classic (unnamed) shadow.
    pub name: Option<String>,
}

impl ShadowKey {
    /// The topic every answer about this shadow starts with.
    pub fn topic_prefix(&self) -> String {
        match &self.name {
            None => format!("$aws/things/{}/shadow", self.thing),
            Some(name) => format!("$aws/things/{}/shadow/name/{name}", self.thing),
        }
    }

    /// The name the store keys it by ("" for the classic shadow).
    pub fn stored_name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// A request a device publishes on a reserved shadow topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Get,
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// AWS's thing-name rule: 1–128 of `[a-zA-Z0-9:_-]`.
pub fn valid_thing_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
}

/// AWS's shadow-name rule: 1–`max_len` of `[$a-zA-Z0-9:_-]` (AWS: 64).
pub fn valid_shadow_name(name: &str, max_len: usize) -> bool {
    (1..=max_len).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'$' | b':' | b'_' | b'-'))
}

/// A request topic whose thing or shadow name breaks AWS's rules: refused with 400 on
/// `<topic>/rejected`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidName {
    pub op: Operation,
    pub message: String,
}

/// The shadow and operation a topic asks for: `$aws/things/<thing>/shadow/<op>` or
/// `$aws/things/<thing>/shadow/name/<shadow>/<op>`. Answer topics (`.../accepted`, ...) are
/// not requests (`None`).
pub fn parse_request_topic(
    topic: &str,
    max_shadow_name: usize,
) -> Option<Result<(ShadowKey, Operation), InvalidName>> {
    let rest = topic.strip_prefix("$aws/things/")?;
    let (thing, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("shadow/")?;
    let (name, op) = match rest.strip_prefix("name/") {
        Some(named) => {
            let (name, op) = named.split_once('/')?;
            (Some(name), op)
        }
        None => (None, rest),
    };
    let op = match op {
        "get" => Operation::Get,
        "update" => Operation::Update,
        "delete" => Operation::Delete,
        _ => return None,
    };
    if !valid_thing_name(thing) {
        return Some(Err(InvalidName {
            op,
            message: "Invalid thing name: 1 to 128 characters of [a-zA-Z0-9:_-]".to_owned(),
        }));
    }
    if let Some(name) = name
        && !valid_shadow_name(name, max_shadow_name)
    {
        return Some(Err(InvalidName {
            op,
            message: format!(
                "Invalid shadow name: 1 to {max_shadow_name} characters of [$a-zA-Z0-9:_-]"
            ),
        }));
    }
    Some(Ok((
        ShadowKey {
            thing: thing.to_owned(),
            name: name.map(str::to_owned),
        },
        op,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(thing: &str, name: Option<&str>) -> ShadowKey {
        ShadowKey {
            thing: thing.into(),
            name: name.map(Into::into),
        }
    }

    #[test]
    fn request_topics_are_parsed() {
        assert_eq!(
            parse_request_topic("$aws/things/lamp/shadow/update", 64),
            Some(Ok((key("lamp", None), Operation::Update)))
        );
        assert_eq!(
            parse_request_topic("$aws/things/lamp/shadow/name/cfg/get", 64),
            Some(Ok((key("lamp", Some("cfg")), Operation::Get)))
        );
        assert_eq!(
            parse_request_topic("$aws/things/a:b_c-1/shadow/name/$x/delete", 64),
            Some(Ok((key("a:b_c-1", Some("$x")), Operation::Delete)))
        );
    }

    #[test]
    fn answers_and_other_topics_are_not_requests() {
        for topic in [
            "$aws/things/lamp/shadow/update/accepted",
            "$aws/things/lamp/shadow/get/rejected",
            "$aws/things/lamp/shadow/name/cfg/update/delta",
            "$aws/things/lamp/shadow/name/cfg",
            "$aws/things/lamp/shadow",
            "$aws/things/lamp/jobs/get",
            "things/lamp/shadow/get",
        ] {
            assert_eq!(parse_request_topic(topic, 64), None, "{topic}");
        }
    }

    #[test]
    fn requests_with_invalid_names_are_refused() {
        let long = "x".repeat(65);
        let long_thing = "x".repeat(129);
        for (topic, op, what) in [
            (
                "$aws/things/la mp/shadow/get".to_owned(),
                Operation::Get,
                "thing",
            ),
            (
                "$aws/things//shadow/update".to_owned(),
                Operation::Update,
                "thing",
            ),
            (
                format!("$aws/things/{long_thing}/shadow/get"),
                Operation::Get,
                "thing",
            ),
            (
                "$aws/things/lamp/shadow/name//get".to_owned(),
                Operation::Get,
                "shadow",
            ),
            (
                "$aws/things/lamp/shadow/name/a.b/delete".to_owned(),
                Operation::Delete,
                "shadow",
            ),
            (
                format!("$aws/things/t/shadow/name/{long}/update"),
                Operation::Update,
                "shadow",
            ),
        ] {
            let Some(Err(e)) = parse_request_topic(&topic, 64) else {
                panic!("{topic} should be refused");
            };
            assert_eq!(e.op, op, "{topic}");
            assert!(
                e.message.starts_with(&format!("Invalid {what} name")),
                "{topic}: {e:?}"
            );
        }
    }

    #[test]
    fn prefixes_round_trip() {
        for k in [key("lamp", None), key("lamp", Some("cfg"))] {
            let topic = format!("{}/update", k.topic_prefix());
            assert_eq!(
                parse_request_topic(&topic, 64),
                Some(Ok((k, Operation::Update)))
            );
        }
    }
}
