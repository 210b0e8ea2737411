//! Leases, TTL keys, quiet writes and EXPIRED events, as a membership watcher sees them:
//! PUT when a node joins, DELETE when it leaves (revoke), EXPIRED when its holder stops
//! (here `lease_abandon`, which is what a killed process does to its lease).

mod common;

use common::test_stores_with;
use coordkv::{ErrorKind, EventKind, Store, Watch, WatchOptions, WriteOptions};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// Both backends; on NATS with the shortest marker TTL, so that short TTLs are granted
/// as asked (whole seconds) and the tests take seconds, not tens of them.
fn lease_stores(name: &str) -> Vec<(String, Store)> {
    test_stores_with(name, r#""marker_ttl_ms": 1000"#)
}

fn leased(lease: u64) -> WriteOptions {
    WriteOptions {
        lease,
        ..WriteOptions::default()
    }
}

fn membership_watch(store: &Store, quiet_writes: bool) -> Watch {
    let options = WatchOptions {
        prefix: true,
        quiet_writes,
        buffer_size: 100_000,
        ..WatchOptions::default()
    };
    store.watch("/nodes/", options).unwrap()
}

/// The next data events, each of `kind`, one per key of `keys` (in whatever order the
/// backend wrote them: expiries come in the order the keys were last renewed), with
/// increasing revisions.
fn expect_events(watch: &Watch, kind: EventKind, keys: &[String]) -> Vec<u64> {
    let mut revisions = Vec::new();
    let mut seen = Vec::new();
    for _ in keys {
        let event = watch.next(Some(WAIT)).expect("an event");
        assert_eq!(event.kind, kind, "{event:?}");
        let entry = event.entry.expect("a data event carries its entry");
        seen.push(entry.key.to_string());
        revisions.push(event.revision);
    }
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    seen.sort();
    assert_eq!(seen, keys, "one event per key");
    revisions
}

fn node_keys(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("/nodes/n-{i:03}")).collect()
}

/// Whether this store does TTL keys; a NATS store without them says UNSUPPORTED.
fn ttl_supported(backend: &str, store: &Store) -> bool {
    match store.lease_grant(Duration::from_secs(1)) {
        Ok(lease) => {
            store.lease_revoke(lease.id()).unwrap();
            true
        }
        Err(e) => {
            // Only a server older than 2.11.2 may refuse, and it must say what it needs.
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{backend}: {e}");
            assert!(e.message().contains("2.11.2"), "{backend}: {e}");
            false
        }
    }
}

#[test]
fn a_revoked_lease_deletes_its_keys_and_refuses_later_writes() {
    for (backend, store) in lease_stores("lease_revoke") {
        if !ttl_supported(&backend, &store) {
            continue;
        }
        let lease = store.lease_grant(Duration::from_millis(1500)).unwrap();
        assert!(lease.ttl() >= Duration::from_millis(1500), "{backend}");
        let keys = node_keys(10);
        let watch = membership_watch(&store, false);
        for key in &keys {
            store.put_with(key, b"up", &leased(lease.id())).unwrap();
        }
        expect_events(&watch, EventKind::Put, &keys);
        let info = store.lease_time_to_live(lease.id(), true).unwrap();
        assert_eq!(info.keys, keys, "{backend}");
        assert!(info.remaining <= info.ttl, "{backend}: {info:?}");
        assert_eq!(store.lease_list().unwrap(), vec![lease.id()], "{backend}");

        store.lease_revoke(lease.id()).unwrap();
        expect_events(&watch, EventKind::Delete, &keys);
        assert!(
            lease.is_lost(),
            "{backend}: the holder is told its lease ended"
        );
        for key in &keys {
            assert_eq!(store.get(key).unwrap_err().kind(), ErrorKind::NotFound);
        }
        let refused = store.put_with("/nodes/late", b"x", &leased(lease.id()));
        assert_eq!(
            refused.unwrap_err().kind(),
            ErrorKind::LeaseNotFound,
            "{backend}"
        );
        let again = store.lease_revoke(lease.id()).unwrap_err();
        assert_eq!(again.kind(), ErrorKind::LeaseNotFound, "{backend}");
        assert!(store.lease_list().unwrap().is_empty(), "{backend}");
    }
}

#[test]
fn an_abandoned_lease_expires_its_keys_with_expired_events() {
    for (backend, store) in lease_stores("lease_expire") {
        if !ttl_supported(&backend, &store) {
            continue;
        }
        let ttl = if backend == "mem" {
            Duration::from_millis(400)
        } else {
            Duration::from_secs(2)
        };
        let lease = store.lease_grant(ttl).unwrap();
        let keys = node_keys(100);
        let watch = membership_watch(&store, false);
        for key in &keys {
            store.put_with(key, b"up", &leased(lease.id())).unwrap();
        }
        expect_events(&watch, EventKind::Put, &keys);
        let abandoned = Instant::now();
        store.lease_abandon(lease.id()).unwrap();
        let expired = expect_events(&watch, EventKind::Expired, &keys);
        println!(
            "{backend}: 100 EXPIRED events, the last {} ms after the holder stopped (TTL {} ms)",
            abandoned.elapsed().as_millis(),
            lease.ttl().as_millis()
        );
        assert!(expired[0] > 0);
        for key in &keys {
            assert_eq!(store.get(key).unwrap_err().kind(), ErrorKind::NotFound);
        }
        assert!(store.keys("/nodes/").unwrap().is_empty(), "{backend}");
        let refused = store.put_with("/nodes/late", b"x", &leased(lease.id()));
        assert_eq!(
            refused.unwrap_err().kind(),
            ErrorKind::LeaseNotFound,
            "{backend}"
        );
    }
}

