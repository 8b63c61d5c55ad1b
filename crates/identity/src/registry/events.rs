//! Registry events: the account's event configurations (`DescribeEventConfigurations`,
//! `UpdateEventConfigurations`; every type off until turned on, as on AWS) and the messages a
//! committed batch of changes announces on `$aws/events/...` ([`registry_events`]).
//!
//! Topics and payloads of the types AWS documents (AWS IoT developer guide, "Registry
//! events"); every payload has `eventType`, `eventId` (a UUID), `timestamp` (Unix
//! milliseconds of the operation) and `operation`:
//! - THING: `$aws/events/thing/<thing>/created|updated|deleted` — `accountId`, `thingId`,
//!   `thingName`, `versionNumber`, `thingTypeName` (null without a type), `attributes`.
//! - THING_TYPE: `$aws/events/thingType/<type>/created|updated|deleted` — deprecating and
//!   undoing it are updates; `accountId`, `thingTypeId`, `thingTypeName`, `isDeprecated`,
//!   `deprecationDate`, `searchableAttributes`, `propagatingAttributes`, `description`.
//! - THING_TYPE_ASSOCIATION:
//!   `$aws/events/thingTypeAssociation/thing/<thing>/thingType/<type>/added|removed` —
//!   `thingId`, `thingName`, `thingTypeName` (no `accountId`, as AWS's example).
//! - THING_GROUP: `$aws/events/thingGroup/<group>/created|updated|deleted` — `accountId`,
//!   `thingGroupId`, `thingGroupName`, `versionNumber`, `parentGroupName`, `parentGroupId`,
//!   `description`, `rootToParentThingGroups` (`[{groupArn, groupId}]`, root first),
//!   `attributes`, `dynamicGroupMappingId` (always null: no dynamic groups).
//! - THING_GROUP_MEMBERSHIP:
//!   `$aws/events/thingGroupMembership/thingGroup/<group>/thing/<thing>/added|removed` —
//!   `accountId`, `groupArn`, `groupId`, `thingArn`, `thingId`, `membershipId`.
//! - THING_GROUP_HIERARCHY:
//!   `$aws/events/thingGroupHierarchy/thingGroup/<parent>/childThingGroup/<child>/added|removed`
//!   — `accountId`, `thingGroupId` and `thingGroupName` (the parent's), `childGroupId`,
//!   `childGroupName`. A group's parent is fixed at creation, so these come with the child's
//!   creation and deletion.
//!
//! Decision: AWS documents no topics or payloads for POLICY, CERTIFICATE and CA_CERTIFICATE
//! events. Ferrocore publishes them following the same pattern (`operation` CREATED, UPDATED,
//! DELETED, ADDED or REMOVED; `accountId` in each):
//! - POLICY: `$aws/events/policy/<policy>/created|updated|deleted` (`POLICY_EVENT`: a new or
//!   deleted version or a new default version is an update) — `policyName`, `policyArn`,
//!   `defaultVersionId`; and the attachments,
//!   `$aws/events/policyAttachment/policy/<policy>/certificate/<certificateId>/added|removed`
//!   and `.../policy/<policy>/thingGroup/<group>/added|removed`
//!   (`POLICY_ATTACHMENT_EVENT`) — `policyName`, `policyArn`, `target` (the ARN). A `+` in a
//!   policy name (a wildcard in MQTT) is `%2B` in topics; payloads have the name as it is.
//! - CERTIFICATE: `$aws/events/certificate/<certificateId>/created|updated|deleted`
//!   (`CERTIFICATE_EVENT`) — `certificateId`, `certificateArn`, `status`, `caCertificateId`
//!   (null without a CA), `certificateMode`. (The JITR announcement on
//!   `$aws/events/certificates/registered/<caCertificateId>` is separate and always on.)
//! - CA_CERTIFICATE: `$aws/events/caCertificate/<caCertificateId>/created|updated|deleted`
//!   (`CA_CERTIFICATE_EVENT`) — `caCertificateId`, `caCertificateArn`, `status`,
//!   `autoRegistrationStatus`, `certificateMode`.
//!
//! JOB and JOB_EXECUTION are configurable and stored, but Ferrocore has no jobs: they announce
//! nothing.
//!
//! Other decisions where AWS is silent: a change announces what it leaves (a deletion, what it
//! deleted); relations are announced after the creation of what they relate and before its
//! deletion, so a thing deleted with a type announces the association `removed`, then the
//! thing `deleted`; `deprecationDate` is in Unix milliseconds like `timestamp`;
//! `rootToParentThingGroups` is null for a root group (as AWS's example of a root group).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::certificates::ca_arn;
use super::things::thing_arn;
use super::{
    AutoRegistrationStatus, CaCertificateRecord, CertificateRecord, Change, Ctx, Empty,
    MAX_GROUP_DEPTH, PolicyRecord, RegistryError, RegistryState, Target, Thing, ThingGroup,
    ThingType, certificate_arn, millis_to_seconds, policy_arn, thing_group_arn, uuid_string,
};

