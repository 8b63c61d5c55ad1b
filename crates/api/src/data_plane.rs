//! The data plane (`iot-data`): device shadows, publishing, retained messages and connections,
//! for callers with SigV4 credentials (the admin: everything allowed) or with a device
//! certificate on the HTTPS port (decided by the certificate's IoT policies, as over MQTT).
//!
//! | operation | action decided for certificate callers | resource |
//! |---|---|---|
//! | GetThingShadow / UpdateThingShadow / DeleteThingShadow | `iot:GetThingShadow` ... | `thing/<thing>` or `thing/<thing>/<shadow>` |
//! | ListNamedShadowsForThing | `iot:ListNamedShadowsForThing` | `thing/<thing>` |
//! | Publish | `iot:Publish` (+ `iot:RetainPublish`) | `topic/<topic>` |
//! | GetRetainedMessage | `iot:GetRetainedMessage` | `topic/<topic>` |
//! | ListRetainedMessages | `iot:ListRetainedMessages` | `*` |
//! | DeleteConnection | `iot:DeleteConnection` | `client/<clientId>` |
//! | GetConnection, ListSubscriptions | none exists: admin (SigV4) callers only | |
//!
//! Path labels (`{topic}`, `{clientId}`) arrive percent-encoded (`%2F` for `/`, as the SDKs
//! send them) or with raw slashes (as curl users write them); both decode to the same name.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use ferrocore_broker::ferrocore_policy::Action;
use ferrocore_broker::{Broker, Caller, HttpPublish, HttpPublishError};
use ferrocore_mqtt::{PublishProperties, QoS};
use ferrocore_shadow::document::{RequestError, ShadowError};
use ferrocore_shadow::topic::{valid_shadow_name, valid_thing_name};
use ferrocore_shadow::{ShadowKey, ShadowService};
use serde::{Deserialize, Serialize};

use crate::extract::{AwsPath, AwsQuery, json_bytes, ok_json};
use crate::{ApiError, Shared};

mod custom_caller;

pub(crate) use custom_caller::custom_caller;
pub use custom_caller::{CustomAuthListener, custom_auth_http};

/// What the data plane serves from.
pub struct DataPlane {
    pub broker: Arc<Broker>,
    pub shadows: Arc<ShadowService>,
}

/// The TLS client certificate presented on the connection a request came on; the server
/// puts it in the request's extensions.
#[derive(Debug, Clone)]
pub struct ClientCertificate {
    /// AWS's certificate id (lowercase hex SHA-256 of the DER).
    pub id: String,
    pub der: Bytes,
    pub peer: SocketAddr,
    pub server_name: Option<String>,
}

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/things/{thingName}/shadow",
            get(get_shadow).post(update_shadow).delete(delete_shadow),
        )
        .route(
            "/api/things/shadow/ListNamedShadowsForThing/{thingName}",
            get(list_named_shadows),
        )
        .route("/topics/{*topic}", axum::routing::post(publish))
        .route("/retainedMessage", get(list_retained))
        .route("/retainedMessage/{*topic}", get(get_retained))
        .route(
            "/connections/{clientId}",
            get(get_connection).delete(delete_connection),
        )
        .route(
            "/connections/{clientId}/subscriptions",
            get(list_subscriptions),
        )
}

fn data_plane(state: &Shared) -> Result<&DataPlane, ApiError> {
    state
        .data_plane
        .as_ref()
        .ok_or_else(|| ApiError::new(503, "ServiceUnavailableException", "No data plane"))
}

fn forbidden() -> ApiError {
    ApiError::new(403, "ForbiddenException", "Forbidden")
}