#[test]
fn keepalive_keeps_keys_for_many_ttls_and_only_quiet_watchers_see_it() {
    for (backend, store) in lease_stores("lease_keepalive") {
        if !ttl_supported(&backend, &store) {
            continue;
        }
        let ttl = if backend == "mem" {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(2)
        };
        let lease = store.lease_grant(ttl).unwrap();
        let loud = membership_watch(&store, false);
        let quiet = membership_watch(&store, true);
        let keys = node_keys(10);
        for key in &keys {
            store.put_with(key, b"up", &leased(lease.id())).unwrap();
        }
        // Concurrent writes (other keys, and the watched prefix) while the lease is kept
        // alive: ten TTLs on mem://, 30 s of a 2 s lease on NATS.
        let keep = if backend == "mem" {
            lease.ttl() * 10
        } else {
            Duration::from_secs(30)
        };
        let deadline = Instant::now() + keep;
        let mut writes = 0;
        while Instant::now() < deadline {
            store.put("/other/k", b"x").unwrap();
            writes += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(writes > 0);
        for key in &keys {
            assert_eq!(&store.get(key).unwrap().value[..], b"up", "{backend} {key}");
        }
        assert!(!lease.is_lost(), "{backend}: {}", lease.lost_reason());
        expect_events(&loud, EventKind::Put, &keys);
        let nothing = loud.next(Some(Duration::from_millis(100)));
        assert!(nothing.is_err(), "{backend}: {nothing:?}");
        assert_eq!(nothing.unwrap_err().kind(), ErrorKind::Timeout, "{backend}");
        let through = store.last_revision().unwrap();
        let mut refreshes = 0;
        expect_events(&quiet, EventKind::Put, &keys);
        loop {
            let event = quiet.next(Some(WAIT)).unwrap();
            assert_eq!(event.kind, EventKind::Put);
            assert!(event.entry.as_ref().unwrap().quiet, "{event:?}");
            refreshes += 1;
            if event.revision >= through {
                break;
            }
        }
        assert!(refreshes >= 10, "{backend}: {refreshes} keepalive writes");
        store.lease_revoke(lease.id()).unwrap();
    }
}

#[test]
fn a_ttl_key_expires_unless_written_again() {
    for (backend, store) in lease_stores("ttl_key") {
        if !ttl_supported(&backend, &store) {
            continue;
        }
        let ttl = if backend == "mem" {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(1)
        };
        let options = WriteOptions {
            ttl: Some(ttl),
            ..WriteOptions::default()
        };
        let watch = store.watch("/t/a", WatchOptions::default()).unwrap();
        let first = store.put_with("/t/a", b"1", &options).unwrap();
        // Rewritten without a TTL before the deadline: the first deadline has no effect.
        store.put("/t/a", b"2").unwrap();
        std::thread::sleep(ttl * 2);
        assert_eq!(&store.get("/t/a").unwrap().value[..], b"2", "{backend}");
        store.put_with("/t/a", b"3", &options).unwrap();
        let kinds: Vec<EventKind> = (0..4)
            .map(|_| watch.next(Some(WAIT)).unwrap().kind)
            .collect();
        use EventKind::*;
        assert_eq!(kinds, [Put, Put, Put, Expired], "{backend}");
        assert_eq!(store.get("/t/a").unwrap_err().kind(), ErrorKind::NotFound);
        // A TTL write keeps only itself: the expiry cannot bring "2" back.
        let history = store.history("/t/a").unwrap();
        assert!(history.iter().all(|e| e.revision > first), "{history:?}");
        let options = WriteOptions {
            lease: 1,
            ttl: Some(ttl),
            ..WriteOptions::default()
        };
        let both = store.put_with("/t/b", b"x", &options).unwrap_err();
        assert_eq!(both.kind(), ErrorKind::InvalidArgument);
    }
}

#[test]
fn quiet_writes_reach_only_watchers_that_ask_and_still_advance_progress() {
    for (backend, store) in lease_stores("quiet_writes") {
        let loud = store.watch("/q/a", WatchOptions::default()).unwrap();
        let options = WatchOptions {
            progress_interval: Some(Duration::from_millis(20)),
            ..WatchOptions::default()
        };
        let bookmarks = store.watch("/q/a", options).unwrap();
        let quiet_options = WriteOptions {
            quiet: true,
            ..WriteOptions::default()
        };
        let revision = store.put_with("/q/a", b"hush", &quiet_options).unwrap();
        assert!(store.get("/q/a").unwrap().quiet, "{backend}");
        let progressed = loop {
            let event = bookmarks.next(Some(WAIT)).unwrap();
            assert_eq!(event.kind, EventKind::Progress, "{backend}: {event:?}");
            if event.revision >= revision {
                break event.revision;
            }
        };
        assert!(progressed >= revision);
        let loud_put = store.put("/q/a", b"loud").unwrap();
        let event = loud.next(Some(WAIT)).unwrap();
        assert_eq!(
            (event.kind, event.revision),
            (EventKind::Put, loud_put),
            "{backend}"
        );
    }
}
