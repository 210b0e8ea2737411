//! Key validation and the NATS key codec, against the shared vectors every language uses,
//! plus a property test that the codec is a bijection; and the same vectors through a
//! store on every backend.

mod common;

use coordkv::key::{from_nats, prefix_to_nats_filter, to_nats, validate_key, validate_prefix};
use coordkv::ErrorKind;
use proptest::prelude::*;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/keys.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn valid_vectors_encode_and_decode() {
    for v in vectors()["valid"].as_array().unwrap() {
        let key = v["key"].as_str().unwrap();
        let nats = v["nats"].as_str().unwrap();
        validate_key(key).unwrap_or_else(|e| panic!("{key:?} should be valid: {e}"));
        assert_eq!(to_nats(key), nats, "encoding of {key:?}");
        assert_eq!(from_nats(nats).unwrap(), key, "decoding of {nats:?}");
    }
}

#[test]
fn invalid_vectors_are_refused_with_invalid_argument() {
    for v in vectors()["invalid"].as_array().unwrap() {
        let bytes = match v.get("key_hex") {
            Some(hex) => hex_bytes(hex.as_str().unwrap()),
            None => v["key"].as_str().unwrap().as_bytes().to_vec(),
        };
        let err = coordkv::key::key_from_bytes(&bytes)
            .expect_err(&format!("{:?} ({}) must be refused", bytes, v["why"]));
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", v["why"]);
        assert!(!err.message().is_empty());
    }
}

#[test]
fn valid_vectors_round_trip_through_every_backend() {
    let mut keys: Vec<String> = vectors()["valid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap().to_string())
        .collect();
    for (b, s) in common::test_stores("key_vectors") {
        for key in &keys {
            let revision = s.put(key, key.as_bytes()).unwrap();
            let e = s.get(key).unwrap();
            assert_eq!(
                (&*e.key, &e.value[..], e.revision),
                (key.as_str(), key.as_bytes(), revision),
                "{b}"
            );
        }
        keys.sort(); // Strings sort byte-wise, as keys list
        assert_eq!(s.keys("/").unwrap(), keys, "{b}");
        s.close();
    }
}

#[test]
fn invalid_vectors_are_refused_by_every_store_call() {
    for (b, s) in common::test_stores("bad_key_vectors") {
        for v in vectors()["invalid"].as_array().unwrap() {
            let bytes = match v.get("key_hex") {
                Some(hex) => hex_bytes(hex.as_str().unwrap()),
                None => v["key"].as_str().unwrap().as_bytes().to_vec(),
            };
            // A &str cannot hold the vectors that are not UTF-8: the type refuses those.
            let Ok(key) = String::from_utf8(bytes) else {
                continue;
            };
            let key = key.as_str();
            let results = [
                ("put", s.put(key, b"x").map(drop)),
                ("get", s.get(key).map(drop)),
                ("create", s.create(key, b"x").map(drop)),
                ("update", s.update(key, b"x", 1).map(drop)),
                ("delete", s.delete(key, 0).map(drop)),
                ("conditional delete", s.delete(key, 1).map(drop)),
                ("purge", s.purge(key).map(drop)),
                ("history", s.history(key).map(drop)),
                (
                    "read_modify_write",
                    s.read_modify_write(key, &mut |_| panic!("the function ran for {key:?}"))
                        .map(drop),
                ),
            ];
            for (call, result) in results {
                let err = result.expect_err(&format!("{b} {call} {}", v["why"]));
                assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{b} {call}");
            }
        }
        assert_eq!(s.last_revision().unwrap(), 0, "{b}: nothing written");
        s.close();
    }
}

#[test]
fn prefix_vectors_give_their_subject_filters() {
    for v in vectors()["prefixes"].as_array().unwrap() {
        let prefix = v["prefix"].as_str().unwrap();
        validate_prefix(prefix).unwrap();
        let filter = prefix_to_nats_filter(prefix);
        assert_eq!(filter.subject, v["filter"].as_str().unwrap(), "{prefix:?}");
        assert_eq!(
            filter.needs_core_filter,
            v["core_filter"].as_bool().unwrap(),
            "{prefix:?}"
        );
    }
}

#[test]
fn malformed_nats_keys_are_not_coordkv_keys() {
    for bad in vectors()["bad_nats"].as_array().unwrap() {
        let bad = bad.as_str().unwrap();
        assert_eq!(
            from_nats(bad).expect_err(bad).kind(),
            ErrorKind::InvalidArgument,
            "{bad:?}"
        );
    }
}

#[test]
fn prefixes_must_start_with_slash() {
    assert!(validate_prefix("/").is_ok());
    assert!(validate_prefix("/nod").is_ok());
    assert_eq!(
        validate_prefix("nodes/").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        validate_prefix("").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

fn segment() -> impl Strategy<Value = String> {
    // Any non-empty text without '/' and NUL: ASCII, punctuation, multi-byte characters.
    "[^/\u{0}]{1,12}"
}

proptest! {
    #[test]
    fn codec_round_trips(segments in proptest::collection::vec(segment(), 1..6)) {
        let key = format!("/{}", segments.join("/"));
        prop_assume!(key.len() <= coordkv::key::MAX_KEY_LEN);
        prop_assert!(validate_key(&key).is_ok());
        let nats = to_nats(&key);
        prop_assert!(nats.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_=.".contains(&b)));
        prop_assert_eq!(from_nats(&nats).unwrap(), key);
    }

    #[test]
    fn aligned_prefix_filter_matches_exactly_the_keys_under_it(
        base in proptest::collection::vec(segment(), 1..4),
        rest in proptest::collection::vec(segment(), 1..3),
    ) {
        let prefix = format!("/{}/", base.join("/"));
        let key = format!("{prefix}{}", rest.join("/"));
        let filter = prefix_to_nats_filter(&prefix);
        let stem = filter.subject.trim_end_matches('>');
        prop_assert!(to_nats(&key).starts_with(stem));
        prop_assert!(!filter.needs_core_filter);
    }
}
