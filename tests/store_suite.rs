//! The shared suite: the README's operations table (docs/design.md), run on every backend
//! that `common::test_stores` provides (mem:// always, NATS when a server is available).
//! One body per behaviour; a failure names the backend it happened on.

mod common;

use coordkv::{Capability, ErrorKind, Operation, Store};
use std::sync::Arc;

fn each_store(name: &str, test: impl Fn(&str, &Store)) {
    for (backend, store) in common::test_stores(name) {
        test(&backend, &store);
        store.close();
    }
}

fn kind<T: std::fmt::Debug>(result: coordkv::Result<T>) -> ErrorKind {
    result.expect_err("expected an error").kind()
}

#[test]
fn put_get_returns_latest_value_and_increasing_revisions() {
    each_store("put_get", |b, s| {
        let r1 = s.put("/pg/a", b"one").unwrap();
        let r2 = s.put("/pg/a", b"two").unwrap();
        assert!(r2 > r1, "{b}: revisions increase");
        let e = s.get("/pg/a").unwrap();
        assert_eq!(
            (&*e.key, &e.value[..], e.revision, e.operation),
            ("/pg/a", &b"two"[..], r2, Operation::Put),
            "{b}"
        );
        assert!(e.timestamp_ns > 0, "{b}: timestamp recorded");
        assert_eq!(s.last_revision().unwrap(), r2, "{b}");
        assert_eq!(kind(s.get("/pg/missing")), ErrorKind::NotFound, "{b}");
    });
}

#[test]
fn revisions_are_store_wide() {
    each_store("store_wide", |b, s| {
        let r1 = s.put("/sw/a", b"1").unwrap();
        let r2 = s.put("/sw/b", b"1").unwrap();
        let r3 = s.delete("/sw/a", 0).unwrap();
        assert!(r1 < r2 && r2 < r3, "{b}: {r1} < {r2} < {r3}");
    });
}

#[test]
fn empty_and_binary_values_round_trip() {
    each_store("binary", |b, s| {
        s.put("/bin/empty", b"").unwrap();
        assert!(s.get("/bin/empty").unwrap().value.is_empty(), "{b}");
        let all: Vec<u8> = (0..=255u8).collect();
        s.put("/bin/all", &all).unwrap();
        assert_eq!(&s.get("/bin/all").unwrap().value[..], &all[..], "{b}");
    });
}

#[test]
fn create_refuses_live_key_with_current_revision_and_succeeds_over_tombstone() {
    each_store("create", |b, s| {
        let r1 = s.create("/cr/k", b"v1").unwrap();
        let err = s.create("/cr/k", b"v2").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{b}");
        assert_eq!(
            err.current_revision(),
            r1,
            "{b}: conflict carries the current revision"
        );
        let tomb = s.delete("/cr/k", 0).unwrap();
        assert_eq!(kind(s.get("/cr/k")), ErrorKind::NotFound, "{b}");
        let r3 = s.create("/cr/k", b"v3").unwrap();
        assert!(r3 > tomb, "{b}");
        assert_eq!(&s.get("/cr/k").unwrap().value[..], b"v3", "{b}");
    });
}

#[test]
fn create_succeeds_over_purge_marker() {
    each_store("create_purge", |b, s| {
        s.put("/cp/k", b"v1").unwrap();
        s.purge("/cp/k").unwrap();
        assert_eq!(kind(s.get("/cp/k")), ErrorKind::NotFound, "{b}");
        s.create("/cp/k", b"v2").unwrap();
        assert_eq!(&s.get("/cp/k").unwrap().value[..], b"v2", "{b}");
    });
}

#[test]
fn update_at_stale_revision_is_a_conflict_carrying_the_current_one() {
    each_store("update", |b, s| {
        let r1 = s.put("/up/k", b"v1").unwrap();
        let r2 = s.update("/up/k", b"v2", r1).unwrap();
        let err = s.update("/up/k", b"v3", r1).unwrap_err();
        assert_eq!(
            (err.kind(), err.current_revision()),
            (ErrorKind::Conflict, r2),
            "{b}"
        );
        assert_eq!(
            &s.get("/up/k").unwrap().value[..],
            b"v2",
            "{b}: refused write changed nothing"
        );
        let err = s.update("/up/never", b"x", 5).unwrap_err();
        assert_eq!(
            (err.kind(), err.current_revision()),
            (ErrorKind::Conflict, 0),
            "{b}"
        );
    });
}

