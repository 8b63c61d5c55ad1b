//! Settings precedence and errors, `--help`, and the server identity on disk.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use ferrocore_server::config::{ConfigError, FileConfig, TransportName};
use ferrocore_server::identity::{self, IdentityError};
use ferrocore_server::{ServeFlags, Settings};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    flags: ServeFlags,
}

fn flags(args: &[&str]) -> ServeFlags {
    let argv = std::iter::once("serve").chain(args.iter().copied());
    match Cli::try_parse_from(argv) {
        Ok(cli) => cli.flags,
        Err(e) => panic!("flags {args:?}: {e}"),
    }
}

fn file(text: &str) -> FileConfig {
    match FileConfig::parse(Path::new("ferrocore.toml"), text) {
        Ok(f) => f,
        Err(e) => panic!("config: {e}"),
    }
}

fn file_err(text: &str) -> String {
    match FileConfig::parse(Path::new("ferrocore.toml"), text) {
        Ok(f) => match Settings::resolve(ServeFlags::default(), f) {
            Ok(_) => panic!("expected an error for {text:?}"),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    }
}

fn resolve(args: &[&str], text: &str) -> Settings {
    match Settings::resolve(flags(args), file(text)) {
        Ok(s) => s,
        Err(e) => panic!("resolve: {e}"),
    }
}

fn resolve_err(args: &[&str], text: &str) -> ConfigError {
    match Settings::resolve(flags(args), file(text)) {
        Ok(_) => panic!("expected an error for {args:?} / {text:?}"),
        Err(e) => e,
    }
}

#[test]
fn defaults() {
    let s = resolve(&[], "");
    assert_eq!(s.data_dir, Path::new("./ferrocore-data"));
    let l: Vec<(&str, String, TransportName, bool)> = s
        .listeners
        .iter()
        .map(|l| {
            (
                l.name.as_str(),
                l.address.to_string(),
                l.transport,
                l.anonymous,
            )
        })
        .collect();
    assert_eq!(
        l,
        vec![
            (
                "mqtts",
                "0.0.0.0:8883".to_owned(),
                TransportName::Mqtts,
                false
            ),
            (
                "https",
                "0.0.0.0:8443".to_owned(),
                TransportName::Https,
                false
            ),
        ]
    );
    assert!(!s.dev);
    assert_eq!(s.durability, ferrocore_store::Durability::Process);
    assert_eq!(s.broker.compat, ferrocore_broker::Compat::Mqtt);
    assert_eq!(s.broker.max_payload_size, 128 * 1024);
    assert_eq!(s.admission.max_connections, 100_000);
    assert_eq!(s.admission.tls_handshake_timeout, Duration::from_secs(10));
}

#[test]
fn dev_adds_anonymous_loopback_listener() {
    let s = resolve(&["--dev"], "");
    let mqtt = s.listeners.iter().find(|l| l.name == "mqtt");
    assert!(s.dev);
    assert_eq!(
        mqtt.map(|l| (l.address.to_string(), l.anonymous, l.tls())),
        Some(("127.0.0.1:1883".to_owned(), true, false))
    );

    let s = resolve(&["--dev", "--listen-mqtt", "127.0.0.1:0"], "");
    assert_eq!(
        s.listeners
            .iter()
            .find(|l| l.name == "mqtt")
            .map(|l| l.address.to_string()),
        Some("127.0.0.1:0".to_owned())
    );

    // Plain MQTT without --dev admits nobody anonymously.
    let s = resolve(&["--listen-mqtt", ":1884"], "");
    assert_eq!(
        s.listeners
            .iter()
            .find(|l| l.name == "mqtt")
            .map(|l| (l.address.to_string(), l.anonymous)),
        Some(("0.0.0.0:1884".to_owned(), false))
    );

    // `--dev=false` on the command line beats `dev = true` in the file.
    assert!(!resolve(&["--dev=false"], "dev = true").dev);
    assert!(resolve(&[], "dev = true").dev);
}

#[test]
fn flag_beats_file_beats_default() {
    let text = "max_connections = 5\nmax_inflight = 3\ncompat = \"aws\"\ndurability = \"fsync\"\ntls_handshake_timeout = \"2s\"\nmax_payload_size = \"1MiB\"\n";
    let s = resolve(&["--max-connections", "7", "--durability", "process"], text);
    assert_eq!(s.admission.max_connections, 7);
    assert_eq!(s.broker.max_inflight, 3);
    assert_eq!(s.broker.compat, ferrocore_broker::Compat::Aws);
    assert_eq!(s.durability, ferrocore_store::Durability::Process);
    assert_eq!(s.admission.tls_handshake_timeout, Duration::from_secs(2));
    assert_eq!(s.broker.max_payload_size, 1 << 20);
    // The packet size follows a raised payload size.
    assert!(s.broker.max_packet_size > 1 << 20);
    assert_eq!(s.broker.max_redeliveries, 20);
}

#[test]
fn every_broker_limit_is_settable() {
    let s = resolve(
        &[
            "--max-client-id-len=64",
            "--max-payload-size=1000",
            "--max-packet-size=2000",
            "--max-topic-length=100",
            "--max-topic-slashes=3",
            "--default-session-expiry=10m",
            "--max-session-expiry=1d",
            "--max-inflight=5",
            "--max-queued-messages=6",
            "--max-queued-bytes=7KiB",
            "--max-redeliveries=8",
            "--max-topic-aliases=9",
            "--max-keep-alive=20m",
            "--connect-timeout=3s",
            "--max-connect-rate-per-ip=0",
            "--compat=aws",
        ],
        "",
    );
    let b = &s.broker;
    assert_eq!(
        (
            b.max_client_id_len,
            b.max_payload_size,
            b.max_packet_size,
            b.topic_limits.max_length,
            b.topic_limits.max_slashes
        ),
        (64, 1000, 2000, 100, 3)
    );
    assert_eq!(
        (b.default_session_expiry, b.max_session_expiry),
        (Duration::from_secs(600), Duration::from_secs(86_400))
    );
    assert_eq!(
        (
            b.max_inflight,
            b.max_queued_messages,
            b.max_queued_bytes,
            b.max_redeliveries
        ),
        (5, 6, 7 * 1024, 8)
    );
    assert_eq!(
        (b.max_topic_aliases, b.max_keep_alive, b.connect_timeout),
        (9, 1200, Duration::from_secs(3))
    );
    assert_eq!(s.admission.max_connect_rate_per_ip, 0);
}

#[test]
fn listener_tables() {
    let s = resolve(
        &["--listen-mqtts", "off", "--listen-https", "off"],
        r#"
[[listener]]
name = "lb"
address = "127.0.0.1:0"
transport = "mqtts"
proxy_protocol = true

[[listener]]
address = "[::1]:0"
transport = "mqtt"
tls = true
anonymous = true

[[listener]]
name = "plain-ws"
address = "127.0.0.1:0"
transport = "ws"
"#,
    );
    let l: Vec<(&str, TransportName, bool, bool)> = s
        .listeners
        .iter()
        .map(|l| (l.name.as_str(), l.transport, l.proxy_protocol, l.anonymous))
        .collect();
    assert_eq!(
        l,
        vec![
            ("lb", TransportName::Mqtts, true, false),
            ("listener-2", TransportName::Mqtts, false, true),
            ("plain-ws", TransportName::Ws, false, false),
        ]
    );
}

#[test]
fn endpoint_names_from_flag_replace_file() {
    let s = resolve(
        &[
            "--endpoint-name",
            "A.example.com",
            "--endpoint-name",
            "b.example.com,a.example.com",
        ],
        "endpoint_names = [\"c.example.com\"]",
    );
    assert_eq!(s.endpoint_names, vec!["a.example.com", "b.example.com"]);
    let s = resolve(&[], "endpoint_names = [\"c.example.com\"]");
    assert_eq!(s.endpoint_names, vec!["c.example.com"]);
}

#[test]
fn errors_name_what_to_fix() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["--listen-mqtts", "8883"],
            "",
            "--listen-mqtts: \"8883\" has no port",
        ),
        (
            &[],
            "listen_https = \"nowhere\"",
            "`listen_https` in ferrocore.toml: \"nowhere\" has no port",
        ),
        (
            &["--max-connections", "0"],
            "",
            "--max-connections: must be between 1",
        ),
        (
            &["--tls-handshake-timeout", "0s"],
            "",
            "--tls-handshake-timeout: must be more than 0s",
        ),
        (
            &["--max-payload-size", "10KiB", "--max-packet-size", "1KiB"],
            "",
            "--max-payload-size (10240 bytes) is larger than --max-packet-size",
        ),
        (
            &["--endpoint-name", "bad name"],
            "",
            "--endpoint-name: \"bad name\" is not a host name",
        ),
        (
            &["--default-session-expiry", "8d"],
            "",
            "--default-session-expiry is longer than --max-session-expiry (default)",
        ),
        (
            &["--max-keep-alive", "1d"],
            "",
            "--max-keep-alive: must be at most 65535 seconds",
        ),
    ];
    for (args, text, want) in cases {
        let got = resolve_err(args, text).to_string();
        assert!(
            got.contains(want),
            "{args:?} {text:?}: got {got:?}, want {want:?}"
        );
        assert!(!got.contains('\n'), "one line: {got:?}");
    }

    let file_cases: &[(&str, &str)] = &[
        (
            "listen_mqttz = \"x\"",
            "config file ferrocore.toml: unknown key `listen_mqttz` (did you mean `listen_mqtts`?)",
        ),
        (
            "max_connections = \"lots\"",
            "config file ferrocore.toml: `max_connections` must be a whole number, not \"lots\"",
        ),
        (
            "max_inflight = 70000",
            "`max_inflight` must be a whole number in 0..=65535, not 70000",
        ),
        (
            "durability = \"sometimes\"",
            "`durability` must be one of \"process\", \"fsync\", not \"sometimes\"",
        ),
        (
            "tls_handshake_timeout = \"soon\"",
            "`tls_handshake_timeout`: \"soon\" is not a duration",
        ),
        ("dev = 1", "`dev` must be true or false, not 1"),
        ("a = 1\nb = = 2\n", "config file ferrocore.toml line 2:"),
        (
            "[[listener]]\naddress = \"127.0.0.1:0\"\ntransport = \"quic\"",
            "[[listener]] \"listener-1\": `transport` must be one of",
        ),
        (
            "[[listener]]\nname = \"x\"\ntransport = \"mqtt\"",
            "[[listener]] \"x\": `address` is missing",
        ),
        (
            "[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:0\"\ntransport = \"mqtts\"\ntls = false",
            "transport \"mqtts\" is always TLS",
        ),
        (
            "[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:0\"\ntransport = \"mqtt\"\nproxy = true",
            "[[listener]] #1 (name = \"x\"): unknown key `proxy`",
        ),
        (
            "[[listener]]\nname = \"mqtts\"\naddress = \"127.0.0.1:0\"\ntransport = \"mqtt\"",
            "listener name \"mqtts\" is used twice",
        ),
        (
            "[[listener]]\nname = \"has space\"\naddress = \"127.0.0.1:0\"\ntransport = \"mqtt\"",
            "`name` may hold only",
        ),
        ("listener = 3", "`listener` must be [[listener]] tables"),
    ];
    for (text, want) in file_cases {
        let got = file_err(text);
        assert!(got.contains(want), "{text:?}: got {got:?}, want {want:?}");
        assert!(!got.contains('\n'), "one line: {got:?}");
    }
}

