//! Things, thing types and static thing groups.
//!
//! Request and answer types use AWS's JSON member names, so the HTTP layer deserialises bodies
//! and query strings straight into them.
//!
//! AWS behaviour reproduced here (botocore's `iot` model and the AWS IoT developer guide):
//! - `CreateThing`, `CreateThingType` and `CreateThingGroup` are idempotent for an identical
//!   configuration and refuse a different one with `ResourceAlreadyExistsException`.
//! - `DeleteThing` and `DeleteThingGroup` of a missing resource succeed. `DeleteThing` refuses
//!   (`InvalidRequestException`) while principals are attached to the thing; its group
//!   memberships go in the same change.
//! - Thing types: deprecation stops new assignments and is reversible; a type can be deleted
//!   only 5 minutes after its deprecation and once no thing uses it.
//! - Static groups: the parent is fixed at creation, a hierarchy is at most
//!   [`MAX_GROUP_DEPTH`] deep, a group has at most [`MAX_CHILD_GROUPS`] direct children and
//!   [`MAX_GROUP_ATTRIBUTES`] attributes; a group with child groups cannot be deleted; a thing
//!   is in at most [`MAX_GROUPS_PER_THING`] groups and in at most one group of a hierarchy.
//!
//! Where AWS is silent, Ferrocore decides (each decision is marked "Decision" below).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{
    Change, Ctx, Empty, RegistryError, RegistryState, after_token, decode_token, is_name,
    millis_to_seconds, page, page_size,
};

/// Longest thing, thing type and thing group name.
pub const MAX_NAME_LEN: usize = 128;
/// Attributes a thing may have without a thing type (with one: [`MAX_ATTRIBUTES_TYPED`]).
pub const MAX_ATTRIBUTES_UNTYPED: usize = 3;
pub const MAX_ATTRIBUTES_TYPED: usize = 50;
const MAX_ATTRIBUTE_NAME_LEN: usize = 128;
const MAX_ATTRIBUTE_VALUE_LEN: usize = 800;
/// Decision: AWS does not document the page size without `maxResults`; we use 50.
pub const DEFAULT_MAX_RESULTS: usize = 50;
/// Thing type and thing group descriptions (`[\p{Graph}\x20]*`, at most 2028 characters).
pub const MAX_DESCRIPTION_LEN: usize = 2028;
pub const MAX_SEARCHABLE_ATTRIBUTES: usize = 3;
const MAX_PROPERTY_KEY_LEN: usize = 128;
/// Levels of a static group hierarchy, the root counting as level 1.
pub const MAX_GROUP_DEPTH: usize = 7;
pub const MAX_CHILD_GROUPS: usize = 100;
pub const MAX_GROUP_ATTRIBUTES: usize = 50;
pub const MAX_GROUPS_PER_THING: usize = 10;
/// How long a thing type must have been deprecated before it can be deleted.
pub const THING_TYPE_DELETE_DELAY_MS: i64 = 5 * 60 * 1000;

// ---------------------------------------------------------------------------------------------
// Stored records

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thing {
    pub name: String,
    /// A UUID, fixed at creation.
    pub id: String,
    pub type_name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// 1 at creation, +1 on every update.
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingType {
    pub name: String,
    pub id: String,
    pub properties: ThingTypeProperties,
    pub deprecated: bool,
    /// Unix milliseconds of the deprecation in force (`None` when not deprecated).
    pub deprecation_date_ms: Option<i64>,
    pub creation_date_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroup {
    pub name: String,
    pub id: String,
    /// Fixed at creation.
    pub parent: Option<String>,
    pub description: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// 1 at creation, +1 on every update.
    pub version: i64,
    pub creation_date_ms: i64,
}

// ---------------------------------------------------------------------------------------------
// Shapes shared by requests and answers

/// `attributePayload`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributePayload {
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// On updates: merge into the existing attributes (an empty value removes one) instead of
    /// replacing them all. Ignored on creation, as AWS does.
    #[serde(default, skip_serializing)]
    pub merge: bool,
}

/// `thingTypeProperties`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingTypeProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_type_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub searchable_attributes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt5_configuration: Option<Mqtt5Configuration>,
}

/// `mqtt5Configuration`: thing and connection attributes a broker adds to MQTT 5 messages as
/// user properties.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mqtt5Configuration {
    #[serde(default)]
    pub propagating_attributes: Vec<PropagatingAttribute>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropagatingAttribute {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_property_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_attribute: Option<String>,
}

/// `thingGroupProperties`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroupProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing_group_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_payload: Option<AttributePayload>,
}

/// A resource tag. Accepted where AWS accepts tags and otherwise ignored (tagging is not
/// served yet).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default)]
    pub value: Option<String>,
}

/// `{groupName, groupArn}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupNameAndArn {
    pub group_name: String,
    pub group_arn: String,
}

// ---------------------------------------------------------------------------------------------
// Things: requests and answers

/// `CreateThing` (the name comes from the path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingRequest {
    #[serde(skip)]
    pub thing_name: String,
    pub thing_type_name: Option<String>,
    pub attribute_payload: Option<AttributePayload>,
    /// Refused: Ferrocore has no billing groups.
    pub billing_group_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingResponse {
    pub thing_name: String,
    pub thing_arn: String,
    pub thing_id: String,
}