#[test]
fn conditional_delete() {
    each_store("cond_delete", |b, s| {
        let r1 = s.put("/cd/k", b"v1").unwrap();
        let r2 = s.put("/cd/k", b"v2").unwrap();
        let err = s.delete("/cd/k", r1).unwrap_err();
        assert_eq!(
            (err.kind(), err.current_revision()),
            (ErrorKind::Conflict, r2),
            "{b}"
        );
        assert!(
            s.get("/cd/k").is_ok(),
            "{b}: refused delete changed nothing"
        );
        let tomb = s.delete("/cd/k", r2).unwrap();
        assert!(tomb > r2, "{b}");
        assert_eq!(kind(s.get("/cd/k")), ErrorKind::NotFound, "{b}");
        // An update at the tombstone's revision is a valid CAS on a deleted key.
        s.update("/cd/k", b"v3", tomb).unwrap();
        assert_eq!(&s.get("/cd/k").unwrap().value[..], b"v3", "{b}");
    });
}

#[test]
fn history_keeps_tombstones_and_purge_drops_it() {
    each_store("history", |b, s| {
        let r1 = s.put("/hi/k", b"1").unwrap();
        let r2 = s.put("/hi/k", b"2").unwrap();
        let r3 = s.delete("/hi/k", 0).unwrap();
        let h = s.history("/hi/k").unwrap();
        let seen: Vec<_> = h.iter().map(|e| (e.revision, e.operation)).collect();
        assert_eq!(
            seen,
            vec![
                (r1, Operation::Put),
                (r2, Operation::Put),
                (r3, Operation::Delete)
            ],
            "{b}"
        );
        let p = s.purge("/hi/k").unwrap();
        let h = s.history("/hi/k").unwrap();
        let seen: Vec<_> = h.iter().map(|e| (e.revision, e.operation)).collect();
        assert_eq!(
            seen,
            vec![(p, Operation::Purge)],
            "{b}: purge leaves only its marker"
        );
        assert_eq!(kind(s.history("/hi/never")), ErrorKind::NotFound, "{b}");
    });
}

#[test]
fn keys_and_list_are_sorted_live_and_prefix_filtered() {
    each_store("keys", |b, s| {
        for k in [
            "/kl/b", "/kl/a/x", "/kl/a", "/kl/ab", "/kl/c", "/klz", "/other/a",
        ] {
            s.put(k, k.as_bytes()).unwrap();
        }
        s.delete("/kl/c", 0).unwrap();
        assert_eq!(
            s.keys("/kl/").unwrap(),
            vec!["/kl/a", "/kl/a/x", "/kl/ab", "/kl/b"],
            "{b}"
        );
        // Not segment-aligned: byte-wise, like etcd.
        assert_eq!(
            s.keys("/kl/a").unwrap(),
            vec!["/kl/a", "/kl/a/x", "/kl/ab"],
            "{b}"
        );
        assert_eq!(
            s.keys("/kl").unwrap(),
            vec!["/kl/a", "/kl/a/x", "/kl/ab", "/kl/b", "/klz"],
            "{b}"
        );
        assert_eq!(s.keys("/kl/a/").unwrap(), vec!["/kl/a/x"], "{b}");
        assert!(s.keys("/none/").unwrap().is_empty(), "{b}");
        let list = s.list("/kl/a").unwrap();
        let pairs: Vec<_> = list
            .iter()
            .map(|e| (e.key.to_string(), e.value.to_vec()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("/kl/a".to_string(), b"/kl/a".to_vec()),
                ("/kl/a/x".to_string(), b"/kl/a/x".to_vec()),
                ("/kl/ab".to_string(), b"/kl/ab".to_vec()),
            ],
            "{b}"
        );
        let root = s.keys("/").unwrap();
        assert!(
            root.contains(&"/other/a".to_string()) && root.contains(&"/klz".to_string()),
            "{b}"
        );
    });
}

#[test]
fn unusual_keys_round_trip_through_every_operation() {
    each_store("unusual", |b, s| {
        let keys = [
            "/u/with space",
            "/u/dots.in.it",
            "/u/star*",
            "/u/gt>",
            "/u/é/😀",
            "/u/eq=",
            "/u/colon:1",
        ];
        for k in keys {
            s.put(k, k.as_bytes()).unwrap();
            assert_eq!(&s.get(k).unwrap().value[..], k.as_bytes(), "{b}: {k}");
        }
        let mut sorted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        sorted.sort();
        assert_eq!(s.keys("/u/").unwrap(), sorted, "{b}");
        let long = format!("/u/{}", "x".repeat(1021));
        assert_eq!(long.len(), 1024);
        s.put(&long, b"long").unwrap();
        assert_eq!(&s.get(&long).unwrap().value[..], b"long", "{b}");
    });
}

