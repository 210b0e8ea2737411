//! Connecting: server URLs, auth and TLS, the server version gate, the permission-
//! violation watchdog, and opening (or creating) the bucket.

use super::errors::{is_missing_stream, map_error, no_answer};
use super::NatsBackend;
use crate::config::{Config, Storage};
use crate::error::{Error, ErrorKind, Result};
use crate::runtime;
use crate::sync::lock;
use async_nats::jetstream::{self, kv};
use async_nats::{ConnectOptions, Event, ServerError};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Oldest server line coordkv supports (per-subject CAS, direct get, roll-ups all present).
const MIN_SERVER: ServerVersion = (2, 10, 0);

/// Permission violations arrive asynchronously as `-ERR` from the server, not as the reply
/// of the call that caused them; calls in flight watch this to fail at once with
/// `PERMISSION_DENIED` instead of waiting for their timeout.
pub(super) struct Violations {
    pub(super) seen: watch::Sender<u64>,
    pub(super) last: Mutex<String>,
}

impl Violations {
    pub(super) fn record(&self, message: String) {
        *lock(&self.last) = message;
        self.seen.send_modify(|n| *n += 1);
    }

    pub(super) fn last(&self) -> String {
        lock(&self.last).clone()
    }
}

/// The NATS server URLs a config names: `servers`, else the hosts of `url`; a bare
/// `nats://` reads `NATS_URL` and falls back to the local default port.
pub fn server_urls(config: &Config) -> Result<Vec<String>> {
    let with_scheme = |s: &str, scheme: &str| {
        let s = s.trim();
        if s.contains("://") {
            s.to_string()
        } else {
            format!("{scheme}://{s}")
        }
    };
    if !config.servers.is_empty() {
        return Ok(config
            .servers
            .iter()
            .map(|s| with_scheme(s, "nats"))
            .collect());
    }
    let url = config.url.as_deref().unwrap_or("nats://");
    let (scheme, hosts) = url
        .split_once("://")
        .ok_or_else(|| Error::invalid(format!("store URL {url:?} has no scheme")))?;
    let hosts = hosts.trim_end_matches('/');
    if hosts.is_empty() {
        let from_env = std::env::var("NATS_URL").unwrap_or_default();
        let from_env = from_env.trim();
        if from_env.is_empty() {
            return Ok(vec![format!("{scheme}://127.0.0.1:4222")]);
        }
        return Ok(from_env
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| with_scheme(s, scheme))
            .collect());
    }
    let urls: Vec<String> = hosts
        .split(',')
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .map(|h| format!("{scheme}://{h}"))
        .collect();
    if urls.is_empty() {
        return Err(Error::invalid(format!("store URL {url:?} names no server")));
    }
    Ok(urls)
}

pub(super) fn existing_file(path: &str, what: &str) -> Result<std::path::PathBuf> {
    let p = Path::new(path);
    if !p.is_file() {
        return Err(Error::invalid(format!(
            "{what} {path:?} is not a readable file"
        )));
    }
    Ok(p.to_path_buf())
}

/// A nats-server release as (major, minor, patch).
pub(super) type ServerVersion = (u64, u64, u64);

/// `2.11.2`, `v2.12.0-beta`: the numbers before any suffix; a missing patch reads as 0.
pub(super) fn parse_version(version: &str) -> Option<ServerVersion> {
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next().map_or(Some(0), |p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    })?;
    Some((major, minor, patch))
}

impl NatsBackend {
    /// Connects, checks the server, and opens (or creates) the bucket.
    pub fn open(config: &Config) -> Result<NatsBackend> {
        let urls = server_urls(config)?;
        let runtime = runtime::handle()?;
        runtime::refuse_on_worker()?;
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms.max(1));
        let request_timeout = Duration::from_millis(config.request_timeout_ms.max(1));
        let violations = Arc::new(Violations {
            seen: watch::channel(0).0,
            last: Mutex::new(String::new()),
        });
        let connects = watch::channel(0).0;
        let options = connect_options(
            config,
            &urls,
            connect_timeout,
            request_timeout,
            &violations,
            &connects,
        )?;
        let servers_text = urls.join(",");

