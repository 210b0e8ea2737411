//! TLS to nats-server with a CA and certificates this test makes (openssl CLI): the
//! server requires and verifies client certificates, coordkv trusts the CA and presents
//! its certificate. Without the client certificate, or without trusting the CA, the
//! store does not open.

mod common;

use common::{temp_dir, unique_name, NatsOptions, NatsServer};
use coordkv::{ErrorKind, Store};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The error opening a store with `config` fails with.
fn open_refused(config: serde_json::Value) -> coordkv::Error {
    Store::open_json(&config.to_string())
        .err()
        .unwrap_or_else(|| panic!("{config} must be refused"))
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl CLI");
    assert!(status.success(), "openssl {args:?} failed");
}

struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1, and a client certificate.
    fn make() -> Pki {
        let dir = temp_dir("pki");
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=coordkv test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        for (name, ext) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
            ),
            ("client", "extendedKeyUsage=clientAuth\n"),
        ] {
            std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
            openssl(
                &dir,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    &format!("/CN={name}"),
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    &format!("{name}.ext"),
                    "-out",
                    &format!("{name}.pem"),
                ],
            );
        }
        Pki { dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn mutual_tls_with_a_test_ca() {
    let pki = Pki::make();
    let server = NatsServer::start(NatsOptions {
        tls: Some((
            pki.dir.join("server.pem"),
            pki.dir.join("server.key"),
            Some(pki.dir.join("ca.pem")),
        )),
        ..Default::default()
    });
    let url = format!("nats://127.0.0.1:{}", server.port);
    let bucket = unique_name("tls");

    let store = Store::open_json(
        &json!({"url": url, "bucket": bucket, "tls": {
            "ca_file": pki.file("ca.pem"), "cert_file": pki.file("client.pem"),
            "key_file": pki.file("client.key"), "required": true}})
        .to_string(),
    )
    .unwrap();
    let rev = store.put("/tls/a", b"secret").unwrap();
    assert_eq!(store.get("/tls/a").unwrap().revision, rev);

    // The server verifies client certificates: without one the handshake is refused.
    let no_cert = open_refused(
        json!({"url": url, "bucket": bucket, "connect_timeout_ms": 3000,
                "tls": {"ca_file": pki.file("ca.pem"), "required": true}}),
    );
    assert!(
        matches!(
            no_cert.kind(),
            ErrorKind::Unavailable | ErrorKind::Unauthorized
        ),
        "{no_cert}"
    );

    // A server certificate from an unknown CA is not trusted.
    let untrusted = open_refused(
        json!({"url": url, "bucket": bucket, "connect_timeout_ms": 3000,
                "tls": {"cert_file": pki.file("client.pem"), "key_file": pki.file("client.key"),
                        "required": true}}),
    );
    assert_eq!(untrusted.kind(), ErrorKind::Unavailable, "{untrusted}");
}

#[test]
fn missing_tls_files_are_invalid_arguments() {
    for tls in [
        json!({"ca_file": "/nonexistent/ca.pem"}),
        json!({"cert_file": "/nonexistent/c.pem"}),
    ] {
        let err = open_refused(json!({"url": "nats://127.0.0.1:1", "tls": tls}));
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    }
}