#[test]
fn missing_config_file_names_the_flag() {
    let e = Settings::from_flags(flags(&["--config", "/nonexistent/ferrocore.toml"]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.starts_with("cannot read config file /nonexistent/ferrocore.toml"),
        "{e}"
    );
    assert!(e.ends_with("fix --config"), "{e}");
}

#[test]
fn help_documents_every_setting() {
    let mut cmd = Cli::command();
    let help = cmd.render_long_help().to_string();
    for arg in Cli::command().get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" {
            continue;
        }
        let env = arg
            .get_env()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        assert!(
            env.starts_with("FERROCORE_"),
            "--{long} has no FERROCORE_ environment variable"
        );
        assert!(help.contains(&format!("--{long}")), "--{long} not in help");
        assert!(help.contains(&env), "{env} not in help");
        if long != "config" {
            let doc = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            let key = long.replace('-', "_");
            let key = if key == "endpoint_name" {
                "endpoint_names".to_owned()
            } else {
                key
            };
            assert!(
                doc.contains(&format!("[config: {key}]")),
                "--{long} help does not name its config key: {doc}"
            );
            // The documented key is one the file accepts.
            assert!(
                FileConfig::parse(Path::new("t.toml"), &format!("{key} = []"))
                    .err()
                    .is_none_or(|e| !e.to_string().contains("unknown key"))
            );
        }
    }
}

