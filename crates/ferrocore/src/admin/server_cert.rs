//! `ferrocore server-cert import|list|delete`: the server certificates of domain
//! configurations, through the server's ACM operations (`ImportCertificate`,
//! `ListCertificates`, `DeleteCertificate`, signed for service `acm`), so they are named by the
//! ACM ARNs that `serverCertificateArns` takes.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Subcommand;
use hyper::http::Method;
use serde_json::{Value, json};

use super::client::{Call, Client};
use super::things::print_json;
use super::{ConnFlags, Failure, output, run};

#[derive(clap::Args)]
pub struct ServerCertArgs {
    #[command(subcommand)]
    command: ServerCertCommand,
    #[command(flatten)]
    conn: ConnFlags,
}

#[derive(Subcommand)]
enum ServerCertCommand {
    /// Import a server certificate and its private key; prints its ARN (for
    /// `serverCertificateArns`). With --arn, replace that certificate: the domains using it
    /// present the new one from the next connection, without a restart.
    Import {
        /// PEM file with the server's certificate (the end entity only).
        #[arg(long)]
        certificate: PathBuf,
        /// PEM file with its private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
        #[arg(long)]
        private_key: PathBuf,
        /// PEM file with the intermediate certificates sent after it.
        #[arg(long)]
        chain: Option<PathBuf>,
        /// Re-import under this existing ARN.
        #[arg(long)]
        arn: Option<String>,
    },
    /// List imported server certificates.
    List {
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Delete an imported server certificate (refused while a domain configuration uses it).
    Delete { arn: String },
}

/// Runs a `ferrocore server-cert` command and exits.
pub fn run_server_cert(args: ServerCertArgs) -> ! {
    let conn = args.conn.clone();
    run(&conn, move |client, _| async move {
        match args.command {
            ServerCertCommand::Import {
                certificate,
                private_key,
                chain,
                arn,
            } => import(&client, &certificate, &private_key, chain.as_deref(), arn).await,
            ServerCertCommand::List { json } => list(&client, json).await,
            ServerCertCommand::Delete { arn } => {
                acm(
                    &client,
                    "DeleteCertificate",
                    json!({ "CertificateArn": arn }),
                )
                .await?;
                println!("deleted {arn}");
                Ok(())
            }
        }
    })
}

/// One ACM operation (JSON 1.1: `POST /`, the operation in `X-Amz-Target`).
async fn acm(client: &Client, operation: &str, body: Value) -> Result<Value, Failure> {
    let call = Call::new(Method::POST, "/".to_owned())
        .service("acm")
        .header("x-amz-target", format!("CertificateManager.{operation}"))
        .json(body);
    Ok(client.call(call).await?)
}

/// The file's bytes, base64 (ACM's blobs).
fn blob(path: &Path) -> Result<String, Failure> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(BASE64.encode(bytes))
}

async fn import(
    client: &Client,
    certificate: &Path,
    private_key: &Path,
    chain: Option<&Path>,
    arn: Option<String>,
) -> Result<(), Failure> {
    let mut body = json!({
        "Certificate": blob(certificate)?,
        "PrivateKey": blob(private_key)?,
    });
    if let Some(chain) = chain {
        body["CertificateChain"] = blob(chain)?.into();
    }
    if let Some(arn) = arn {
        body["CertificateArn"] = arn.into();
    }
    let answer = acm(client, "ImportCertificate", body).await?;
    let arn = answer
        .get("CertificateArn")
        .and_then(Value::as_str)
        .ok_or_else(|| "the server's answer has no CertificateArn".to_owned())?;
    println!("{arn}");
    Ok(())
}

async fn list(client: &Client, json: bool) -> Result<(), Failure> {
    let answer = acm(client, "ListCertificates", json!({})).await?;
    if json {
        print_json(&answer);
        return Ok(());
    }
    let items = answer
        .get("CertificateSummaryList")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        println!("No server certificates.");
        return Ok(());
    }
    let text = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|c| {
            vec![
                text(c, "CertificateArn"),
                text(c, "DomainName"),
                text(c, "Status"),
                output::timestamp(c.get("NotAfter")).unwrap_or_else(|| "-".into()),
                if c.get("InUse").and_then(Value::as_bool) == Some(true) {
                    "yes".into()
                } else {
                    "no".into()
                },
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["ARN", "DOMAIN", "STATUS", "NOT AFTER", "IN USE"], &rows)
    );
    Ok(())
}
