//! The NATS backend when things go wrong, and under contention: no server, a server that
//! accepts the TCP connection but never speaks, a server killed with SIGKILL and restarted
//! under a live handle, and eight threads racing compare-and-swap on one key.

mod common;

use common::{retry_until, unique_name, NatsOptions, NatsServer};
use coordkv::{ErrorKind, Store};
use serde_json::json;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn nothing_listening_is_unavailable() {
    let port = common::free_port();
    let err = Store::open(&format!("nats://127.0.0.1:{port}"))
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[test]
fn a_server_that_never_answers_is_unavailable_after_the_connect_timeout() {
    // Accepts TCP (the kernel completes the handshake from the backlog) but never sends
    // INFO: only the connect timeout can end this.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let json = json!({"url": format!("nats://127.0.0.1:{port}"), "connect_timeout_ms": 300});
    let err = Store::open_json(&json.to_string()).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    drop(silent);
}

#[test]
fn several_urls_reach_the_one_that_is_up() {
    let server = NatsServer::start_default();
    let dead = common::free_port();
    let json = json!({
        "url": format!("nats://127.0.0.1:{dead},127.0.0.1:{}", server.port),
        "bucket": unique_name("multi"),
    });
    let store = Store::open_json(&json.to_string()).unwrap();
    store.put("/multi/a", b"1").unwrap();
    assert_eq!(&store.get("/multi/a").unwrap().value[..], b"1");
}

#[test]
fn a_live_handle_survives_kill_9_and_restart() {
    let mut server = NatsServer::start(NatsOptions::default());
    let json = json!({
        "url": server.url(), "bucket": unique_name("restart"),
        "request_timeout_ms": 1000,
    });
    let store = Store::open_json(&json.to_string()).unwrap();
    let before = store.put("/r/a", b"before").unwrap();

    server.kill();
    let down = store.put("/r/a", b"while down").unwrap_err();
    assert!(
        matches!(down.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{down}"
    );
    let down = store.get("/r/a").unwrap_err();
    assert!(
        matches!(down.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{down}"
    );

    server.restart();
    // File storage survives the crash; the same handle reconnects by itself.
    let entry = retry_until(Duration::from_secs(30), || store.get("/r/a"));
    assert!(entry.revision >= before);
    let after = retry_until(Duration::from_secs(30), || store.put("/r/b", b"after"));
    assert!(after > before);
    assert_eq!(&store.get("/r/b").unwrap().value[..], b"after");
    assert!(store.keys("/r/").unwrap().contains(&"/r/b".to_string()));
    let conflict = store.update("/r/b", b"stale", before).unwrap_err();
    assert_eq!(conflict.kind(), ErrorKind::Conflict);
    assert_eq!(conflict.current_revision(), after);
}

#[test]
fn eight_threads_times_2000_increments_on_r1_end_at_16000() {
    let server = NatsServer::start_default();
    let json = json!({"url": server.url(), "bucket": unique_name("rmw_r1")});
    let store = Arc::new(Store::open_json(&json.to_string()).unwrap());
    assert_eq!(common::hammer_counter(&store, "/counter", 2_000), 16_000);
}