#[test]
fn delete_prefix_counts_live_keys() {
    each_store("delete_prefix", |b, s| {
        for k in ["/dp/a", "/dp/b", "/dp/c/d", "/dpx"] {
            s.put(k, b"v").unwrap();
        }
        s.delete("/dp/b", 0).unwrap();
        assert_eq!(s.delete_prefix("/dp/").unwrap(), 2, "{b}");
        assert!(s.keys("/dp/").unwrap().is_empty(), "{b}");
        assert!(s.get("/dpx").is_ok(), "{b}: outside the prefix untouched");
        assert_eq!(s.delete_prefix("/dp/").unwrap(), 0, "{b}");
    });
}

#[test]
fn bad_input_is_refused_and_loses_nothing() {
    each_store("bad_input", |b, s| {
        s.put("/bad/k", b"keep").unwrap();
        for bad in ["", "/", "bad/k", "/bad/k/", "/bad//k", "/bad/\0k"] {
            assert_eq!(
                kind(s.put(bad, b"x")),
                ErrorKind::InvalidArgument,
                "{b}: {bad:?}"
            );
            assert_eq!(kind(s.get(bad)), ErrorKind::InvalidArgument, "{b}: {bad:?}");
            assert_eq!(
                kind(s.delete(bad, 0)),
                ErrorKind::InvalidArgument,
                "{b}: {bad:?}"
            );
        }
        let too_long = format!("/{}", "x".repeat(1024));
        assert_eq!(
            kind(s.put(&too_long, b"x")),
            ErrorKind::InvalidArgument,
            "{b}"
        );
        assert_eq!(kind(s.keys("nope")), ErrorKind::InvalidArgument, "{b}");
        let big = vec![0u8; s.config().max_value_size + 1];
        assert_eq!(kind(s.put("/bad/k", &big)), ErrorKind::Limit, "{b}");
        assert_eq!(kind(s.update("/bad/k", &big, 1)), ErrorKind::Limit, "{b}");
        assert_eq!(
            &s.get("/bad/k").unwrap().value[..],
            b"keep",
            "{b}: nothing lost"
        );
    });
}

#[test]
fn closed_store_refuses_every_call() {
    each_store("closed", |b, s| {
        s.put("/cl/k", b"v").unwrap();
        s.close();
        s.close();
        assert_eq!(kind(s.put("/cl/k", b"v")), ErrorKind::Closed, "{b}");
        assert_eq!(kind(s.get("/cl/k")), ErrorKind::Closed, "{b}");
        assert_eq!(kind(s.keys("/")), ErrorKind::Closed, "{b}");
        assert_eq!(
            kind(s.read_modify_write("/cl/k", &mut |_| Ok(vec![]))),
            ErrorKind::Closed,
            "{b}"
        );
    });
}

#[test]
fn read_modify_write_sees_current_value_and_aborts_on_error() {
    each_store("rmw", |b, s| {
        let mut seen = Vec::new();
        s.read_modify_write("/rmw/k", &mut |cur| {
            seen.push(cur.map(|e| e.value.to_vec()));
            Ok(b"1".to_vec())
        })
        .unwrap();
        s.read_modify_write("/rmw/k", &mut |cur| {
            seen.push(cur.map(|e| e.value.to_vec()));
            Ok(b"2".to_vec())
        })
        .unwrap();
        assert_eq!(seen, vec![None, Some(b"1".to_vec())], "{b}");
        let err = s
            .read_modify_write("/rmw/k", &mut |_| {
                Err(coordkv::Error::new(ErrorKind::Canceled, "no thanks"))
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Canceled, "{b}");
        assert_eq!(&s.get("/rmw/k").unwrap().value[..], b"2", "{b}");
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
    let threads = 8;
    let per_thread = 500;
    for (b, s) in common::test_stores("rmw_concurrent") {
        let s = Arc::new(s);
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..per_thread {
                        s.read_modify_write("/rc/counter", &mut |cur| {
                            let n: u64 = cur.map_or(0, |e| {
                                std::str::from_utf8(&e.value).unwrap().parse().unwrap()
                            });
                            Ok((n + 1).to_string().into_bytes())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let v = s.get("/rc/counter").unwrap();
        assert_eq!(
            std::str::from_utf8(&v.value).unwrap(),
            (threads * per_thread).to_string(),
            "{b}"
        );
    }
}

#[test]
fn history_is_bounded_by_the_configured_depth() {
    let s = Store::open_json(r#"{"history": 3}"#).unwrap();
    for i in 0..10 {
        s.put("/hb/k", i.to_string().as_bytes()).unwrap();
    }
    let values: Vec<_> = s
        .history("/hb/k")
        .unwrap()
        .iter()
        .map(|e| e.value.to_vec())
        .collect();
    assert_eq!(values, vec![b"7".to_vec(), b"8".to_vec(), b"9".to_vec()]);
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