/// Runs in a child process started by `environment_sits_between_flags_and_file`.
#[test]
fn env_probe() {
    if std::env::var_os("FERROCORE_TEST_ENV_PROBE").is_none() {
        return;
    }
    let f = flags(&["--max-inflight", "4"]);
    let config = f.config.clone();
    let s = match Settings::from_flags(f) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    println!(
        "PROBE config={} max_connections={} max_inflight={} max_redeliveries={} data_dir={}",
        config.map(|c| c.display().to_string()).unwrap_or_default(),
        s.admission.max_connections,
        s.broker.max_inflight,
        s.broker.max_redeliveries,
        s.data_dir.display()
    );
}

#[test]
fn environment_sits_between_flags_and_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("f.toml");
    std::fs::write(
        &cfg,
        "max_connections = 5\nmax_inflight = 3\nmax_redeliveries = 11\ndata_dir = \"/from/file\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let out = std::process::Command::new(exe)
        .args(["--exact", "env_probe", "--nocapture", "--test-threads=1"])
        .env("FERROCORE_TEST_ENV_PROBE", "1")
        .env("FERROCORE_CONFIG", &cfg)
        .env("FERROCORE_MAX_CONNECTIONS", "9")
        .env("FERROCORE_MAX_INFLIGHT", "8")
        .env_remove("FERROCORE_MAX_REDELIVERIES")
        .env_remove("FERROCORE_DATA_DIR")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.find("PROBE ").map(|i| &l[i..]))
        .unwrap_or_else(|| {
            panic!(
                "no probe output: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    // env beats file; flag beats env and file; file beats default.
    assert!(line.contains("max_connections=9 "), "{line}");
    assert!(line.contains("max_inflight=4 "), "{line}");
    assert!(line.contains("max_redeliveries=11 "), "{line}");
    assert!(line.contains("data_dir=/from/file"), "{line}");
    assert!(
        line.contains(&format!("config={}", cfg.display())),
        "{line}"
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0)
}

#[test]
fn identity_created_once_and_reused() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let dir = tmp.path().join("nested/data");
    let names = vec!["iot.example.com".to_owned()];
    let first =
        identity::load_or_create(&dir, &names, Some("myhost")).unwrap_or_else(|e| panic!("{e}"));
    assert!(first.created_root && first.issued_server_cert);
    assert_eq!(
        first.server_names,
        vec!["localhost", "127.0.0.1", "::1", "myhost", "iot.example.com"]
    );
    assert_eq!(mode(&dir), 0o700);
    for key in [
        identity::ROOT_CA_KEY,
        identity::SERVER_KEY,
        identity::DEVICE_CA_KEY,
    ] {
        assert_eq!(mode(&dir.join(key)), 0o600, "{key}");
    }
    for cert in [
        identity::ROOT_CA_CERT,
        identity::SERVER_CERT,
        identity::DEVICE_CA_CERT,
    ] {
        let pem = std::fs::read_to_string(dir.join(cert)).unwrap_or_default();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    }
    assert_ne!(first.root_ca_pem, first.device_ca_pem);
    // Debug output never holds the key.
    assert!(!format!("{first:?}").contains("PRIVATE"));

    let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_default();
    let (root, server, device) = (
        read(identity::ROOT_CA_CERT),
        read(identity::SERVER_CERT),
        read(identity::DEVICE_CA_CERT),
    );
    let again =
        identity::load_or_create(&dir, &names, Some("myhost")).unwrap_or_else(|e| panic!("{e}"));
    assert!(!again.created_root && !again.issued_server_cert);
    assert_eq!(read(identity::ROOT_CA_CERT), root);
    assert_eq!(read(identity::SERVER_CERT), server);
    assert_eq!(read(identity::DEVICE_CA_CERT), device);

    // New endpoint names: a new server certificate from the same root.
    let more = vec!["iot.example.com".to_owned(), "edge.example.net".to_owned()];
    let third =
        identity::load_or_create(&dir, &more, Some("myhost")).unwrap_or_else(|e| panic!("{e}"));
    assert!(!third.created_root && third.issued_server_cert);
    assert!(third.server_names.contains(&"edge.example.net".to_owned()));
    assert_eq!(read(identity::ROOT_CA_CERT), root);
    assert_ne!(read(identity::SERVER_CERT), server);
    assert_eq!(mode(&dir.join(identity::SERVER_KEY)), 0o600);
}

#[test]
fn identity_refuses_a_ca_without_its_key() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    identity::load_or_create(tmp.path(), &[], None).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(tmp.path().join(identity::ROOT_CA_KEY)).unwrap_or_else(|e| panic!("{e}"));
    let e = identity::load_or_create(tmp.path(), &[], None);
    assert!(matches!(e, Err(IdentityError::Partial { .. })), "{e:?}");
    let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("root-ca.key is missing"), "{msg}");

    // A corrupt server certificate is simply issued again.
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    identity::load_or_create(tmp.path(), &[], None).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(tmp.path().join(identity::SERVER_CERT), "garbage")
        .unwrap_or_else(|e| panic!("{e}"));
    let id = identity::load_or_create(tmp.path(), &[], None).unwrap_or_else(|e| panic!("{e}"));
    assert!(id.issued_server_cert);
}

