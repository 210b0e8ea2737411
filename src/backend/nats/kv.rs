//! The `Backend` operations over the bucket: publishes with compare-and-set headers,
//! direct gets, and ordered-consumer walks for scans and history.

use super::codec::{
    operation_of, timestamp_ns, Record, COORDKV_LEASE, COORDKV_QUIET, KV_OPERATION,
};
use super::errors::{map_error, no_answer, within};
use super::NatsBackend;
use crate::backend::{Backend, Capability, LeaseRecord};
use crate::entry::{Entry, WriteOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::key;
use crate::retry::RetryPolicy;
use async_nats::header::{self, HeaderMap};
use async_nats::jetstream::{self, message::PublishMessage, stream::DirectGetErrorKind};
use bytes::Bytes;
use futures::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

impl NatsBackend {
    /// Publishes one KV message and returns its revision; `Conflict` here carries no
    /// revision yet (the caller reads it).
    pub(super) async fn publish(
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

    pub(super) async fn latest_async(&self, key: &str, nats_key: &str) -> Result<Option<Entry>> {
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
        let record = Record {
            nats_key,
            operation: operation_of(Some(&message.headers)),
            headers: Some(&message.headers),
            value: message.payload.clone(),
            revision: message.sequence,
            timestamp_ns: timestamp_ns(message.time.unix_timestamp_nanos()),
        };
        Ok(Some(record.into_entry(Arc::from(key))))
    }

    /// Streams the bucket's messages under `filter` through an ephemeral ordered consumer,
    /// handing each (NATS key, entry parts) to `visit`. Each step is bounded by the request
    /// timeout rather than the whole walk, so a large bucket is not cut off.
    pub(crate) async fn walk(
        &self,
        filter: &str,
        deliver_policy: jetstream::consumer::DeliverPolicy,
        headers_only: bool,
        visit: &mut (dyn FnMut(Record<'_>) + Send),
    ) -> Result<()> {
        let step = self.request_timeout;
        let consumer = within(
            step,
            "start reading the bucket",
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
        .await?;
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
        visit: &mut (dyn FnMut(Record<'_>) + Send),
    ) -> Result<()> {
        const READING: &str = "read the bucket";
        if consumer.cached_info().num_pending == 0 {
            return Ok(());
        }
        let mut messages = within(step, READING, consumer.messages()).await?;
        loop {
            let message = match tokio::time::timeout(step, messages.next()).await {
                Err(_) => return Err(no_answer(READING, step)),
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
            if let Some(nats_key) = message.subject.strip_prefix(self.read_prefix.as_str()) {
                visit(Record {
                    nats_key,
                    operation: operation_of(message.headers.as_ref()),
                    headers: message.headers.as_ref(),
                    value: message.payload.clone(),
                    revision,
                    timestamp_ns: timestamp_ns(info.published.unix_timestamp_nanos()),
                });
            }
            if pending == 0 {
                return Ok(());
            }
        }
    }

    /// `headers` with what `meta` says in coordkv's headers.
    fn stamped(&self, meta: &WriteOptions, mut headers: HeaderMap) -> Result<HeaderMap> {
        if let Some(ttl) = meta.ttl {
            self.ttl_headers(ttl, &mut headers)?;
        }
        if meta.lease != 0 {
            headers.insert(COORDKV_LEASE, header::HeaderValue::from(meta.lease));
        }
        if meta.quiet {
            headers.insert(COORDKV_QUIET, "1");
        }
        Ok(headers)
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
        mut headers: HeaderMap,
        expected: u64,
    ) -> Result<u64> {
        let nats_key = key::to_nats(key);
        headers.insert(
            header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            header::HeaderValue::from(expected),
        );
        match self.call(doing, self.publish(&nats_key, value, Some(headers))) {
            Err(e) if e.kind() == ErrorKind::Conflict => {
                Err(self.conflict_after(key, &nats_key, Some(expected)))
            }
            other => other,
        }
    }
}

impl Backend for NatsBackend {
    fn require(&self, capability: Capability) -> Result<()> {
        let needed = capability.min_nats_server();
        if self.server_version >= needed {
            return Ok(());
        }
        let (major, minor, patch) = needed;
        Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{} needs nats-server {major}.{minor}.{patch} or newer; the server is {}",
                capability.describe(),
                self.server_version_text
            ),
        ))
    }

    fn put(&self, key: &str, value: Bytes, meta: &WriteOptions) -> Result<u64> {
        let nats_key = key::to_nats(key);
        let headers = self.stamped(meta, HeaderMap::new())?;
        let headers = (!headers.is_empty()).then_some(headers);
        self.call("put", self.publish(&nats_key, value, headers))
    }

    fn create(&self, key: &str, value: Bytes, meta: &WriteOptions) -> Result<u64> {
        let nats_key = key::to_nats(key);
        let stamped = self.stamped(meta, HeaderMap::new())?;
        let mut expected = 0;
        // A tombstone does not block create: retry guarded by its revision. Each lost race
        // re-reads (so no sleep); a live value ends the loop with CONFLICT.
        let created = RetryPolicy::immediate(16).retry(|| {
            let mut headers = stamped.clone();
            headers.insert(
                header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                header::HeaderValue::from(expected),
            );
            match self.call(
                "create",
                self.publish(&nats_key, value.clone(), Some(headers)),
            ) {
                Err(e) if e.kind() == ErrorKind::Conflict => {}
                other => return other.map(Some),
            }
            match self.call("create", self.latest_async(key, &nats_key))? {
                Some(entry) if !entry.is_live() => expected = entry.revision,
                Some(entry) => {
                    return Err(Error::conflict(
                        entry.revision,
                        format!("key {key:?} already exists at revision {}", entry.revision),
                    ))
                }
                None => expected = 0,
            }
            Ok(None)
        })?;
        created.ok_or_else(|| self.conflict_after(key, &nats_key, None))
    }

    fn update(&self, key: &str, value: Bytes, revision: u64, meta: &WriteOptions) -> Result<u64> {
        let headers = self.stamped(meta, HeaderMap::new())?;
        self.write_expecting("update", key, value, headers, revision)
    }

    fn delete(&self, key: &str, revision: u64) -> Result<u64> {
        if revision != 0 {
            let mut headers = HeaderMap::new();
            headers.insert(KV_OPERATION, "DEL");
            return self.write_expecting("delete", key, Bytes::new(), headers, revision);
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
        let mut collect = |record: Record<'_>| {
            if !record.operation.is_live() {
                return;
            }
            let Some(key) = record.key() else {
                return;
            };
            if filter.needs_core_filter && !key::matches_prefix(&key, prefix) {
                return;
            }
            matched.push(record.into_entry(Arc::from(key)));
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
            &mut |record| entries.push(record.into_entry(shared.clone())),
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

    fn granted_ttl(&self, asked: Duration) -> Result<Duration> {
        self.ttl_granted(asked)
    }

    fn lease_renew(&self, id: u64, ttl: Duration, must_exist: bool) -> Result<bool> {
        self.renew_record(id, ttl, must_exist)
    }

    fn lease_record(&self, id: u64) -> Result<Option<LeaseRecord>> {
        self.record(id)
    }

    fn lease_records(&self) -> Result<Vec<LeaseRecord>> {
        self.records()
    }

    fn lease_remove(&self, id: u64) -> Result<bool> {
        self.remove_record(id)
    }
}

impl NatsBackend {
    /// `walk` under the permission-violation guard; the walk bounds each step itself.
    pub(super) fn call_walk(
        &self,
        doing: &str,
        filter: &str,
        deliver_policy: jetstream::consumer::DeliverPolicy,
        headers_only: bool,
        visit: &mut (dyn FnMut(Record<'_>) + Send),
    ) -> Result<()> {
        self.guarded(
            doing,
            self.walk(filter, deliver_policy, headers_only, visit),
        )
    }
}