/// A type of registry event, as `UpdateEventConfigurations` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    Thing,
    ThingGroup,
    ThingType,
    ThingGroupMembership,
    ThingGroupHierarchy,
    ThingTypeAssociation,
    Job,
    JobExecution,
    Policy,
    Certificate,
    CaCertificate,
}

impl EventType {
    /// Every type, in botocore's order.
    pub const ALL: [EventType; 11] = [
        Self::Thing,
        Self::ThingGroup,
        Self::ThingType,
        Self::ThingGroupMembership,
        Self::ThingGroupHierarchy,
        Self::ThingTypeAssociation,
        Self::Job,
        Self::JobExecution,
        Self::Policy,
        Self::Certificate,
        Self::CaCertificate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Thing => "THING",
            Self::ThingGroup => "THING_GROUP",
            Self::ThingType => "THING_TYPE",
            Self::ThingGroupMembership => "THING_GROUP_MEMBERSHIP",
            Self::ThingGroupHierarchy => "THING_GROUP_HIERARCHY",
            Self::ThingTypeAssociation => "THING_TYPE_ASSOCIATION",
            Self::Job => "JOB",
            Self::JobExecution => "JOB_EXECUTION",
            Self::Policy => "POLICY",
            Self::Certificate => "CERTIFICATE",
            Self::CaCertificate => "CA_CERTIFICATE",
        }
    }

    /// The type called `name`; `InvalidRequestException` for any other name.
    pub fn parse(name: &str) -> Result<EventType, RegistryError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .ok_or_else(|| {
                RegistryError::invalid(format!(
                    "Event type '{name}' is invalid: it must be one of {}.",
                    Self::ALL.map(EventType::as_str).join(", ")
                ))
            })
    }
}

/// The account's event configurations as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventConfigurations {
    /// The types turned on; the others are off.
    pub enabled: BTreeSet<EventType>,
    /// Unix milliseconds of the first update.
    pub creation_date_ms: i64,
    pub last_modified_date_ms: i64,
}

/// `Configuration`: whether one type is on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configuration {
    /// Decision: an update whose `Configuration` has no `Enabled` turns the type off (the
    /// model makes the member optional and says only that true enables it).
    #[serde(rename = "Enabled", default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeEventConfigurationsResponse {
    /// Every type, on or off.
    pub event_configurations: BTreeMap<EventType, Configuration>,
    /// Epoch seconds; absent until the first update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_date: Option<f64>,
}

/// `UpdateEventConfigurations`: the types to turn on or off; the others keep their setting.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateEventConfigurationsRequest {
    pub event_configurations: Option<BTreeMap<String, Configuration>>,
}