#[test]
fn anonymous_policies_from_flag_file_and_listener() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        p.to_string_lossy().into_owned()
    };
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;
    let global = write("global.json", doc);
    let own = write("own.json", doc);
    let text = format!(
        "anonymous_policy = \"{global}\"\n\
         [[listener]]\nname = \"a\"\naddress = \"127.0.0.1:0\"\ntransport = \"ws\"\nanonymous = true\n\
         [[listener]]\nname = \"b\"\naddress = \"127.0.0.1:0\"\ntransport = \"mqtt\"\nanonymous = true\nanonymous_policy = \"{own}\"\n\
         [[listener]]\nname = \"c\"\naddress = \"127.0.0.1:0\"\ntransport = \"mqtt\"\n"
    );
    let s = resolve(&["--dev", "--listen-mqtt", "127.0.0.1:0"], &text);
    let policy_of = |name: &str| {
        s.listeners
            .iter()
            .find(|l| l.name == name)
            .and_then(|l| l.anonymous_policy.as_ref())
            .map(|p| p.path.file_name().map(|f| f.to_string_lossy().into_owned()))
    };
    // The dev listener and anonymous listeners without their own get the top-level one.
    assert_eq!(policy_of("mqtt"), Some(Some("global.json".into())));
    assert_eq!(policy_of("a"), Some(Some("global.json".into())));
    assert_eq!(policy_of("b"), Some(Some("own.json".into())));
    assert_eq!(policy_of("c"), None);
    // The flag beats the file.
    let s = resolve(
        &[
            "--dev",
            "--listen-mqtt",
            "127.0.0.1:0",
            "--anonymous-policy",
            &own,
        ],
        &format!("anonymous_policy = \"{global}\""),
    );
    let p = s
        .listeners
        .iter()
        .find(|l| l.name == "mqtt")
        .and_then(|l| l.anonymous_policy.clone());
    assert_eq!(p.map(|p| p.path), Some(dir.path().join("own.json")));
    // None named: allow-all (no policy).
    let s = resolve(&["--dev"], "");
    assert!(s.listeners.iter().all(|l| l.anonymous_policy.is_none()));

    // Errors say which setting and what is wrong.
    let bad = write(
        "bad.json",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"iot:Connect","Resource":"*"}]}"#,
    );
    let e = resolve_err(&["--anonymous-policy", &bad], "").to_string();
    assert!(
        e.starts_with("--anonymous-policy: ") && e.contains("bad.json") && e.contains("Malformed"),
        "{e}"
    );
    let missing = dir.path().join("missing.json");
    let e = resolve_err(&["--anonymous-policy", &missing.to_string_lossy()], "").to_string();
    assert!(
        e.contains("cannot read the policy file") && e.contains("missing.json"),
        "{e}"
    );
    let e = file_err(&format!(
        "[[listener]]\nname = \"x\"\naddress = \"127.0.0.1:0\"\ntransport = \"mqtt\"\nanonymous_policy = \"{own}\"\n"
    ));
    assert!(e.contains("add anonymous = true"), "{e}");
}

