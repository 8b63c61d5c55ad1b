//! Things, thing types and static thing groups.
//!
//! Request and answer types use AWS's JSON member names, so the HTTP layer deserialises bodies
//! straight into them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Change, Ctx, RegistryError, RegistryState};

/// Longest thing, thing type and thing group name.
pub const MAX_NAME_LEN: usize = 128;
/// Attributes a thing may have without a thing type (with one: [`MAX_ATTRIBUTES_TYPED`]).
pub const MAX_ATTRIBUTES_UNTYPED: usize = 3;
pub const MAX_ATTRIBUTES_TYPED: usize = 50;
const MAX_ATTRIBUTE_NAME_LEN: usize = 128;
const MAX_ATTRIBUTE_VALUE_LEN: usize = 800;

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThingType {
    pub name: String,
    pub id: String,
    pub description: Option<String>,
    pub searchable_attributes: Vec<String>,
    /// `mqtt5Configuration` as given (propagating attributes), kept and returned as is.
    pub mqtt5_configuration: Option<serde_json::Value>,
    pub deprecated: bool,
    /// Unix milliseconds of the last deprecation.
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
    pub version: i64,
    pub creation_date_ms: i64,
}

/// `attributePayload`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributePayload {
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// On updates: merge into the existing attributes (an empty value removes one) instead of
    /// replacing them all.
    #[serde(default)]
    pub merge: bool,
}

/// `CreateThing` (the name comes from the path).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingRequest {
    #[serde(skip)]
    pub thing_name: String,
    pub thing_type_name: Option<String>,
    pub attribute_payload: Option<AttributePayload>,
    pub billing_group_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateThingResponse {
    pub thing_name: String,
    pub thing_arn: String,
    pub thing_id: String,
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

/// Names of things, types and groups: `[a-zA-Z0-9:_-]{1,128}`.
pub fn validate_name(what: &str, name: &str) -> Result<(), RegistryError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::invalid(format!(
            "{what} '{name}' is invalid: it must be 1 to {MAX_NAME_LEN} characters of \
             a-z, A-Z, 0-9, ':', '_' and '-'."
        )))
    }
}

/// Attribute names `[a-zA-Z0-9_.,@/:#-]{1,128}` and values `[a-zA-Z0-9_.,@/:#=\[\]-]{0,800}`.
pub fn validate_attributes(attributes: &BTreeMap<String, String>) -> Result<(), RegistryError> {
    for (name, value) in attributes {
        let name_ok = !name.is_empty()
            && name.len() <= MAX_ATTRIBUTE_NAME_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.,@/:#-".contains(&b));
        if !name_ok {
            return Err(RegistryError::invalid(format!(
                "Attribute name '{name}' is invalid: it must be 1 to {MAX_ATTRIBUTE_NAME_LEN} \
                 characters of a-z, A-Z, 0-9 and _.,@/:#-"
            )));
        }
        let value_ok = value.len() <= MAX_ATTRIBUTE_VALUE_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.,@/:#=[]-".contains(&b));
        if !value_ok {
            return Err(RegistryError::invalid(format!(
                "Attribute value of '{name}' is invalid: it must be at most \
                 {MAX_ATTRIBUTE_VALUE_LEN} characters of a-z, A-Z, 0-9 and _.,@/:#=[]-"
            )));
        }
    }
    Ok(())
}

impl RegistryState {
    pub fn thing(&self, name: &str) -> Result<&Thing, RegistryError> {
        self.things
            .get(name)
            .ok_or_else(|| RegistryError::not_found(format!("Thing {name} cannot be found.")))
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
            "A thing {} a thing type can have at most {max} attributes.",
            if typed { "with" } else { "without" }
        )));
    }
    Ok(())
}

/// `CreateThing`: idempotent when the thing exists with the same type and attributes.
pub fn create_thing(
    state: &RegistryState,
    ctx: &Ctx,
    req: CreateThingRequest,
) -> Result<(CreateThingResponse, Vec<Change>), RegistryError> {
    validate_name("Thing name", &req.thing_name)?;
    let attributes = req.attribute_payload.unwrap_or_default().attributes;
    validate_attributes(&attributes)?;
    if let Some(type_name) = &req.thing_type_name {
        let t = state.thing_types.get(type_name).ok_or_else(|| {
            RegistryError::not_found(format!("Thing type {type_name} cannot be found."))
        })?;
        if t.deprecated {
            return Err(RegistryError::invalid(format!(
                "Thing type {type_name} is deprecated: new things cannot use it."
            )));
        }
    }
    check_attribute_count(&attributes, req.thing_type_name.is_some())?;
    let arn = ctx.arns.arn(&format!("thing/{}", req.thing_name));
    if let Some(existing) = state.things.get(&req.thing_name) {
        if existing.type_name == req.thing_type_name && existing.attributes == attributes {
            let answer = CreateThingResponse {
                thing_name: existing.name.clone(),
                thing_arn: arn,
                thing_id: existing.id.clone(),
            };
            return Ok((answer, Vec::new()));
        }
        return Err(RegistryError::ResourceAlreadyExists {
            message: format!(
                "Thing {} already exists in account with different attributes",
                req.thing_name
            ),
            resource_id: Some(existing.id.clone()),
            resource_arn: Some(arn),
        });
    }
    let thing = Thing {
        name: req.thing_name.clone(),
        id: super::uuid_v4()?,
        type_name: req.thing_type_name,
        attributes,
        version: 1,
    };
    let answer = CreateThingResponse {
        thing_name: thing.name.clone(),
        thing_arn: arn,
        thing_id: thing.id.clone(),
    };
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
    let thing = state.thing(name)?;
    Ok(DescribeThingResponse {
        default_client_id: thing.name.clone(),
        thing_name: thing.name.clone(),
        thing_id: thing.id.clone(),
        thing_arn: ctx.arns.arn(&format!("thing/{}", thing.name)),
        thing_type_name: thing.type_name.clone(),
        attributes: thing.attributes.clone(),
        version: thing.version,
    })
}