impl RegistryState {
    /// Whether events of `event_type` are published.
    pub fn event_enabled(&self, event_type: EventType) -> bool {
        self.event_configurations
            .as_ref()
            .is_some_and(|c| c.enabled.contains(&event_type))
    }
}

/// `DescribeEventConfigurations`.
pub fn describe_event_configurations(
    state: &RegistryState,
    _ctx: &Ctx,
) -> Result<DescribeEventConfigurationsResponse, RegistryError> {
    let stored = state.event_configurations.as_ref();
    Ok(DescribeEventConfigurationsResponse {
        event_configurations: EventType::ALL
            .into_iter()
            .map(|t| {
                let enabled = state.event_enabled(t);
                (t, Configuration { enabled })
            })
            .collect(),
        creation_date: stored.map(|c| millis_to_seconds(c.creation_date_ms)),
        last_modified_date: stored.map(|c| millis_to_seconds(c.last_modified_date_ms)),
    })
}

/// `UpdateEventConfigurations`: sets each type given (all refused if one is unknown) and keeps
/// the others. Decision: an update naming no type changes nothing; any other is a change,
/// even to the same settings (its `lastModifiedDate` moves).
pub fn update_event_configurations(
    state: &RegistryState,
    ctx: &Ctx,
    req: UpdateEventConfigurationsRequest,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    let settings = req
        .event_configurations
        .unwrap_or_default()
        .into_iter()
        .map(|(name, c)| Ok((EventType::parse(&name)?, c.enabled)))
        .collect::<Result<Vec<_>, RegistryError>>()?;
    if settings.is_empty() {
        return Ok((Empty {}, Vec::new()));
    }
    let stored = state.event_configurations.as_ref();
    let mut enabled = stored.map(|c| c.enabled.clone()).unwrap_or_default();
    for (event_type, on) in settings {
        if on {
            enabled.insert(event_type);
        } else {
            enabled.remove(&event_type);
        }
    }
    let new = EventConfigurations {
        enabled,
        creation_date_ms: stored.map_or(ctx.now_ms, |c| c.creation_date_ms),
        last_modified_date_ms: ctx.now_ms,
    };
    Ok((Empty {}, vec![Change::EventConfigurations { new }]))
}

/// One message announcing a registry change: its `$aws/events/...` topic and JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryEvent {
    pub topic: String,
    pub payload: Value,
}

/// The events of the enabled types that `changes`, a batch an operation made on `before`,
/// announce, in the order of the changes. Needs the state before the batch: a deletion
/// announces what it deleted and an update what it replaced. Each event gets an id from
/// `new_event_id`.
pub fn registry_events(
    before: &RegistryState,
    changes: &[Change],
    ctx: &Ctx,
    new_event_id: impl FnMut() -> Result<String, RegistryError>,
) -> Result<Vec<RegistryEvent>, RegistryError> {
    if before
        .event_configurations
        .as_ref()
        .is_none_or(|c| c.enabled.is_empty())
    {
        return Ok(Vec::new());
    }
    let mut announcer = Announcer {
        before,
        ctx,
        new_event_id,
        things: Replay::new(&before.things),
        thing_types: Replay::new(&before.thing_types),
        thing_groups: Replay::new(&before.thing_groups),
        certificates: Replay::new(&before.certificates),
        ca_certificates: Replay::new(&before.ca_certificates),
        policies: Replay::new(&before.policies),
        events: Vec::new(),
    };
    for change in changes {
        announcer.announce(change)?;
    }
    Ok(announcer.events)
}

/// One kind of record as a batch leaves it, change by change.
struct Replay<'a, V> {
    before: &'a BTreeMap<String, V>,
    changed: HashMap<&'a str, Option<&'a V>>,
}

impl<'a, V> Replay<'a, V> {
    fn new(before: &'a BTreeMap<String, V>) -> Self {
        Replay {
            before,
            changed: HashMap::new(),
        }
    }

