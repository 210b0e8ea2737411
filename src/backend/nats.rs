//! `nats://`: a JetStream KV bucket as the store.
//!
//! ```text
//!  Store (blocking caller thread)
//!    │  block_on(call) — bounded by request_timeout, cut short by a permission violation
//!    ▼
//!  NatsBackend ── writes: JetStream publish to $KV.<bucket>.<nats key> (+ CAS headers) → ack seq
//!             ── latest: direct get "last message for subject" (one round trip)
//!             ── scan/history: ephemeral ordered consumer with a server-side subject filter
//!    │
//!  async-nats client (its own connection task on the library runtime, reconnects by itself)
//! ```
//!
//! Revisions are stream sequences, and the bucket's KV stream already keeps per-key history,
//! roll-up purges and compare-and-set on the last sequence of a subject, so each operation
//! is one publish or one get — the same primitives `mem://` emulates, with the same rules.
//! Keys travel in their NATS spelling (`key::to_nats`); a NATS key that is not a coordkv
//! spelling (written by some other client) is skipped by `scan`, since it names no key.
//!
//! Nothing here caches connection state: every call goes through the live client, so after
//! a server restart the same handle works again as soon as async-nats has reconnected.
//! All NATS failures become an `ErrorKind` in one place, [`map_error`].

use super::Backend;
use crate::config::{Config, Storage};
use crate::entry::{Entry, Operation};
use crate::error::{Error, ErrorKind, Result};
use crate::key;
use crate::runtime;
use async_nats::header::{self, HeaderMap};
use async_nats::jetstream::{self, kv, message::PublishMessage, stream::DirectGetErrorKind};
use async_nats::{Client, ConnectOptions, Event, ServerError};
use bytes::Bytes;
use futures::StreamExt;
use std::error::Error as StdError;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::watch;

const KV_OPERATION: &str = "KV-Operation";
/// Oldest server line coordkv supports (per-subject CAS, direct get, roll-ups all present).
const MIN_SERVER: (u64, u64) = (2, 10);

pub struct NatsBackend {
    runtime: Handle,
    client: Client,
    js: jetstream::Context,
    bucket: kv::Store,
    /// `$KV.<bucket>.` (or the bucket's put prefix): a write's subject is this + NATS key.
    put_prefix: String,
    /// `$KV.<bucket>.`: a read's subject is this + NATS key.
    read_prefix: String,
    request_timeout: Duration,
    violations: Arc<Violations>,
    /// Bumped each time the client (re)connects: the watch feed recreates its consumer at
    /// once instead of waiting for missed heartbeats.
    connects: watch::Sender<u64>,
    closed: AtomicBool,
}

/// Permission violations arrive asynchronously as `-ERR` from the server, not as the reply
/// of the call that caused them; calls in flight watch this to fail at once with
/// `PERMISSION_DENIED` instead of waiting for their timeout.
struct Violations {
    seen: watch::Sender<u64>,
    last: Mutex<String>,
}

