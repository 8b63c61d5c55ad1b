//! `ferrocore thing create|bulk-create|list|describe|delete`.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::client::Client;
use super::config::Connection;
use super::device::{self, DeviceFiles, DeviceJson};
use super::ops::{CreatedThing, KeysAndCertificate, Thing, ThingFilter, view};
use super::output;
use super::{Failure, csv};

#[derive(clap::Args)]
pub struct CreateArgs {
    /// Name of the thing (1–128 of a-z A-Z 0-9 : _ -).
    name: String,
    /// Directory for the device's files (created mode 0700 if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// An attribute of the thing (repeatable).
    #[arg(long = "attr", value_name = "NAME=VALUE", value_parser = parse_attr_flag)]
    attrs: Vec<(String, String)>,
    /// Overwrite device files already in --out.
    #[arg(long)]
    force: bool,
}

fn parse_attr_flag(s: &str) -> Result<(String, String), String> {
    csv::parse_attribute(s)
}

#[derive(clap::Args)]
#[command(
    after_help = "CSV format (a header, then one thing per row; `#` comments and blank lines are ignored):

  thingName,attributes
  sensor-001,room=kitchen;floor=1
  sensor-002
  sensor-003,\"room=hall,west;floor=2\"

Attributes are NAME=VALUE pairs separated by `;`; quote a field that contains a comma.
Each device's files go to --out/<thingName>/. A row whose directory already holds that thing's
device.json, and whose thing exists on the server, is skipped, so a run can be repeated after a
failure."
)]
pub struct BulkArgs {
    /// CSV file: header `thingName,attributes`, then one thing per row.
    #[arg(long, value_name = "FILE")]
    csv: PathBuf,
    /// Directory that receives one sub-directory of files per device.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Create a new certificate even for devices whose files exist, and overwrite the files.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only things with this attribute value.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_attr_flag)]
    attribute: Option<(String, String)>,
    /// Only things of this thing type.
    #[arg(long, value_name = "TYPE")]
    thing_type: Option<String>,
    /// Print the server's JSON answer (all pages merged).
    #[arg(long)]
    json: bool,
}

/// What every device of a run shares: the endpoint devices connect to, its MQTT-over-TLS
/// port and the root CA they trust.
struct Provisioner {
    client: Client,
    endpoint: String,
    port: Option<u16>,
    root_ca: Vec<u8>,
}

impl Provisioner {
    async fn new(client: &Client, settings: &Connection) -> Result<Provisioner, Failure> {
        let root_ca = std::fs::read(&settings.ca_bundle).map_err(|e| {
            format!(
                "cannot read the CA bundle {}: {e}",
                settings.ca_bundle.display()
            )
        })?;
        let endpoint = client.describe_endpoint().await?;
        Ok(Provisioner {
            client: client.clone(),
            endpoint,
            port: mqtts_port(&settings.data_dir, settings.endpoint.port),
            root_ca,
        })
    }