/// `action` on `resource` for `caller`, or 403.
fn authorize(
    broker: &Broker,
    caller: &Caller,
    action: Action,
    resource: &str,
) -> Result<(), ApiError> {
    if broker.caller_allowed(caller, action, resource) {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// Operations with no IoT policy action: the admin only.
fn admin_only(caller: &Caller) -> Result<(), ApiError> {
    if caller.certificate_id().is_none() {
        Ok(())
    } else {
        Err(forbidden())
    }
}

// ----- shadows -----

#[derive(Deserialize)]
struct ThingPath {
    #[serde(rename = "thingName")]
    thing_name: String,
}

#[derive(Deserialize)]
struct ShadowQuery {
    name: Option<String>,
}

/// The shadow a request names, checked against AWS's name rules, after `action` is decided.
fn shadow_key(
    dp: &DataPlane,
    caller: &Caller,
    action: Action,
    thing: String,
    name: Option<String>,
) -> Result<ShadowKey, ApiError> {
    if !valid_thing_name(&thing) {
        return Err(ApiError::invalid_request(
            "thingName must be 1 to 128 characters of [a-zA-Z0-9:_-]",
        ));
    }
    if let Some(n) = &name
        && !valid_shadow_name(n, dp.shadows.config().max_shadow_name)
    {
        return Err(ApiError::invalid_request(format!(
            "name must be 1 to {} characters of [$a-zA-Z0-9:_-]",
            dp.shadows.config().max_shadow_name
        )));
    }
    let arns = dp.broker.arns();
    let resource = match &name {
        Some(n) => arns.thing_shadow(&thing, n),
        None => arns.thing(&thing),
    };
    authorize(&dp.broker, caller, action, &resource)?;
    Ok(ShadowKey { thing, name })
}

/// A shadow service answer as HTTP: the JSON document, or the error with its AWS name.
fn shadow_answer(answer: Result<Vec<u8>, RequestError>) -> Response {
    match answer {
        Ok(body) => json_bytes(body),
        Err(e) => shadow_error(&e.error).into_response(),
    }
}

fn shadow_error(e: &ShadowError) -> ApiError {
    let code = match e.code {
        400 => "InvalidRequestException",
        401 => "UnauthorizedException",
        403 => "ForbiddenException",
        404 => "ResourceNotFoundException",
        405 => "MethodNotAllowedException",
        409 => "ConflictException",
        413 => "RequestEntityTooLargeException",
        415 => "UnsupportedDocumentEncodingException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalFailureException",
    };
    ApiError::new(e.code, code, e.message.clone())
}

async fn get_shadow(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    AwsPath(p): AwsPath<ThingPath>,
    AwsQuery(q): AwsQuery<ShadowQuery>,
) -> Result<Response, ApiError> {
    let dp = data_plane(&state)?;
    let key = shadow_key(dp, &caller, Action::GetThingShadow, p.thing_name, q.name)?;
    Ok(shadow_answer(dp.shadows.get(key).await))
}

async fn update_shadow(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    AwsPath(p): AwsPath<ThingPath>,
    AwsQuery(q): AwsQuery<ShadowQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let dp = data_plane(&state)?;
    let key = shadow_key(dp, &caller, Action::UpdateThingShadow, p.thing_name, q.name)?;
    Ok(shadow_answer(dp.shadows.update(key, body).await))
}

async fn delete_shadow(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    AwsPath(p): AwsPath<ThingPath>,
    AwsQuery(q): AwsQuery<ShadowQuery>,
) -> Result<Response, ApiError> {
    let dp = data_plane(&state)?;
    let key = shadow_key(dp, &caller, Action::DeleteThingShadow, p.thing_name, q.name)?;
    Ok(shadow_answer(dp.shadows.delete(key).await))
}

#[derive(Deserialize)]
struct ListNamedQuery {
    #[serde(rename = "nextToken")]
    next_token: Option<String>,
    #[serde(rename = "pageSize")]
    page_size: Option<String>,
}

#[derive(Serialize)]
struct ListNamedAnswer {
    results: Vec<String>,
    #[serde(rename = "nextToken", skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
    timestamp: u64,
}

async fn list_named_shadows(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    AwsPath(p): AwsPath<ThingPath>,
    AwsQuery(q): AwsQuery<ListNamedQuery>,
) -> Result<Response, ApiError> {
    let dp = data_plane(&state)?;
    let page_size = bounded_int(q.page_size.as_deref(), "pageSize", 1, 100, 100)?;
    if !valid_thing_name(&p.thing_name) {
        return Err(ApiError::invalid_request(
            "thingName must be 1 to 128 characters of [a-zA-Z0-9:_-]",
        ));
    }
    let resource = dp.broker.arns().thing(&p.thing_name);
    authorize(
        &dp.broker,
        &caller,
        Action::ListNamedShadowsForThing,
        &resource,
    )?;
    // The token is the last name of the previous page: names are URL-safe already.
    let after = q.next_token.filter(|t| !t.is_empty());
    if let Some(t) = &after
        && !valid_shadow_name(t, dp.shadows.config().max_shadow_name)
    {
        return Err(ApiError::invalid_request("Invalid nextToken"));
    }
    let mut results = dp
        .shadows
        .list_named(&p.thing_name, after.as_deref(), page_size + 1)
        .await
        .map_err(|e| shadow_error(&e))?;
    let next_token = end_page(&mut results, page_size, Clone::clone);
    Ok(ok_json(&ListNamedAnswer {
        results,
        next_token,
        timestamp: dp.shadows.now_secs(),
    }))
}

// ----- publish -----

#[derive(Deserialize)]
struct TopicPath {
    topic: String,
}

#[derive(Deserialize)]
struct PublishQuery {
    qos: Option<String>,
    retain: Option<String>,
    #[serde(rename = "contentType")]
    content_type: Option<String>,
    #[serde(rename = "responseTopic")]
    response_topic: Option<String>,
    #[serde(rename = "messageExpiry")]
    message_expiry: Option<String>,
}

#[derive(Serialize)]
struct PublishAnswer {
    message: &'static str,
    #[serde(rename = "traceId")]
    trace_id: String,
}

async fn publish(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    AwsPath(p): AwsPath<TopicPath>,
    AwsQuery(q): AwsQuery<PublishQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let dp = data_plane(&state)?;
    let qos = match bounded_int(q.qos.as_deref(), "qos", 0, 1, 0)? {
        0 => QoS::AtMostOnce,
        _ => QoS::AtLeastOnce,
    };
    let retain = parse_bool(q.retain.as_deref(), "retain")?;
    let message_expiry_interval = match q.message_expiry.as_deref() {
        None => None,
        Some(s) => Some(s.parse::<u32>().ok().filter(|&v| v >= 1).ok_or_else(|| {
            ApiError::invalid_request("messageExpiry must be a positive number of seconds")
        })?),
    };
    let properties = PublishProperties {
        payload_format_indicator: payload_format(&headers)?,
        message_expiry_interval,
        content_type: q.content_type,
        response_topic: q.response_topic,
        correlation_data: base64_header(&headers, "x-amz-mqtt5-correlation-data")?.map(Bytes::from),
        user_properties: user_properties(&headers)?,
        ..PublishProperties::default()
    };
    let publish = HttpPublish {
        topic: p.topic,
        qos,
        retain,
        payload: body,
        properties,
    };
    let commit = dp
        .broker
        .publish_http(&caller, publish)
        .map_err(|e| match e {
            HttpPublishError::Forbidden => forbidden(),
            other => ApiError::invalid_request(other.to_string()),
        })?;
    if let Some(commit) = commit
        && (qos == QoS::AtLeastOnce || retain)
        && let Err(e) = commit.await
    {
        tracing::error!(error = %e, "storing an HTTP publish failed");
        return Err(ApiError::new(
            500,
            "InternalFailureException",
            "Internal failure",
        ));
    }
    Ok(ok_json(&PublishAnswer {
        message: "OK",
        trace_id: trace_id(),
    }))
}

fn payload_format(headers: &HeaderMap) -> Result<Option<u8>, ApiError> {
    match header_str(headers, "x-amz-mqtt5-payload-format-indicator")? {
        None => Ok(None),
        Some("UNSPECIFIED_BYTES") => Ok(Some(0)),
        Some("UTF8_DATA") => Ok(Some(1)),
        Some(_) => Err(ApiError::invalid_request(
            "x-amz-mqtt5-payload-format-indicator must be UNSPECIFIED_BYTES or UTF8_DATA",
        )),
    }
}

/// `x-amz-mqtt5-user-properties`: base64 of a JSON array of one-member objects, in order.
fn user_properties(headers: &HeaderMap) -> Result<Vec<(String, String)>, ApiError> {
    let Some(json) = base64_header(headers, "x-amz-mqtt5-user-properties")? else {
        return Ok(Vec::new());
    };
    let bad = || {
        ApiError::invalid_request(
            "x-amz-mqtt5-user-properties must be the base64 of a JSON array of {\"name\": \"value\"} objects",
        )
    };
    let items: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(&json).map_err(|_| bad())?;
    let mut properties = Vec::new();
    for item in items {
        for (k, v) in item {
            let serde_json::Value::String(v) = v else {
                return Err(bad());
            };
            properties.push((k, v));
        }
    }
    Ok(properties)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::invalid_request(format!("{name} is not readable text")))
        })
        .transpose()
}

