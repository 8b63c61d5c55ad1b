//! End-to-end: the real `ferrocore serve` binary driven by rumqttc (an independent MQTT client
//! from crates.io), over plain TCP and over TLS trusting the generated root CA, MQTT 3.1.1 and 5.
//!
//! The server runs on ephemeral ports in a temporary data directory; its bound addresses come
//! from `<data-dir>/listeners.json`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::time::timeout;

/// Generous: only to turn a hang into a failure, never a timing assertion.
const WAIT: Duration = Duration::from_secs(20);

/// A running `ferrocore serve`, killed on drop.
struct Server {
    child: Child,
    _dir: tempfile::TempDir,
    data_dir: PathBuf,
    mqtt: SocketAddr,
    mqtts: SocketAddr,
}

impl Server {
    fn start() -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let data_dir = dir.path().join("data");
        let config = dir.path().join("ferrocore.toml");
        // Until device authentication exists only an anonymous listener admits clients.
        std::fs::write(
            &config,
            "[[listener]]\nname = \"rumqttc-mqtts\"\ntransport = \"mqtts\"\n\
             address = \"127.0.0.1:0\"\nanonymous = true\n",
        )?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = Command::new(env!("CARGO_BIN_EXE_ferrocore"))
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--config")
            .arg(&config)
            .args(["--dev", "--listen-mqtt", "127.0.0.1:0"])
            .args(["--listen-mqtts", "off", "--listen-https", "off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning ferrocore serve")?;
        let mut server = Server {
            child,
            _dir: dir,
            data_dir,
            mqtt: "0.0.0.0:0".parse()?,
            mqtts: "0.0.0.0:0".parse()?,
        };
        server.wait_for_listeners()?;
        Ok(server)
    }

    fn wait_for_listeners(&mut self) -> Result<()> {
        let path = self.data_dir.join("listeners.json");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "ferrocore exited with {status} before listening:\n{}",
                    self.log()
                );
            }
            if let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text)
            {
                let listeners = doc["listeners"].as_array().cloned().unwrap_or_default();
                let find = |name: &str| -> Result<SocketAddr> {
                    let l = listeners
                        .iter()
                        .find(|l| l["name"] == name)
                        .with_context(|| format!("no listener {name} in {text}"))?;
                    let addr = l["address"].as_str().context("address")?;
                    Ok(addr.parse()?)
                };
                self.mqtts = find("rumqttc-mqtts")?;
                self.mqtt = listeners
                    .iter()
                    .find(|l| l["transport"] == "mqtt")
                    .and_then(|l| l["address"].as_str())
                    .context("no plain mqtt listener")?
                    .parse()?;
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("no {} after {WAIT:?}:\n{}", path.display(), self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        let path = self._dir.path().join("server.log");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// The anonymous listener for `transport`.
    fn addr(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Tcp => self.mqtt,
            Transport::Tls => self.mqtts,
        }
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        tls_config(&self.data_dir.join("root-ca.pem"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- ferrocore log -----\n{}", self.log());
        }
    }
}

fn tls_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).context("reading root-ca.pem")? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp,
    Tls,
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

mod v311 {
    use super::*;
    use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration};

    fn client(server: &Server, transport: Transport, id: &str) -> Result<(AsyncClient, EventLoop)> {
        let addr = server.addr(transport);
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        opts.set_keep_alive(Duration::from_secs(30));
        if let Transport::Tls = transport {
            opts.set_transport(rumqttc::Transport::tls_with_config(
                TlsConfiguration::Rustls(server.tls_config()?),
            ));
        }
        Ok(AsyncClient::new(opts, 16))
    }

    /// Polls until `pred` accepts an event; fails on a connection error or after WAIT.
    async fn until(el: &mut EventLoop, mut pred: impl FnMut(&Event) -> bool) -> Result<Event> {
        timeout(WAIT, async {
            loop {
                let ev = el.poll().await?;
                if pred(&ev) {
                    return Ok(ev);
                }
            }
        })
        .await
        .context("timed out waiting for an event")?
    }

    pub async fn subscribe_publish_receive(server: &Server, transport: Transport) -> Result<()> {
        let topic = format!("rumqttc/{}/v311", unique("t"));
        let (sub, mut sub_el) = client(server, transport, &unique("sub"))?;
        let (publisher, mut pub_el) = client(server, transport, &unique("pub"))?;

        until(&mut sub_el, |e| {
            matches!(e, Event::Incoming(Packet::ConnAck(_)))
        })
        .await?;
        sub.subscribe(&topic, QoS::AtLeastOnce).await?;
        let Event::Incoming(Packet::SubAck(ack)) = until(&mut sub_el, |e| {
            matches!(e, Event::Incoming(Packet::SubAck(_)))
        })
        .await?
        else {
            unreachable!()
        };
        assert_eq!(
            ack.return_codes,
            vec![rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)]
        );

        until(&mut pub_el, |e| {
            matches!(e, Event::Incoming(Packet::ConnAck(_)))
        })
        .await?;
        publisher
            .publish(
                &topic,
                QoS::AtLeastOnce,
                false,
                b"hello over rumqttc".to_vec(),
            )
            .await?;
        until(&mut pub_el, |e| {
            matches!(e, Event::Incoming(Packet::PubAck(_)))
        })
        .await?;

        let Event::Incoming(Packet::Publish(p)) = until(&mut sub_el, |e| {
            matches!(e, Event::Incoming(Packet::Publish(_)))
        })
        .await?
        else {
            unreachable!()
        };
        assert_eq!(p.topic, topic);
        assert_eq!(p.qos, QoS::AtLeastOnce);
        assert_eq!(&p.payload[..], b"hello over rumqttc");

        sub.disconnect().await?;
        publisher.disconnect().await?;
        Ok(())
    }
}

