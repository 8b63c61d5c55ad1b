//! The control-plane operations the admin commands use, with AWS's paths, query names and
//! JSON member names (botocore's `iot` 2015-05-28 model). Answers stay `serde_json::Value`
//! so `--json` prints what the server said; the typed views read the members they need.

use std::collections::BTreeMap;

use hyper::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{Call, CallError, Client, encode};

/// Listing page sizes (AWS's maximum for both).
const THINGS_PAGE: u32 = 250;
const CERTIFICATES_PAGE: u32 = 250;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedThing {
    pub thing_arn: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thing {
    pub thing_name: String,
    pub thing_arn: Option<String>,
    pub thing_id: Option<String>,
    pub thing_type_name: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    pub version: Option<i64>,
    pub default_client_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeysAndCertificate {
    pub certificate_arn: String,
    pub certificate_id: String,
    pub certificate_pem: String,
    pub key_pair: KeyPair,
}

/// `Debug` never shows the private key.
#[derive(Clone, Deserialize)]
pub struct KeyPair {
    #[serde(rename = "PrivateKey")]
    pub private_key: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPair { private_key: <redacted> }")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSummary {
    pub certificate_id: String,
    pub status: Option<String>,
    pub certificate_mode: Option<String>,
    pub creation_date: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Validity {
    pub not_before: Option<Value>,
    pub not_after: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateDescription {
    pub certificate_id: String,
    pub certificate_arn: Option<String>,
    pub ca_certificate_id: Option<String>,
    pub status: Option<String>,
    pub certificate_pem: Option<String>,
    pub owned_by: Option<String>,
    pub creation_date: Option<Value>,
    pub last_modified_date: Option<Value>,
    pub customer_version: Option<i64>,
    pub generation_id: Option<String>,
    pub validity: Option<Validity>,
    pub certificate_mode: Option<String>,
    pub auto_registration_status: Option<String>,
}

/// Reads a typed view of an answer; a missing or mistyped member is a clear error.
pub fn view<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, CallError> {
    T::deserialize(value).map_err(|e| {
        CallError::Transport(format!(
            "the server's {what} answer is not what AWS sends: {e}"
        ))
    })
}

/// A listing filter of `ListThings`.
#[derive(Debug, Clone, Default)]
pub struct ThingFilter {
    pub attribute: Option<(String, String)>,
    pub thing_type: Option<String>,
}

impl Client {
    pub async fn create_thing(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<Value, CallError> {
        let body = if attributes.is_empty() {
            json!({})
        } else {
            json!({ "attributePayload": { "attributes": attributes } })
        };
        self.call(Call::new(Method::POST, format!("/things/{}", encode(name))).json(body))
            .await
    }

    pub async fn describe_thing(&self, name: &str) -> Result<Value, CallError> {
        self.call(Call::new(Method::GET, format!("/things/{}", encode(name))))
            .await
    }

    pub async fn delete_thing(&self, name: &str) -> Result<Value, CallError> {
        self.call(Call::new(
            Method::DELETE,
            format!("/things/{}", encode(name)),
        ))
        .await
    }

    /// Every page of `ListThings`; returns the `things` of all pages.
    pub async fn list_things(&self, filter: &ThingFilter) -> Result<Vec<Value>, CallError> {
        let mut things = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = Call::new(Method::GET, "/things".to_owned())
                .query("maxResults", THINGS_PAGE.to_string());
            if let Some((name, value)) = &filter.attribute {
                call = call
                    .query("attributeName", name.clone())
                    .query("attributeValue", value.clone());
            }
            if let Some(t) = &filter.thing_type {
                call = call.query("thingTypeName", t.clone());
            }
            if let Some(t) = &token {
                call = call.query("nextToken", t.clone());
            }
            let page = self.call(call).await?;
            things.extend(list_member(&page, "things")?);
            token = next(&page, "nextToken", token.as_deref())?;
            if token.is_none() {
                return Ok(things);
            }
        }
    }

    pub async fn create_keys_and_certificate(&self) -> Result<Value, CallError> {
        self.call(
            Call::new(Method::POST, "/keys-and-certificate".to_owned())
                .query("setAsActive", "true"),
        )
        .await
    }

    pub async fn attach_thing_principal(
        &self,
        thing: &str,
        principal: &str,
    ) -> Result<Value, CallError> {
        self.call(
            Call::new(Method::PUT, format!("/things/{}/principals", encode(thing)))
                .header("x-amzn-principal", principal),
        )
        .await
    }

    pub async fn detach_thing_principal(
        &self,
        thing: &str,
        principal: &str,
    ) -> Result<Value, CallError> {
        self.call(
            Call::new(
                Method::DELETE,
                format!("/things/{}/principals", encode(thing)),
            )
            .header("x-amzn-principal", principal),
        )
        .await
    }

    /// Every page of `ListThingPrincipals`: the ARNs attached to a thing.
    pub async fn list_thing_principals(&self, thing: &str) -> Result<Vec<String>, CallError> {
        let mut principals = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut call = Call::new(Method::GET, format!("/things/{}/principals", encode(thing)))
                .query("maxResults", THINGS_PAGE.to_string());
            if let Some(t) = &token {
                call = call.query("nextToken", t.clone());
            }
            let page = self.call(call).await?;
            principals.extend(
                list_member(&page, "principals")?
                    .iter()
                    .filter_map(|p| p.as_str().map(str::to_owned)),
            );
            token = next(&page, "nextToken", token.as_deref())?;
            if token.is_none() {
                return Ok(principals);
            }
        }
    }

    /// Every page of `ListCertificates`.
    pub async fn list_certificates(&self) -> Result<Vec<Value>, CallError> {
        self.list_marked("/certificates").await
    }

    /// Every page of `ListCACertificates`.
    pub async fn list_ca_certificates(&self) -> Result<Vec<Value>, CallError> {
        self.list_marked("/cacertificates").await
    }

    async fn list_marked(&self, path: &str) -> Result<Vec<Value>, CallError> {
        let mut all = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut call = Call::new(Method::GET, path.to_owned())
                .query("pageSize", CERTIFICATES_PAGE.to_string());
            if let Some(m) = &marker {
                call = call.query("marker", m.clone());
            }
            let page = self.call(call).await?;
            all.extend(list_member(&page, "certificates")?);
            marker = next(&page, "nextMarker", marker.as_deref())?;
            if marker.is_none() {
                return Ok(all);
            }
        }
    }

    pub async fn describe_certificate(&self, id: &str) -> Result<Value, CallError> {
        self.call(Call::new(
            Method::GET,
            format!("/certificates/{}", encode(id)),
        ))
        .await
    }

    /// `UpdateCertificate`: ACTIVE, INACTIVE or REVOKED.
    pub async fn update_certificate(&self, id: &str, status: &str) -> Result<Value, CallError> {
        self.call(
            Call::new(Method::PUT, format!("/certificates/{}", encode(id)))
                .query("newStatus", status),
        )
        .await
    }

    pub async fn delete_certificate(&self, id: &str) -> Result<Value, CallError> {
        self.call(Call::new(
            Method::DELETE,
            format!("/certificates/{}", encode(id)),
        ))
        .await
    }

    /// `DescribeEndpoint` for `iot:Data-ATS`: the host devices connect to.
    pub async fn describe_endpoint(&self) -> Result<String, CallError> {
        let answer = self
            .call(
                Call::new(Method::GET, "/endpoint".to_owned())
                    .query("endpointType", "iot:Data-ATS"),
            )
            .await?;
        answer
            .get("endpointAddress")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                CallError::Transport("the DescribeEndpoint answer has no endpointAddress".into())
            })
    }

    pub async fn describe_ca_certificate(&self, id: &str) -> Result<Value, CallError> {
        self.call(Call::new(
            Method::GET,
            format!("/cacertificate/{}", encode(id)),
        ))
        .await
    }

    /// Ferrocore extension: the CRL checked for certificates this CA issued.
    pub async fn set_ca_crl(&self, id: &str, crl_pem: &str) -> Result<Value, CallError> {
        self.call(
            Call::new(Method::PUT, format!("/cacertificate/{}/crl", encode(id)))
                .json(json!({ "crlPem": crl_pem })),
        )
        .await
    }

    pub async fn describe_ca_crl(&self, id: &str) -> Result<Value, CallError> {
        self.call(Call::new(
            Method::GET,
            format!("/cacertificate/{}/crl", encode(id)),
        ))
        .await
    }

    pub async fn clear_ca_crl(&self, id: &str) -> Result<Value, CallError> {
        self.call(Call::new(
            Method::DELETE,
            format!("/cacertificate/{}/crl", encode(id)),
        ))
        .await
    }
}

fn list_member(page: &Value, member: &str) -> Result<Vec<Value>, CallError> {
    match page.get(member) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(_) => Err(CallError::Transport(format!(
            "the server's listing has a `{member}` that is not a list"
        ))),
    }
}

/// The next page token; a server repeating the same token would loop forever, so that is an
/// error.
fn next(page: &Value, member: &str, previous: Option<&str>) -> Result<Option<String>, CallError> {
    let token = page
        .get(member)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    if token.is_some() && token.as_deref() == previous {
        return Err(CallError::Transport(format!(
            "the server returned the same {member} twice; stopping"
        )));
    }
    Ok(token)
}
