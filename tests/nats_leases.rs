//! Leases against a NATS server this test controls: the holder is told its lease is lost
//! when the server is gone for longer than the TTL, and the keys are gone once the server
//! is back; a watcher across a server crash receives the EXPIRED events of the keys whose
//! TTL ran out meanwhile; a watch resumed after an expiry replays its EXPIRED events, or
//! ends with CANCELED(history lost) once the server dropped the markers.

mod common;

use common::{retry_until, unique_name, NatsOptions, NatsServer};
use coordkv::{CancelReason, ErrorKind, EventKind, Store, WatchOptions, WriteOptions};
use serde_json::json;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

/// These tests kill servers and start them again on the same port: run side by side, one
/// test's new server could take the port another's killed server left, and its clients
/// would reconnect to the wrong server. So they run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn open(server: &NatsServer, bucket: &str, extra: serde_json::Value) -> Store {
    let mut config = json!({
        "url": server.url(), "bucket": bucket,
        "request_timeout_ms": 500, "marker_ttl_ms": 1000,
    });
    for (name, value) in extra.as_object().unwrap() {
        config[name] = value.clone();
    }
    Store::open_json(&config.to_string()).unwrap()
}

fn leased(lease: u64) -> WriteOptions {
    WriteOptions {
        lease,
        ..WriteOptions::default()
    }
}

#[test]
fn a_lease_is_lost_while_the_server_is_down_and_its_keys_are_gone_after() {
    let _serial = serial();
    let mut server = NatsServer::start_default();
    let store = open(&server, &unique_name("lost"), json!({}));
    let lease = store.lease_grant(Duration::from_secs(2)).unwrap();
    for i in 0..3 {
        store
            .put_with(&format!("/l/{i}"), b"up", &leased(lease.id()))
            .unwrap();
    }
    assert!(!lease.wait_lost(Some(Duration::from_millis(500))));

    let killed = Instant::now();
    server.kill();
    assert!(lease.wait_lost(Some(WAIT)), "never told the lease was lost");
    println!(
        "lease lost {} ms after the server went down (TTL {} ms): {}",
        killed.elapsed().as_millis(),
        lease.ttl().as_millis(),
        lease.lost_reason()
    );
    assert!(
        lease.lost_reason().contains("could not be renewed"),
        "{}",
        lease.lost_reason()
    );

    server.restart();
    // The server expires what outlived its TTL during the outage (on recovery).
    for i in 0..3 {
        let key = format!("/l/{i}");
        retry_until(WAIT, || match store.get(&key) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Ok(_) => Err(coordkv::Error::internal(format!("{key} is still there"))),
            Err(e) => Err(e),
        });
    }
    let gone = store
        .put_with("/l/late", b"x", &leased(lease.id()))
        .unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::LeaseNotFound, "{gone}");
}

#[test]
fn a_watcher_across_a_server_crash_receives_the_expiries_it_missed() {
    let _serial = serial();
    let mut server = NatsServer::start_default();
    let bucket = unique_name("crash_expiry");
    // One revision per key: the server leaves TTLs as asked, and markers can outlive an
    // outage (30 s) without raising them.
    let extra = json!({"history": 1, "marker_ttl_ms": 30_000});
    let holder = open(&server, &bucket, extra.clone());
    let watcher = open(&server, &bucket, extra);
    let options = WatchOptions {
        prefix: true,
        ..WatchOptions::default()
    };
    let watch = watcher.watch("/m/", options).unwrap();
    let lease = holder.lease_grant(Duration::from_secs(2)).unwrap();
    assert_eq!(lease.ttl(), Duration::from_secs(2));
    let keys: Vec<String> = (0..5).map(|i| format!("/m/n-{i}")).collect();
    for key in &keys {
        holder.put_with(key, b"up", &leased(lease.id())).unwrap();
    }
    for _ in &keys {
        assert_eq!(watch.next(Some(WAIT)).unwrap().kind, EventKind::Put);
    }
    server.kill();
    std::thread::sleep(lease.ttl() + Duration::from_secs(1));
    server.restart();
    println!("the holder: {}", lease.lost_reason());
    let mut expired = Vec::new();
    while expired.len() < keys.len() {
        let event = watch.next(Some(WAIT)).unwrap_or_else(|e| {
            let seen: Vec<_> = keys.iter().map(|k| watcher.history(k)).collect();
            panic!("{e} after {expired:?}; the keys hold {seen:?}")
        });
        assert_eq!(event.kind, EventKind::Expired, "{event:?}");
        expired.push(event.entry.unwrap().key.to_string());
    }
    expired.sort();
    assert_eq!(expired, keys);
}

