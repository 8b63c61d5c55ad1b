//! The data-plane actions a decision is asked for, and the ARNs of the resources they act on.

use std::fmt;

/// An action the gateway authorizes (reference §1.2). Statements' `Action` / `NotAction`
/// patterns are matched against [`Action::names`] once, at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Connect,
    Publish,
    RetainPublish,
    Subscribe,
    Receive,
    GetRetainedMessage,
    ListRetainedMessages,
    DeleteConnection,
    GetThingShadow,
    UpdateThingShadow,
    DeleteThingShadow,
    ListNamedShadowsForThing,
    DescribeJobExecution,
    GetPendingJobExecutions,
    UpdateJobExecution,
    StartNextPendingJobExecution,
    AssumeRoleWithCertificate,
}

impl Action {
    pub const COUNT: usize = 17;

    pub const ALL: [Action; Action::COUNT] = [
        Action::Connect,
        Action::Publish,
        Action::RetainPublish,
        Action::Subscribe,
        Action::Receive,
        Action::GetRetainedMessage,
        Action::ListRetainedMessages,
        Action::DeleteConnection,
        Action::GetThingShadow,
        Action::UpdateThingShadow,
        Action::DeleteThingShadow,
        Action::ListNamedShadowsForThing,
        Action::DescribeJobExecution,
        Action::GetPendingJobExecutions,
        Action::UpdateJobExecution,
        Action::StartNextPendingJobExecution,
        Action::AssumeRoleWithCertificate,
    ];

