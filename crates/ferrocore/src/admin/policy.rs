//! `ferrocore policy explain` and `ferrocore policy lint`.
//!
//! `explain` asks the server's `ExplainAuthorization` extension (`POST /explain-authorization`)
//! for a certificate's or a thing's view, so the answer comes from the resolver and compiled
//! policies the broker enforces; with only `--policy` files it evaluates them here, with the
//! same code the server runs (`ferrocore_identity::registry::explain_documents`), and needs no
//! server. `lint` checks policy files (or policies fetched by name with `GetPolicy`) with
//! `ferrocore_policy::lint`.
//!
//! Exit status (as `grep` and `diff`): 0 allowed / nothing at or above `--fail-on`; 1 denied
//! / findings; 2 the command could not run (bad flags, unreadable file, server error).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use ferrocore_identity::registry::{self, ExplainAuthorizationRequest, ExplainVariables};
use ferrocore_policy::lint::{self, Finding, LintOptions, Principals, Severity};
use hyper::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{Call, CallError, Client, encode};
use super::config::{self, ConnFlags, DEFAULT_REGION};
use super::ops::view;
use super::things::print_json;
use super::{Failure, certs, csv, output};

#[derive(clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
    #[command(flatten)]
    conn: ConnFlags,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Would this be allowed, and which statement decides? For a certificate or a thing as
    /// the server resolves its policies, or for policy files evaluated here. Exit status: 0
    /// allowed, 1 denied, 2 error.
    Explain(Box<ExplainArgs>),
    /// Check policy documents for overly broad grants, variables that never resolve and
    /// Deny statements a missing variable switches off. Exit status: 0 clean, 1 findings at
    /// or above --fail-on, 2 error.
    Lint(LintArgs),
}

#[derive(clap::Args)]
struct ExplainArgs {
    /// The action, e.g. iot:Publish, iot:Subscribe, iot:Receive, iot:Connect, iot:RetainPublish.
    #[arg(long, value_name = "ACTION")]
    action: String,
    /// The resource: an ARN, or short (topic/a/b, topicfilter/a/#, client/c, thing/t), or
    /// just the name (a/b: the action's resource type is added).
    #[arg(long, value_name = "RESOURCE")]
    resource: Option<String>,
    /// A device certificate (ID, a unique ID prefix, or ARN): its policies and its thing, as a
    /// device connecting with it gets them. Asks the server.
    #[arg(long, value_name = "ID|ARN", conflicts_with = "thing")]
    cert: Option<String>,
    /// A thing: the view of its device (the certificate attached to it as EXCLUSIVE_THING, or
    /// its only certificate; the thing name as client id). Asks the server.
    #[arg(long, value_name = "NAME")]
    thing: Option<String>,
    /// A policy document file ("-": standard input); repeatable. Alone: evaluated here, no
    /// server needed. With --cert or --thing: evaluated by the server instead of the
    /// principal's policies, in its context.
    #[arg(long = "policy", value_name = "FILE")]
    policies: Vec<PathBuf>,
    /// The client id (iot:ClientId; with --cert, also what finds the connection's thing).
    /// [default with --cert: the certificate's thing's name; with --thing: the thing name]
    #[arg(long, value_name = "ID", help_heading = "Variables")]
    client_id: Option<String>,
    /// The connection's thing name (iot:Connection.Thing.ThingName).
    #[arg(long, value_name = "NAME", help_heading = "Variables")]
    thing_name: Option<String>,
    /// The thing's type (iot:Connection.Thing.ThingTypeName).
    #[arg(long, value_name = "TYPE", help_heading = "Variables")]
    thing_type: Option<String>,
    /// A thing attribute (iot:Connection.Thing.Attributes[NAME]); repeatable.
    #[arg(long = "attr", value_name = "NAME=VALUE", help_heading = "Variables")]
    attrs: Vec<String>,
    /// The client's address (aws:SourceIp).
    #[arg(long, value_name = "IP", help_heading = "Variables")]
    source_ip: Option<String>,
    /// The server name the client connected to (iot:DomainName).
    #[arg(long, value_name = "NAME", help_heading = "Variables")]
    domain_name: Option<String>,
    /// For iot:Connect: a persistent session (iot:ConnectAttributes PersistentConnect).
    #[arg(long, help_heading = "Variables")]
    persistent: bool,
    /// For iot:Connect: the will's topic (LastWill, iot:LastWillTopic).
    #[arg(long, value_name = "TOPIC", help_heading = "Variables")]
    will_topic: Option<String>,
    /// A certificate PEM file for iot:CertificateId and the iot:Certificate.* variables.
    #[arg(long, value_name = "FILE", help_heading = "Variables")]
    certificate_pem: Option<PathBuf>,
    /// Account id in ARNs when evaluating --policy files here [default: account_id in the
    /// server's --config file, else 000000000000] (the region is --region, else the server's
    /// config or aws-config, else us-east-1).
    #[arg(long = "account-id", alias = "account", value_name = "ID")]
    account_id: Option<String>,
    /// Also list every statement with its outcome.
    #[arg(short, long)]
    verbose: bool,
    /// Print the JSON answer.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct LintArgs {
    /// Policy document files ("-": standard input).
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// A policy on the server (its default version); repeatable.
    #[arg(long = "name", value_name = "POLICY")]
    names: Vec<String>,
    /// Who the policies are for, which decides what variables can have a value: certificates
    /// (attached to certificates or thing groups), anonymous (a listener's
    /// anonymous_policy), authorizer (returned by a custom authorizer) or any.
    #[arg(long = "for", value_name = "PRINCIPALS", default_value = "certificates", value_parser = parse_principals)]
    principals: Principals,
    /// Exit 1 when a finding is at least this severe: error, warning, info or never.
    #[arg(long, value_name = "SEVERITY", default_value = "warning", value_parser = parse_fail_on)]
    fail_on: FailOn,
    /// Skip a check by its code (e.g. broad-action); repeatable.
    #[arg(long = "allow", value_name = "CODE", value_parser = parse_code)]
    allow: Vec<String>,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_principals(s: &str) -> Result<Principals, String> {
    Principals::from_name(s)
        .ok_or_else(|| "use certificates, anonymous, authorizer or any".to_owned())
}

/// The least severity that fails a lint run (`None`: never).
#[derive(Debug, Clone, Copy)]
struct FailOn(Option<Severity>);

fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    if s.eq_ignore_ascii_case("never") {
        return Ok(FailOn(None));
    }
    Severity::from_name(s)
        .map(|s| FailOn(Some(s)))
        .ok_or_else(|| "use error, warning, info or never".to_owned())
}