#[test]
fn relative_anonymous_policy_paths_are_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#;
    std::fs::write(dir.path().join("anon.json"), doc).unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("ferrocore.toml");
    let f = FileConfig::parse(&cfg, "anonymous_policy = \"anon.json\"\ndev = true\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let s = Settings::resolve(ServeFlags::default(), f).unwrap_or_else(|e| panic!("{e}"));
    let p = s.listeners.iter().find_map(|l| l.anonymous_policy.clone());
    assert_eq!(p.map(|p| p.path), Some(dir.path().join("anon.json")));
}

#[test]
fn metrics_listener_defaults_to_loopback_and_can_be_moved_or_turned_off() {
    let default = resolve(&[], "").metrics.expect("metrics listener");
    assert_eq!(default.address.to_string(), "127.0.0.1:9464");
    assert!(!default.explicit);
    let moved = resolve(&["--listen-metrics", "127.0.0.1:0"], "")
        .metrics
        .expect("metrics listener");
    assert_eq!(moved.address.port(), 0);
    assert!(moved.explicit);
    let from_file = resolve(&[], "listen_metrics = \"127.0.0.1:9999\"\n")
        .metrics
        .expect("metrics listener");
    assert_eq!((from_file.address.port(), from_file.explicit), (9999, true));
    assert!(resolve(&["--listen-metrics", "off"], "").metrics.is_none());
    let err = resolve_err(&["--listen-metrics", "nowhere"], "");
    assert!(err.to_string().contains("--listen-metrics"), "{err}");
}