    /// CreateThing, CreateKeysAndCertificate (active), AttachThingPrincipal, then the files.
    /// A certificate created for a device that then fails is deactivated and deleted.
    async fn provision(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
        dir: &Path,
        force: bool,
    ) -> Result<DeviceJson, String> {
        // Fail on the files before changing anything on the server.
        device::check_free(dir, force)?;
        device::create_dir(dir)?;
        let thing: CreatedThing = view(
            &self
                .client
                .create_thing(name, attributes)
                .await
                .map_err(|e| e.to_string())?,
            "CreateThing",
        )
        .map_err(|e| e.to_string())?;
        let keys: KeysAndCertificate = view(
            &self
                .client
                .create_keys_and_certificate()
                .await
                .map_err(|e| e.to_string())?,
            "CreateKeysAndCertificate",
        )
        .map_err(|e| e.to_string())?;
        if let Err(e) = self
            .client
            .attach_thing_principal(name, &keys.certificate_arn)
            .await
        {
            let note = self.discard_certificate(&keys.certificate_id).await;
            return Err(format!("{e} ({note})"));
        }
        let (certificate_file, private_key_file, root_ca_file) = DeviceJson::file_names();
        let device = DeviceJson {
            thing_name: name.to_owned(),
            thing_arn: thing.thing_arn,
            certificate_id: keys.certificate_id.clone(),
            certificate_arn: keys.certificate_arn.clone(),
            endpoint: self.endpoint.clone(),
            port: self.port,
            certificate_file,
            private_key_file,
            root_ca_file,
        };
        let files = DeviceFiles {
            certificate_pem: &keys.certificate_pem,
            private_key_pem: &keys.key_pair.private_key,
            root_ca_pem: &self.root_ca,
            device: &device,
        };
        if let Err(e) = device::write(dir, &files, force) {
            let _ = self
                .client
                .detach_thing_principal(name, &keys.certificate_arn)
                .await;
            let note = self.discard_certificate(&keys.certificate_id).await;
            return Err(format!("{e} ({note})"));
        }
        Ok(device)
    }

    /// Deactivates and deletes a certificate whose private key will not reach a device;
    /// says what happened.
    async fn discard_certificate(&self, id: &str) -> String {
        match self.client.update_certificate(id, "INACTIVE").await {
            Ok(_) => match self.client.delete_certificate(id).await {
                Ok(_) => format!("the new certificate {id} was deactivated and deleted"),
                Err(_) => format!("the new certificate {id} was deactivated"),
            },
            Err(e) => format!(
                "the new certificate {id} is still active and could not be deactivated ({e}); \
                 run `ferrocore cert deactivate {id}`"
            ),
        }
    }
}

/// The port of the server's MQTT-over-TLS listener from `<data-dir>/listeners.json`, when
/// that file describes the server at `https_port` (a listener there is `https`); one that
/// does not admit anonymous clients first.
fn mqtts_port(data_dir: &Path, https_port: u16) -> Option<u16> {
    let text = std::fs::read(ferrocore_server::listeners_json_path(data_dir)).ok()?;
    let file: ferrocore_server::ListenersFile = serde_json::from_slice(&text).ok()?;
    let same_server = file
        .listeners
        .iter()
        .any(|l| l.transport == "https" && l.address.port() == https_port);
    if !same_server {
        return None;
    }
    let mut mqtts: Vec<_> = file
        .listeners
        .iter()
        .filter(|l| l.transport == "mqtts")
        .collect();
    mqtts.sort_by_key(|l| l.anonymous);
    mqtts.first().map(|l| l.address.port())
}

pub async fn create(client: &Client, settings: &Connection, a: CreateArgs) -> Result<(), Failure> {
    csv::check_thing_name(&a.name)?;
    let mut attributes = BTreeMap::new();
    for (k, v) in a.attrs {
        if attributes.insert(k.clone(), v).is_some() {
            return Err(format!("--attr {k} is given twice").into());
        }
    }
    device::check_free(&a.out, a.force)?;
    let p = Provisioner::new(client, settings).await?;
    let d = p.provision(&a.name, &attributes, &a.out, a.force).await?;
    println!(
        "created thing {} with certificate {}",
        d.thing_name, d.certificate_id
    );
    println!(
        "device files in {}: {}",
        a.out.display(),
        device::FILES.join(", ")
    );
    match d.port {
        Some(port) => println!("devices connect to {}:{port} (MQTT over TLS)", d.endpoint),
        None => println!("devices connect to {} (MQTT over TLS)", d.endpoint),
    }
    Ok(())
}

/// The result of one CSV row.
enum Outcome {
    Created,
    Skipped,
    Failed(String),
}

