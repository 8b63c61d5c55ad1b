//! AWS IoT Device Shadow documents: parsing `/update` requests, merging them into the stored
//! shadow, metadata, delta, and every answer the service publishes or returns over HTTP.
//!
//! Pure: no I/O, no clock (`now` is epoch seconds passed in), no locks. The service reads the
//! stored [`Shadow`], calls [`apply_update`] and writes back [`UpdateOutcome::shadow`].
//!
//! Behaviour follows AWS's documentation ("Device Shadow service documents", "Interacting with
//! shadows", "Device Shadow MQTT topics", "Device Shadow error messages"). Where it is silent,
//! the choices are these (each also noted where it is made):
//!
//! - Metadata mirrors every leaf with `{"timestamp": T}`; an array's metadata is an array with
//!   one entry per element (what AWS answers, and what AWS's own Greengrass shadow manager does).
//! - In the `/update/accepted` answer, a key or section set to `null` gets a timestamp too
//!   (AWS's example shows `"desired": null` with `"desired": {"timestamp": T}`).
//! - Objects left empty by a merge are removed, like a section that becomes empty: they carry no
//!   leaf, so no metadata and no delta.
//! - `/update/delta` is published only when the request had a `desired` object and the delta
//!   is not empty: AWS describes the delta as the notice of a requested change, and its flow for
//!   a device reporting state answers on `/update/accepted` only.
//! - Top-level members other than `state`, `clientToken` and `version` are ignored ("JSON
//!   content outside of those sections is ignored"; AWS's C++ SDK sends `timestamp`); unknown
//!   members inside `state`, `delta` included, are refused as AWS does.
//! - Numbers compare by value when computing the delta (`1` equals `1.0`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[cfg(any(test, feature = "testing"))]
pub mod invariants;
#[cfg(test)]
mod tests;

/// AWS's limit on a client token, in bytes; also the cap on a token echoed from a `/get` or
/// `/delete` payload, which [`request_client_token`] reads without limits.
pub const DEFAULT_MAX_CLIENT_TOKEN_BYTES: usize = 64;

/// Configurable limits (defaults: AWS's).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes of `desired` plus `reported` after the merge, each serialized as compact JSON;
    /// metadata excluded (AWS: "Only the data for desired and reported state ... counts").
    pub max_state_bytes: usize,
    /// Deepest nesting allowed inside `desired` and `reported`, each counted on its own. The
    /// section object itself is level 1 and every object or array nested in it one level
    /// deeper, so with 6 `{"desired":{"a":{"b":{"c":{"d":{"e":{"f":1}}}}}}}` passes (`e` is
    /// level 6) and one more object around `f` does not. This is how AWS's own Greengrass shadow
    /// manager counts to AWS's "maximum is 6", and matches the older quota wording of 5 levels
    /// inside the section; arrays count like objects because they nest values the same way.
    pub max_depth: usize,
    /// Longest `clientToken` accepted, in bytes.
    pub max_client_token_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_state_bytes: 8192,
            max_depth: 6,
            max_client_token_bytes: DEFAULT_MAX_CLIENT_TOKEN_BYTES,
        }
    }
}

/// `desired` and `reported`, for the state or for its metadata. A section is present only
/// when it holds at least one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Sections {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    desired: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reported: Option<Map<String, Value>>,
}

/// A shadow as stored: `{"state":{desired?,reported?},"metadata":{desired?,reported?},
/// "version":N,"timestamp":T}` (the shape of `/update/documents`' `current`, plus the time of
/// the last update in epoch seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shadow {
    state: Sections,
    metadata: Sections,
    version: u64,
    timestamp: u64,
}

impl Shadow {
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Epoch seconds of the last update.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    pub fn desired(&self) -> Option<&Map<String, Value>> {
        self.state.desired.as_ref()
    }

    pub fn reported(&self) -> Option<&Map<String, Value>> {
        self.state.reported.as_ref()
    }

    /// The stored form (JSON).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a shadow always serializes")
    }

    /// Reads the stored form; anything unreadable is a 500, the store's fault, not the caller's.
    pub fn from_bytes(bytes: &[u8]) -> Result<Shadow, ShadowError> {
        serde_json::from_slice(bytes).map_err(|_| ShadowError::internal())
    }
}

/// An error answer: AWS's HTTP-like code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {message}")]
pub struct ShadowError {
    pub code: u16,
    pub message: String,
}

impl ShadowError {
    pub fn new(code: u16, message: impl Into<String>) -> ShadowError {
        ShadowError {
            code,
            message: message.into(),
        }
    }

