//! `ferrocore cert list|describe|activate|deactivate|revoke` and
//! `ferrocore ca list|describe|crl set|crl clear`.

use std::path::Path;

use serde_json::Value;

use super::Failure;
use super::client::Client;
use super::ops::{CertificateDescription, CertificateSummary, view};
use super::output;
use super::things::print_json;

/// Which listing an ID prefix is looked up in.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Device,
    Ca,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Device => "certificate",
            Kind::Ca => "CA certificate",
        }
    }
}

/// A full certificate ID from an ID or a unique prefix of one (at least 4 hex digits), as
/// `git` does for commits.
pub(super) async fn resolve_id(
    client: &Client,
    given: &str,
    kind: Kind,
) -> Result<String, Failure> {
    let given = given.trim().to_ascii_lowercase();
    let hex = !given.is_empty() && given.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && given.len() == 64 {
        return Ok(given);
    }
    if !hex || given.len() < 4 || given.len() > 64 {
        return Err(format!(
            "\"{given}\" is not a {} ID (64 hex digits, or a unique prefix of at least 4)",
            kind.noun()
        )
        .into());
    }
    let all = match kind {
        Kind::Device => client.list_certificates().await?,
        Kind::Ca => client.list_ca_certificates().await?,
    };
    let matches: Vec<String> = all
        .iter()
        .filter_map(|c| c.get("certificateId").and_then(Value::as_str))
        .filter(|id| id.to_ascii_lowercase().starts_with(&given))
        .map(str::to_owned)
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("no {} ID starts with {given}", kind.noun()).into()),
        many => Err(format!(
            "{} {}s start with {given}; give more digits",
            many.len(),
            kind.noun()
        )
        .into()),
    }
}

fn list_rows(items: &[Value], what: &str) -> Result<Vec<Vec<String>>, Failure> {
    let mut rows = Vec::new();
    for c in items {
        let c: CertificateSummary = view(c, what)?;
        rows.push(vec![
            c.certificate_id,
            c.status.unwrap_or_else(|| "-".into()),
            c.certificate_mode.unwrap_or_else(|| "-".into()),
            output::timestamp(c.creation_date.as_ref()).unwrap_or_else(|| "-".into()),
        ]);
    }
    Ok(rows)
}

pub async fn list(client: &Client, json: bool) -> Result<(), Failure> {
    let certificates = client.list_certificates().await?;
    if json {
        print_json(&serde_json::json!({ "certificates": certificates }));
        return Ok(());
    }
    if certificates.is_empty() {
        println!("No certificates.");
        return Ok(());
    }
    let rows = list_rows(&certificates, "ListCertificates")?;
    print!(
        "{}",
        output::table(&["ID", "STATUS", "MODE", "CREATED"], &rows)
    );
    Ok(())
}

fn description_fields(d: CertificateDescription) -> String {
    let validity = d.validity.unwrap_or_default();
    output::fields(&[
        ("certificateId", Some(d.certificate_id)),
        ("certificateArn", d.certificate_arn),
        ("status", d.status),
        ("mode", d.certificate_mode),
        ("caCertificateId", d.ca_certificate_id),
        ("autoRegistration", d.auto_registration_status),
        ("ownedBy", d.owned_by),
        ("created", output::timestamp(d.creation_date.as_ref())),
        (
            "lastModified",
            output::timestamp(d.last_modified_date.as_ref()),
        ),
        ("validFrom", output::timestamp(validity.not_before.as_ref())),
        ("validUntil", output::timestamp(validity.not_after.as_ref())),
        ("customerVersion", d.customer_version.map(|v| v.to_string())),
        ("generationId", d.generation_id),
    ])
}