    fn current(&self, key: &str) -> Option<&'a V> {
        match self.changed.get(key) {
            Some(v) => *v,
            None => self.before.get(key),
        }
    }

    /// The current record, or the one this batch deleted: what a relation's event names.
    fn last_known(&self, key: &str) -> Option<&'a V> {
        self.current(key).or_else(|| self.before.get(key))
    }

    /// Records that `key` becomes `new`; returns the record it replaces.
    fn set(&mut self, key: &'a str, new: Option<&'a V>) -> Option<&'a V> {
        let prior = self.current(key);
        self.changed.insert(key, new);
        prior
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Created,
    Updated,
    Deleted,
    Added,
    Removed,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Updated => "UPDATED",
            Self::Deleted => "DELETED",
            Self::Added => "ADDED",
            Self::Removed => "REMOVED",
        }
    }

    /// The last level of the topic.
    fn topic_level(self) -> String {
        self.as_str().to_ascii_lowercase()
    }

    /// What replacing `prior` by `new` is, with the record the event describes (the deleted
    /// one for a deletion); `None` when neither exists.
    fn of<'v, V>(prior: Option<&'v V>, new: Option<&'v V>) -> Option<(Operation, &'v V)> {
        match (prior, new) {
            (None, Some(v)) => Some((Self::Created, v)),
            (Some(_), Some(v)) => Some((Self::Updated, v)),
            (Some(v), None) => Some((Self::Deleted, v)),
            (None, None) => None,
        }
    }

    fn of_relation(added: bool) -> Operation {
        if added { Self::Added } else { Self::Removed }
    }
}

struct Announcer<'a, F> {
    before: &'a RegistryState,
    ctx: &'a Ctx,
    new_event_id: F,
    things: Replay<'a, Thing>,
    thing_types: Replay<'a, ThingType>,
    thing_groups: Replay<'a, ThingGroup>,
    certificates: Replay<'a, CertificateRecord>,
    ca_certificates: Replay<'a, CaCertificateRecord>,
    policies: Replay<'a, PolicyRecord>,
    events: Vec<RegistryEvent>,
}

impl<'a, F: FnMut() -> Result<String, RegistryError>> Announcer<'a, F> {
    fn announce(&mut self, change: &'a Change) -> Result<(), RegistryError> {
        match change {
            Change::Thing { name, new } => {
                let prior = self.things.set(name, new.as_ref());
                let Some((op, thing)) = Operation::of(prior, new.as_ref()) else {
                    return Ok(());
                };
                let old_type = prior.and_then(|t| t.type_name.as_deref());
                let new_type = new.as_ref().and_then(|t| t.type_name.as_deref());
                let retyped = old_type != new_type;
                if let Some(old_type) = old_type.filter(|_| retyped) {
                    self.type_association(thing, old_type, Operation::Removed)?;
                }
                self.thing(op, thing)?;
                if let Some(new_type) = new_type.filter(|_| retyped) {
                    self.type_association(thing, new_type, Operation::Added)?;
                }
            }
            Change::ThingType { name, new } => {
                let prior = self.thing_types.set(name, new.as_ref());
                if let Some((op, thing_type)) = Operation::of(prior, new.as_ref()) {
                    self.thing_type(op, thing_type)?;
                }
            }
            Change::ThingGroup { name, new } => {
                let prior = self.thing_groups.set(name, new.as_ref());
                let Some((op, group)) = Operation::of(prior, new.as_ref()) else {
                    return Ok(());
                };
                let parent = group
                    .parent
                    .as_deref()
                    .and_then(|p| self.thing_groups.last_known(p));
                if let Some(parent) = parent.filter(|_| op == Operation::Deleted) {
                    self.hierarchy(parent, group, Operation::Removed)?;
                }
                self.thing_group(op, group)?;
                if let Some(parent) = parent.filter(|_| op == Operation::Created) {
                    self.hierarchy(parent, group, Operation::Added)?;
                }
            }
            Change::GroupMembership {
                group,
                thing,
                member,
            } => self.membership(group, thing, Operation::of_relation(*member))?,
            Change::Certificate { id, new } => {
                let prior = self.certificates.set(id, new.as_ref());
                if let Some((op, certificate)) = Operation::of(prior, new.as_ref()) {
                    self.certificate(op, certificate)?;
                }
            }
            Change::CaCertificate { id, new } => {
                let prior = self.ca_certificates.set(id, new.as_ref());
                if let Some((op, ca)) = Operation::of(prior, new.as_ref()) {
                    self.ca_certificate(op, ca)?;
                }
            }
            Change::Policy { name, new } => {
                let prior = self.policies.set(name, new.as_ref());
                if let Some((op, policy)) = Operation::of(prior, new.as_ref()) {
                    self.policy(op, policy)?;
                }
            }
            Change::PolicyAttachment {
                policy,
                target,
                attached,
            } => self.policy_attachment(policy, target, Operation::of_relation(*attached))?,
            Change::ThingPrincipal { .. }
            | Change::RegistrationCode { .. }
            | Change::EventConfigurations { .. }
            | Change::Authorizer { .. }
            | Change::DefaultAuthorizer { .. }
            | Change::ServerCertificate { .. }
            | Change::DomainConfiguration { .. } => {}
        }
        Ok(())
    }