#[test]
fn policy_limits_default_to_aws_quotas_and_can_be_raised() {
    let d = resolve(&[], "").policy_limits;
    assert_eq!(
        (
            d.max_policies_per_certificate,
            d.max_policies_per_thing_group
        ),
        (10, 2)
    );
    let s = resolve(
        &["--max-policies-per-certificate", "20"],
        "max_policies_per_thing_group = 5\n",
    )
    .policy_limits;
    assert_eq!(
        (
            s.max_policies_per_certificate,
            s.max_policies_per_thing_group
        ),
        (20, 5)
    );
    let err = resolve_err(&["--max-policies-per-thing-group", "0"], "");
    assert!(
        err.to_string().contains("--max-policies-per-thing-group"),
        "{err}"
    );
}

#[test]
fn custom_auth_per_listener() {
    let s = resolve(
        &[],
        r#"
[[listener]]
name = "legacy"
address = "127.0.0.1:0"
transport = "mqtts"
custom_auth = true

[[listener]]
name = "certs"
address = "127.0.0.1:0"
transport = "mqtts"

[[listener]]
name = "web"
address = "127.0.0.1:0"
transport = "https"

[[listener]]
name = "web-certs"
address = "127.0.0.1:0"
transport = "https"
custom_auth = false

[[listener]]
name = "lan"
address = "127.0.0.1:0"
transport = "mqtt"
custom_auth = true
allow_plaintext_passwords = true
"#,
    );
    let custom_auth = |name: &str| {
        s.listeners
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.custom_auth)
    };
    // On the built-in 8883 (beyond AWS) and on 443 (ALPN mqtt and WebSocket).
    assert_eq!(custom_auth("mqtts"), Some(true));
    assert_eq!(custom_auth("https"), Some(true));
    assert_eq!(custom_auth("legacy"), Some(true));
    assert_eq!(custom_auth("certs"), Some(false));
    assert_eq!(custom_auth("web"), Some(true));
    assert_eq!(custom_auth("web-certs"), Some(false));
    assert_eq!(custom_auth("lan"), Some(true));
}