impl Violations {
    fn record(&self, message: String) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = message;
        self.seen.send_modify(|n| *n += 1);
    }

    fn last(&self) -> String {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
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

fn existing_file(path: &str, what: &str) -> Result<std::path::PathBuf> {
    let p = Path::new(path);
    if !p.is_file() {
        return Err(Error::invalid(format!(
            "{what} {path:?} is not a readable file"
        )));
    }
    Ok(p.to_path_buf())
}

fn parse_version(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.trim_start_matches('v').split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

impl NatsBackend {
    /// Connects, checks the server, and opens (or creates) the bucket.
    pub fn open(config: &Config) -> Result<NatsBackend> {
        let urls = server_urls(config)?;
        let runtime = runtime::handle()?;
        if Handle::try_current().is_ok() {
            return Err(Error::internal(
                "a blocking coordkv call was made from inside an async runtime worker",
            ));
        }
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
            match parse_version(&info.version) {
                Some(v) if v < MIN_SERVER => {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "nats-server {} at {servers_text} is too old: coordkv needs 2.10+",
                            info.version
                        ),
                    ))
                }
                _ => {}
            }
            let js = jetstream::ContextBuilder::new()
                .timeout(request_timeout)
                .build(client.clone());
            let bucket = tokio::time::timeout(request_timeout, open_bucket(&js, config))
                .await
                .map_err(|_| {
                    Error::new(
                        ErrorKind::Timeout,
                        format!(
                            "opening bucket {:?} took longer than the request timeout",
                            config.bucket
                        ),
                    )
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
                closed: AtomicBool::new(false),
            })
        })
    }

    /// Runs one operation on the runtime from the caller's thread, bounded by the request
    /// timeout.
    fn call<T>(&self, doing: &str, op: impl Future<Output = Result<T>>) -> Result<T> {
        let limit = self.request_timeout;
        self.guarded(doing, async move {
            tokio::time::timeout(limit, op).await.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "no answer within the request timeout ({} ms)",
                        limit.as_millis()
                    ),
                ))
            })
        })
    }

    /// Runs `op` on the runtime, cut short by a permission violation that concerns this
    /// bucket (the server reports those asynchronously, not as the call's reply).
    pub(crate) fn guarded<T>(&self, doing: &str, op: impl Future<Output = Result<T>>) -> Result<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::closed("store"));
        }
        if Handle::try_current().is_ok() {
            return Err(Error::internal(
                "a blocking coordkv call was made from inside an async runtime worker",
            ));
        }
        let mut violations = self.violations.seen.subscribe();
        let denied = async {
            loop {
                if violations.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                let message = self.violations.last();
                if message.contains(self.bucket.stream_name.as_str())
                    || message.contains(self.read_prefix.as_str())
                    || message.contains("_INBOX")
                    || message.contains("$JS.API")
                {
                    return message;
                }
            }
        };
        let result = self.runtime.block_on(async {
            tokio::select! {
                done = op => done.map_err(|e| e.context(doing)),
                message = denied => Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!("{doing}: {message}"),
                )),
            }
        });
        // A call that fails because the store was closed under it (its connection went
        // with it) says so, whatever the client made of the broken request.
        match result {
            Err(_) if self.closed.load(Ordering::Acquire) => Err(Error::closed("store")),
            other => other,
        }
    }

    /// Publishes one KV message and returns its revision; `Conflict` here carries no
    /// revision yet (the caller reads it).
    async fn publish(
        &self,
        nats_key: &str,
        value: Bytes,
        headers: Option<HeaderMap>,
    ) -> Result<u64> {
        let mut subject = String::with_capacity(self.put_prefix.len() + nats_key.len());
        subject.push_str(&self.put_prefix);
        subject.push_str(nats_key);
        let ack = match headers {
            None => self.js.publish(subject, value).await,
            Some(headers) => {
                self.js
                    .send_publish(
                        subject,
                        PublishMessage::build().payload(value).headers(headers),
                    )
                    .await
            }
        }
        .map_err(|e| map_error(&e))?
        .await
        .map_err(|e| map_error(&e))?;
        Ok(ack.sequence)
    }

    async fn latest_async(&self, key: &str, nats_key: &str) -> Result<Option<Entry>> {
        let mut subject = String::with_capacity(self.read_prefix.len() + nats_key.len());
        subject.push_str(&self.read_prefix);
        subject.push_str(nats_key);
        let stream = &self.bucket.stream;
        let message = if stream.cached_info().config.allow_direct {
            match stream.direct_get_last_for_subject(subject).await {
                Ok(m) => m,
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(map_error(&e)),
            }
        } else {
            use async_nats::jetstream::stream::LastRawMessageErrorKind;
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(m) => m,
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
                Err(e) => return Err(map_error(&e)),
            }
        };
        Ok(Some(Entry {
            key: Arc::from(key),
            operation: operation_of(Some(&message.headers)),
            value: message.payload,
            revision: message.sequence,
            timestamp_ns: message.time.unix_timestamp_nanos().max(0) as u64,
        }))
    }

    /// Streams the bucket's messages under `filter` through an ephemeral ordered consumer,
    /// handing each (NATS key, entry parts) to `visit`. Each step is bounded by the request
    /// timeout rather than the whole walk, so a large bucket is not cut off.
    pub(crate) async fn walk(
        &self,
        filter: &str,
        deliver_policy: jetstream::consumer::DeliverPolicy,
        headers_only: bool,
        visit: &mut (dyn FnMut(&str, Operation, Bytes, u64, u64) + Send),
    ) -> Result<()> {
        let step = self.request_timeout;
        let timed_out = || {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "no progress within the request timeout ({} ms)",
                    step.as_millis()
                ),
            )
        };
        let consumer = tokio::time::timeout(
            step,
            self.bucket
                .stream
                .create_consumer(jetstream::consumer::push::OrderedConfig {
                    deliver_subject: self.client.new_inbox(),
                    description: Some("coordkv scan".to_string()),
                    filter_subject: format!("{}{}", self.read_prefix, filter),
                    headers_only,
                    deliver_policy,
                    replay_policy: jetstream::consumer::ReplayPolicy::Instant,
                    ..Default::default()
                }),
        )
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| map_error(&e))?;
        // The consumer is temporary: delete it however the walk ends, so walks never add
        // to the stream's consumer count (the server would only drop it after a while).
        let name = consumer.cached_info().name.clone();
        let walked = self.walk_consumer(consumer, step, visit).await;
        let stream = self.bucket.stream.clone();
        self.runtime.spawn(async move {
            let _ = tokio::time::timeout(step, stream.delete_consumer(&name)).await;
        });
        walked
    }

    async fn walk_consumer(
        &self,
        consumer: jetstream::consumer::Consumer<jetstream::consumer::push::OrderedConfig>,
        step: Duration,
        visit: &mut (dyn FnMut(&str, Operation, Bytes, u64, u64) + Send),
    ) -> Result<()> {
        let timed_out = || {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "no progress within the request timeout ({} ms)",
                    step.as_millis()
                ),
            )
        };
        if consumer.cached_info().num_pending == 0 {
            return Ok(());
        }
        let mut messages = tokio::time::timeout(step, consumer.messages())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| map_error(&e))?;
        loop {
            let message = match tokio::time::timeout(step, messages.next()).await {
                Err(_) => return Err(timed_out()),
                Ok(None) => {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        "the scan's consumer ended before delivering every entry",
                    ))
                }
                Ok(Some(Err(e))) => return Err(map_error(&e)),
                Ok(Some(Ok(m))) => m,
            };
            let info = message.info().map_err(|e| map_error(e.as_ref()))?;
            let (revision, pending) = (info.stream_sequence, info.pending);
            let timestamp_ns = info.published.unix_timestamp_nanos().max(0) as u64;
            let operation = operation_of(message.headers.as_ref());
            if let Some(nats_key) = message.subject.strip_prefix(self.read_prefix.as_str()) {
                visit(
                    nats_key,
                    operation,
                    message.payload.clone(),
                    revision,
                    timestamp_ns,
                );
            }
            if pending == 0 {
                return Ok(());
            }
        }
    }

    fn conflict_after(&self, key: &str, nats_key: &str, want: Option<u64>) -> Error {
        let current = self
            .call("read after conflict", self.latest_async(key, nats_key))
            .ok()
            .flatten();
        let revision = current.as_ref().map_or(0, |e| e.revision);
        let message = match want {
            Some(want) => format!("key {key:?} is at revision {revision}, not {want}"),
            None => format!("key {key:?} already exists at revision {revision}"),
        };
        Error::conflict(revision, message)
    }

    fn write_expecting(
        &self,
        doing: &str,
        key: &str,
        value: Bytes,
        operation: Option<&'static str>,
        expected: u64,
    ) -> Result<u64> {
        let nats_key = key::to_nats(key);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            header::HeaderValue::from(expected),
        );
        if let Some(op) = operation {
            headers.insert(KV_OPERATION, op);
        }
        match self.call(doing, self.publish(&nats_key, value, Some(headers))) {
            Err(e) if e.kind() == ErrorKind::Conflict => {
                Err(self.conflict_after(key, &nats_key, Some(expected)))
            }
            other => other,
        }
    }
}

