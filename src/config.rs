//! How a store is opened: a URL (`mem://`, `nats://host:port[,host:port…]`) or a JSON
//! document with every option. Both end up as one [`Config`]; unknown JSON fields are
//! rejected so a typo never silently falls back to a default.

use crate::error::{shown, Error, Result};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::HashSet;

/// Which backend a config selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    Mem,
    Nats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    #[default]
    File,
    Memory,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub nkey_seed: Option<String>,
    pub creds_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    #[serde(default)]
    pub required: bool,
}

/// Every option of a store. Field names are the JSON names.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `mem://` or `nats://…`; when absent, `servers` selects NATS and nothing selects mem.
    pub url: Option<String>,
    /// NATS servers as `host:port` or `nats://host:port`.
    pub servers: Vec<String>,
    /// JetStream KV bucket name.
    pub bucket: String,
    /// Revisions kept per key (1..=64, as in JetStream KV).
    pub history: u32,
    pub replicas: u32,
    pub storage: Storage,
    /// Largest value accepted, in bytes.
    pub max_value_size: usize,
    /// Bucket size limit in bytes; -1 for none.
    pub max_bytes: i64,
    pub auth: Auth,
    pub tls: Tls,
    pub connect_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub connection_name: Option<String>,
    /// Most live watchers on one store.
    pub max_watchers: usize,
    /// NATS: how long the delete marker of an expired key lives (whole seconds, at least
    /// 1000 ms), set on the bucket by the first TTL or lease call. A watcher that is away
    /// longer than this across an expiry ends with CANCELED(history lost); on a bucket
    /// with `history` above 1 a shorter TTL is raised to it.
    pub marker_ttl_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            url: None,
            servers: Vec::new(),
            bucket: "coordkv".to_string(),
            history: 16,
            replicas: 1,
            storage: Storage::File,
            max_value_size: 1024 * 1024,
            max_bytes: -1,
            auth: Auth::default(),
            tls: Tls::default(),
            connect_timeout_ms: 5_000,
            request_timeout_ms: 5_000,
            connection_name: None,
            max_watchers: 100_000,
            marker_ttl_ms: 5_000,
        }
    }
}

impl Config {
    /// The config of a URL with every other option at its default.
    pub fn from_url(url: &str) -> Result<Config> {
        let config = Config {
            url: Some(url.to_string()),
            ..Config::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// The config of a JSON document; unknown fields and wrong types are errors.
    pub fn from_json(json: &str) -> Result<Config> {
        serde_json::from_str::<Unique>(json)
            .map_err(|e| Error::invalid(format!("invalid JSON config: {e}")))?;
        let document: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| Error::invalid(format!("invalid JSON config: {e}")))?;
        if !document.is_object() {
            return Err(Error::invalid(
                "invalid JSON config: expected an object such as {\"url\": \"mem://\"}",
            ));
        }
        let config: Config =
            serde_json::from_value(document.clone()).map_err(|e| explain(&document, e))?;
        config.validate()?;
        Ok(config)
    }

    pub fn backend_kind(&self) -> Result<BackendKind> {
        match self.url.as_deref() {
            None if self.servers.is_empty() => Ok(BackendKind::Mem),
            None => Ok(BackendKind::Nats),
            Some(url) => {
                if url == "mem://" || url == "mem:" {
                    Ok(BackendKind::Mem)
                } else if url.starts_with("nats://") || url.starts_with("tls://") {
                    Ok(BackendKind::Nats)
                } else {
                    Err(Error::invalid(format!(
                        "unknown store URL {}: use mem:// or nats://host:port[,host:port...]",
                        shown(url)
                    )))
                }
            }
        }
    }

    fn validate(&self) -> Result<()> {
        self.backend_kind()?;
        if !(1..=64).contains(&self.history) {
            return Err(Error::invalid(format!(
                "history must be between 1 and 64, got {}",
                self.history
            )));
        }
        if !(1..=5).contains(&self.replicas) {
            return Err(Error::invalid(format!(
                "replicas must be between 1 and 5, got {}",
                self.replicas
            )));
        }
        if self.max_value_size == 0 {
            return Err(Error::invalid("max_value_size must be at least 1"));
        }
        let bucket_ok = !self.bucket.is_empty()
            && self
                .bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !bucket_ok {
            return Err(Error::invalid(format!(
                "bucket {} must be non-empty and use only A-Z a-z 0-9 - _",
                shown(&self.bucket)
            )));
        }
        if self.max_watchers == 0 {
            return Err(Error::invalid("max_watchers must be at least 1"));
        }
        if self.marker_ttl_ms < 1000 || self.marker_ttl_ms % 1000 != 0 {
            return Err(Error::invalid(format!(
                "marker_ttl_ms must be whole seconds of at least 1000, got {}",
                self.marker_ttl_ms
            )));
        }
        if self.servers.len() > MAX_SERVERS {
            return Err(Error::invalid(format!(
                "servers lists {} entries; at most {MAX_SERVERS} are allowed",
                self.servers.len()
            )));
        }
        if let Some(i) = self.servers.iter().position(|s| s.trim().is_empty()) {
            return Err(Error::invalid(format!(
                "servers entry {i} is empty; give host:port or nats://host:port"
            )));
        }
        if let Some(seed) = &self.auth.nkey_seed {
            nkeys::KeyPair::from_seed(seed.trim()).map_err(|_| {
                Error::invalid("auth.nkey_seed is not a valid NATS nkey seed (it starts with S)")
            })?;
        }
        Ok(())
    }
}

/// Most entries `servers` may list.
const MAX_SERVERS: usize = 1024;

/// A JSON document's error as a message: a number that does not fit the integer field
/// it is in is called that (serde_json reads it as a float and would say "floating point").
fn explain(document: &serde_json::Value, error: serde_json::Error) -> Error {
    let misfit = document.as_object().and_then(|members| {
        members
            .iter()
            .find(|(_, v)| v.is_number() && !v.is_u64() && !v.is_i64())
            .map(|(name, v)| (name.clone(), v.to_string()))
    });
    match misfit {
        Some((name, number)) if error.to_string().contains("floating point") => {
            Error::invalid(format!(
                "invalid JSON config: {} is {}, which is not a whole number in its range",
                shown(&name),
                shown(&number)
            ))
        }
        _ => Error::invalid(format!("invalid JSON config: {error}")),
    }
}

/// A JSON document in which no object names a member twice (serde_json keeps the last
/// silently); parsing one that does fails naming the member.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Unique, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_unit<E>(self) -> std::result::Result<Unique, E> {
        Ok(Unique)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Unique, A::Error> {
        while seq.next_element_seed(UniqueSeed)?.is_some() {}
        Ok(Unique)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Unique, A::Error> {
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                return Err(de::Error::custom(format!(
                    "member {} appears twice",
                    shown(&name)
                )));
            }
            map.next_value_seed(UniqueSeed)?;
        }
        Ok(Unique)
    }
}

struct UniqueSeed;

impl<'de> DeserializeSeed<'de> for UniqueSeed {
    type Value = Unique;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> std::result::Result<Unique, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}
