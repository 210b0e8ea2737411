//! Test support shared by the Rust integration tests.
//!
//! Two things flow through here: which stores a backend-parametrized suite runs on
//! (`test_stores`: mem:// always, plus a fresh NATS bucket when the test command exported
//! COORDKV_TEST_NATS_URL), and throwaway nats-server processes for the tests that need
//! their own (`NatsServer`: auth, TLS, restarts, clusters). A server is always on
//! 127.0.0.1, stores into its own temp dir, and is killed and cleaned up on drop, so a
//! failing test cannot leave one behind.

#![allow(dead_code)]

use coordkv::Store;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A name no other test (or earlier run against the same server) has used.
pub fn unique_name(base: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{clean}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn nats_required() -> bool {
    std::env::var("COORDKV_REQUIRE_NATS").is_ok_and(|v| v == "1")
}

/// The NATS server the test command started, if any.
pub fn test_nats_url() -> Option<String> {
    let url = std::env::var("COORDKV_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    if url.is_none() && nats_required() {
        panic!("COORDKV_REQUIRE_NATS=1 but COORDKV_TEST_NATS_URL is not set");
    }
    url
}

/// A NATS store on `url` in a bucket of its own.
pub fn open_nats_store(url: &str, name: &str) -> Store {
    open_with(url, Some(&unique_name(name)), "")
}

/// Opens `url` (with `bucket`) plus `extra` config fields (`"history": 2`, or empty).
fn open_with(url: &str, bucket: Option<&str>, extra: &str) -> Store {
    let mut config = serde_json::json!({ "url": url });
    if let Some(bucket) = bucket {
        config["bucket"] = bucket.into();
    }
    if !extra.is_empty() {
        let fields: serde_json::Value =
            serde_json::from_str(&format!("{{{extra}}}")).expect("extra config fields");
        for (name, value) in fields.as_object().expect("an object") {
            config[name] = value.clone();
        }
    }
    Store::open_json(&config.to_string()).unwrap_or_else(|e| panic!("open {config}: {e}"))
}

/// The stores a backend-parametrized test runs against, each with a label for messages.
pub fn test_stores(name: &str) -> Vec<(String, Store)> {
    test_stores_with(name, "")
}

/// Like `test_stores`, with `extra` config fields (`"history": 64`) on every store.
pub fn test_stores_with(name: &str, extra: &str) -> Vec<(String, Store)> {
    let mut stores = vec![("mem".to_string(), open_with("mem://", None, extra))];
    if let Some(url) = test_nats_url() {
        let bucket = unique_name(name);
        stores.push(("nats".to_string(), open_with(&url, Some(&bucket), extra)));
    }
    stores
}

/// The nats-server executable: NATS_SERVER_BIN, else `nats-server` on PATH, else the
/// pinned one that tests/support/natsd.py provisions (downloaded once, then cached).
pub fn nats_server_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("NATS_SERVER_BIN") {
        if Path::new(&bin).is_file() {
            return PathBuf::from(bin);
        }
        panic!("NATS_SERVER_BIN={bin} is not a file");
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("nats-server");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/natsd.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("path")
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "no nats-server: NATS_SERVER_BIN unset, none on PATH, and {script:?} failed: {e}"
            )
        });
    assert!(
        out.status.success(),
        "natsd.py path failed: {:?}",
        out.status
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A fresh directory under the system temp dir, removed by whoever owns it.
pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("coordkv-{}", unique_name(label)));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// How to run one nats-server.
#[derive(Clone, Default)]
pub struct NatsOptions {
    /// 0 picks a free port.
    pub port: u16,
    /// None makes (and later removes) a temp dir.
    pub store_dir: Option<PathBuf>,
    pub server_name: Option<String>,
    pub user_password: Option<(String, String)>,
    pub token: Option<String>,
    /// (cert, key, Some(ca) to require and verify client certificates)
    pub tls: Option<(PathBuf, PathBuf, Option<PathBuf>)>,
    /// (cluster name, cluster port, route ports of the other nodes)
    pub cluster: Option<(String, u16, Vec<u16>)>,
    /// Without JetStream (for the "JetStream disabled" error).
    pub no_jetstream: bool,
    /// Appended verbatim to the generated config (accounts, permissions, limits).
    pub extra_config: String,
}