#[test]
fn compat_aws_keeps_custom_auth_off_the_built_in_mqtts_listener() {
    let s = resolve(&["--compat", "aws"], "");
    let mqtts = s.listeners.iter().find(|l| l.name == "mqtts");
    assert_eq!(mqtts.map(|l| l.custom_auth), Some(false));
}

#[test]
fn custom_auth_on_plain_listeners_needs_an_acknowledgement() {
    for transport in ["mqtt", "ws"] {
        let e = file_err(&format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\ntransport = \"{transport}\"\ncustom_auth = true\n"
        ));
        assert!(e.contains("allow_plaintext_passwords = true"), "{e}");
    }
    let e = file_err(
        "[[listener]]\naddress = \"127.0.0.1:0\"\ntransport = \"mqtts\"\ncustom_auth = true\nallow_plaintext_passwords = true\n",
    );
    assert!(
        e.contains("`allow_plaintext_passwords` is for plain"),
        "{e}"
    );
    let e = file_err(
        "[[listener]]\naddress = \"127.0.0.1:0\"\ntransport = \"mqtt\"\nallow_plaintext_passwords = true\n",
    );
    assert!(
        e.contains("`allow_plaintext_passwords` is for plain"),
        "{e}"
    );
    let e = file_err(
        "[[listener]]\naddress = \"127.0.0.1:0\"\ntransport = \"mqtts\"\ncustom_auth = true\nanonymous = true\n",
    );
    assert!(e.contains("exclude each other"), "{e}");
    // An anonymous https listener has custom authentication off unless it asks.
    let s = resolve(
        &[],
        "[[listener]]\nname = \"open\"\naddress = \"127.0.0.1:0\"\ntransport = \"https\"\nanonymous = true\n",
    );
    assert!(
        s.listeners
            .iter()
            .any(|l| l.name == "open" && !l.custom_auth)
    );
}

#[test]
fn listener_default_authorizer() {
    let s = resolve(
        &[],
        "[[listener]]\nname = \"fleet\"\naddress = \"127.0.0.1:0\"\ntransport = \"mqtts\"\ncustom_auth = true\ndefault_authorizer = \"fleet-a\"\n",
    );
    let fleet = s.listeners.iter().find(|l| l.name == "fleet");
    assert_eq!(
        fleet.and_then(|l| l.default_authorizer.as_deref()),
        Some("fleet-a")
    );
    assert!(
        s.listeners
            .iter()
            .filter(|l| l.name != "fleet")
            .all(|l| l.default_authorizer.is_none())
    );
    let e = file_err(
        "[[listener]]\naddress = \"127.0.0.1:0\"\ntransport = \"mqtts\"\ndefault_authorizer = \"fleet-a\"\n",
    );
    assert!(e.contains("add custom_auth = true"), "{e}");
    let e = file_err(
        "[[listener]]\naddress = \"127.0.0.1:0\"\ntransport = \"mqtts\"\ncustom_auth = true\ndefault_authorizer = \"no spaces\"\n",
    );
    assert!(e.contains("`default_authorizer`"), "{e}");
}

