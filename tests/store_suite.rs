//! What the core's `Store` promises beyond the shared scenarios of tests/vectors/ops.json
//! (run by tests/ops_vectors.rs): a read_modify_write function's own error and its retry
//! when another writer moves the key, threads, config errors and capabilities. Run on
//! every backend that `common::test_stores` provides (mem:// always, NATS when a server
//! is available); a failure names the backend it happened on.

mod common;

use coordkv::{Capability, ErrorKind, Store};
use std::sync::Arc;

fn each_store(name: &str, test: impl Fn(&str, &Store)) {
    for (backend, store) in common::test_stores(name) {
        test(&backend, &store);
        store.close();
    }
}

#[test]
fn read_modify_write_aborts_with_the_functions_error() {
    each_store("rmw_abort", |b, s| {
        let kept = s.put("/rmw/k", b"kept").unwrap();
        let err = s
            .read_modify_write("/rmw/k", &mut |_| {
                Err(coordkv::Error::new(ErrorKind::Canceled, "no thanks"))
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Canceled, "{b}");
        assert!(err.message().contains("no thanks"), "{b}: {err}");
        let e = s.get("/rmw/k").unwrap();
        assert_eq!((&e.value[..], e.revision), (&b"kept"[..], kept), "{b}");
        assert_eq!(s.last_revision().unwrap(), kept, "{b}: nothing written");
    });
}

#[test]
fn read_modify_write_over_a_tombstone_is_guarded_by_its_revision() {
    each_store("rmw_tomb", |b, s| {
        s.put("/rt/k", b"old").unwrap();
        s.delete("/rt/k", 0).unwrap();
        let mut seen = Vec::new();
        let err = s
            .read_modify_write("/rt/k", &mut |cur| {
                seen.push(cur.map(|e| e.value.to_vec()));
                if seen.len() == 1 {
                    // Someone re-creates the key between our read and our write.
                    s.create("/rt/k", b"theirs").unwrap();
                    return Ok(b"ours".to_vec());
                }
                Err(coordkv::Error::new(ErrorKind::Canceled, "it exists now"))
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Canceled, "{b}");
        assert_eq!(
            seen,
            vec![None, Some(b"theirs".to_vec())],
            "{b}: retried after the conflict"
        );
        assert_eq!(
            &s.get("/rt/k").unwrap().value[..],
            b"theirs",
            "{b}: never overwritten blindly"
        );
    });
}

#[test]
fn concurrent_read_modify_write_loses_no_increment() {
    for (b, s) in common::test_stores("rmw_concurrent") {
        let total = common::hammer_counter(&Arc::new(s), "/rc/counter", 500);
        assert_eq!(total, 8 * 500, "{b}");
    }
}

#[test]
fn config_errors_are_invalid_argument_with_a_message() {
    for (json, needle) in [
        ("{", "invalid JSON"),
        ("[]", "expected an object"),
        (r#"["mem://"]"#, "expected an object"),
        ("null", "expected an object"),
        (r#"{"bukket": "x"}"#, "bukket"),
        (r#"{"history": 0}"#, "history"),
        (r#"{"history": "3"}"#, "invalid type"),
        (r#"{"bucket": "a.b"}"#, "bucket"),
        (r#"{"url": "redis://x"}"#, "unknown store URL"),
        (r#"{"max_value_size": 0}"#, "max_value_size"),
    ] {
        let err = Store::open_json(json)
            .err()
            .unwrap_or_else(|| panic!("{json} must fail"));
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{json}");
        assert!(err.message().contains(needle), "{json}: {}", err.message());
    }
    assert_eq!(
        Store::open("etcd://x").err().unwrap().kind(),
        ErrorKind::InvalidArgument
    );
}

/// Capabilities beyond the KV primitives: every one on mem://; on NATS those the server's
/// release has (the suite knows which release natsd.py started), and for the others
/// UNSUPPORTED naming the release needed.
#[test]
fn capabilities_follow_the_server_release() {
    let running: Option<(u64, u64, u64)> = std::env::var("COORDKV_TEST_NATS_VERSION")
        .ok()
        .and_then(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
            Some((parts.next()??, parts.next()??, parts.next()??))
        });
    for (backend, store) in common::test_stores("capabilities") {
        for capability in Capability::ALL {
            let answer = store.require(capability);
            let expected = match (backend.as_str(), running) {
                ("mem", _) => true,
                (_, Some(version)) => version >= capability.min_nats_server(),
                (_, None) => continue, // a server started elsewhere: release unknown
            };
            if expected {
                assert!(answer.is_ok(), "{backend} {capability:?}: {answer:?}");
            } else {
                let e = answer.expect_err("an old server cannot");
                assert_eq!(e.kind(), ErrorKind::Unsupported, "{backend} {capability:?}");
                let (major, minor, patch) = capability.min_nats_server();
                assert!(
                    e.message()
                        .contains(&format!("{major}.{minor}.{patch} or newer")),
                    "{backend} {capability:?}: {}",
                    e.message()
                );
            }
        }
    }
}