    /// The `/rejected` payload (and HTTP error body):
    /// `{"code":..,"message":..,"timestamp":now,"clientToken"?}`.
    pub fn to_json(&self, client_token: Option<&str>, now: u64) -> Vec<u8> {
        let mut answer = Map::new();
        answer.insert("code".into(), self.code.into());
        answer.insert("message".into(), self.message.clone().into());
        answer.insert("timestamp".into(), now.into());
        insert_client_token(&mut answer, client_token);
        to_json_bytes(&Value::Object(answer))
    }

    /// 404 for a shadow that does not exist. AWS names the classic shadow by its thing,
    /// `No shadow exists with name: 'thing'`, and a named one as `'thing~name'`.
    pub fn not_found(thing: &str, shadow_name: Option<&str>) -> ShadowError {
        let name = match shadow_name {
            Some(shadow) => format!("{thing}~{shadow}"),
            None => thing.to_string(),
        };
        ShadowError::new(404, format!("No shadow exists with name: '{name}'"))
    }

    /// 500 "Internal service failure".
    pub fn internal() -> ShadowError {
        ShadowError::new(500, "Internal service failure")
    }

    /// 429 "Too Many Requests".
    pub fn too_many_requests() -> ShadowError {
        ShadowError::new(429, "Too Many Requests")
    }

    /// 409 "Version conflict".
    pub fn version_conflict() -> ShadowError {
        ShadowError::new(409, "Version conflict")
    }

    /// 413 "The payload exceeds the maximum size allowed".
    pub fn payload_too_large() -> ShadowError {
        ShadowError::new(413, "The payload exceeds the maximum size allowed")
    }

    /// 415, for a payload that is not UTF-8.
    pub fn unsupported_encoding() -> ShadowError {
        ShadowError::new(
            415,
            "Unsupported documented encoding; supported encoding is UTF-8",
        )
    }

    fn bad_request(message: impl Into<String>) -> ShadowError {
        ShadowError::new(400, message)
    }
}

/// What an update does to one section (`desired` or `reported`).
#[derive(Debug, Clone, PartialEq)]
pub enum SectionUpdate {
    /// The request did not name the section.
    Keep,
    /// `null`: the section and its metadata go.
    Remove,
    /// An object merged into the section: `null` deletes a key, objects merge recursively,
    /// anything else (arrays included) replaces the value.
    Merge(Map<String, Value>),
}

impl SectionUpdate {
    /// The section as the request gave it, for the `/update/accepted` answer.
    fn as_requested(&self) -> Option<Value> {
        match self {
            SectionUpdate::Keep => None,
            SectionUpdate::Remove => Some(Value::Null),
            SectionUpdate::Merge(patch) => Some(Value::Object(patch.clone())),
        }
    }
}

/// A parsed `/update` request (or HTTP POST body).
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRequest {
    pub client_token: Option<String>,
    pub version: Option<u64>,
    pub desired: SectionUpdate,
    pub reported: SectionUpdate,
}

/// An error with the client token of the request when it could be read (echoed on /rejected).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError {
    pub error: ShadowError,
    pub client_token: Option<String>,
}

/// Parses and validates an `/update` payload. Checks, in order: UTF-8 (415), JSON and a
/// top-level object (400 "Invalid JSON"), `clientToken` (a string of at most
/// `max_client_token_bytes`), `state` (present, an object, only `desired` and `reported`, each
/// an object or `null`), `version` (a non-negative integer), nesting (see
/// [`Limits::max_depth`]) and arrays (no `null` element, at any depth). `clientToken` and
/// `version` set to `null` count as absent.
pub fn parse_update(payload: &[u8], limits: &Limits) -> Result<UpdateRequest, RequestError> {
    let refuse = |error: ShadowError| RequestError {
        error,
        client_token: None,
    };
    let text =
        std::str::from_utf8(payload).map_err(|_| refuse(ShadowError::unsupported_encoding()))?;
    let Ok(Value::Object(mut document)) = serde_json::from_str::<Value>(text) else {
        return Err(refuse(ShadowError::bad_request("Invalid JSON")));
    };
    let client_token = match document.remove("clientToken") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) if token.len() <= limits.max_client_token_bytes => Some(token),
        Some(_) => return Err(refuse(ShadowError::bad_request("Invalid clientToken"))),
    };
    let fail = |message: String| RequestError {
        error: ShadowError::bad_request(message),
        client_token: client_token.clone(),
    };

    let mut state = match document.remove("state") {
        None => return Err(fail("Missing required node: state".into())),
        Some(Value::Object(state)) => state,
        Some(_) => return Err(fail("State node must be an object".into())),
    };
    if let Some(node) = state.keys().find(|k| *k != "desired" && *k != "reported") {
        return Err(fail(format!("State contains an invalid node: '{node}'")));
    }
    let desired = section_update(state.remove("desired"), "Desired").map_err(&fail)?;
    let reported = section_update(state.remove("reported"), "Reported").map_err(&fail)?;

    let version = match document.remove("version") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| fail("Invalid version".into()))?),
        Some(_) => return Err(fail("Invalid version".into())),
    };

    for section in [&desired, &reported] {
        let SectionUpdate::Merge(patch) = section else {
            continue;
        };
        // The section object is level 1, its values level 2.
        if limits.max_depth < 1 || container_too_deep(patch.values(), 2, limits.max_depth) {
            return Err(fail(format!(
                "JSON contains too many levels of nesting; maximum is {}",
                limits.max_depth
            )));
        }
        if patch.values().any(has_array_with_null) {
            return Err(fail("Invalid JSON: an array may not contain null".into()));
        }
    }

    Ok(UpdateRequest {
        client_token,
        version,
        desired,
        reported,
    })
}

