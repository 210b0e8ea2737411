//! Watches on a real nats-server, beyond the shared watch suites: the guarantee checker
//! over 20,000 writes with the server killed (-9) and restarted on the same store in the
//! middle, and a thousand watchers of one store served by one server-side consumer.
//! Each test starts its own server, so it can kill it.

mod common;
mod watch_support;

use async_nats::jetstream;
use common::{block_on, unique_name, NatsServer};
use coordkv::{ErrorKind, EventKind, Store, WatchOptions};
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use watch_support::{
    check_through_sentinels, eventually, load_key, next_event, options, random_stream, Recorder,
    Spec,
};

/// How many consumers the bucket's stream has, read by a plain NATS client.
fn consumer_count(url: &str, bucket: &str) -> usize {
    block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let mut stream = jetstream::new(client)
            .get_stream(format!("KV_{bucket}"))
            .await
            .unwrap();
        stream.info().await.unwrap().state.consumer_count
    })
}

fn open(server: &NatsServer, bucket: &str, extra: &str) -> Store {
    let json = format!(
        "{{\"url\": \"{}\", \"bucket\": \"{bucket}\", \"request_timeout_ms\": 2000{extra}}}",
        server.url()
    );
    Store::open_json(&json).unwrap()
}

/// Writes `count` times (put, delete) over 600 keys, retrying through an outage:
/// a write that failed with UNAVAILABLE or TIMEOUT may or may not have landed, which the
/// checker does not mind since it reads what the stream holds.
fn write_through_outage(store: &Store, seed: u64, count: usize) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (i, x) in random_stream(seed).take(count).enumerate() {
        let key = load_key(x >> 8, 600);
        let value = format!("w{seed}-{i}");
        loop {
            let result = match x % 10 {
                0..=7 => store.put(&key, value.as_bytes()),
                _ => store.delete(&key, 0),
            };
            match result {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::Conflict => break,
                Err(e) if matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("write to {key} failed: {e}"),
            }
        }
        keys.insert(key);
    }
    keys
}

#[test]
fn watchers_resume_without_gap_across_a_server_kill_and_restart() {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 5_000;
    let mut server = NatsServer::start_default();
    let bucket = unique_name("watch_kill");
    let store = Arc::new(open(&server, &bucket, ", \"history\": 64"));
    let mut keys = write_through_outage(&store, 7, 1_000);
    let start_from = store.last_revision().unwrap() / 2;

    let replay = format!("prefix from={start_from}");
    let specs: Vec<Spec> = vec![
        ("exact", "/k/7", options(""), false),
        ("prefix /k/", "/k/", options("prefix"), false),
        ("prefix /, callback", "/", options("prefix"), true),
        ("snapshot /k/", "/k/", options("prefix snapshot"), false),
        ("replay /other/", "/other/", options(&replay), false),
        (
            "prev + progress /",
            "/",
            options("prefix prev progress=5"),
            false,
        ),
    ];
    let recorders: Vec<Recorder> = specs
        .into_iter()
        .map(|(label, target, o, cb)| Recorder::start(&store, label, target, o, cb))
        .collect();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            std::thread::spawn(move || write_through_outage(&store, w as u64 + 11, PER_WRITER))
        })
        .collect();
    // Crash the server once about half of the writes are in, then bring it back.
    let half = start_from * 2 + (WRITERS * PER_WRITER / 2) as u64;
    eventually("half of the writes", || {
        store.last_revision().is_ok_and(|r| r >= half)
    });
    server.kill();
    std::thread::sleep(Duration::from_millis(500));
    server.restart();
    for writer in writers {
        keys.extend(writer.join().unwrap());
    }
    let last = store.last_revision().unwrap();
    assert!(
        last >= (WRITERS * PER_WRITER) as u64,
        "only {last} writes landed"
    );

    check_through_sentinels(&store, recorders, keys, "nats kill -9");
}

#[test]
fn a_thousand_watchers_share_one_server_consumer() {
    let server = NatsServer::start_default();
    let bucket = unique_name("watch_many");
    let store = open(&server, &bucket, "");
    // Exact keys, prefixes, and snapshots (each snapshot reads through a temporary
    // consumer, deleted once read).
    let mut watches = Vec::new();
    for i in 0..1_000 {
        let (target, wanted) = match i % 4 {
            0 => (format!("/w/{i}"), WatchOptions::default()),
            1 => (format!("/p/{i}/"), options("prefix")),
            2 => (format!("/s/{i}/"), options("prefix snapshot")),
            _ => (format!("/b/{i}"), options("prefix")),
        };
        watches.push((i, target.clone(), store.watch(&target, wanted).unwrap()));
    }
    assert_eq!(store.watcher_count(), 1_000);
    eventually("the temporary consumers to go", || {
        consumer_count(&server.url(), &bucket) <= 1
    });
    for (i, target, _) in &watches {
        let key = if target.ends_with('/') {
            format!("{target}x")
        } else if i % 4 == 3 {
            format!("{target}tail")
        } else {
            target.clone()
        };
        store.put(&key, b"v").unwrap();
    }
    for (i, target, watch) in &watches {
        let mut event = next_event(watch);
        if i % 4 == 2 {
            assert_eq!(event.kind, EventKind::Synced, "{target}");
            event = next_event(watch);
        }
        assert_eq!(event.kind, EventKind::Put, "{target}");
        let key = &event.entry.as_ref().unwrap().key;
        assert!(key.starts_with(target.as_str()), "{target} got {key}");
    }
    let live = consumer_count(&server.url(), &bucket);
    assert!(live <= 1, "{live} consumers for 1,000 watchers");
    drop(watches);
    store.close();
    assert_eq!(
        consumer_count(&server.url(), &bucket),
        0,
        "closing the store leaves no consumer"
    );
}

#[test]
fn a_store_that_watches_nodes_does_not_receive_the_rest_of_the_bucket() {
    let server = NatsServer::start_default();
    let bucket = unique_name("watch_filter");
    let store = open(&server, &bucket, "");
    let watch = store.watch("/nodes/", options("prefix")).unwrap();
    // Another process writes a lot elsewhere in the bucket.
    let writer = open(&server, &bucket, "");
    for i in 0..2_000 {
        writer.put(&format!("/metrics/{i}"), b"x").unwrap();
    }
    let node = writer.put("/nodes/n-1", b"up").unwrap();
    let event = next_event(&watch);
    assert_eq!((event.kind, event.revision), (EventKind::Put, node));
    // The feed's one consumer filters on nodes.> on the server: of 2,001 writes it was
    // sent exactly one.
    let consumers = block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let stream = jetstream::new(client)
            .get_stream(format!("KV_{bucket}"))
            .await
            .unwrap();
        let mut infos = Vec::new();
        let mut list = stream.consumers();
        while let Some(info) = list.next().await {
            infos.push(info.unwrap());
        }
        infos
    });
    assert_eq!(consumers.len(), 1);
    let mut filters = consumers[0].config.filter_subjects.clone();
    filters.push(consumers[0].config.filter_subject.clone());
    filters.retain(|f| !f.is_empty());
    assert_eq!(filters, [format!("$KV.{bucket}.nodes.>")]);
    assert_eq!(consumers[0].delivered.consumer_sequence, 1);
}