fn parse_code(s: &str) -> Result<String, String> {
    if lint::CODES.contains(&s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "no such check; the codes are {}",
            lint::CODES.join(", ")
        ))
    }
}

/// Runs a policy command; returns the exit status (0 or 1) or why it could not run.
pub fn run(args: PolicyArgs) -> Result<i32, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let conn = args.conn;
    runtime.block_on(async move {
        match args.command {
            PolicyCommand::Explain(a) => explain(&conn, *a).await,
            PolicyCommand::Lint(a) => lint_command(&conn, a).await,
        }
    })
}

fn connect(conn: &ConnFlags) -> Result<Client, Failure> {
    let settings = config::resolve(conn, &config::Env::from_process())?;
    Ok(Client::new(&settings)?)
}

/// A file's text, or standard input's for `-`.
fn read_text(path: &Path) -> Result<String, Failure> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

/// The name a policy file goes by: its file name.
fn file_label(path: &Path) -> String {
    if path.as_os_str() == "-" {
        return "stdin".to_owned();
    }
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// explain

impl Client {
    /// `ExplainAuthorization` (Ferrocore extension).
    pub async fn explain_authorization(&self, body: Value) -> Result<Value, CallError> {
        self.call(Call::new(Method::POST, "/explain-authorization".to_owned()).json(body))
            .await
    }

    /// `GetPolicy`.
    pub async fn get_policy(&self, name: &str) -> Result<Value, CallError> {
        self.call(Call::new(
            Method::GET,
            format!("/policies/{}", encode(name)),
        ))
        .await
    }
}

fn variables(a: &ExplainArgs, server: bool) -> Result<ExplainVariables, Failure> {
    let mut attributes = BTreeMap::new();
    for attr in &a.attrs {
        let (k, v) = csv::parse_attribute(attr).map_err(|e| format!("--attr {attr}: {e}"))?;
        if attributes.insert(k.clone(), v).is_some() {
            return Err(format!("--attr {k} is given twice").into());
        }
    }
    let certificate_pem = match &a.certificate_pem {
        Some(p) => Some(read_text(p)?),
        None => None,
    };
    Ok(ExplainVariables {
        // Locally the thing name is the request's; on the server it overrides the thing's.
        thing_name: if server { a.thing_name.clone() } else { None },
        thing_type_name: a.thing_type.clone(),
        thing_attributes: (!attributes.is_empty()).then_some(attributes),
        source_ip: a.source_ip.clone(),
        domain_name: a.domain_name.clone(),
        persistent_connect: a.persistent.then_some(true),
        last_will_topic: a.will_topic.clone(),
        certificate_pem,
        ..Default::default()
    })
}

/// The region and account `--policy` files are evaluated in here: the flags, else the
/// server's configuration file, else its `aws-config` (region), else AWS's defaults as the
/// server has them.
fn local_arns(conn: &ConnFlags, account: Option<&str>) -> Result<registry::Arns, Failure> {
    let file = match &conn.config {
        Some(path) => Some(ferrocore_server::config::FileConfig::load(path).map_err(|e| e.0)?),
        None => None,
    };
    let from_aws_config = || {
        let dir = conn.data_dir().ok()?;
        let text =
            std::fs::read_to_string(dir.join(ferrocore_server::credentials::AWS_CONFIG_FILE))
                .ok()?;
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == "region")
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let region = conn
        .region
        .clone()
        .or_else(|| file.as_ref().and_then(|f| f.region.clone()))
        .or_else(from_aws_config)
        .unwrap_or_else(|| DEFAULT_REGION.to_owned());
    let account_id = account
        .map(str::to_owned)
        .or_else(|| file.as_ref().and_then(|f| f.account_id.clone()))
        .unwrap_or_else(|| ferrocore_server::config::DEFAULT_ACCOUNT_ID.to_owned());
    if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("--account-id {account_id}: an account id is 12 digits").into());
    }
    Ok(registry::Arns { region, account_id })
}