pub async fn describe(client: &Client, id: &str, json: bool, pem: bool) -> Result<(), Failure> {
    let id = resolve_id(client, id, Kind::Device).await?;
    let answer = client.describe_certificate(&id).await?;
    if json {
        print_json(&answer);
        return Ok(());
    }
    let d: CertificateDescription = view(
        answer.get("certificateDescription").unwrap_or(&Value::Null),
        "DescribeCertificate",
    )?;
    if pem {
        let text = d
            .certificate_pem
            .ok_or_else(|| "the DescribeCertificate answer has no certificatePem".to_owned())?;
        print!("{}", text);
        if !text.ends_with('\n') {
            println!();
        }
        return Ok(());
    }
    print!("{}", description_fields(d));
    Ok(())
}

pub async fn set_status(client: &Client, id: &str, status: &str) -> Result<(), Failure> {
    let id = resolve_id(client, id, Kind::Device).await?;
    client.update_certificate(&id, status).await?;
    println!("certificate {id} is now {status}");
    Ok(())
}

pub async fn ca_list(client: &Client, json: bool) -> Result<(), Failure> {
    let certificates = client.list_ca_certificates().await?;
    if json {
        print_json(&serde_json::json!({ "certificates": certificates }));
        return Ok(());
    }
    if certificates.is_empty() {
        println!("No CA certificates.");
        return Ok(());
    }
    let rows = list_rows(&certificates, "ListCACertificates")?;
    print!(
        "{}",
        output::table(&["ID", "STATUS", "MODE", "CREATED"], &rows)
    );
    Ok(())
}

pub async fn ca_describe(client: &Client, id: &str, json: bool) -> Result<(), Failure> {
    let id = resolve_id(client, id, Kind::Ca).await?;
    let answer = client.describe_ca_certificate(&id).await?;
    if json {
        print_json(&answer);
        return Ok(());
    }
    let d: CertificateDescription = view(
        answer.get("certificateDescription").unwrap_or(&Value::Null),
        "DescribeCACertificate",
    )?;
    print!("{}", description_fields(d));
    Ok(())
}

pub async fn crl_set(client: &Client, ca_id: &str, file: &Path) -> Result<(), Failure> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let pem = String::from_utf8(bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN X509 CRL-----"));
    let Some(pem) = pem else {
        return Err(format!(
            "{} is not a PEM CRL (-----BEGIN X509 CRL-----); convert a DER one with \
             `openssl crl -inform DER -in FILE -outform PEM`",
            file.display()
        )
        .into());
    };
    let id = resolve_id(client, ca_id, Kind::Ca).await?;
    let answer = client.set_ca_crl(&id, &pem).await?;
    println!("set the CRL of CA {id} from {}", file.display());
    print!("{}", crl_fields(&answer, None));
    Ok(())
}

/// The summary lines of a CRL answer (`{caCertificateId, thisUpdate, nextUpdate, crlNumber,
/// revokedCount}`).
fn crl_fields(answer: &Value, ca_id: Option<String>) -> String {
    output::fields(&[
        ("caCertificateId", ca_id),
        ("revoked", answer.get("revokedCount").map(Value::to_string)),
        ("thisUpdate", output::timestamp(answer.get("thisUpdate"))),
        ("nextUpdate", output::timestamp(answer.get("nextUpdate"))),
        (
            "crlNumber",
            answer
                .get("crlNumber")
                .and_then(Value::as_str)
                .map(str::to_owned),
        ),
    ])
}

pub async fn crl_show(client: &Client, ca_id: &str, json: bool, pem: bool) -> Result<(), Failure> {
    let id = resolve_id(client, ca_id, Kind::Ca).await?;
    let answer = client.describe_ca_crl(&id).await?;
    if json {
        print_json(&answer);
    } else if pem {
        let text = answer
            .get("crlPem")
            .and_then(Value::as_str)
            .ok_or_else(|| "the answer has no crlPem".to_owned())?;
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
    } else {
        print!("{}", crl_fields(&answer, Some(id)));
    }
    Ok(())
}

pub async fn crl_clear(client: &Client, ca_id: &str) -> Result<(), Failure> {
    let id = resolve_id(client, ca_id, Kind::Ca).await?;
    client.clear_ca_crl(&id).await?;
    println!("removed the CRL of CA {id}");
    Ok(())
}