fn section_update(node: Option<Value>, name: &str) -> Result<SectionUpdate, String> {
    match node {
        None => Ok(SectionUpdate::Keep),
        Some(Value::Null) => Ok(SectionUpdate::Remove),
        Some(Value::Object(patch)) => Ok(SectionUpdate::Merge(patch)),
        Some(_) => Err(format!("{name} node must be an object")),
    }
}

/// Whether any object or array among `values` (which sit at `level`), or nested in them, lies
/// deeper than `max`. Stops at the first level past `max`, so recursion stays within `max + 1`.
fn container_too_deep<'a>(
    values: impl IntoIterator<Item = &'a Value>,
    level: usize,
    max: usize,
) -> bool {
    values.into_iter().any(|value| match value {
        Value::Object(map) => level > max || container_too_deep(map.values(), level + 1, max),
        Value::Array(items) => level > max || container_too_deep(items, level + 1, max),
        _ => false,
    })
}

fn has_array_with_null(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.values().any(has_array_with_null),
        Value::Array(items) => items.iter().any(|v| v.is_null() || has_array_with_null(v)),
        _ => false,
    }
}

/// The clientToken of a get/delete request payload (may be empty, or JSON like
/// {"clientToken":"x"}); never fails: anything unreadable → None. (AWS ignores the rest of such
/// payloads.) A token longer than [`DEFAULT_MAX_CLIENT_TOKEN_BYTES`] is not echoed.
pub fn request_client_token(payload: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(payload).ok()? {
        Value::Object(mut document) => match document.remove("clientToken")? {
            Value::String(token) if token.len() <= DEFAULT_MAX_CLIENT_TOKEN_BYTES => Some(token),
            _ => None,
        },
        _ => None,
    }
}

/// The result of a successful update.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The new stored shadow.
    pub shadow: Shadow,
    /// `/update/accepted` payload (= HTTP POST 200 body).
    pub accepted: Vec<u8>,
    /// `/update/delta` payload: when the request had a `desired` object and the new desired
    /// differs from reported.
    pub delta: Option<Vec<u8>>,
    /// `/update/documents` payload.
    pub documents: Vec<u8>,
}