async fn explain(conn: &ConnFlags, a: ExplainArgs) -> Result<i32, Failure> {
    let server = a.cert.is_some() || a.thing.is_some();
    if !server && a.policies.is_empty() {
        return Err(
            "say whose policies: --cert ID, --thing NAME (asks the server) or --policy FILE \
             (evaluated here)"
                .to_owned()
                .into(),
        );
    }
    if server && a.account_id.is_some() {
        return Err(
            "--account-id is for --policy files evaluated here; with --cert or --thing the \
             server's account is used"
                .to_owned()
                .into(),
        );
    }
    let mut documents = Vec::new();
    for path in &a.policies {
        documents.push(json!({
            "policyName": file_label(path),
            "policyDocument": read_text(path)?,
        }));
    }
    let vars = variables(&a, server)?;
    let answer = if server {
        let client = connect(conn)?;
        let principal = match &a.cert {
            Some(c) if c.starts_with("arn:") => Some(c.clone()),
            Some(c) => Some(certs::resolve_id(&client, c, certs::Kind::Device).await?),
            None => None,
        };
        let mut body = json!({
            "action": a.action,
            "variables": serde_json::to_value(&vars).unwrap_or(Value::Null),
        });
        let fields = [
            ("principal", principal),
            ("thingName", a.thing.clone()),
            ("clientId", a.client_id.clone()),
            ("resource", a.resource.clone()),
        ];
        if let Some(m) = body.as_object_mut() {
            for (k, v) in fields {
                if let Some(v) = v {
                    m.insert(k.to_owned(), Value::String(v));
                }
            }
            if !documents.is_empty() {
                m.insert("policyDocuments".to_owned(), Value::Array(documents));
            }
        }
        client.explain_authorization(body).await?
    } else {
        let arns = local_arns(conn, a.account_id.as_deref())?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let req = ExplainAuthorizationRequest {
            thing_name: a.thing_name.clone(),
            client_id: a.client_id.clone(),
            action: Some(a.action.clone()),
            resource: a.resource.clone(),
            policy_documents: Some(documents),
            variables: Some(vars),
            ..Default::default()
        };
        let mut answer = registry::explain_documents(&arns, now_ms, req)
            .map_err(|e| format!("{}: {e}", e.aws_error_code()))?;
        if let Some(hint) = account_hint(&answer.resource, &a.policies) {
            answer.notes.push(hint);
        }
        serde_json::to_value(&answer).map_err(|e| e.to_string())?
    };
    let e: Explained = view(&answer, "ExplainAuthorization")?;
    if a.json {
        print_json(&answer);
    } else {
        print!("{}", render(&e, a.verbose));
    }
    Ok(if e.decision == "ALLOWED" { 0 } else { 1 })
}