/// One running nats-server; killed (and its temp dir removed) on drop.
pub struct NatsServer {
    pub options: NatsOptions,
    pub port: u16,
    pub store_dir: PathBuf,
    owns_store_dir: bool,
    config_file: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// A plain JetStream server on a free port.
    pub fn start_default() -> NatsServer {
        NatsServer::start(NatsOptions::default())
    }

    pub fn start(options: NatsOptions) -> NatsServer {
        let port = if options.port == 0 {
            free_port()
        } else {
            options.port
        };
        let (store_dir, owns_store_dir) = match &options.store_dir {
            Some(dir) => (dir.clone(), false),
            None => (temp_dir("nats-js"), true),
        };
        let config_file = store_dir.join(format!("server-{port}.conf"));
        let mut server = NatsServer {
            options,
            port,
            store_dir,
            owns_store_dir,
            config_file,
            child: None,
        };
        server.write_config();
        server.spawn_and_wait();
        server
    }

    pub fn url(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "tls"
        } else {
            "nats"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn write_config(&self) {
        let o = &self.options;
        let mut conf = format!("listen: \"127.0.0.1:{}\"\n", self.port);
        if let Some(name) = &o.server_name {
            conf += &format!("server_name: \"{name}\"\n");
        }
        if !o.no_jetstream {
            conf += &format!(
                "jetstream {{ store_dir: \"{}\" }}\n",
                self.store_dir.join("js").display()
            );
        }
        if let Some((user, password)) = &o.user_password {
            conf += &format!("authorization {{ user: \"{user}\", password: \"{password}\" }}\n");
        }
        if let Some(token) = &o.token {
            conf += &format!("authorization {{ token: \"{token}\" }}\n");
        }
        if let Some((cert, key, ca)) = &o.tls {
            conf += &format!(
                "tls {{ cert_file: \"{}\", key_file: \"{}\"",
                cert.display(),
                key.display()
            );
            if let Some(ca) = ca {
                conf += &format!(", ca_file: \"{}\", verify: true", ca.display());
            }
            conf += " }\n";
        }
        if let Some((name, cluster_port, routes)) = &o.cluster {
            let routes: Vec<String> = routes
                .iter()
                .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
                .collect();
            conf += &format!(
                "cluster {{ name: \"{name}\", listen: \"127.0.0.1:{cluster_port}\", routes: [{}] }}\n",
                routes.join(", ")
            );
        }
        conf += &o.extra_config;
        std::fs::write(&self.config_file, conf).expect("write nats-server config");
    }

    fn spawn_and_wait(&mut self) {
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&self.config_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "nats-server exited early ({status}); config:\n{}",
                    std::fs::read_to_string(&self.config_file).unwrap_or_default()
                );
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 4];
                if stream.read_exact(&mut buf).is_ok() && &buf == b"INFO" {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// SIGKILL: no shutdown, no flush — a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and store dir (after `kill`).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn_and_wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        if self.owns_store_dir {
            let _ = std::fs::remove_dir_all(&self.store_dir);
        }
    }
}

/// Retries `op` until it succeeds; panics with the last error after `within` (a server
/// restarting, a fresh cluster electing its JetStream meta leader).
pub fn retry_until<T>(within: Duration, mut op: impl FnMut() -> coordkv::Result<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match op() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => panic!("never succeeded: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Opens `json`, retrying until it succeeds or `within` passes.
pub fn open_eventually(json: &str, within: Duration) -> Store {
    retry_until(within, || {
        Store::open_json(json).map_err(|e| e.context("open"))
    })
}

/// Runs a future (a plain NATS client's calls) to completion on a runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Eight threads, `per_thread` increments each, on one counter key.
pub fn hammer_counter(store: &std::sync::Arc<Store>, key: &str, per_thread: u64) -> u64 {
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let key = key.to_string();
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    store
                        .read_modify_write(&key, &mut |current| {
                            let n = match current {
                                Some(e) => std::str::from_utf8(&e.value)
                                    .unwrap()
                                    .parse::<u64>()
                                    .unwrap(),
                                None => 0,
                            };
                            Ok((n + 1).to_string().into_bytes())
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let value = store.get(key).unwrap().value;
    std::str::from_utf8(&value).unwrap().parse().unwrap()
}