#[test]
fn a_resumed_watch_replays_expiries_or_says_the_markers_are_gone() {
    let _serial = serial();
    let server = NatsServer::start_default();
    let store = open(&server, &unique_name("resume"), json!({}));
    let lease = store.lease_grant(Duration::from_secs(1)).unwrap();
    store.put_with("/r/a", b"up", &leased(lease.id())).unwrap();
    let seen = store.last_revision().unwrap();
    store.lease_abandon(lease.id()).unwrap();
    let resume = || {
        let options = WatchOptions {
            prefix: true,
            start_revision: seen + 1,
            ..WatchOptions::default()
        };
        store.watch("/r/", options).unwrap()
    };
    // While the marker lives, a watch resumed after the expiry replays it.
    retry_until(WAIT, || match store.get("/r/a") {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Ok(_) => Err(coordkv::Error::internal("not expired yet")),
        Err(e) => Err(e),
    });
    let event = resume().next(Some(WAIT)).unwrap();
    assert_eq!(event.kind, EventKind::Expired, "{event:?}");
    // Once the marker has expired too (marker TTL 1 s), the resumed watch cannot prove
    // it missed nothing: CANCELED(history lost), never silence.
    std::thread::sleep(Duration::from_secs(3));
    let event = resume().next(Some(WAIT)).unwrap();
    assert_eq!(event.kind, EventKind::Canceled, "{event:?}");
    assert_eq!(
        event.cancel_reason,
        Some(CancelReason::HistoryLost),
        "{event:?}"
    );
}

#[test]
fn a_watcher_away_until_the_markers_expired_ends_with_history_lost() {
    let _serial = serial();
    let mut server = NatsServer::start_default();
    let bucket = unique_name("away");
    let extra = json!({"history": 1});
    let holder = open(&server, &bucket, extra.clone());
    let watcher = open(&server, &bucket, extra.clone());
    let options = WatchOptions {
        prefix: true,
        ..WatchOptions::default()
    };
    let watch = watcher.watch("/m/", options).unwrap();
    let lease = holder.lease_grant(Duration::from_secs(1)).unwrap();
    let keys: Vec<String> = (0..3).map(|i| format!("/m/n-{i}")).collect();
    for key in &keys {
        holder.put_with(key, b"up", &leased(lease.id())).unwrap();
    }
    for _ in &keys {
        assert_eq!(watch.next(Some(WAIT)).unwrap().kind, EventKind::Put);
    }
    server.kill();
    // The same data served on another port: the two stores know only the first one, so
    // they stay away while the keys expire there and their markers (1 s) expire too.
    let elsewhere = NatsServer::start(NatsOptions {
        store_dir: Some(server.store_dir.clone()),
        ..NatsOptions::default()
    });
    let probe = open(&elsewhere, &bucket, extra);
    for key in &keys {
        retry_until(WAIT, || match probe.history(key) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Ok(kept) => Err(coordkv::Error::internal(format!("{key} holds {kept:?}"))),
            Err(e) => Err(e),
        });
    }
    probe.close();
    drop(elsewhere);
    server.restart();
    let event = watch.next(Some(WAIT)).unwrap();
    assert_eq!(event.kind, EventKind::Canceled, "{event:?}");
    assert_eq!(
        event.cancel_reason,
        Some(CancelReason::HistoryLost),
        "{event:?}"
    );
    println!("{}", event.message);
}

#[test]
fn a_bucket_that_cannot_be_switched_to_ttls_says_what_to_run() {
    let _serial = serial();
    let server = NatsServer::start(NatsOptions {
        // `app` may use the bucket but not update its stream.
        extra_config: [
            "authorization { users: [ { user: admin, password: a },",
            r#"{ user: app, password: p, permissions: { subscribe: { allow: ["_INBOX.>"] },"#,
            r#"publish: { allow: ["$JS.API.>", "$KV.>"], deny: ["$JS.API.STREAM.UPDATE.>"] } } } ] }"#,
        ]
        .join("\n"),
        ..NatsOptions::default()
    });
    let bucket = unique_name("no_ttl");
    let with = |user: &str, password: &str| {
        let config = json!({"url": server.url(), "bucket": bucket, "request_timeout_ms": 2000,
                            "auth": {"user": user, "password": password}});
        Store::open_json(&config.to_string()).unwrap()
    };
    // The bucket exists without TTLs (nobody asked for them yet); the app may not update it.
    with("admin", "a").put("/k", b"v").unwrap();
    let app = with("app", "p");
    let err = app.lease_grant(Duration::from_secs(2)).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::PermissionDenied | ErrorKind::Timeout),
        "{err}"
    );
    assert!(err.message().contains("nats stream edit"), "{err}");
    assert!(err.message().contains("--allow-msg-ttl"), "{err}");
    // Everything else keeps working, and a user who may update the stream switches it on.
    assert_eq!(&app.get("/k").unwrap().value[..], b"v");
    let admin = with("admin", "a");
    let lease = admin.lease_grant(Duration::from_secs(2)).unwrap();
    let ttl = WriteOptions {
        lease: lease.id(),
        ..WriteOptions::default()
    };
    app.put_with("/k2", b"now it works", &ttl).unwrap();
}