#[test]
fn authorizer_invoker_limits_from_flags_and_file() {
    let s = resolve(&[], "");
    assert_eq!(s.authorizer_invoker.timeout, Duration::from_secs(5));
    assert_eq!(s.authorizer_invoker.max_concurrent_calls, 64);
    assert!(!s.authorizer_invoker.webhook.allow_plain_http);
    assert!(s.authorizer_invoker.webhook.extra_roots.is_empty());

    let s = resolve(
        &[
            "--authorizer-timeout",
            "2s",
            "--authorizer-webhook-allow-plain-http",
        ],
        "authorizer_timeout = \"9s\"\nauthorizer_max_concurrent_calls = 8\nauthorizer_breaker_failures = 2\nauthorizer_breaker_cool_down = \"1m\"\nauthorizer_cache_entries = 0\n",
    );
    let c = &s.authorizer_invoker;
    assert_eq!(c.timeout, Duration::from_secs(2));
    assert_eq!(c.max_concurrent_calls, 8);
    assert_eq!(c.breaker_failures, 2);
    assert_eq!(c.breaker_cool_down, Duration::from_secs(60));
    assert_eq!(c.max_cached_answers, 0);
    assert!(c.webhook.allow_plain_http);

    let e = resolve_err(&["--authorizer-timeout", "0s"], "").to_string();
    assert!(
        e.contains("--authorizer-timeout") && e.contains("more than 0s"),
        "{e}"
    );
    let e = file_err("authorizer_max_concurrent_calls = 0\n");
    assert!(
        e.contains("authorizer_max_concurrent_calls") && e.contains("at least 1"),
        "{e}"
    );
    let e = file_err("authorizer_webhook_ca = \"no-such-ca.pem\"\n");
    assert!(
        e.contains("authorizer_webhook_ca") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn authorizer_webhook_ca_is_read_relative_to_the_config_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()])
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("hooks-ca.pem"), ca.cert.pem())
        .unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("ferrocore.toml");
    let file = FileConfig::parse(&path, "authorizer_webhook_ca = \"hooks-ca.pem\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let s = Settings::resolve(ServeFlags::default(), file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.authorizer_invoker.webhook.extra_roots.len(), 1);

    std::fs::write(dir.path().join("hooks-ca.pem"), "not pem").unwrap_or_else(|e| panic!("{e}"));
    let file = FileConfig::parse(&path, "authorizer_webhook_ca = \"hooks-ca.pem\"\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let e = Settings::resolve(ServeFlags::default(), file)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("no PEM CERTIFICATE"), "{e}");
}

#[test]
fn authorizer_function_tables() {
    let s = resolve(
        &[],
        "[[authorizer_function]]\nname = \"idp\"\nkind = \"jwt\"\nissuer = \"https://idp.test/\"\n\n[[authorizer_function]]\nname = \"passwords\"\nkind = \"password\"\n",
    );
    let names: Vec<_> = s
        .authorizer_functions
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["idp", "passwords"]);
    let idp = &s.authorizer_functions[0];
    assert_eq!(idp.kind, "jwt");
    assert!(idp.options.contains_key("issuer"));
    assert!(!idp.options.contains_key("name") && !idp.options.contains_key("kind"));
    assert!(idp.context.contains("\"idp\""), "{}", idp.context);

    for (text, expected) in [
        (
            "[[authorizer_function]]\nkind = \"jwt\"\n",
            "`name` is missing",
        ),
        (
            "[[authorizer_function]]\nname = \"a b\"\nkind = \"jwt\"\n",
            "must be 1-128",
        ),
        (
            "[[authorizer_function]]\nname = \"x\"\n",
            "`kind` is missing",
        ),
        (
            "[[authorizer_function]]\nname = \"x\"\nkind = \"jwt\"\n[[authorizer_function]]\nname = \"x\"\nkind = \"wasm\"\n",
            "used twice",
        ),
        (
            "authorizer_function = 3\n",
            "[[authorizer_function]] tables",
        ),
    ] {
        let e = file_err(text);
        assert!(e.contains(expected), "{text:?}: {e}");
    }
}