/// When the resource's region or account is not one the policy files name, a hint that
/// `--region` / `--account-id` may be missing.
fn account_hint(resource: &str, files: &[PathBuf]) -> Option<String> {
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    let (Some(region), Some(account)) = (parts.get(3), parts.get(4)) else {
        return None;
    };
    let mut named = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for arn in text.split('"').filter(|s| s.starts_with("arn:")) {
            let p: Vec<&str> = arn.splitn(6, ':').collect();
            if let (Some(r), Some(a)) = (p.get(3), p.get(4))
                && !r.contains(['*', '$', '?'])
                && !a.contains(['*', '$', '?'])
                && !named.contains(&(r.to_string(), a.to_string()))
            {
                named.push((r.to_string(), a.to_string()));
            }
        }
    }
    let matches = named.iter().any(|(r, a)| r == region && a == account);
    match named.first() {
        Some((r, a)) if !matches => Some(format!(
            "the policies name region {r} and account {a}, but the resource is in {region} / \
             {account}: pass --region {r} --account-id {a} (or a full ARN as --resource)"
        )),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Explained {
    decision: String,
    decided_by: Option<StatementView>,
    action: String,
    resource: String,
    principal: Option<String>,
    client_id: Option<String>,
    thing_name: Option<String>,
    #[serde(default)]
    policies: Vec<PolicyView>,
    #[serde(default)]
    statements: Vec<StatementView>,
    #[serde(default)]
    missing_context_values: Vec<String>,
    #[serde(default)]
    notes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatementView {
    policy_name: String,
    policy_version_id: Option<String>,
    statement_index: usize,
    sid: Option<String>,
    effect: String,
    outcome: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyView {
    policy_name: String,
    policy_version_id: Option<String>,
}

/// `policy "p" statement 2 (Sid "s"), Deny`, as the broker's denial log lines say.
fn statement_ref(s: &StatementView) -> String {
    let mut out = format!(
        "policy \"{}\" statement {}",
        s.policy_name, s.statement_index
    );
    if let Some(sid) = &s.sid {
        out.push_str(&format!(" (Sid \"{sid}\")"));
    }
    out.push_str(&format!(", {}", s.effect));
    out
}

fn render(e: &Explained, verbose: bool) -> String {
    let mut out = format!("{}: {} on {}\n", e.decision, e.action, e.resource);
    let decided = match &e.decided_by {
        Some(s) => statement_ref(s),
        None => "no statement allows it (implicit deny)".to_owned(),
    };
    let policies = if e.policies.is_empty() {
        "none".to_owned()
    } else {
        e.policies
            .iter()
            .map(|p| match &p.policy_version_id {
                Some(v) => format!("{} (version {v})", p.policy_name),
                None => p.policy_name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let unresolved = (!e.missing_context_values.is_empty()).then(|| {
        format!(
            "{} (statements using them do not apply)",
            e.missing_context_values.join(", ")
        )
    });
    out.push_str(&output::fields(&[
        ("decided by", Some(decided)),
        ("principal", e.principal.clone()),
        ("client id", e.client_id.clone()),
        ("thing", e.thing_name.clone()),
        ("policies", Some(policies)),
        ("unresolved", unresolved),
    ]));
    for note in &e.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    if verbose {
        let rows: Vec<Vec<String>> = e
            .statements
            .iter()
            .map(|s| {
                let decisive = e.decided_by.as_ref().is_some_and(|d| {
                    d.policy_name == s.policy_name && d.statement_index == s.statement_index
                });
                vec![
                    if decisive { "*".into() } else { String::new() },
                    s.policy_name.clone(),
                    s.policy_version_id.clone().unwrap_or_else(|| "-".into()),
                    s.statement_index.to_string(),
                    s.sid.clone().unwrap_or_else(|| "-".into()),
                    s.effect.clone(),
                    s.outcome.clone().unwrap_or_default(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&output::table(
            &[
                "",
                "POLICY",
                "VERSION",
                "STATEMENT",
                "SID",
                "EFFECT",
                "OUTCOME",
            ],
            &rows,
        ));
    } else if e.decision != "ALLOWED" && !e.statements.is_empty() {
        out.push_str("(-v lists every statement and why it does or does not apply)\n");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// lint

/// The findings of one document, or why it is not a policy.
struct Linted {
    label: String,
    findings: Vec<Finding>,
}

fn lint_one(label: String, text: &str, options: &LintOptions, allow: &[String]) -> Linted {
    let findings = match lint::lint_text(text, options) {
        Ok(f) => f
            .into_iter()
            .filter(|f| !allow.iter().any(|a| a == f.code))
            .collect(),
        Err(e) => vec![Finding {
            severity: Severity::Error,
            code: "malformed",
            statement: None,
            sid: None,
            message: format!("{e} (CreatePolicy answers MalformedPolicyException)"),
        }],
    };
    Linted { label, findings }
}

async fn lint_command(conn: &ConnFlags, a: LintArgs) -> Result<i32, Failure> {
    if a.files.is_empty() && a.names.is_empty() {
        return Err(
            "give policy files, or --name POLICY for a policy on the server"
                .to_owned()
                .into(),
        );
    }
    let options = LintOptions {
        principals: a.principals,
    };
    let mut linted = Vec::new();
    for path in &a.files {
        let text = read_text(path)?;
        let label = if path.as_os_str() == "-" {
            "stdin".to_owned()
        } else {
            path.display().to_string()
        };
        linted.push(lint_one(label, &text, &options, &a.allow));
    }
    if !a.names.is_empty() {
        let client = connect(conn)?;
        for name in &a.names {
            let answer = client.get_policy(name).await?;
            let text = answer
                .get("policyDocument")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("the GetPolicy answer for {name} has no policyDocument"))?;
            linted.push(lint_one(format!("policy {name}"), text, &options, &a.allow));
        }
    }
    let count = |s: Severity| {
        linted
            .iter()
            .flat_map(|l| &l.findings)
            .filter(|f| f.severity == s)
            .count()
    };
    let (errors, warnings, infos) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
    );
    if a.json {
        let files: Vec<Value> = linted
            .iter()
            .map(|l| {
                json!({
                    "source": l.label,
                    "findings": l.findings.iter().map(|f| json!({
                        "severity": f.severity.as_str(),
                        "code": f.code,
                        "statementIndex": f.statement,
                        "sid": f.sid,
                        "message": f.message,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        print_json(&json!({
            "results": files,
            "errors": errors,
            "warnings": warnings,
            "infos": infos,
        }));
    } else {
        for l in &linted {
            if l.findings.is_empty() {
                println!("{}: no findings", l.label);
            }
            for f in &l.findings {
                println!("{}: {f}", l.label);
            }
        }
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        println!(
            "{}: {}, {}, {infos} info",
            plural(linted.len(), "document"),
            plural(errors, "error"),
            plural(warnings, "warning"),
        );
    }
    let failed = a.fail_on.0.is_some_and(|threshold| {
        linted
            .iter()
            .flat_map(|l| &l.findings)
            .any(|f| f.severity >= threshold)
    });
    Ok(i32::from(failed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn statement(name: &str, index: usize, sid: Option<&str>, effect: &str) -> StatementView {
        StatementView {
            policy_name: name.into(),
            policy_version_id: Some("1".into()),
            statement_index: index,
            sid: sid.map(str::to_owned),
            effect: effect.into(),
            outcome: Some("applies".into()),
        }
    }

    #[test]
    fn renders_the_decision_and_the_deciding_statement() {
        let e = Explained {
            decision: "EXPLICIT_DENY".into(),
            decided_by: Some(statement("device", 2, Some("NoSecret"), "Deny")),
            action: "iot:Publish".into(),
            resource: "arn:aws:iot:us-east-1:000000000000:topic/a".into(),
            principal: None,
            client_id: Some("lamp".into()),
            thing_name: None,
            policies: vec![PolicyView {
                policy_name: "device".into(),
                policy_version_id: Some("1".into()),
            }],
            statements: vec![statement("device", 2, Some("NoSecret"), "Deny")],
            missing_context_values: vec!["iot:Connection.Thing.ThingName".into()],
            notes: vec!["something".into()],
        };
        let text = render(&e, false);
        assert!(text.starts_with(
            "EXPLICIT_DENY: iot:Publish on arn:aws:iot:us-east-1:000000000000:topic/a\n"
        ));
        assert!(
            text.contains("decided by:  policy \"device\" statement 2 (Sid \"NoSecret\"), Deny\n"),
            "{text}"
        );
        assert!(text.contains("policies:    device (version 1)\n"), "{text}");
        assert!(
            text.contains("unresolved:  iot:Connection.Thing.ThingName"),
            "{text}"
        );
        assert!(text.contains("note: something\n"), "{text}");
        assert!(text.contains("-v lists"), "{text}");
        let verbose = render(&e, true);
        assert!(verbose.contains("OUTCOME"), "{verbose}");
        assert!(verbose.contains("*  device  1"), "{verbose}");
    }

    #[test]
    fn account_hint_when_the_policies_name_another_account() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.json");
        std::fs::write(
            &f,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:eu-west-1:123456789012:topic/a"}]}"#,
        )
        .ok();
        let hint = account_hint(
            "arn:aws:iot:us-east-1:000000000000:topic/a",
            std::slice::from_ref(&f),
        );
        assert!(hint.is_some_and(|h| h.contains("--region eu-west-1 --account-id 123456789012")));
        assert_eq!(
            account_hint("arn:aws:iot:eu-west-1:123456789012:topic/a", &[f]),
            None
        );
    }
}