mod v5 {
    use super::*;
    use rumqttc::TlsConfiguration;
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
    use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};

    fn client(server: &Server, transport: Transport, id: &str) -> Result<(AsyncClient, EventLoop)> {
        let addr = server.addr(transport);
        let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        opts.set_keep_alive(Duration::from_secs(30));
        if let Transport::Tls = transport {
            opts.set_transport(rumqttc::Transport::tls_with_config(
                TlsConfiguration::Rustls(server.tls_config()?),
            ));
        }
        Ok(AsyncClient::new(opts, 16))
    }

    async fn until(el: &mut EventLoop, mut pred: impl FnMut(&Event) -> bool) -> Result<Event> {
        timeout(WAIT, async {
            loop {
                let ev = el.poll().await?;
                if pred(&ev) {
                    return Ok(ev);
                }
            }
        })
        .await
        .context("timed out waiting for an event")?
    }

    pub async fn subscribe_publish_receive(server: &Server, transport: Transport) -> Result<()> {
        let topic = format!("rumqttc/{}/v5", unique("t"));
        let (sub, mut sub_el) = client(server, transport, &unique("sub5"))?;
        let (publisher, mut pub_el) = client(server, transport, &unique("pub5"))?;

        until(&mut sub_el, |e| {
            matches!(e, Event::Incoming(Packet::ConnAck(_)))
        })
        .await?;
        sub.subscribe(&topic, QoS::AtLeastOnce).await?;
        until(&mut sub_el, |e| {
            matches!(e, Event::Incoming(Packet::SubAck(_)))
        })
        .await?;

        until(&mut pub_el, |e| {
            matches!(e, Event::Incoming(Packet::ConnAck(_)))
        })
        .await?;
        let props = PublishProperties {
            user_properties: vec![("b".into(), "1".into()), ("a".into(), "2".into())],
            content_type: Some("text/plain".into()),
            ..Default::default()
        };
        publisher
            .publish_with_properties(&topic, QoS::AtLeastOnce, false, b"v5 hello".to_vec(), props)
            .await?;
        until(&mut pub_el, |e| {
            matches!(e, Event::Incoming(Packet::PubAck(_)))
        })
        .await?;

        let Event::Incoming(Packet::Publish(p)) = until(&mut sub_el, |e| {
            matches!(e, Event::Incoming(Packet::Publish(_)))
        })
        .await?
        else {
            unreachable!()
        };
        assert_eq!(&p.topic[..], topic.as_bytes());
        assert_eq!(p.qos, QoS::AtLeastOnce);
        assert_eq!(&p.payload[..], b"v5 hello");
        let got = p.properties.context("no properties")?;
        assert_eq!(
            got.user_properties,
            vec![
                ("b".to_owned(), "1".to_owned()),
                ("a".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(got.content_type.as_deref(), Some("text/plain"));

        sub.disconnect().await?;
        publisher.disconnect().await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v311_over_tcp_and_tls() -> Result<()> {
    let server = Server::start()?;
    v311::subscribe_publish_receive(&server, Transport::Tcp).await?;
    v311::subscribe_publish_receive(&server, Transport::Tls).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttc_v5_over_tcp_and_tls() -> Result<()> {
    let server = Server::start()?;
    v5::subscribe_publish_receive(&server, Transport::Tcp).await?;
    v5::subscribe_publish_receive(&server, Transport::Tls).await?;
    Ok(())
}