impl CreateThingResponse {
    fn of(ctx: &Ctx, thing: &Thing) -> Self {
        CreateThingResponse {
            thing_name: thing.name.clone(),
            thing_arn: thing_arn(ctx, &thing.name),
            thing_id: thing.id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeThingResponse {
    pub default_client_id: String,
    pub thing_name: String,
    pub thing_id: String,
    pub thing_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_type_name: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub version: i64,
}

/// `ListThings` (query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingsRequest {
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub attribute_name: Option<String>,
    pub attribute_value: Option<String>,
    pub thing_type_name: Option<String>,
    pub use_prefix_attribute_value: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingsResponse {
    pub things: Vec<ThingAttribute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One thing of a `ListThings` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingAttribute {
    pub thing_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_type_name: Option<String>,
    pub thing_arn: String,
    pub attributes: BTreeMap<String, String>,
    pub version: i64,
}

/// `UpdateThing` (the name comes from the path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThingRequest {
    #[serde(skip)]
    pub thing_name: String,
    pub thing_type_name: Option<String>,
    pub attribute_payload: Option<AttributePayload>,
    pub expected_version: Option<i64>,
    #[serde(default)]
    pub remove_thing_type: bool,
}

/// `DeleteThing` (name from the path, `expectedVersion` from the query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteThingRequest {
    #[serde(skip)]
    pub thing_name: String,
    pub expected_version: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Thing types: requests and answers

/// `CreateThingType` (the name comes from the path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingTypeRequest {
    #[serde(skip)]
    pub thing_type_name: String,
    pub thing_type_properties: Option<ThingTypeProperties>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingTypeResponse {
    pub thing_type_name: String,
    pub thing_type_arn: String,
    pub thing_type_id: String,
}

impl CreateThingTypeResponse {
    fn of(ctx: &Ctx, thing_type: &ThingType) -> Self {
        CreateThingTypeResponse {
            thing_type_name: thing_type.name.clone(),
            thing_type_arn: thing_type_arn(ctx, &thing_type.name),
            thing_type_id: thing_type.id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingTypeMetadata {
    pub deprecated: bool,
    /// Epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecation_date: Option<f64>,
    /// Epoch seconds.
    pub creation_date: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeThingTypeResponse {
    pub thing_type_name: String,
    pub thing_type_id: String,
    pub thing_type_arn: String,
    pub thing_type_properties: ThingTypeProperties,
    pub thing_type_metadata: ThingTypeMetadata,
}

/// `ListThingTypes` (query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingTypesRequest {
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub thing_type_name: Option<String>,
}

/// One type of a `ListThingTypes` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingTypeDefinition {
    pub thing_type_name: String,
    pub thing_type_arn: String,
    pub thing_type_properties: ThingTypeProperties,
    pub thing_type_metadata: ThingTypeMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingTypesResponse {
    pub thing_types: Vec<ThingTypeDefinition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `DeprecateThingType` (the name comes from the path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeprecateThingTypeRequest {
    #[serde(skip)]
    pub thing_type_name: String,
    #[serde(default)]
    pub undo_deprecate: bool,
}

/// `UpdateThingType` (the name comes from the path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThingTypeRequest {
    #[serde(skip)]
    pub thing_type_name: String,
    pub thing_type_properties: Option<ThingTypeProperties>,
}

// ---------------------------------------------------------------------------------------------
// Thing groups: requests and answers

/// `CreateThingGroup` (the name comes from the path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingGroupRequest {
    #[serde(skip)]
    pub thing_group_name: String,
    pub parent_group_name: Option<String>,
    pub thing_group_properties: Option<ThingGroupProperties>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingGroupResponse {
    pub thing_group_name: String,
    pub thing_group_arn: String,
    pub thing_group_id: String,
}

impl CreateThingGroupResponse {
    fn of(ctx: &Ctx, group: &ThingGroup) -> Self {
        CreateThingGroupResponse {
            thing_group_name: group.name.clone(),
            thing_group_arn: thing_group_arn(ctx, &group.name),
            thing_group_id: group.id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroupMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_group_name: Option<String>,
    /// The ancestors, root first, up to the parent.
    pub root_to_parent_thing_groups: Vec<GroupNameAndArn>,
    /// Epoch seconds.
    pub creation_date: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeThingGroupResponse {
    pub thing_group_name: String,
    pub thing_group_id: String,
    pub thing_group_arn: String,
    pub version: i64,
    pub thing_group_properties: ThingGroupProperties,
    pub thing_group_metadata: ThingGroupMetadata,
}

/// `ListThingGroups` (query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingGroupsRequest {
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub parent_group: Option<String>,
    pub name_prefix_filter: Option<String>,
    pub recursive: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingGroupsResponse {
    pub thing_groups: Vec<GroupNameAndArn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `UpdateThingGroup` (the name comes from the path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThingGroupRequest {
    #[serde(skip)]
    pub thing_group_name: String,
    pub thing_group_properties: Option<ThingGroupProperties>,
    pub expected_version: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThingGroupResponse {
    pub version: i64,
}

/// `DeleteThingGroup` (name from the path, `expectedVersion` from the query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteThingGroupRequest {
    #[serde(skip)]
    pub thing_group_name: String,
    pub expected_version: Option<i64>,
}

/// `AddThingToThingGroup` and `RemoveThingFromThingGroup`: the group and the thing, each by
/// name or ARN.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingGroupMembershipRequest {
    pub thing_group_name: Option<String>,
    pub thing_group_arn: Option<String>,
    pub thing_name: Option<String>,
    pub thing_arn: Option<String>,
    /// Accepted and ignored: Ferrocore has no dynamic thing groups to override.
    pub override_dynamic_groups: Option<bool>,
}

/// `ListThingsInThingGroup` (name from the path, the rest from the query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingsInThingGroupRequest {
    #[serde(skip)]
    pub thing_group_name: String,
    pub recursive: Option<bool>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingsInThingGroupResponse {
    pub things: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `ListThingGroupsForThing` (name from the path, the rest from the query string).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingGroupsForThingRequest {
    #[serde(skip)]
    pub thing_name: String,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingGroupsForThingResponse {
    pub thing_groups: Vec<GroupNameAndArn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Validation

/// Names of things, types and groups: `[a-zA-Z0-9:_-]{1,128}`.
pub fn validate_name(what: &str, name: &str) -> Result<(), RegistryError> {
    if is_name(name, MAX_NAME_LEN, b":_-") {
        Ok(())
    } else {
        Err(RegistryError::invalid(format!(
            "{what} '{name}' is invalid: it must be 1 to {MAX_NAME_LEN} characters of \
             a-z, A-Z, 0-9, ':', '_' and '-'."
        )))
    }
}

fn is_attribute_name(name: &str) -> bool {
    is_name(name, MAX_ATTRIBUTE_NAME_LEN, b"_.,@/:#-")
}

fn is_attribute_value(value: &str) -> bool {
    value.is_empty() || is_name(value, MAX_ATTRIBUTE_VALUE_LEN, b"_.,@/:#=[]-")
}

fn invalid_attribute_name(name: &str) -> RegistryError {
    RegistryError::invalid(format!(
        "Attribute name '{name}' is invalid: it must be 1 to {MAX_ATTRIBUTE_NAME_LEN} \
         characters of a-z, A-Z, 0-9 and _.,@/:#-"
    ))
}

fn invalid_attribute_value(name: &str) -> RegistryError {
    RegistryError::invalid(format!(
        "Attribute value of '{name}' is invalid: it must be at most \
         {MAX_ATTRIBUTE_VALUE_LEN} characters of a-z, A-Z, 0-9 and _.,@/:#=[]-"
    ))
}

/// Attribute names `[a-zA-Z0-9_.,@/:#-]{1,128}` and values `[a-zA-Z0-9_.,@/:#=\[\]-]{0,800}`.
pub fn validate_attributes(attributes: &BTreeMap<String, String>) -> Result<(), RegistryError> {
    for (name, value) in attributes {
        if !is_attribute_name(name) {
            return Err(invalid_attribute_name(name));
        }
        if !is_attribute_value(value) {
            return Err(invalid_attribute_value(name));
        }
    }
    Ok(())
}

/// Descriptions: `[\p{Graph}\x20]*` (visible characters and spaces), at most 2028 characters.
fn validate_description(what: &str, description: &str) -> Result<(), RegistryError> {
    let ok = description.chars().count() <= MAX_DESCRIPTION_LEN
        && description
            .chars()
            .all(|c| c == ' ' || !(c.is_control() || c.is_whitespace()));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::invalid(format!(
            "{what} is invalid: it must be at most {MAX_DESCRIPTION_LEN} visible characters \
             and spaces (no tabs, line breaks or control characters)."
        )))
    }
}

/// `maxResults`: 1 to [`super::MAX_PAGE_SIZE`], [`DEFAULT_MAX_RESULTS`] when absent.
fn max_results(given: Option<i64>) -> Result<usize, RegistryError> {
    page_size(given, DEFAULT_MAX_RESULTS, "maxResults")
}

/// One page of `names` (sorted, unique) after the key a token names.
fn page_names<'a>(
    names: impl Iterator<Item = &'a String>,
    token: Option<&str>,
    limit: usize,
) -> Result<(Vec<&'a String>, Option<String>), RegistryError> {
    let start = token.map(decode_token).transpose()?;
    let after = names
        .filter(move |n| start.as_deref().is_none_or(|s| n.as_str() > s))
        .map(|n| (n, n));
    Ok(page(after, limit))
}

/// Refuses an `expectedVersion` other than the `current` one.
fn check_version(
    what: &str,
    name: &str,
    current: i64,
    expected: Option<i64>,
) -> Result<(), RegistryError> {
    match expected {
        Some(expected) if expected != current => Err(RegistryError::VersionConflict(format!(
            "{what} {name} is at version {current}, not the expected version {expected}; \
             describe it again and retry with its current version."
        ))),
        _ => Ok(()),
    }
}

fn check_attribute_count(
    attributes: &BTreeMap<String, String>,
    typed: bool,
) -> Result<(), RegistryError> {
    let max = if typed {
        MAX_ATTRIBUTES_TYPED
    } else {
        MAX_ATTRIBUTES_UNTYPED
    };
    if attributes.len() > max {
        return Err(RegistryError::invalid(format!(
            "A thing {} a thing type can have at most {max} attributes; this one would have {}.",
            if typed { "with" } else { "without" },
            attributes.len()
        )));
    }
    Ok(())
}

/// Applies an `attributePayload` to `current`: merged (an empty value removes the attribute)
/// or replacing them all.
fn apply_attribute_payload(
    current: &BTreeMap<String, String>,
    payload: AttributePayload,
) -> Result<BTreeMap<String, String>, RegistryError> {
    validate_attributes(&payload.attributes)?;
    if !payload.merge {
        return Ok(payload.attributes);
    }
    let mut merged = current.clone();
    for (name, value) in payload.attributes {
        if value.is_empty() {
            merged.remove(&name);
        } else {
            merged.insert(name, value);
        }
    }
    Ok(merged)
}

// ---------------------------------------------------------------------------------------------
// Lookups

/// The second names of the pairs in `set` whose first name is `first`, in order.
fn pairs_of<'a>(
    set: &'a BTreeSet<(String, String)>,
    first: &'a str,
) -> impl Iterator<Item = &'a String> + 'a {
    set.range((first.to_owned(), String::new())..)
        .take_while(move |(a, _)| a == first)
        .map(|(_, b)| b)
}

impl RegistryState {
    /// The thing called `name`: a 400 when the name is not a valid thing name, else a 404
    /// when there is none.
    pub fn thing(&self, name: &str) -> Result<&Thing, RegistryError> {
        validate_name("Thing name", name)?;
        self.things
            .get(name)
            .ok_or_else(|| RegistryError::not_found(format!("Thing {name} cannot be found.")))
    }

    pub fn thing_type(&self, name: &str) -> Result<&ThingType, RegistryError> {
        self.thing_types
            .get(name)
            .ok_or_else(|| RegistryError::not_found(format!("Thing type {name} cannot be found.")))
    }

    pub fn thing_group(&self, name: &str) -> Result<&ThingGroup, RegistryError> {
        self.thing_groups
            .get(name)
            .ok_or_else(|| RegistryError::not_found(format!("Thing group {name} cannot be found.")))
    }

    /// The static groups `thing` is a direct member of, by name.
    pub fn groups_of_thing<'a>(&'a self, thing: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        pairs_of(&self.thing_groups_of, thing)
    }

    /// The things directly in `group`, by name.
    pub fn things_in_group<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        pairs_of(&self.group_things, group)
    }

    /// The ancestors of `group`, root first, up to its parent (empty for a root group or an
    /// unknown one).
    pub fn group_ancestors(&self, group: &str) -> Vec<&ThingGroup> {
        let mut chain = Vec::new();
        let mut next = self
            .thing_groups
            .get(group)
            .and_then(|g| g.parent.as_deref());
        while let Some(name) = next {
            // A hierarchy is never deeper than MAX_GROUP_DEPTH; the bound only guards
            // against a corrupt store.
            if chain.len() > self.thing_groups.len() {
                break;
            }
            match self.thing_groups.get(name) {
                Some(g) => {
                    chain.push(g);
                    next = g.parent.as_deref();
                }
                None => break,
            }
        }
        chain.reverse();
        chain
    }

    /// The name of the root of `group`'s hierarchy (`group` itself for a root group).
    pub fn group_root<'a>(&'a self, group: &'a str) -> &'a str {
        self.group_ancestors(group)
            .into_iter()
            .next()
            .map_or(group, |g| g.name.as_str())
    }

    /// The direct child groups of `group`.
    pub fn group_children<'a>(&'a self, group: &'a str) -> impl Iterator<Item = &'a ThingGroup> {
        self.thing_groups
            .values()
            .filter(move |g| g.parent.as_deref() == Some(group))
    }

    /// Whether `group` is a (direct or indirect) descendant of `ancestor`.
    pub fn group_is_descendant_of(&self, group: &str, ancestor: &str) -> bool {
        self.group_ancestors(group)
            .iter()
            .any(|g| g.name == ancestor)
    }
}

fn group_name_and_arn(ctx: &Ctx, name: &str) -> GroupNameAndArn {
    GroupNameAndArn {
        group_name: name.to_owned(),
        group_arn: thing_group_arn(ctx, name),
    }
}

pub(crate) fn thing_arn(ctx: &Ctx, name: &str) -> String {
    ctx.arns.arn(&format!("thing/{name}"))
}

fn thing_type_arn(ctx: &Ctx, name: &str) -> String {
    ctx.arns.arn(&format!("thingtype/{name}"))
}

fn thing_group_arn(ctx: &Ctx, name: &str) -> String {
    ctx.arns.arn(&format!("thinggroup/{name}"))
}

/// A resource named by name or by ARN (`kind` is the ARN's resource type, e.g. `thing`).
fn name_or_arn(
    ctx: &Ctx,
    what: &str,
    kind: &str,
    name: Option<String>,
    arn: Option<String>,
) -> Result<String, RegistryError> {
    let from_arn = match &arn {
        None => None,
        Some(arn) => {
            let resource = ctx
                .arns
                .resource(arn)
                .and_then(|r| r.strip_prefix(kind)?.strip_prefix('/'))
                .ok_or_else(|| {
                    RegistryError::invalid(format!(
                        "{what} ARN '{arn}' is invalid: expected {}",
                        ctx.arns.arn(&format!("{kind}/NAME"))
                    ))
                })?;
            Some(resource.to_owned())
        }
    };
    let field = if kind == "thing" {
        "thing"
    } else {
        "thingGroup"
    };
    let resolved = match (name, from_arn) {
        (None, None) => {
            return Err(RegistryError::invalid(format!(
                "Name the {what} by {field}Name or {field}Arn."
            )));
        }
        (Some(n), Some(a)) if n != a => {
            return Err(RegistryError::invalid(format!(
                "{field}Name '{n}' and {field}Arn name different {what}s; give one of them."
            )));
        }
        (Some(n), _) => n,
        (None, Some(a)) => a,
    };
    validate_name(&format!("{what} name"), &resolved)?;
    Ok(resolved)
}

// ---------------------------------------------------------------------------------------------
// Things

/// `CreateThing`: idempotent when the thing exists with the same type and attributes.
///
/// Decision: `billingGroupName` is refused with `InvalidRequestException` (billing groups are
/// not part of Ferrocore), rather than silently ignored.
pub fn create_thing(
    state: &RegistryState,
    ctx: &Ctx,
    req: CreateThingRequest,
) -> Result<(CreateThingResponse, Vec<Change>), RegistryError> {
    validate_name("Thing name", &req.thing_name)?;
    if let Some(billing) = &req.billing_group_name {
        return Err(RegistryError::invalid(format!(
            "billingGroupName '{billing}': billing groups are not supported by this server; \
             create the thing without billingGroupName."
        )));
    }
    let attributes = req.attribute_payload.unwrap_or_default().attributes;
    validate_attributes(&attributes)?;
    if let Some(type_name) = &req.thing_type_name {
        validate_name("Thing type name", type_name)?;
        let t = state.thing_type(type_name)?;
        if t.deprecated {
            return Err(RegistryError::invalid(format!(
                "Thing type {type_name} is deprecated: new things cannot use it \
                 (DeprecateThingType with undoDeprecate reverses that)."
            )));
        }
    }
    check_attribute_count(&attributes, req.thing_type_name.is_some())?;
    if let Some(existing) = state.things.get(&req.thing_name) {
        if existing.type_name == req.thing_type_name && existing.attributes == attributes {
            return Ok((CreateThingResponse::of(ctx, existing), Vec::new()));
        }
        return Err(RegistryError::already_exists(
            format!(
                "Thing {} already exists in account with different attributes",
                req.thing_name
            ),
            &existing.id,
            thing_arn(ctx, &existing.name),
        ));
    }
    let thing = Thing {
        name: req.thing_name.clone(),
        id: super::uuid_v4()?,
        type_name: req.thing_type_name,
        attributes,
        version: 1,
    };
    let answer = CreateThingResponse::of(ctx, &thing);
    let change = Change::Thing {
        name: thing.name.clone(),
        new: Some(thing),
    };
    Ok((answer, vec![change]))
}

/// `DescribeThing`.
pub fn describe_thing(
    state: &RegistryState,
    ctx: &Ctx,
    name: &str,
) -> Result<DescribeThingResponse, RegistryError> {
    validate_name("Thing name", name)?;
    let thing = state.thing(name)?;
    Ok(DescribeThingResponse {
        default_client_id: thing.name.clone(),
        thing_name: thing.name.clone(),
        thing_id: thing.id.clone(),
        thing_arn: thing_arn(ctx, &thing.name),
        thing_type_name: thing.type_name.clone(),
        attributes: thing.attributes.clone(),
        version: thing.version,
    })
}

/// `ListThings`, by name, filtered by type and by one attribute.
///
/// Decisions: `attributeName` alone lists the things that have that attribute;
/// `attributeValue` without `attributeName` is refused; an unknown `thingTypeName` lists
/// nothing (ListThings has no ResourceNotFoundException in the model).
pub fn list_things(
    state: &RegistryState,
    ctx: &Ctx,
    req: ListThingsRequest,
) -> Result<ListThingsResponse, RegistryError> {
    let limit = max_results(req.max_results)?;
    if let Some(type_name) = &req.thing_type_name {
        validate_name("thingTypeName", type_name)?;
    }
    if let Some(name) = &req.attribute_name
        && !is_attribute_name(name)
    {
        return Err(invalid_attribute_name(name));
    }
    if let Some(value) = &req.attribute_value {
        if req.attribute_name.is_none() {
            return Err(RegistryError::invalid(
                "attributeValue needs attributeName: give the attribute to filter on.",
            ));
        }
        if !is_attribute_value(value) {
            return Err(invalid_attribute_value(
                req.attribute_name.as_deref().unwrap_or_default(),
            ));
        }
    }
    let prefix = req.use_prefix_attribute_value.unwrap_or(false);
    let matches = |t: &Thing| {
        if let Some(type_name) = &req.thing_type_name
            && t.type_name.as_ref() != Some(type_name)
        {
            return false;
        }
        match (&req.attribute_name, &req.attribute_value) {
            (Some(name), Some(want)) => t.attributes.get(name).is_some_and(|have| {
                if prefix {
                    have.starts_with(want.as_str())
                } else {
                    have == want
                }
            }),
            (Some(name), None) => t.attributes.contains_key(name),
            _ => true,
        }
    };
    let items = after_token(&state.things, req.next_token.as_deref())?.filter(|(_, t)| matches(t));
    let (things, next_token) = page(items, limit);
    Ok(ListThingsResponse {
        things: things
            .into_iter()
            .map(|t| ThingAttribute {
                thing_name: t.name.clone(),
                thing_type_name: t.type_name.clone(),
                thing_arn: thing_arn(ctx, &t.name),
                attributes: t.attributes.clone(),
                version: t.version,
            })
            .collect(),
        next_token,
    })
}

/// `UpdateThing`: type, attributes (merged or replaced), version + 1.
///
/// Decisions: every successful update adds 1 to the version, even one that changes nothing;
/// a thing may keep a type that was deprecated after it was assigned (only new assignments
/// are refused); in replace mode (`merge` false) attributes are stored as given, empty values
/// included.
pub fn update_thing(
    state: &RegistryState,
    _ctx: &Ctx,
    req: UpdateThingRequest,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    validate_name("Thing name", &req.thing_name)?;
    let thing = state.thing(&req.thing_name)?;
    check_version("Thing", &thing.name, thing.version, req.expected_version)?;
    let type_name = match (req.remove_thing_type, req.thing_type_name) {
        (true, Some(_)) => {
            return Err(RegistryError::invalid(
                "removeThingType and thingTypeName cannot be given together: \
                 remove the type or set one.",
            ));
        }
        (true, None) => None,
        (false, Some(new)) => {
            validate_name("Thing type name", &new)?;
            let t = state.thing_type(&new)?;
            if t.deprecated && thing.type_name.as_deref() != Some(new.as_str()) {
                return Err(RegistryError::invalid(format!(
                    "Thing type {new} is deprecated: things cannot be given it \
                     (DeprecateThingType with undoDeprecate reverses that)."
                )));
            }
            Some(new)
        }
        (false, None) => thing.type_name.clone(),
    };
    let attributes = match req.attribute_payload {
        Some(payload) => apply_attribute_payload(&thing.attributes, payload)?,
        None => thing.attributes.clone(),
    };
    check_attribute_count(&attributes, type_name.is_some())?;
    let updated = Thing {
        type_name,
        attributes,
        version: thing.version + 1,
        ..thing.clone()
    };
    let change = Change::Thing {
        name: updated.name.clone(),
        new: Some(updated),
    };
    Ok((Empty {}, vec![change]))
}

/// `DeleteThing`: succeeds for a missing thing; refused while principals are attached; the
/// thing leaves its groups in the same change.
pub fn delete_thing(
    state: &RegistryState,
    _ctx: &Ctx,
    req: DeleteThingRequest,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    validate_name("Thing name", &req.thing_name)?;
    let Some(thing) = state.things.get(&req.thing_name) else {
        return Ok((Empty {}, Vec::new()));
    };
    check_version("Thing", &thing.name, thing.version, req.expected_version)?;
    let attached = state
        .thing_principals
        .range((thing.name.clone(), String::new())..)
        .take_while(|((t, _), _)| *t == thing.name)
        .count();
    if attached > 0 {
        return Err(RegistryError::invalid(format!(
            "Thing {} still has {attached} principal(s) attached; detach them \
             (DetachThingPrincipal) before deleting it.",
            thing.name
        )));
    }
    let mut changes: Vec<Change> = state
        .groups_of_thing(&thing.name)
        .map(|group| Change::GroupMembership {
            group: group.clone(),
            thing: thing.name.clone(),
            member: false,
        })
        .collect();
    changes.push(Change::Thing {
        name: thing.name.clone(),
        new: None,
    });
    Ok((Empty {}, changes))
}

// ---------------------------------------------------------------------------------------------
// Thing types

/// The properties as stored: an empty `searchableAttributes` list is the same as none.
fn normalize_type_properties(mut p: ThingTypeProperties) -> ThingTypeProperties {
    if p.searchable_attributes.as_ref().is_some_and(Vec::is_empty) {
        p.searchable_attributes = None;
    }
    p
}

fn validate_type_properties(p: &ThingTypeProperties) -> Result<(), RegistryError> {
    if let Some(d) = &p.thing_type_description {
        validate_description("thingTypeDescription", d)?;
    }
    if let Some(searchable) = &p.searchable_attributes {
        if searchable.len() > MAX_SEARCHABLE_ATTRIBUTES {
            return Err(RegistryError::invalid(format!(
                "A thing type can have at most {MAX_SEARCHABLE_ATTRIBUTES} searchable \
                 attributes; {} were given.",
                searchable.len()
            )));
        }
        let mut seen = BTreeSet::new();
        for name in searchable {
            if !is_attribute_name(name) {
                return Err(invalid_attribute_name(name));
            }
            if !seen.insert(name) {
                return Err(RegistryError::invalid(format!(
                    "Searchable attribute '{name}' is listed twice."
                )));
            }
        }
    }
    if let Some(mqtt5) = &p.mqtt5_configuration {
        for a in &mqtt5.propagating_attributes {
            let key = a.user_property_key.as_deref().unwrap_or_default();
            if !is_name(key, MAX_PROPERTY_KEY_LEN, b":$.") {
                return Err(RegistryError::invalid(format!(
                    "propagatingAttributes userPropertyKey '{key}' is invalid: it must be 1 to \
                     {MAX_PROPERTY_KEY_LEN} characters of a-z, A-Z, 0-9, ':', '$' and '.'."
                )));
            }
            match (&a.thing_attribute, &a.connection_attribute) {
                (Some(name), None) => {
                    if !is_attribute_name(name) {
                        return Err(invalid_attribute_name(name));
                    }
                }
                (None, Some(conn)) => {
                    if !is_name(conn, MAX_PROPERTY_KEY_LEN, b":.") {
                        return Err(RegistryError::invalid(format!(
                            "propagatingAttributes connectionAttribute '{conn}' is invalid: it \
                             must be 1 to {MAX_PROPERTY_KEY_LEN} characters of a-z, A-Z, 0-9, \
                             ':' and '.' (e.g. iot:ClientId)."
                        )));
                    }
                }
                _ => {
                    return Err(RegistryError::invalid(format!(
                        "propagatingAttributes entry '{key}' must have exactly one of \
                         thingAttribute and connectionAttribute."
                    )));
                }
            }
        }
    }
    Ok(())
}

fn type_metadata(t: &ThingType) -> ThingTypeMetadata {
    ThingTypeMetadata {
        deprecated: t.deprecated,
        deprecation_date: t.deprecation_date_ms.map(millis_to_seconds),
        creation_date: millis_to_seconds(t.creation_date_ms),
    }
}

/// `CreateThingType`: idempotent for identical properties; tags are accepted and ignored.
pub fn create_thing_type(
    state: &RegistryState,
    ctx: &Ctx,
    req: CreateThingTypeRequest,
) -> Result<(CreateThingTypeResponse, Vec<Change>), RegistryError> {
    validate_name("Thing type name", &req.thing_type_name)?;
    let properties = normalize_type_properties(req.thing_type_properties.unwrap_or_default());
    validate_type_properties(&properties)?;
    if let Some(existing) = state.thing_types.get(&req.thing_type_name) {
        if existing.properties == properties {
            return Ok((CreateThingTypeResponse::of(ctx, existing), Vec::new()));
        }
        return Err(RegistryError::already_exists(
            format!(
                "Thing type {} already exists with different properties",
                req.thing_type_name
            ),
            &existing.id,
            thing_type_arn(ctx, &existing.name),
        ));
    }
    let t = ThingType {
        name: req.thing_type_name,
        id: super::uuid_v4()?,
        properties,
        deprecated: false,
        deprecation_date_ms: None,
        creation_date_ms: ctx.now_ms,
    };
    let answer = CreateThingTypeResponse::of(ctx, &t);
    let change = Change::ThingType {
        name: t.name.clone(),
        new: Some(t),
    };
    Ok((answer, vec![change]))
}

/// `DescribeThingType`.
pub fn describe_thing_type(
    state: &RegistryState,
    ctx: &Ctx,
    name: &str,
) -> Result<DescribeThingTypeResponse, RegistryError> {
    validate_name("Thing type name", name)?;
    let t = state.thing_type(name)?;
    Ok(DescribeThingTypeResponse {
        thing_type_name: t.name.clone(),
        thing_type_id: t.id.clone(),
        thing_type_arn: thing_type_arn(ctx, &t.name),
        thing_type_properties: t.properties.clone(),
        thing_type_metadata: type_metadata(t),
    })
}

/// `ListThingTypes`, by name; `thingTypeName` picks the one type of that name.
pub fn list_thing_types(
    state: &RegistryState,
    ctx: &Ctx,
    req: ListThingTypesRequest,
) -> Result<ListThingTypesResponse, RegistryError> {
    let limit = max_results(req.max_results)?;
    if let Some(name) = &req.thing_type_name {
        validate_name("thingTypeName", name)?;
    }
    let items = after_token(&state.thing_types, req.next_token.as_deref())?
        .filter(|(name, _)| req.thing_type_name.as_ref().is_none_or(|n| n == *name));
    let (types, next_token) = page(items, limit);
    Ok(ListThingTypesResponse {
        thing_types: types
            .into_iter()
            .map(|t| ThingTypeDefinition {
                thing_type_name: t.name.clone(),
                thing_type_arn: thing_type_arn(ctx, &t.name),
                thing_type_properties: t.properties.clone(),
                thing_type_metadata: type_metadata(t),
            })
            .collect(),
        next_token,
    })
}

/// `DeprecateThingType` (or, with `undoDeprecate`, its reversal).
///
/// Decisions: deprecating a deprecated type changes nothing (its deprecation date, and so the
/// 5-minute wait before deletion, stands); undoing clears the deprecation date; undoing on a
/// type that is not deprecated changes nothing.
pub fn deprecate_thing_type(
    state: &RegistryState,
    ctx: &Ctx,
    req: DeprecateThingTypeRequest,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    validate_name("Thing type name", &req.thing_type_name)?;
    let t = state.thing_type(&req.thing_type_name)?;
    let deprecate = !req.undo_deprecate;
    if t.deprecated == deprecate {
        return Ok((Empty {}, Vec::new()));
    }
    let updated = ThingType {
        deprecated: deprecate,
        deprecation_date_ms: deprecate.then_some(ctx.now_ms),
        ..t.clone()
    };
    let change = Change::ThingType {
        name: updated.name.clone(),
        new: Some(updated),
    };
    Ok((Empty {}, vec![change]))
}

/// `DeleteThingType`: only a type deprecated for at least 5 minutes and used by no thing.
pub fn delete_thing_type(
    state: &RegistryState,
    ctx: &Ctx,
    name: &str,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    validate_name("Thing type name", name)?;
    let t = state.thing_type(name)?;
    let Some(deprecated_at) = t.deprecation_date_ms.filter(|_| t.deprecated) else {
        return Err(RegistryError::invalid(format!(
            "Thing type {name} is not deprecated: deprecate it (DeprecateThingType) and delete \
             it {} seconds later.",
            THING_TYPE_DELETE_DELAY_MS / 1000
        )));
    };
    let elapsed = ctx.now_ms.saturating_sub(deprecated_at);
    if elapsed < THING_TYPE_DELETE_DELAY_MS {
        let wait_s = (THING_TYPE_DELETE_DELAY_MS - elapsed + 999) / 1000;
        return Err(RegistryError::invalid(format!(
            "Thing type {name} was deprecated less than {} seconds ago; it can be deleted in \
             {wait_s} seconds.",
            THING_TYPE_DELETE_DELAY_MS / 1000
        )));
    }
    let mut users = state
        .things
        .values()
        .filter(|th| th.type_name.as_deref() == Some(name));
    if let Some(first) = users.next() {
        let count = 1 + users.count();
        return Err(RegistryError::invalid(format!(
            "Thing type {name} is still the type of {count} thing(s), e.g. {}; change or \
             remove their type (UpdateThing) first.",
            first.name
        )));
    }
    let change = Change::ThingType {
        name: name.to_owned(),
        new: None,
    };
    Ok((Empty {}, vec![change]))
}

/// `UpdateThingType`.
///
/// Decision: each property present in the request replaces the stored one (an empty
/// `searchableAttributes` list clears them); absent ones are kept. Deprecated types may be
/// updated.
pub fn update_thing_type(
    state: &RegistryState,
    _ctx: &Ctx,
    req: UpdateThingTypeRequest,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    validate_name("Thing type name", &req.thing_type_name)?;
    let t = state.thing_type(&req.thing_type_name)?;
    let Some(given) = req.thing_type_properties else {
        return Ok((Empty {}, Vec::new()));
    };
    let mut properties = t.properties.clone();
    if given.thing_type_description.is_some() {
        properties.thing_type_description = given.thing_type_description;
    }
    if given.searchable_attributes.is_some() {
        properties.searchable_attributes = given.searchable_attributes;
    }
    if given.mqtt5_configuration.is_some() {
        properties.mqtt5_configuration = given.mqtt5_configuration;
    }
    let properties = normalize_type_properties(properties);
    validate_type_properties(&properties)?;
    if properties == t.properties {
        return Ok((Empty {}, Vec::new()));
    }
    let updated = ThingType {
        properties,
        ..t.clone()
    };
    let change = Change::ThingType {
        name: updated.name.clone(),
        new: Some(updated),
    };
    Ok((Empty {}, vec![change]))
}

// ---------------------------------------------------------------------------------------------
// Thing groups

fn check_group_attributes(attributes: &BTreeMap<String, String>) -> Result<(), RegistryError> {
    validate_attributes(attributes)?;
    if attributes.len() > MAX_GROUP_ATTRIBUTES {
        return Err(RegistryError::invalid(format!(
            "A thing group can have at most {MAX_GROUP_ATTRIBUTES} attributes; this one would \
             have {}.",
            attributes.len()
        )));
    }
    Ok(())
}

/// `CreateThingGroup`: idempotent for the same parent, description and attributes; tags are
/// accepted and ignored.
///
/// Decision: a missing parent is `ResourceNotFoundException` (the model lists only
/// InvalidRequest for this operation, but botocore maps either name to its class); the depth,
/// children and attribute limits are `InvalidRequestException` (LimitExceeded is not in the
/// operation's errors).
pub fn create_thing_group(
    state: &RegistryState,
    ctx: &Ctx,
    req: CreateThingGroupRequest,
) -> Result<(CreateThingGroupResponse, Vec<Change>), RegistryError> {
    let name = req.thing_group_name;
    validate_name("Thing group name", &name)?;
    if let Some(parent) = &req.parent_group_name {
        validate_name("parentGroupName", parent)?;
    }
    let props = req.thing_group_properties.unwrap_or_default();
    if let Some(d) = &props.thing_group_description {
        validate_description("thingGroupDescription", d)?;
    }
    let attributes = props.attribute_payload.unwrap_or_default().attributes;
    check_group_attributes(&attributes)?;
    if let Some(existing) = state.thing_groups.get(&name) {
        if existing.parent == req.parent_group_name
            && existing.description == props.thing_group_description
            && existing.attributes == attributes
        {
            return Ok((CreateThingGroupResponse::of(ctx, existing), Vec::new()));
        }
        return Err(RegistryError::already_exists(
            format!("Thing group {name} already exists with a different parent or properties"),
            &existing.id,
            thing_group_arn(ctx, &name),
        ));
    }
    if let Some(parent) = &req.parent_group_name {
        state.thing_group(parent)?;
        let parent_level = state.group_ancestors(parent).len() + 1;
        if parent_level >= MAX_GROUP_DEPTH {
            return Err(RegistryError::invalid(format!(
                "Thing group {parent} is at level {parent_level} of its hierarchy; a hierarchy \
                 can be at most {MAX_GROUP_DEPTH} levels deep, so it cannot have child groups."
            )));
        }
        if state.group_children(parent).count() >= MAX_CHILD_GROUPS {
            return Err(RegistryError::invalid(format!(
                "Thing group {parent} already has {MAX_CHILD_GROUPS} child groups, the most a \
                 group can have."
            )));
        }
    }
    let group = ThingGroup {
        name: name.clone(),
        id: super::uuid_v4()?,
        parent: req.parent_group_name,
        description: props.thing_group_description,
        attributes,
        version: 1,
        creation_date_ms: ctx.now_ms,
    };
    let answer = CreateThingGroupResponse::of(ctx, &group);
    Ok((
        answer,
        vec![Change::ThingGroup {
            name,
            new: Some(group),
        }],
    ))
}

/// `DescribeThingGroup`.
pub fn describe_thing_group(
    state: &RegistryState,
    ctx: &Ctx,
    name: &str,
) -> Result<DescribeThingGroupResponse, RegistryError> {
    validate_name("Thing group name", name)?;
    let g = state.thing_group(name)?;
    Ok(DescribeThingGroupResponse {
        thing_group_name: g.name.clone(),
        thing_group_id: g.id.clone(),
        thing_group_arn: thing_group_arn(ctx, &g.name),
        version: g.version,
        thing_group_properties: ThingGroupProperties {
            thing_group_description: g.description.clone(),
            attribute_payload: Some(AttributePayload {
                attributes: g.attributes.clone(),
                merge: false,
            }),
        },
        thing_group_metadata: ThingGroupMetadata {
            parent_group_name: g.parent.clone(),
            root_to_parent_thing_groups: state
                .group_ancestors(name)
                .iter()
                .map(|a| group_name_and_arn(ctx, &a.name))
                .collect(),
            creation_date: millis_to_seconds(g.creation_date_ms),
        },
    })
}

/// `ListThingGroups`, by name.
///
/// Decision (AWS documents `recursive` only as "return child groups as well"): with
/// `parentGroup`, the parent's direct children, or all its descendants with `recursive=true`;
/// without it, every group, or only root groups with `recursive=false`.
pub fn list_thing_groups(
    state: &RegistryState,
    ctx: &Ctx,
    req: ListThingGroupsRequest,
) -> Result<ListThingGroupsResponse, RegistryError> {
    let limit = max_results(req.max_results)?;
    if let Some(parent) = &req.parent_group {
        validate_name("parentGroup", parent)?;
        state.thing_group(parent)?;
    }
    if let Some(prefix) = &req.name_prefix_filter {
        validate_name("namePrefixFilter", prefix)?;
    }
    let wanted = |g: &ThingGroup| {
        if let Some(prefix) = &req.name_prefix_filter
            && !g.name.starts_with(prefix.as_str())
        {
            return false;
        }
        match (&req.parent_group, req.recursive) {
            (Some(p), Some(true)) => state.group_is_descendant_of(&g.name, p),
            (Some(p), _) => g.parent.as_ref() == Some(p),
            (None, Some(false)) => g.parent.is_none(),
            (None, _) => true,
        }
    };
    let items =
        after_token(&state.thing_groups, req.next_token.as_deref())?.filter(|(_, g)| wanted(g));
    let (groups, next_token) = page(items, limit);
    Ok(ListThingGroupsResponse {
        thing_groups: groups
            .into_iter()
            .map(|g| group_name_and_arn(ctx, &g.name))
            .collect(),
        next_token,
    })
}

/// `UpdateThingGroup`: description and attributes (merged or replaced), version + 1.
///
/// Decision: a description present in the request replaces the stored one (an empty one
/// clears it); an absent one is kept. Every successful update adds 1 to the version.
pub fn update_thing_group(
    state: &RegistryState,
    _ctx: &Ctx,
    req: UpdateThingGroupRequest,
) -> Result<(UpdateThingGroupResponse, Vec<Change>), RegistryError> {
    validate_name("Thing group name", &req.thing_group_name)?;
    let g = state.thing_group(&req.thing_group_name)?;
    let Some(props) = req.thing_group_properties else {
        return Err(RegistryError::invalid(
            "thingGroupProperties is required: give the description and/or attributePayload \
             to change.",
        ));
    };
    check_version("Thing group", &g.name, g.version, req.expected_version)?;
    let description = match props.thing_group_description {
        Some(d) if d.is_empty() => None,
        Some(d) => {
            validate_description("thingGroupDescription", &d)?;
            Some(d)
        }
        None => g.description.clone(),
    };
    let attributes = match props.attribute_payload {
        Some(payload) => apply_attribute_payload(&g.attributes, payload)?,
        None => g.attributes.clone(),
    };
    check_group_attributes(&attributes)?;
    let updated = ThingGroup {
        description,
        attributes,
        version: g.version + 1,
        ..g.clone()
    };
    let answer = UpdateThingGroupResponse {
        version: updated.version,
    };
    let change = Change::ThingGroup {
        name: updated.name.clone(),
        new: Some(updated),
    };
    Ok((answer, vec![change]))
}

/// `DeleteThingGroup`: succeeds for a missing group (the model has no ResourceNotFound for
/// it); refused while the group has child groups; its members leave it and its policies are
/// detached in the same change (AWS: the permissions its things had through it no longer
/// apply).
pub fn delete_thing_group(
    state: &RegistryState,
    ctx: &Ctx,
    req: DeleteThingGroupRequest,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    let name = &req.thing_group_name;
    validate_name("Thing group name", name)?;
    let Some(g) = state.thing_groups.get(name) else {
        return Ok((Empty {}, Vec::new()));
    };
    check_version("Thing group", name, g.version, req.expected_version)?;
    if let Some(child) = state.group_children(name).next() {
        return Err(RegistryError::invalid(format!(
            "Thing group {name} still has child groups (e.g. {}); delete them first.",
            child.name
        )));
    }
    let mut changes: Vec<Change> = state
        .things_in_group(name)
        .map(|thing| Change::GroupMembership {
            group: name.clone(),
            thing: thing.clone(),
            member: false,
        })
        .collect();
    changes.extend(super::policies::detach_all(
        state,
        &thing_group_arn(ctx, name),
    ));
    changes.push(Change::ThingGroup {
        name: name.clone(),
        new: None,
    });
    Ok((Empty {}, changes))
}

/// The (group, thing) of a membership request; both must exist.
fn membership(
    state: &RegistryState,
    ctx: &Ctx,
    req: ThingGroupMembershipRequest,
) -> Result<(String, String), RegistryError> {
    let group = name_or_arn(
        ctx,
        "thing group",
        "thinggroup",
        req.thing_group_name,
        req.thing_group_arn,
    )?;
    let thing = name_or_arn(ctx, "thing", "thing", req.thing_name, req.thing_arn)?;
    state.thing_group(&group)?;
    state.thing(&thing)?;
    Ok((group, thing))
}

/// `AddThingToThingGroup`: idempotent; a thing is in at most [`MAX_GROUPS_PER_THING`] groups
/// and in at most one group of a hierarchy (groups with the same root).
pub fn add_thing_to_thing_group(
    state: &RegistryState,
    ctx: &Ctx,
    req: ThingGroupMembershipRequest,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    let (group, thing) = membership(state, ctx, req)?;
    if state
        .thing_groups_of
        .contains(&(thing.clone(), group.clone()))
    {
        return Ok((Empty {}, Vec::new()));
    }
    let current: Vec<&String> = state.groups_of_thing(&thing).collect();
    if current.len() >= MAX_GROUPS_PER_THING {
        return Err(RegistryError::invalid(format!(
            "Thing {thing} is already in {MAX_GROUPS_PER_THING} thing groups, the most a thing \
             can be in; remove it from one first."
        )));
    }
    let root = state.group_root(&group);
    if let Some(other) = current
        .iter()
        .find(|g| state.group_root(g.as_str()) == root)
    {
        return Err(RegistryError::invalid(format!(
            "Thing {thing} is already in thing group {other}, which is in the same hierarchy \
             (root {root}) as {group}; a thing can be in only one group of a hierarchy."
        )));
    }
    Ok((
        Empty {},
        vec![Change::GroupMembership {
            group,
            thing,
            member: true,
        }],
    ))
}

/// `RemoveThingFromThingGroup`: idempotent (removing a non-member succeeds).
pub fn remove_thing_from_thing_group(
    state: &RegistryState,
    ctx: &Ctx,
    req: ThingGroupMembershipRequest,
) -> Result<(Empty, Vec<Change>), RegistryError> {
    let (group, thing) = membership(state, ctx, req)?;
    if !state
        .thing_groups_of
        .contains(&(thing.clone(), group.clone()))
    {
        return Ok((Empty {}, Vec::new()));
    }
    Ok((
        Empty {},
        vec![Change::GroupMembership {
            group,
            thing,
            member: false,
        }],
    ))
}

/// `ListThingsInThingGroup`, by thing name; `recursive` adds the things of every descendant
/// group.
pub fn list_things_in_thing_group(
    state: &RegistryState,
    _ctx: &Ctx,
    req: ListThingsInThingGroupRequest,
) -> Result<ListThingsInThingGroupResponse, RegistryError> {
    let limit = max_results(req.max_results)?;
    let name = &req.thing_group_name;
    validate_name("Thing group name", name)?;
    state.thing_group(name)?;
    let mut things: BTreeSet<&String> = state.things_in_group(name).collect();
    if req.recursive.unwrap_or(false) {
        for g in state.thing_groups.keys() {
            if state.group_is_descendant_of(g, name) {
                things.extend(state.things_in_group(g));
            }
        }
    }
    let (things, next_token) = page_names(things.into_iter(), req.next_token.as_deref(), limit)?;
    Ok(ListThingsInThingGroupResponse {
        things: things.into_iter().cloned().collect(),
        next_token,
    })
}

/// `ListThingGroupsForThing`: the groups the thing is directly in, by name.
pub fn list_thing_groups_for_thing(
    state: &RegistryState,
    ctx: &Ctx,
    req: ListThingGroupsForThingRequest,
) -> Result<ListThingGroupsForThingResponse, RegistryError> {
    let limit = max_results(req.max_results)?;
    validate_name("Thing name", &req.thing_name)?;
    state.thing(&req.thing_name)?;
    let (groups, next_token) = page_names(
        state.groups_of_thing(&req.thing_name),
        req.next_token.as_deref(),
        limit,
    )?;
    Ok(ListThingGroupsForThingResponse {
        thing_groups: groups
            .into_iter()
            .map(|g| group_name_and_arn(ctx, g))
            .collect(),
        next_token,
    })
}

#[cfg(test)]
mod tests;