/// Applies `request` to `current` (None: no shadow; `absent_version` is then the version it
/// counts from, 0 normally, the deleted shadow's version when it is re-created).
///
/// The version goes up by one on every accepted update, even one that changes nothing (AWS:
/// "every time the document is updated, this version number is incremented").
pub fn apply_update(
    current: Option<&Shadow>,
    absent_version: u64,
    request: &UpdateRequest,
    now: u64,
    limits: &Limits,
) -> Result<UpdateOutcome, ShadowError> {
    let current_version = current.map_or(absent_version, Shadow::version);
    if request.version.is_some_and(|v| v != current_version) {
        return Err(ShadowError::version_conflict());
    }
    let version = current_version
        .checked_add(1)
        .ok_or_else(ShadowError::internal)?;

    let (mut state, mut metadata) = current
        .map(|s| (s.state.clone(), s.metadata.clone()))
        .unwrap_or_default();
    update_section(
        &mut state.desired,
        &mut metadata.desired,
        &request.desired,
        now,
    );
    update_section(
        &mut state.reported,
        &mut metadata.reported,
        &request.reported,
        now,
    );

    let state_bytes: usize = [&state.desired, &state.reported]
        .into_iter()
        .flatten()
        .map(|section| to_json_bytes(section).len())
        .sum();
    if state_bytes > limits.max_state_bytes {
        return Err(ShadowError::payload_too_large());
    }

    let shadow = Shadow {
        state,
        metadata,
        version,
        timestamp: now,
    };
    let client_token = request.client_token.as_deref();

    let mut accepted_state = Map::new();
    let mut accepted_metadata = Map::new();
    for (name, section) in [
        ("desired", &request.desired),
        ("reported", &request.reported),
    ] {
        if let Some(requested) = section.as_requested() {
            accepted_metadata.insert(name.into(), metadata_of(&requested, now));
            accepted_state.insert(name.into(), requested);
        }
    }
    let accepted = answer(
        [
            ("state", Value::Object(accepted_state)),
            ("metadata", Value::Object(accepted_metadata)),
        ],
        shadow.version,
        now,
        client_token,
    );

    let delta = match (&request.desired, shadow_delta(&shadow)) {
        (SectionUpdate::Merge(_), Some((delta, delta_metadata))) => Some(answer(
            [
                ("state", Value::Object(delta)),
                ("metadata", Value::Object(delta_metadata)),
            ],
            shadow.version,
            now,
            client_token,
        )),
        _ => None,
    };

    let mut documents = Map::new();
    // AWS sends `"previous": null` when the update created the shadow.
    documents.insert("previous".into(), current.map_or(Value::Null, snapshot));
    documents.insert("current".into(), snapshot(&shadow));
    documents.insert("timestamp".into(), now.into());
    insert_client_token(&mut documents, client_token);

    Ok(UpdateOutcome {
        shadow,
        accepted,
        delta,
        documents: to_json_bytes(&Value::Object(documents)),
    })
}

/// The `/get/accepted` payload (= HTTP GET body): state with desired, reported, delta (when
/// any), metadata (delta's too: AWS's delta example shows `metadata.delta`), version,
/// timestamp=now, clientToken when given.
pub fn get_document(shadow: &Shadow, client_token: Option<&str>, now: u64) -> Vec<u8> {
    let mut state = sections_json(&shadow.state);
    let mut metadata = sections_json(&shadow.metadata);
    if let Some((delta, delta_metadata)) = shadow_delta(shadow) {
        state.insert("delta".into(), Value::Object(delta));
        metadata.insert("delta".into(), Value::Object(delta_metadata));
    }
    answer(
        [
            ("state", Value::Object(state)),
            ("metadata", Value::Object(metadata)),
        ],
        shadow.version,
        now,
        client_token,
    )
}

/// The `/delete/accepted` payload (= HTTP DELETE body): {"version":N,"timestamp":now,
/// "clientToken"?}, N being the deleted shadow's version (a re-created shadow counts on from
/// it).
pub fn delete_document(shadow: &Shadow, client_token: Option<&str>, now: u64) -> Vec<u8> {
    answer([], shadow.version, now, client_token)
}

/// `members` plus `version`, `timestamp` and `clientToken` when given, as JSON.
fn answer<const N: usize>(
    members: [(&str, Value); N],
    version: u64,
    now: u64,
    client_token: Option<&str>,
) -> Vec<u8> {
    let mut answer: Map<String, Value> = members
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    answer.insert("version".into(), version.into());
    answer.insert("timestamp".into(), now.into());
    insert_client_token(&mut answer, client_token);
    to_json_bytes(&Value::Object(answer))
}

fn insert_client_token(answer: &mut Map<String, Value>, client_token: Option<&str>) {
    if let Some(token) = client_token {
        answer.insert("clientToken".into(), token.into());
    }
}

fn to_json_bytes(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values always serialize")
}

/// `{"desired"?, "reported"?}` as a JSON object.
fn sections_json(sections: &Sections) -> Map<String, Value> {
    let mut json = Map::new();
    if let Some(desired) = &sections.desired {
        json.insert("desired".into(), Value::Object(desired.clone()));
    }
    if let Some(reported) = &sections.reported {
        json.insert("reported".into(), Value::Object(reported.clone()));
    }
    json
}

/// A shadow as `/update/documents` shows it: `{state, metadata, version}`.
fn snapshot(shadow: &Shadow) -> Value {
    json!({
        "state": sections_json(&shadow.state),
        "metadata": sections_json(&shadow.metadata),
        "version": shadow.version,
    })
}