    fn on(&self, event_type: EventType) -> bool {
        self.before.event_enabled(event_type)
    }

    /// Adds an event: the members every event has, then `fields` (a JSON object).
    fn push(
        &mut self,
        topic: String,
        event_type: &str,
        op: Operation,
        fields: Value,
    ) -> Result<(), RegistryError> {
        let mut payload = json!({
            "eventType": event_type,
            "eventId": (self.new_event_id)()?,
            "timestamp": self.ctx.now_ms,
            "operation": op.as_str(),
        });
        if let (Value::Object(payload), Value::Object(fields)) = (&mut payload, fields) {
            payload.extend(fields);
        }
        self.events.push(RegistryEvent { topic, payload });
        Ok(())
    }

    fn account_id(&self) -> &'a str {
        &self.ctx.arns.account_id
    }

    fn thing(&mut self, op: Operation, thing: &Thing) -> Result<(), RegistryError> {
        if !self.on(EventType::Thing) {
            return Ok(());
        }
        let fields = json!({
            "accountId": self.account_id(),
            "thingId": thing.id,
            "thingName": thing.name,
            "versionNumber": thing.version,
            "thingTypeName": thing.type_name,
            "attributes": thing.attributes,
        });
        let topic = format!("$aws/events/thing/{}/{}", thing.name, op.topic_level());
        self.push(topic, "THING_EVENT", op, fields)
    }

    fn thing_type(&mut self, op: Operation, thing_type: &ThingType) -> Result<(), RegistryError> {
        if !self.on(EventType::ThingType) {
            return Ok(());
        }
        let properties = &thing_type.properties;
        let fields = json!({
            "accountId": self.account_id(),
            "thingTypeId": thing_type.id,
            "thingTypeName": thing_type.name,
            "isDeprecated": thing_type.deprecated,
            "deprecationDate": thing_type.deprecation_date_ms,
            "searchableAttributes": properties.searchable_attributes.as_deref().unwrap_or_default(),
            "propagatingAttributes": properties
                .mqtt5_configuration
                .as_ref()
                .map_or(&[][..], |m| &m.propagating_attributes),
            "description": properties.thing_type_description,
        });
        let topic = format!(
            "$aws/events/thingType/{}/{}",
            thing_type.name,
            op.topic_level()
        );
        self.push(topic, "THING_TYPE_EVENT", op, fields)
    }

    fn type_association(
        &mut self,
        thing: &Thing,
        type_name: &str,
        op: Operation,
    ) -> Result<(), RegistryError> {
        if !self.on(EventType::ThingTypeAssociation) {
            return Ok(());
        }
        let fields = json!({
            "thingId": thing.id,
            "thingName": thing.name,
            "thingTypeName": type_name,
        });
        let topic = format!(
            "$aws/events/thingTypeAssociation/thing/{}/thingType/{type_name}/{}",
            thing.name,
            op.topic_level()
        );
        self.push(topic, "THING_TYPE_ASSOCIATION_EVENT", op, fields)
    }

    /// `group`'s ancestors, root first, as far as they are known.
    fn ancestors(&self, group: &ThingGroup) -> Vec<&'a ThingGroup> {
        let mut chain = Vec::new();
        let mut next = group.parent.as_deref();
        // The bound only guards against a corrupt store.
        while let Some(name) = next.filter(|_| chain.len() < MAX_GROUP_DEPTH) {
            let Some(parent) = self.thing_groups.last_known(name) else {
                break;
            };
            chain.push(parent);
            next = parent.parent.as_deref();
        }
        chain.reverse();
        chain
    }

    fn thing_group(&mut self, op: Operation, group: &ThingGroup) -> Result<(), RegistryError> {
        if !self.on(EventType::ThingGroup) {
            return Ok(());
        }
        let ancestors = self.ancestors(group);
        let root_to_parent: Option<Vec<Value>> = (!ancestors.is_empty()).then(|| {
            ancestors
                .iter()
                .map(|a| {
                    json!({
                        "groupArn": thing_group_arn(&self.ctx.arns, &a.name),
                        "groupId": a.id,
                    })
                })
                .collect()
        });
        let fields = json!({
            "accountId": self.account_id(),
            "thingGroupId": group.id,
            "thingGroupName": group.name,
            "versionNumber": group.version,
            "parentGroupName": group.parent,
            "parentGroupId": ancestors.last().map(|p| &p.id),
            "description": group.description,
            "rootToParentThingGroups": root_to_parent,
            "attributes": group.attributes,
            "dynamicGroupMappingId": null,
        });
        let topic = format!("$aws/events/thingGroup/{}/{}", group.name, op.topic_level());
        self.push(topic, "THING_GROUP_EVENT", op, fields)
    }

    fn hierarchy(
        &mut self,
        parent: &ThingGroup,
        child: &ThingGroup,
        op: Operation,
    ) -> Result<(), RegistryError> {
        if !self.on(EventType::ThingGroupHierarchy) {
            return Ok(());
        }
        let fields = json!({
            "accountId": self.account_id(),
            "thingGroupId": parent.id,
            "thingGroupName": parent.name,
            "childGroupId": child.id,
            "childGroupName": child.name,
        });
        let topic = format!(
            "$aws/events/thingGroupHierarchy/thingGroup/{}/childThingGroup/{}/{}",
            parent.name,
            child.name,
            op.topic_level()
        );
        self.push(topic, "THING_GROUP_HIERARCHY_EVENT", op, fields)
    }

    fn membership(&mut self, group: &str, thing: &str, op: Operation) -> Result<(), RegistryError> {
        if !self.on(EventType::ThingGroupMembership) {
            return Ok(());
        }
        let group_id = self.thing_groups.last_known(group).map(|g| g.id.as_str());
        let thing_id = self.things.last_known(thing).map(|t| t.id.as_str());
        let fields = json!({
            "accountId": self.account_id(),
            "groupArn": thing_group_arn(&self.ctx.arns, group),
            "groupId": group_id,
            "thingArn": thing_arn(self.ctx, thing),
            "thingId": thing_id,
            "membershipId": group_id.zip(thing_id).map(|(g, t)| membership_id(g, t)),
        });
        let topic = format!(
            "$aws/events/thingGroupMembership/thingGroup/{group}/thing/{thing}/{}",
            op.topic_level()
        );
        self.push(topic, "THING_GROUP_MEMBERSHIP_EVENT", op, fields)
    }

    fn certificate(
        &mut self,
        op: Operation,
        certificate: &CertificateRecord,
    ) -> Result<(), RegistryError> {
        if !self.on(EventType::Certificate) {
            return Ok(());
        }
        let fields = json!({
            "accountId": self.account_id(),
            "certificateId": certificate.id,
            "certificateArn": certificate_arn(&self.ctx.arns, &certificate.id),
            "status": certificate.status,
            "caCertificateId": certificate.ca_certificate_id,
            "certificateMode": certificate.mode,
        });
        let topic = format!(
            "$aws/events/certificate/{}/{}",
            certificate.id,
            op.topic_level()
        );
        self.push(topic, "CERTIFICATE_EVENT", op, fields)
    }

    fn ca_certificate(
        &mut self,
        op: Operation,
        ca: &CaCertificateRecord,
    ) -> Result<(), RegistryError> {
        if !self.on(EventType::CaCertificate) {
            return Ok(());
        }
        let fields = json!({
            "accountId": self.account_id(),
            "caCertificateId": ca.id,
            "caCertificateArn": ca_arn(self.ctx, &ca.id),
            "status": ca.status,
            "autoRegistrationStatus": AutoRegistrationStatus::of(ca.auto_registration),
            "certificateMode": ca.mode,
        });
        let topic = format!("$aws/events/caCertificate/{}/{}", ca.id, op.topic_level());
        self.push(topic, "CA_CERTIFICATE_EVENT", op, fields)
    }

    fn policy(&mut self, op: Operation, policy: &PolicyRecord) -> Result<(), RegistryError> {
        if !self.on(EventType::Policy) {
            return Ok(());
        }
        let fields = json!({
            "accountId": self.account_id(),
            "policyName": policy.name,
            "policyArn": policy_arn(&self.ctx.arns, &policy.name),
            "defaultVersionId": policy.default_version.to_string(),
        });
        let topic = format!(
            "$aws/events/policy/{}/{}",
            topic_level_of_policy(&policy.name),
            op.topic_level()
        );
        self.push(topic, "POLICY_EVENT", op, fields)
    }

    fn policy_attachment(
        &mut self,
        policy: &str,
        target: &str,
        op: Operation,
    ) -> Result<(), RegistryError> {
        if !self.on(EventType::Policy) {
            return Ok(());
        }
        let target_levels = match Target::parse(&self.ctx.arns, target) {
            Some(Target::Certificate(id)) => format!("certificate/{id}"),
            Some(Target::ThingGroup(group)) => format!("thingGroup/{group}"),
            // Attach refuses every other target.
            None => return Ok(()),
        };
        let fields = json!({
            "accountId": self.account_id(),
            "policyName": policy,
            "policyArn": policy_arn(&self.ctx.arns, policy),
            "target": target,
        });
        let topic = format!(
            "$aws/events/policyAttachment/policy/{}/{target_levels}/{}",
            topic_level_of_policy(policy),
            op.topic_level()
        );
        self.push(topic, "POLICY_ATTACHMENT_EVENT", op, fields)
    }
}

/// Decision: AWS generates a `membershipId` when a thing joins a group; Ferrocore stores none
/// and derives it from the two ids (a UUID version 8 made of their SHA-256), so a membership's
/// `added` and `removed` events carry the same one (and a thing that rejoins gets it again).
fn membership_id(group_id: &str, thing_id: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{group_id}/{thing_id}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    for (b, d) in bytes.iter_mut().zip(digest.as_ref()) {
        *b = *d;
    }
    uuid_string(bytes, 8)
}

/// A policy name as a topic level: `+`, allowed in policy names, is a wildcard in MQTT.
fn topic_level_of_policy(name: &str) -> Cow<'_, str> {
    if name.contains('+') {
        Cow::Owned(name.replace('+', "%2B"))
    } else {
        Cow::Borrowed(name)
    }
}

#[cfg(test)]
mod tests;