fn base64_header(headers: &HeaderMap, name: &str) -> Result<Option<Vec<u8>>, ApiError> {
    header_str(headers, name)?
        .map(|v| {
            BASE64
                .decode(v.trim())
                .map_err(|_| ApiError::invalid_request(format!("{name} is not valid base64")))
        })
        .transpose()
}

fn trace_id() -> String {
    ferrocore_identity::registry::uuid_v4().unwrap_or_default()
}

// ----- retained messages -----

#[derive(Serialize)]
struct RetainedAnswer {
    topic: String,
    payload: String,
    qos: u8,
    #[serde(rename = "lastModifiedTime")]
    last_modified_time: u64,
    #[serde(rename = "userProperties", skip_serializing_if = "Option::is_none")]
    user_properties: Option<String>,
}

async fn get_retained(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    AwsPath(p): AwsPath<TopicPath>,
) -> Result<Response, ApiError> {
    let dp = data_plane(&state)?;
    let resource = dp.broker.arns().topic(&p.topic);
    authorize(&dp.broker, &caller, Action::GetRetainedMessage, &resource)?;
    let Some(m) = dp.broker.retained_message(&p.topic) else {
        return Err(ApiError::new(
            404,
            "ResourceNotFoundException",
            format!("No retained message on topic {}", p.topic),
        ));
    };
    let user_properties = (!m.user_properties.is_empty()).then(|| {
        let list: Vec<serde_json::Value> = m
            .user_properties
            .iter()
            .map(|(k, v)| serde_json::json!({ k: v }))
            .collect();
        BASE64.encode(serde_json::Value::Array(list).to_string())
    });
    Ok(ok_json(&RetainedAnswer {
        topic: m.topic,
        payload: BASE64.encode(&m.payload),
        qos: m.qos,
        last_modified_time: m.last_modified_ms,
        user_properties,
    }))
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(rename = "nextToken")]
    next_token: Option<String>,
    #[serde(rename = "maxResults")]
    max_results: Option<String>,
}