fn update_section(
    state: &mut Option<Map<String, Value>>,
    metadata: &mut Option<Map<String, Value>>,
    update: &SectionUpdate,
    now: u64,
) {
    match update {
        SectionUpdate::Keep => {}
        SectionUpdate::Remove => {
            *state = None;
            *metadata = None;
        }
        SectionUpdate::Merge(patch) => {
            let mut merged_state = state.take().unwrap_or_default();
            let mut merged_metadata = metadata.take().unwrap_or_default();
            merge(&mut merged_state, &mut merged_metadata, patch, now);
            if !merged_state.is_empty() {
                *state = Some(merged_state);
                *metadata = Some(merged_metadata);
            }
        }
    }
}

/// Merges `patch` into `state`, keeping `metadata` its mirror: `null` deletes a key and its
/// metadata, an object merges into an object (replacing any other value), anything else
/// replaces the value and gets fresh metadata. Objects the merge leaves empty are removed.
fn merge(
    state: &mut Map<String, Value>,
    metadata: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    now: u64,
) {
    for (key, patch_value) in patch {
        match patch_value {
            Value::Null => {
                state.remove(key);
                metadata.remove(key);
            }
            Value::Object(patch_object) => {
                let state_value = state
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                let metadata_value = metadata
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                // A scalar's metadata `{"timestamp":T}` is an object too, so both restart empty
                // when the state held no object; metadata alone when it is not an object (a
                // store edited by hand), keeping the state.
                if !state_value.is_object() {
                    *state_value = Value::Object(Map::new());
                    *metadata_value = Value::Object(Map::new());
                } else if !metadata_value.is_object() {
                    *metadata_value = Value::Object(Map::new());
                }
                if let (Value::Object(state_object), Value::Object(metadata_object)) =
                    (state_value, metadata_value)
                {
                    merge(state_object, metadata_object, patch_object, now);
                    if state_object.is_empty() {
                        state.remove(key);
                        metadata.remove(key);
                    }
                }
            }
            value => {
                state.insert(key.clone(), value.clone());
                metadata.insert(key.clone(), metadata_of(value, now));
            }
        }
    }
}

/// The metadata of `value` set at `now`: objects mirrored key by key, arrays element by
/// element, every other value (null included) `{"timestamp": now}`.
fn metadata_of(value: &Value, now: u64) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), metadata_of(value, now)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| metadata_of(v, now)).collect()),
        _ => json!({ "timestamp": now }),
    }
}

/// The shadow's delta and its metadata (taken from desired's), when desired differs from
/// reported.
fn shadow_delta(shadow: &Shadow) -> Option<(Map<String, Value>, Map<String, Value>)> {
    let desired = shadow.state.desired.as_ref()?;
    let delta = delta_of(desired, shadow.state.reported.as_ref());
    if delta.is_empty() {
        return None;
    }
    let delta_metadata = match &shadow.metadata.desired {
        Some(desired_metadata) => metadata_for(&delta, desired_metadata),
        None => Map::new(),
    };
    Some((delta, delta_metadata))
}

/// Every key of `desired` absent from `reported` or different from it; objects present on both
/// sides recurse, so only their differing leaves appear, under their full path. Arrays compare
/// as whole values; keys only in `reported` never appear.
fn delta_of(
    desired: &Map<String, Value>,
    reported: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut delta = Map::new();
    for (key, desired_value) in desired {
        match (desired_value, reported.and_then(|r| r.get(key))) {
            (Value::Object(desired_object), Some(Value::Object(reported_object))) => {
                let nested = delta_of(desired_object, Some(reported_object));
                if !nested.is_empty() {
                    delta.insert(key.clone(), Value::Object(nested));
                }
            }
            (_, Some(reported_value)) if json_equal(desired_value, reported_value) => {}
            _ => {
                delta.insert(key.clone(), desired_value.clone());
            }
        }
    }
    delta
}

/// The part of `metadata` (a mirror of a state section) under the keys of `subset`.
fn metadata_for(subset: &Map<String, Value>, metadata: &Map<String, Value>) -> Map<String, Value> {
    subset
        .iter()
        .filter_map(|(key, value)| {
            let entry = metadata.get(key)?;
            let entry = match (value, entry) {
                (Value::Object(nested), Value::Object(nested_metadata)) => {
                    Value::Object(metadata_for(nested, nested_metadata))
                }
                _ => entry.clone(),
            };
            Some((key.clone(), entry))
        })
        .collect()
}

/// JSON equality with numbers compared by value: integers exactly, otherwise as `f64`.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, value)| y.get(key).is_some_and(|other| json_equal(value, other)))
        }
        _ => a == b,
    }
}