fn connect_options(
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
            if matches!(event, Event::Connected) {
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

async fn open_bucket(js: &jetstream::Context, config: &Config) -> Result<kv::Store> {
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

fn is_missing_stream(err: &(dyn StdError + 'static)) -> bool {
    jetstream_code(err) == Some(10059) || chain_text(err).contains("stream not found")
}

pub(crate) fn operation_of(headers: Option<&HeaderMap>) -> Operation {
    let Some(headers) = headers else {
        return Operation::Put;
    };
    if let Some(op) = headers.get(KV_OPERATION) {
        return match op.as_str() {
            "DEL" => Operation::Delete,
            "PURGE" => Operation::Purge,
            _ => Operation::Put,
        };
    }
    match headers.get(header::NATS_MARKER_REASON).map(|r| r.as_str()) {
        Some("MaxAge") => Operation::Expired,
        Some("Purge") => Operation::Purge,
        Some("Remove") => Operation::Delete,
        _ => Operation::Put,
    }
}

fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// The JetStream API error code anywhere in the chain (`10071`, `10059`, …).
fn jetstream_code(err: &(dyn StdError + 'static)) -> Option<u64> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(js) = e.downcast_ref::<jetstream::Error>() {
            return Some(js.error_code().0);
        }
        current = e.source();
    }
    // Some error kinds carry the API error inside the kind, not as a source; their
    // text always reads "... (code N, error code M)".
    let text = chain_text(err);
    let at = text.find("error code ")? + "error code ".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// THE mapping from NATS failures to coordkv's error vocabulary.
pub fn map_error(err: &(dyn StdError + 'static)) -> Error {
    let text = chain_text(err);
    let lower = text.to_ascii_lowercase();
    let kind = match jetstream_code(err) {
        // wrong last sequence, and its constant-form twin: a lost compare-and-set
        Some(10071) | Some(10164) => ErrorKind::Conflict,
        // JetStream not enabled (server / account)
        Some(10076) | Some(10039) => {
            return Error::new(
                ErrorKind::Unavailable,
                format!("JetStream is not enabled for this server or account: {text}"),
            )
        }
        // the bucket's stream does not exist (deleted under us)
        Some(10059) => ErrorKind::Unavailable,
        // insufficient resources, message too large, maximum bytes / messages
        Some(10023) | Some(10054) | Some(10028) | Some(10077) => ErrorKind::Limit,
        _ if lower.contains("permissions violation") => ErrorKind::PermissionDenied,
        _ if lower.contains("authorization violation")
            || lower.contains("authentication")
            || lower.contains("failed signing nonce")
            || lower.contains("user authentication expired") =>
        {
            ErrorKind::Unauthorized
        }
        // async-nats spells "no responders" on a JetStream API subject this way.
        _ if lower.contains("no responders")
            || lower.contains("no stream found")
            || lower.contains("requested jetstream resource does not exist") =>
        {
            return Error::new(
                ErrorKind::Unavailable,
                format!(
                    "nothing answered on the JetStream subject (JetStream disabled, or the \
                     bucket's stream is gone): {text}"
                ),
            )
        }
        _ if lower.contains("timed out") || lower.contains("timeout") => {
            return Error::new(
                ErrorKind::Timeout,
                format!(
                "NATS did not answer in time (server down, or a cluster electing a leader): {text}"
            ),
            )
        }
        _ if lower.contains("max payload")
            || lower.contains("maximum payload")
            || lower.contains("exceeds") =>
        {
            ErrorKind::Limit
        }
        _ if lower.contains("broken pipe")
            || lower.contains("disconnected")
            || lower.contains("connection")
            || lower.contains("i/o")
            || lower.contains("io error")
            || lower.contains("dns")
            || lower.contains("tls")
            || lower.contains("max reconnects") =>
        {
            ErrorKind::Unavailable
        }
        _ if lower.contains("server parse") || lower.contains("failed to parse server") => {
            ErrorKind::InvalidArgument
        }
        _ => ErrorKind::Internal,
    };
    Error::new(kind, text)
}

impl Backend for NatsBackend {
    fn put(&self, key: &str, value: Bytes) -> Result<u64> {
        let nats_key = key::to_nats(key);
        self.call("put", self.publish(&nats_key, value, None))
    }

    fn create(&self, key: &str, value: Bytes) -> Result<u64> {
        let nats_key = key::to_nats(key);
        let mut expected = 0;
        // A tombstone does not block create: retry guarded by its revision. Each lost race
        // re-reads; a live value ends the loop with CONFLICT.
        for _ in 0..16 {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                header::HeaderValue::from(expected),
            );
            match self.call(
                "create",
                self.publish(&nats_key, value.clone(), Some(headers)),
            ) {
                Err(e) if e.kind() == ErrorKind::Conflict => {}
                other => return other,
            }
            let latest = self.call("create", self.latest_async(key, &nats_key))?;
            match latest {
                Some(entry) if !entry.is_live() => expected = entry.revision,
                Some(entry) => {
                    return Err(Error::conflict(
                        entry.revision,
                        format!("key {key:?} already exists at revision {}", entry.revision),
                    ))
                }
                None => expected = 0,
            }
        }
        Err(self.conflict_after(key, &nats_key, None))
    }

    fn update(&self, key: &str, value: Bytes, revision: u64) -> Result<u64> {
        self.write_expecting("update", key, value, None, revision)
    }

    fn delete(&self, key: &str, revision: u64) -> Result<u64> {
        if revision != 0 {
            return self.write_expecting("delete", key, Bytes::new(), Some("DEL"), revision);
        }
        let nats_key = key::to_nats(key);
        let mut headers = HeaderMap::new();
        headers.insert(KV_OPERATION, "DEL");
        self.call(
            "delete",
            self.publish(&nats_key, Bytes::new(), Some(headers)),
        )
    }

    fn purge(&self, key: &str) -> Result<u64> {
        let nats_key = key::to_nats(key);
        let mut headers = HeaderMap::new();
        headers.insert(KV_OPERATION, "PURGE");
        headers.insert(header::NATS_ROLLUP, "sub");
        self.call(
            "purge",
            self.publish(&nats_key, Bytes::new(), Some(headers)),
        )
    }

    fn latest(&self, key: &str) -> Result<Option<Entry>> {
        let nats_key = key::to_nats(key);
        self.call("get", self.latest_async(key, &nats_key))
    }

    fn scan(&self, prefix: &str, values: bool, visit: &mut dyn FnMut(Entry) -> bool) -> Result<()> {
        let filter = key::prefix_to_nats_filter(prefix);
        let mut matched: Vec<Entry> = Vec::new();
        let mut collect = |nats_key: &str, op: Operation, value: Bytes, rev: u64, ts: u64| {
            if !op.is_live() {
                return;
            }
            // Keys other NATS clients wrote in a spelling coordkv never produces name no
            // coordkv key: skipped.
            let Ok(key) = key::from_nats(nats_key) else {
                return;
            };
            if filter.needs_core_filter && !key::matches_prefix(&key, prefix) {
                return;
            }
            matched.push(Entry {
                key: Arc::from(key),
                value,
                revision: rev,
                operation: op,
                timestamp_ns: ts,
            });
        };
        self.call_walk(
            "scan",
            &filter.subject,
            jetstream::consumer::DeliverPolicy::LastPerSubject,
            !values,
            &mut collect,
        )?;
        matched.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        for entry in matched {
            if !visit(entry) {
                break;
            }
        }
        Ok(())
    }

    fn history(&self, key: &str) -> Result<Vec<Entry>> {
        let nats_key = key::to_nats(key);
        let shared: Arc<str> = Arc::from(key);
        let mut entries = Vec::new();
        self.call_walk(
            "history",
            &nats_key,
            jetstream::consumer::DeliverPolicy::All,
            false,
            &mut |_, op, value, rev, ts| {
                entries.push(Entry {
                    key: shared.clone(),
                    value,
                    revision: rev,
                    operation: op,
                    timestamp_ns: ts,
                })
            },
        )?;
        Ok(entries)
    }

    fn last_revision(&self) -> Result<u64> {
        let mut stream = self.bucket.stream.clone();
        self.call("last_revision", async move {
            let info = stream.info().await.map_err(|e| map_error(&e))?;
            Ok(info.state.last_sequence)
        })
    }

    fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let client = self.client.clone();
            // Non-blocking: close may run in a Drop on any thread, even a runtime worker.
            self.runtime.spawn(async move {
                let _ = client.drain().await;
            });
        }
    }
}

/// What the watch feed (`watch::nats_feed`) reads the bucket with.
impl NatsBackend {
    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    pub(crate) fn stream(&self) -> &jetstream::stream::Stream {
        &self.bucket.stream
    }

    /// `$KV.<bucket>.`: a message's subject is this + the NATS key.
    pub(crate) fn read_prefix(&self) -> &str {
        &self.read_prefix
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Changes each time the client connects again after losing its connection.
    pub(crate) fn connects(&self) -> watch::Receiver<u64> {
        self.connects.subscribe()
    }
}

impl NatsBackend {
    /// `walk` under the permission-violation guard; the walk bounds each step itself.
    fn call_walk(
        &self,
        doing: &str,
        filter: &str,
        deliver_policy: jetstream::consumer::DeliverPolicy,
        headers_only: bool,
        visit: &mut (dyn FnMut(&str, Operation, Bytes, u64, u64) + Send),
    ) -> Result<()> {
        self.guarded(
            doing,
            self.walk(filter, deliver_policy, headers_only, visit),
        )
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
    fn jetstream_error_codes_decide_the_kind() {
        let conflict: jetstream::Error = serde_json::from_str(
            r#"{"code": 400, "err_code": 10071, "description": "wrong last sequence: 7"}"#,
        )
        .unwrap();
        assert_eq!(map_error(&conflict).kind(), ErrorKind::Conflict);
        let constant: jetstream::Error = serde_json::from_str(
            r#"{"code": 400, "err_code": 10164, "description": "wrong last sequence"}"#,
        )
        .unwrap();
        assert_eq!(map_error(&constant).kind(), ErrorKind::Conflict);
        let disabled: jetstream::Error = serde_json::from_str(
            r#"{"code": 503, "err_code": 10076, "description": "jetstream not enabled"}"#,
        )
        .unwrap();
        let e = map_error(&disabled);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().contains("JetStream is not enabled"), "{e}");
    }

    #[test]
    fn server_versions_parse() {
        assert_eq!(parse_version("2.10.26"), Some((2, 10)));
        assert_eq!(parse_version("v2.9.0-beta"), Some((2, 9)));
        assert!(parse_version("2.9.1").unwrap() < MIN_SERVER);
        assert_eq!(parse_version("garbage"), None);
    }
}
