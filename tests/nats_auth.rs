//! Errors a user can act on, from servers configured to refuse: wrong credentials are
//! UNAUTHORIZED, a subject the user may not publish to is PERMISSION_DENIED naming it,
//! a server without JetStream is UNAVAILABLE saying so — each as the call's own error.

mod common;

use common::{unique_name, NatsOptions, NatsServer};
use coordkv::{ErrorKind, Store};
use serde_json::json;

fn open(url: &str, auth: serde_json::Value) -> coordkv::Result<Store> {
    Store::open_json(
        &json!({"url": url, "bucket": unique_name("auth"), "auth": auth, "connect_timeout_ms": 20000})
            .to_string(),
    )
}

#[test]
fn user_and_password() {
    let server = NatsServer::start(NatsOptions {
        user_password: Some(("alice".into(), "s3cret".into())),
        ..Default::default()
    });
    let store = open(
        &server.url(),
        json!({"user": "alice", "password": "s3cret"}),
    )
    .unwrap();
    let rev = store.put("/auth/ok", b"1").unwrap();
    assert_eq!(store.get("/auth/ok").unwrap().revision, rev);

    let wrong = open(&server.url(), json!({"user": "alice", "password": "nope"}));
    assert_eq!(wrong.err().unwrap().kind(), ErrorKind::Unauthorized);
    let none = open(&server.url(), json!({}));
    assert_eq!(none.err().unwrap().kind(), ErrorKind::Unauthorized);
}

#[test]
fn token() {
    let server = NatsServer::start(NatsOptions {
        token: Some("t0ken".into()),
        ..Default::default()
    });
    let store = open(&server.url(), json!({"token": "t0ken"})).unwrap();
    store.put("/auth/token", b"1").unwrap();
    let wrong = open(&server.url(), json!({"token": "other"}));
    let err = wrong.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
}

#[test]
fn a_subject_the_user_may_not_publish_to_is_permission_denied() {
    let server = NatsServer::start(NatsOptions {
        extra_config: r#"
authorization {
  users: [
    { user: admin, password: a }
    { user: reader, password: r, permissions: {
        publish: { allow: ["$JS.API.>"], deny: ["$KV.>"] }
        subscribe: { allow: ["_INBOX.>"] }
    } }
  ]
}
"#
        .into(),
        ..Default::default()
    });
    let bucket = unique_name("perm");
    let with = |user: &str, password: &str| {
        Store::open_json(
            &json!({"url": server.url(), "bucket": bucket,
                    "auth": {"user": user, "password": password}})
            .to_string(),
        )
    };
    let admin = with("admin", "a").unwrap();
    let rev = admin.put("/perm/k", b"v").unwrap();

    let reader = with("reader", "r").unwrap();
    assert_eq!(
        reader.get("/perm/k").unwrap().revision,
        rev,
        "reads are allowed"
    );
    let err = reader.put("/perm/k", b"w").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(
        err.message().contains(&format!("$KV.{bucket}.perm.k")),
        "names the subject: {err}"
    );
    assert_eq!(
        &admin.get("/perm/k").unwrap().value[..],
        b"v",
        "nothing written"
    );
    // The connection survives a violation.
    assert_eq!(reader.get("/perm/k").unwrap().revision, rev);
}

#[test]
fn a_server_without_jetstream_is_unavailable_and_says_so() {
    let server = NatsServer::start(NatsOptions {
        no_jetstream: true,
        ..Default::default()
    });
    let err = open(&server.url(), json!({})).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains("JetStream"), "{err}");
}