#[derive(Serialize)]
struct RetainedSummaryAnswer {
    topic: String,
    #[serde(rename = "payloadSize")]
    payload_size: usize,
    qos: u8,
    #[serde(rename = "lastModifiedTime")]
    last_modified_time: u64,
}

#[derive(Serialize)]
struct ListRetainedAnswer {
    #[serde(rename = "retainedTopics")]
    retained_topics: Vec<RetainedSummaryAnswer>,
    #[serde(rename = "nextToken", skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

async fn list_retained(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    AwsQuery(q): AwsQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let dp = data_plane(&state)?;
    authorize(&dp.broker, &caller, Action::ListRetainedMessages, "*")?;
    let max = bounded_int(q.max_results.as_deref(), "maxResults", 1, 200, 200)?;
    let after = decode_token(q.next_token.as_deref())?;
    let mut page = dp.broker.retained_summaries(after.as_deref(), max + 1);
    let next_token = end_page(&mut page, max, |s| encode_token(&s.topic));
    let retained_topics = page
        .into_iter()
        .map(|s| RetainedSummaryAnswer {
            topic: s.topic,
            payload_size: s.payload_size,
            qos: s.qos,
            last_modified_time: s.last_modified_ms,
        })
        .collect();
    Ok(ok_json(&ListRetainedAnswer {
        retained_topics,
        next_token,
    }))
}

/// Cuts `items` (fetched one beyond the page) to `max`; the token of the page's last item when
/// more follow.
fn end_page<T>(items: &mut Vec<T>, max: usize, token: impl Fn(&T) -> String) -> Option<String> {
    if items.len() <= max {
        return None;
    }
    items.truncate(max);
    items.last().map(token)
}

/// Page tokens carry the last key of the previous page, base64url: topics and filters may
/// hold any character.
fn encode_token(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

fn decode_token(token: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(Some)
        .ok_or_else(|| ApiError::invalid_request("Invalid nextToken"))
}

// ----- connections -----

#[derive(Deserialize)]
struct ClientPath {
    #[serde(rename = "clientId")]
    client_id: String,
}

fn checked_client_id(client_id: &str) -> Result<(), ApiError> {
    if client_id.is_empty() || client_id.len() > 128 || client_id.starts_with('$') {
        return Err(ApiError::invalid_request(
            "clientId must be 1 to 128 bytes and must not start with '$'",
        ));
    }
    Ok(())
}

fn no_connection(client_id: &str) -> ApiError {
    ApiError::new(
        404,
        "ResourceNotFoundException",
        format!("No connection or session for client id {client_id}"),
    )
}

#[derive(Deserialize)]
struct DeleteConnectionQuery {
    #[serde(rename = "cleanSession")]
    clean_session: Option<String>,
    #[serde(rename = "preventWillMessage")]
    prevent_will_message: Option<String>,
}

async fn delete_connection(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    AwsPath(p): AwsPath<ClientPath>,
    AwsQuery(q): AwsQuery<DeleteConnectionQuery>,
) -> Result<Response, ApiError> {
    let dp = data_plane(&state)?;
    checked_client_id(&p.client_id)?;
    let clean_session = parse_bool(q.clean_session.as_deref(), "cleanSession")?;
    let prevent_will = parse_bool(q.prevent_will_message.as_deref(), "preventWillMessage")?;
    let resource = dp.broker.arns().client(&p.client_id);
    authorize(&dp.broker, &caller, Action::DeleteConnection, &resource)?;
    if !dp
        .broker
        .delete_connection(&p.client_id, clean_session, prevent_will)
    {
        return Err(no_connection(&p.client_id));
    }
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
struct GetConnectionQuery {
    #[serde(rename = "includeSocketInformation")]
    include_socket_information: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionAnswer {
    connected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    thing_name: Option<String>,
    clean_session: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive_duration: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connected_since: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnected_since: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disconnect_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_expiry: Option<u32>,
    client_id: String,
}

async fn get_connection(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    AwsPath(p): AwsPath<ClientPath>,
    AwsQuery(q): AwsQuery<GetConnectionQuery>,
) -> Result<Response, ApiError> {
    let dp = data_plane(&state)?;
    checked_client_id(&p.client_id)?;
    let with_socket = parse_bool(
        q.include_socket_information.as_deref(),
        "includeSocketInformation",
    )?;
    admin_only(&caller)?;
    let s = dp
        .broker
        .connection_status(&p.client_id)
        .ok_or_else(|| no_connection(&p.client_id))?;
    let (source, target) = if with_socket {
        (s.source, s.target)
    } else {
        (None, None)
    };
    Ok(ok_json(&ConnectionAnswer {
        connected: s.connected,
        thing_name: s.thing_name,
        clean_session: s.clean_session,
        source_ip: source.map(|a| a.ip().to_string()),
        source_port: source.map(|a| a.port()),
        target_ip: target.map(|a| a.ip().to_string()),
        target_port: target.map(|a| a.port()),
        keep_alive_duration: s.keep_alive_secs,
        connected_since: s.connected_since_ms,
        disconnected_since: s.disconnected_since_ms,
        disconnect_reason: s.disconnect_reason,
        session_expiry: s.session_expiry_secs,
        client_id: s.client_id,
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionAnswer {
    topic_filter: String,
    qos: u8,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListSubscriptionsAnswer {
    subscriptions: Vec<SubscriptionAnswer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

async fn list_subscriptions(
    State(state): State<Shared>,
    Extension(caller): Extension<Caller>,
    AwsPath(p): AwsPath<ClientPath>,
    AwsQuery(q): AwsQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let dp = data_plane(&state)?;
    checked_client_id(&p.client_id)?;
    let max = bounded_int(q.max_results.as_deref(), "maxResults", 1, 200, 200)?;
    let after = decode_token(q.next_token.as_deref())?;
    admin_only(&caller)?;
    let all = dp
        .broker
        .subscriptions(&p.client_id)
        .ok_or_else(|| no_connection(&p.client_id))?;
    let mut page: Vec<(String, u8)> = all
        .into_iter()
        .filter(|(f, _)| after.as_deref().is_none_or(|a| f.as_str() > a))
        .take(max + 1)
        .collect();
    let next_token = end_page(&mut page, max, |(f, _)| encode_token(f));
    Ok(ok_json(&ListSubscriptionsAnswer {
        subscriptions: page
            .into_iter()
            .map(|(topic_filter, qos)| SubscriptionAnswer { topic_filter, qos })
            .collect(),
        next_token,
    }))
}

// ----- query values -----

fn bounded_int(
    value: Option<&str>,
    name: &str,
    min: usize,
    max: usize,
    default: usize,
) -> Result<usize, ApiError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_request(format!("{name} must be a number from {min} to {max}"))
            }),
    }
}

fn parse_bool(value: Option<&str>, name: &str) -> Result<bool, ApiError> {
    match value {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(ApiError::invalid_request(format!(
            "{name} must be true or false"
        ))),
    }
}