        runtime.block_on(async {
            let options = options.await?;
            let client =
                match tokio::time::timeout(connect_timeout, options.connect(urls.as_slice())).await
                {
                    Ok(Ok(client)) => client,
                    Ok(Err(e)) => {
                        return Err(map_error(&e).context(format!("connect to {servers_text}")))
                    }
                    Err(_) => {
                        return Err(Error::new(
                            ErrorKind::Unavailable,
                            format!(
                                "connect to {servers_text}: no server answered within the connect \
                             timeout ({} ms)",
                                connect_timeout.as_millis()
                            ),
                        ))
                    }
                };
            let info = client.server_info();
            let server_version = parse_version(&info.version);
            if server_version.is_some_and(|v| v < MIN_SERVER) {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "nats-server {} at {servers_text} is too old: coordkv needs 2.10+",
                        info.version
                    ),
                ));
            }
            let js = jetstream::ContextBuilder::new()
                .timeout(request_timeout)
                .build(client.clone());
            let bucket = tokio::time::timeout(request_timeout, open_bucket(&js, config))
                .await
                .map_err(|_| {
                    no_answer(&format!("open bucket {:?}", config.bucket), request_timeout)
                })??;
            let read_prefix = bucket.prefix.clone();
            let put_prefix = bucket
                .put_prefix
                .clone()
                .unwrap_or_else(|| read_prefix.clone());
            Ok(NatsBackend {
                runtime: runtime.clone(),
                client,
                js,
                bucket,
                put_prefix,
                read_prefix,
                request_timeout,
                violations,
                connects,
                history: config.history,
                marker_ttl_wanted: Duration::from_millis(config.marker_ttl_ms),
                marker_ttl_in_effect: Mutex::new(None),
                // A version that does not parse is a build of the server's main line.
                server_version: server_version.unwrap_or((u64::MAX, 0, 0)),
                server_version_text: info.version.clone(),
                closed: AtomicBool::new(false),
            })
        })
    }
}

pub(super) fn connect_options(
    config: &Config,
    urls: &[String],
    connect_timeout: Duration,
    request_timeout: Duration,
    violations: &Arc<Violations>,
    connects: &watch::Sender<u64>,
) -> Result<impl Future<Output = Result<ConnectOptions>>> {
    let auth = &config.auth;
    let tls = &config.tls;
    let ca = tls
        .ca_file
        .as_deref()
        .map(|p| existing_file(p, "tls.ca_file"))
        .transpose()?;
    let client_cert = match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => Some((
            existing_file(c, "tls.cert_file")?,
            existing_file(k, "tls.key_file")?,
        )),
        (None, None) => None,
        _ => {
            return Err(Error::invalid(
                "tls.cert_file and tls.key_file must be given together",
            ))
        }
    };
    let creds = auth
        .creds_file
        .as_deref()
        .map(|p| existing_file(p, "auth.creds_file"))
        .transpose()?;
    let tls_required = tls.required || urls.iter().any(|u| u.starts_with("tls://"));
    let violations = violations.clone();
    let connects = connects.clone();
    let first_connect_seen = AtomicBool::new(false);
    let mut options = ConnectOptions::new()
        .connection_timeout(connect_timeout)
        .request_timeout(Some(request_timeout))
        .max_reconnects(None)
        // A restarted server is back within a second or two; try again at least four
        // times a second, so a live handle (and its watches) resume within a quarter
        // second of the server's return. One attempt is one TCP connect: cheap.
        .reconnect_delay_callback(|attempts| Duration::from_millis((attempts as u64 * 50).min(250)))
        .event_callback(move |event| {
            let violations = violations.clone();
            // The first Connected is the initial connection, which may be reported after
            // the watch feed started: only later ones are reconnects.
            if matches!(event, Event::Connected) && first_connect_seen.swap(true, Ordering::AcqRel)
            {
                connects.send_modify(|n| *n += 1);
            }
            async move {
                if let Event::ServerError(ServerError::Other(message)) = event {
                    if message
                        .to_ascii_lowercase()
                        .contains("permissions violation")
                    {
                        violations.record(message);
                    }
                }
            }
        });
    if let Some(name) = &config.connection_name {
        options = options.name(name);
    }
    match (&auth.user, &auth.password) {
        (Some(user), password) => {
            options = options.user_and_password(user.clone(), password.clone().unwrap_or_default())
        }
        (None, Some(_)) => return Err(Error::invalid("auth.password needs auth.user")),
        (None, None) => {}
    }
    if let Some(token) = &auth.token {
        options = options.token(token.clone());
    }
    if let Some(seed) = &auth.nkey_seed {
        options = options.nkey(seed.clone());
    }
    if let Some(ca) = ca {
        options = options.add_root_certificates(ca);
    }
    if let Some((cert, key)) = client_cert {
        options = options.add_client_certificate(cert, key);
    }
    if tls_required {
        options = options.require_tls(true);
    }
    Ok(async move {
        match creds {
            Some(path) => options.credentials_file(&path).await.map_err(|e| {
                Error::invalid(format!("auth.creds_file {path:?} cannot be used: {e}"))
            }),
            None => Ok(options),
        }
    })
}

