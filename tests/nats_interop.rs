//! coordkv and plain NATS clients share one bucket: a key coordkv writes is readable under
//! its NATS spelling by async-nats, a key async-nats writes under a coordkv spelling is a
//! coordkv key, revisions are the stream sequences both sides see, and keys in spellings
//! coordkv never produces are left out of coordkv's scans (they name no coordkv key).

mod common;

use async_nats::jetstream::{self, kv};
use common::{block_on, unique_name, NatsServer};
use coordkv::{ErrorKind, Operation, Store};

fn vectors() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/keys.json"
    ))
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["valid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["key"].as_str().unwrap().to_string(),
                v["nats"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn open(server: &NatsServer, bucket: &str) -> Store {
    let json = serde_json::json!({"url": server.url(), "bucket": bucket}).to_string();
    Store::open_json(&json).unwrap()
}

async fn plain_bucket(url: &str, bucket: &str) -> kv::Store {
    let client = async_nats::connect(url).await.unwrap();
    jetstream::new(client).get_key_value(bucket).await.unwrap()
}

#[test]
fn coordkv_writes_are_read_by_a_plain_nats_client_under_their_nats_names() {
    let server = NatsServer::start_default();
    let bucket = unique_name("interop_out");
    let store = open(&server, &bucket);
    let mut written = Vec::new();
    for (key, nats) in vectors() {
        let value = format!("value of {key}");
        let revision = store.put(&key, value.as_bytes()).unwrap();
        written.push((nats, value, revision));
    }
    let deleted_rev = store.delete("/nodes/n-1", 0).unwrap();

    block_on(async {
        let kv = plain_bucket(&server.url(), &bucket).await;
        for (nats, value, revision) in &written {
            if nats == "nodes.n-1" {
                continue;
            }
            let entry = kv.entry(nats.as_str()).await.unwrap().unwrap_or_else(|| {
                panic!("NATS key {nats} missing");
            });
            assert_eq!(&entry.value[..], value.as_bytes(), "{nats}");
            assert_eq!(
                entry.revision, *revision,
                "{nats}: revision is the stream sequence"
            );
        }
        let tomb = kv.entry("nodes.n-1").await.unwrap().unwrap();
        assert_eq!(tomb.operation, kv::Operation::Delete);
        assert_eq!(tomb.revision, deleted_rev);
        assert!(kv.get("nodes.n-1").await.unwrap().is_none());
    });
}

#[test]
fn plain_nats_writes_are_coordkv_keys_and_foreign_spellings_are_skipped() {
    let server = NatsServer::start_default();
    let bucket = unique_name("interop_in");
    // coordkv creates the bucket, a plain client writes into it.
    let store = open(&server, &bucket);
    let (put_rev, del_rev) = block_on(async {
        let kv = plain_bucket(&server.url(), &bucket).await;
        let put_rev = kv.put("svc.api=2Ev1", "up".into()).await.unwrap();
        kv.put("svc.gone", "x".into()).await.unwrap();
        kv.delete("svc.gone").await.unwrap();
        let del_rev = kv.entry("svc.gone").await.unwrap().unwrap().revision;
        // Spellings coordkv never writes: lower-case hex, an escaped plain byte, a '/'.
        kv.put("svc.bad=2e", "x".into()).await.unwrap();
        kv.put("svc.=41", "x".into()).await.unwrap();
        kv.put("svc/slash", "x".into()).await.unwrap();
        (put_rev, del_rev)
    });

    let entry = store.get("/svc/api.v1").unwrap();
    assert_eq!((&entry.value[..], entry.revision), (&b"up"[..], put_rev));
    assert_eq!(
        store.get("/svc/gone").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let history = store.history("/svc/gone").unwrap();
    assert_eq!(history.last().unwrap().operation, Operation::Delete);
    assert_eq!(history.last().unwrap().revision, del_rev);
    assert_eq!(store.keys("/").unwrap(), vec!["/svc/api.v1"]);
    assert_eq!(store.keys("/svc/").unwrap(), vec!["/svc/api.v1"]);
    // A CAS from coordkv on a key a plain client wrote works on the same revision.
    let updated = store.update("/svc/api.v1", b"down", put_rev).unwrap();
    assert!(updated > put_rev);
    assert_eq!(store.last_revision().unwrap(), updated);
}

#[test]
fn an_existing_bucket_is_reused_with_its_data() {
    let server = NatsServer::start_default();
    let bucket = unique_name("reuse");
    let first = open(&server, &bucket);
    let rev = first.put("/kept", b"1").unwrap();
    first.close();
    let second = open(&server, &bucket);
    let entry = second.get("/kept").unwrap();
    assert_eq!((&entry.value[..], entry.revision), (&b"1"[..], rev));
}

#[test]
fn bucket_options_reach_the_server() {
    let server = NatsServer::start_default();
    let bucket = unique_name("opts");
    let json = serde_json::json!({
        "url": server.url(), "bucket": bucket, "history": 3, "storage": "memory",
        "max_value_size": 4096, "max_bytes": 1048576,
    })
    .to_string();
    let store = Store::open_json(&json).unwrap();
    store.put("/o", b"v").unwrap();
    // A value of exactly max_value_size still fits with the CAS headers of create/update.
    let rev = store.create("/full", &[b'x'; 4096]).unwrap();
    store.update("/full", &[b'y'; 4096], rev).unwrap();
    block_on(async {
        let kv = plain_bucket(&server.url(), &bucket).await;
        let mut stream = kv.stream.clone();
        let config = stream.info().await.unwrap().config.clone();
        assert_eq!(config.max_messages_per_subject, 3);
        assert_eq!(config.storage, jetstream::stream::StorageType::Memory);
        // The stream's limit counts headers too: the value limit plus room for them.
        assert_eq!(config.max_message_size, 4096 + 4096);
        assert_eq!(config.max_bytes, 1048576);
    });
}