    /// The name policies use, e.g. `iot:Publish`.
    pub fn as_str(self) -> &'static str {
        self.names()[0]
    }

    /// Every name a statement may grant this action by. The jobs data-plane actions are
    /// `iotjobsdata:*` today and were `iot:*` in older documentation; both are honoured.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Action::Connect => &["iot:Connect"],
            Action::Publish => &["iot:Publish"],
            Action::RetainPublish => &["iot:RetainPublish"],
            Action::Subscribe => &["iot:Subscribe"],
            Action::Receive => &["iot:Receive"],
            Action::GetRetainedMessage => &["iot:GetRetainedMessage"],
            Action::ListRetainedMessages => &["iot:ListRetainedMessages"],
            Action::DeleteConnection => &["iot:DeleteConnection"],
            Action::GetThingShadow => &["iot:GetThingShadow"],
            Action::UpdateThingShadow => &["iot:UpdateThingShadow"],
            Action::DeleteThingShadow => &["iot:DeleteThingShadow"],
            Action::ListNamedShadowsForThing => &["iot:ListNamedShadowsForThing"],
            Action::DescribeJobExecution => &[
                "iotjobsdata:DescribeJobExecution",
                "iot:DescribeJobExecution",
            ],
            Action::GetPendingJobExecutions => &[
                "iotjobsdata:GetPendingJobExecutions",
                "iot:GetPendingJobExecutions",
            ],
            Action::UpdateJobExecution => {
                &["iotjobsdata:UpdateJobExecution", "iot:UpdateJobExecution"]
            }
            Action::StartNextPendingJobExecution => &[
                "iotjobsdata:StartNextPendingJobExecution",
                "iot:StartNextPendingJobExecution",
            ],
            Action::AssumeRoleWithCertificate => &["iot:AssumeRoleWithCertificate"],
        }
    }

    /// The action of a name (ASCII case ignored, as IAM does), e.g. from TestAuthorization.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|a| a.names().iter().any(|n| n.eq_ignore_ascii_case(name)))
    }

    /// The kind of resource the action is checked against.
    pub fn resource_kind(self) -> Option<ResourceKind> {
        match self {
            Action::Connect | Action::DeleteConnection => Some(ResourceKind::Client),
            Action::Publish
            | Action::RetainPublish
            | Action::Receive
            | Action::GetRetainedMessage => Some(ResourceKind::Topic),
            Action::Subscribe => Some(ResourceKind::TopicFilter),
            Action::GetThingShadow
            | Action::UpdateThingShadow
            | Action::DeleteThingShadow
            | Action::ListNamedShadowsForThing
            | Action::DescribeJobExecution
            | Action::GetPendingJobExecutions
            | Action::UpdateJobExecution
            | Action::StartNextPendingJobExecution => Some(ResourceKind::Thing),
            Action::AssumeRoleWithCertificate => Some(ResourceKind::RoleAlias),
            // Checked against "*".
            Action::ListRetainedMessages => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The resource types of IoT data-plane ARNs, `arn:aws:iot:<region>:<account>:<type>/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Client,
    Topic,
    TopicFilter,
    Thing,
    RoleAlias,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Client => "client",
            ResourceKind::Topic => "topic",
            ResourceKind::TopicFilter => "topicfilter",
            ResourceKind::Thing => "thing",
            ResourceKind::RoleAlias => "rolealias",
        }
    }
}

/// Builds resource ARNs for one region and account.
///
/// ```
/// let arns = ferrocore_policy::Arns::new("us-east-1", "123456789012");
/// assert_eq!(arns.topic("a/b"), "arn:aws:iot:us-east-1:123456789012:topic/a/b");
/// let mut buf = String::new();
/// arns.write_topic_filter("a/+", &mut buf); // reuses `buf`'s allocation
/// assert_eq!(buf, "arn:aws:iot:us-east-1:123456789012:topicfilter/a/+");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arns {
    prefix: String,
}

impl Arns {
    /// ARNs in the `aws` partition.
    pub fn new(region: &str, account: &str) -> Self {
        Arns::with_partition("aws", region, account)
    }

    pub fn with_partition(partition: &str, region: &str, account: &str) -> Self {
        Arns {
            prefix: format!("arn:{partition}:iot:{region}:{account}:"),
        }
    }

    /// `arn:<partition>:iot:<region>:<account>:`
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Writes the ARN of `name` of `kind` into `buf`, replacing what it held.
    pub fn write(&self, kind: ResourceKind, name: &str, buf: &mut String) {
        buf.clear();
        buf.push_str(&self.prefix);
        buf.push_str(kind.as_str());
        buf.push('/');
        buf.push_str(name);
    }

    pub fn arn(&self, kind: ResourceKind, name: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + kind.as_str().len() + 1 + name.len());
        self.write(kind, name, &mut s);
        s
    }

    pub fn topic(&self, topic: &str) -> String {
        self.arn(ResourceKind::Topic, topic)
    }

    pub fn write_topic(&self, topic: &str, buf: &mut String) {
        self.write(ResourceKind::Topic, topic, buf);
    }

    pub fn topic_filter(&self, filter: &str) -> String {
        self.arn(ResourceKind::TopicFilter, filter)
    }

    pub fn write_topic_filter(&self, filter: &str, buf: &mut String) {
        self.write(ResourceKind::TopicFilter, filter, buf);
    }

    pub fn client(&self, client_id: &str) -> String {
        self.arn(ResourceKind::Client, client_id)
    }

    pub fn thing(&self, thing: &str) -> String {
        self.arn(ResourceKind::Thing, thing)
    }

    /// A named shadow: `thing/<thing>/<shadow>`.
    pub fn thing_shadow(&self, thing: &str, shadow: &str) -> String {
        let mut s = self.thing(thing);
        s.push('/');
        s.push_str(shadow);
        s
    }

    pub fn role_alias(&self, alias: &str) -> String {
        self.arn(ResourceKind::RoleAlias, alias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lookup() {
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.as_str()), Some(a));
            assert_eq!(Action::from_name(&a.as_str().to_uppercase()), Some(a));
        }
        assert_eq!(
            Action::from_name("iot:DescribeJobExecution"),
            Some(Action::DescribeJobExecution)
        );
        assert_eq!(Action::from_name("iot:Nope"), None);
        assert_eq!(Action::Publish.to_string(), "iot:Publish");
    }

    #[test]
    fn arns() {
        let a = Arns::new("eu-west-1", "000000000000");
        assert_eq!(
            a.client("c+1"),
            "arn:aws:iot:eu-west-1:000000000000:client/c+1"
        );
        assert_eq!(
            a.thing_shadow("t", "s"),
            "arn:aws:iot:eu-west-1:000000000000:thing/t/s"
        );
        assert_eq!(
            a.role_alias("r"),
            "arn:aws:iot:eu-west-1:000000000000:rolealias/r"
        );
        assert_eq!(
            Arns::with_partition("aws-cn", "cn-north-1", "1").topic("$aws/x"),
            "arn:aws-cn:iot:cn-north-1:1:topic/$aws/x"
        );
        let mut buf = String::from("junk");
        a.write_topic("t", &mut buf);
        assert_eq!(buf, "arn:aws:iot:eu-west-1:000000000000:topic/t");
    }
}