pub async fn bulk_create(
    client: &Client,
    settings: &Connection,
    a: BulkArgs,
) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&a.csv)
        .map_err(|e| format!("cannot read {}: {e}", a.csv.display()))?;
    let rows = match csv::parse(&text) {
        Ok(rows) => rows,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {}: {e}", a.csv.display());
            }
            eprintln!("error: nothing was created; fix the file and run again");
            return Err(Failure::Reported);
        }
    };
    device::create_dir(&a.out)?;
    let provisioner = Arc::new(Provisioner::new(client, settings).await?);

    let total = rows.len() as u64;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
        ) {
            bar.set_style(style);
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    // Ctrl-C: start no more rows, finish those in flight (so no certificate is left without
    // its files), report; a second Ctrl-C stops at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn({
        let interrupted = interrupted.clone();
        let bar = bar.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Ordering::SeqCst);
                bar.suspend(|| {
                    eprintln!(
                        "interrupted: finishing the rows in flight (Ctrl-C again stops at once)"
                    )
                });
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        }
    });

    let limit = Arc::new(tokio::sync::Semaphore::new(usize::from(a.concurrency)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut results: Vec<Noted> = Vec::with_capacity(rows.len());
    for row in rows {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        if interrupted.load(Ordering::SeqCst) {
            break;
        }
        let p = provisioner.clone();
        let dir = a.out.join(&row.thing_name);
        let force = a.force;
        tasks.spawn(async move {
            let outcome = bulk_row(&p, &row, &dir, force).await;
            drop(permit);
            (row, outcome)
        });
        // Account for finished rows as we go, so the bar moves during the run.
        while let Some(done) = tasks.try_join_next() {
            results.push(note(&bar, done));
        }
    }
    while let Some(done) = tasks.join_next().await {
        results.push(note(&bar, done));
    }
    bar.finish_and_clear();
    watcher.abort();

    results.sort_by_key(|(line, ..)| *line);
    let (mut created, mut skipped, mut failed) = (0, 0, 0);
    for (line, name, outcome) in &results {
        match outcome {
            Outcome::Created => created += 1,
            Outcome::Skipped => skipped += 1,
            Outcome::Failed(e) => {
                failed += 1;
                eprintln!("error: line {line} ({name}): {e}");
            }
        }
    }
    let not_started = total as usize - results.len();
    let not_started = if not_started > 0 {
        format!(", {not_started} not started (interrupted; run again to continue)")
    } else {
        String::new()
    };
    println!(
        "{total} rows: {created} created, {skipped} skipped (already provisioned), {failed} failed{not_started}; \
         device files in {}/<thingName>/",
        a.out.display()
    );
    if failed > 0 || !not_started.is_empty() {
        return Err(Failure::Reported);
    }
    Ok(())
}

async fn bulk_row(p: &Provisioner, row: &csv::Row, dir: &Path, force: bool) -> Outcome {
    if !force && device::complete_for(dir, &row.thing_name) {
        return match p.client.describe_thing(&row.thing_name).await {
            Ok(_) => Outcome::Skipped,
            Err(e) if e.code() == Some("ResourceNotFoundException") => Outcome::Failed(format!(
                "{} holds this device's files but the server has no thing {}; remove the \
                 directory, or pass --force to create it again",
                dir.display(),
                row.thing_name
            )),
            Err(e) => Outcome::Failed(e.to_string()),
        };
    }
    match p
        .provision(&row.thing_name, &row.attributes, dir, force)
        .await
    {
        Ok(_) => Outcome::Created,
        Err(e) => Outcome::Failed(e),
    }
}

/// Line, thing name, outcome.
type Noted = (usize, String, Outcome);

/// Moves the progress bar for a finished row.
fn note(
    bar: &indicatif::ProgressBar,
    done: Result<(csv::Row, Outcome), tokio::task::JoinError>,
) -> Noted {
    let (row, outcome) = match done {
        Ok(d) => d,
        Err(e) => (
            csv::Row {
                line: 0,
                thing_name: String::new(),
                attributes: BTreeMap::new(),
            },
            Outcome::Failed(format!("internal error: {e}")),
        ),
    };
    bar.inc(1);
    if matches!(outcome, Outcome::Failed(_)) {
        bar.set_message(format!("last failure: {}", row.thing_name));
    }
    (row.line, row.thing_name, outcome)
}

pub async fn list(client: &Client, a: ListArgs) -> Result<(), Failure> {
    let filter = ThingFilter {
        attribute: a.attribute,
        thing_type: a.thing_type,
    };
    let things = client.list_things(&filter).await?;
    if a.json {
        print_json(&serde_json::json!({ "things": things }));
        return Ok(());
    }
    if things.is_empty() {
        println!("No things.");
        return Ok(());
    }
    let mut rows = Vec::new();
    for t in &things {
        let t: Thing = view(t, "ListThings")?;
        rows.push(vec![
            t.thing_name,
            t.thing_type_name.unwrap_or_else(|| "-".into()),
            t.version.map_or_else(|| "-".into(), |v| v.to_string()),
            output::attributes(&t.attributes),
        ]);
    }
    print!(
        "{}",
        output::table(&["NAME", "TYPE", "VERSION", "ATTRIBUTES"], &rows)
    );
    Ok(())
}

pub async fn describe(client: &Client, name: &str, json: bool) -> Result<(), Failure> {
    let answer = client.describe_thing(name).await?;
    if json {
        print_json(&answer);
        return Ok(());
    }
    let t: Thing = view(&answer, "DescribeThing")?;
    print!(
        "{}",
        output::fields(&[
            ("thingName", Some(t.thing_name)),
            ("thingArn", t.thing_arn),
            ("thingId", t.thing_id),
            ("thingType", t.thing_type_name),
            ("version", t.version.map(|v| v.to_string())),
            ("defaultClientId", t.default_client_id),
            ("attributes", Some(output::attributes(&t.attributes))),
        ])
    );
    Ok(())
}

pub async fn delete(client: &Client, name: &str, detach: bool) -> Result<(), Failure> {
    // DeleteThing succeeds for a thing that does not exist (as AWS's does); say so instead.
    client.describe_thing(name).await?;
    if detach {
        for principal in client.list_thing_principals(name).await? {
            client.detach_thing_principal(name, &principal).await?;
            let id = principal.rsplit('/').next().unwrap_or(&principal);
            println!(
                "detached {principal} (the certificate stays as it is; `ferrocore cert revoke {id}` revokes it)"
            );
        }
    }
    match client.delete_thing(name).await {
        Ok(_) => {}
        Err(e)
            if !detach
                && e.code() == Some("InvalidRequestException")
                && e.to_string().contains("principal") =>
        {
            return Err(format!("{e} (pass --detach to detach them first)").into());
        }
        Err(e) => return Err(e.into()),
    }
    println!("deleted thing {name}");
    Ok(())
}

pub(crate) fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_mqtts_port_comes_from_the_same_servers_listeners_json() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(mqtts_port(dir.path(), 8443), None);
        std::fs::write(
            ferrocore_server::listeners_json_path(dir.path()),
            r#"{"pid": 1, "listeners": [
                {"name": "anon", "transport": "mqtts", "address": "127.0.0.1:1111", "tls": true, "proxy_protocol": false, "anonymous": true},
                {"name": "mqtts", "transport": "mqtts", "address": "0.0.0.0:8883", "tls": true, "proxy_protocol": false, "anonymous": false},
                {"name": "https", "transport": "https", "address": "0.0.0.0:8443", "tls": true, "proxy_protocol": false, "anonymous": false}
            ]}"#,
        )
        .unwrap();
        // The listener that authenticates devices, not the anonymous one.
        assert_eq!(mqtts_port(dir.path(), 8443), Some(8883));
        // Another server's file (no HTTPS listener on the endpoint's port): no port.
        assert_eq!(mqtts_port(dir.path(), 9443), None);
    }
}