/// Room for a message's headers on top of `max_value_size` in the stream's per-message limit.
const HEADER_ROOM: usize = 4096;
pub(super) async fn open_bucket(js: &jetstream::Context, config: &Config) -> Result<kv::Store> {
    match js.get_key_value(config.bucket.as_str()).await {
        Ok(store) => return Ok(store),
        Err(e) if is_missing_stream(&e) => {}
        Err(e) => return Err(map_error(&e).context(format!("open bucket {:?}", config.bucket))),
    }
    let created = js
        .create_key_value(kv::Config {
            bucket: config.bucket.clone(),
            history: i64::from(config.history),
            num_replicas: config.replicas as usize,
            storage: match config.storage {
                Storage::File => jetstream::stream::StorageType::File,
                Storage::Memory => jetstream::stream::StorageType::Memory,
            },
            // The stream's limit counts headers too (the CAS and tombstone headers), so it
            // gets room for them; the value itself is limited by the core (LIMIT).
            max_value_size: i32::try_from(config.max_value_size.saturating_add(HEADER_ROOM))
                .unwrap_or(i32::MAX),
            max_bytes: config.max_bytes,
            ..Default::default()
        })
        .await;
    match created {
        Ok(store) => Ok(store),
        // Another process created it between our look-up and our create: use theirs.
        Err(_) if js.get_key_value(config.bucket.as_str()).await.is_ok() => js
            .get_key_value(config.bucket.as_str())
            .await
            .map_err(|e| map_error(&e)),
        Err(e) => Err(map_error(&e).context(format!("create bucket {:?}", config.bucket))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(json: &str) -> Vec<String> {
        server_urls(&Config::from_json(json).unwrap()).unwrap()
    }

    #[test]
    fn server_lists_come_from_servers_or_the_url() {
        assert_eq!(
            urls(r#"{"url": "nats://a:1,b:2"}"#),
            vec!["nats://a:1", "nats://b:2"]
        );
        assert_eq!(
            urls(r#"{"servers": ["a:1", "tls://b:2"]}"#),
            vec!["nats://a:1", "tls://b:2"]
        );
        assert_eq!(urls(r#"{"url": "tls://h:4443"}"#), vec!["tls://h:4443"]);
    }

    #[test]
    fn server_versions_parse() {
        assert_eq!(parse_version("2.10.26"), Some((2, 10, 26)));
        assert_eq!(parse_version("v2.9.0-beta"), Some((2, 9, 0)));
        assert_eq!(parse_version("2.11.2-RC.1"), Some((2, 11, 2)));
        assert_eq!(parse_version("2.12"), Some((2, 12, 0)));
        assert!(parse_version("2.9.1").unwrap() < MIN_SERVER);
        assert_eq!(parse_version("garbage"), None);
    }
}
