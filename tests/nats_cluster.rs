//! A three-node JetStream cluster on loopback with an R3 bucket: NATS is the replication
//! engine, coordkv only talks to it. Operations work, keep working with one node killed
//! (the client moves to a live node, the stream keeps its quorum), compare-and-swap still
//! reports CONFLICT, and 8 threads x 2,000 read_modify_write increments end at 16,000.

mod common;

use common::{free_port, open_eventually, retry_until, unique_name, NatsOptions, NatsServer};
use coordkv::ErrorKind;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn start_cluster() -> Vec<NatsServer> {
    let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let cluster = unique_name("c");
    (0..3)
        .map(|i| {
            let routes = route_ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| *p)
                .collect();
            NatsServer::start(NatsOptions {
                port: client_ports[i],
                server_name: Some(format!("n{i}")),
                cluster: Some((cluster.clone(), route_ports[i], routes)),
                ..Default::default()
            })
        })
        .collect()
}

#[test]
fn r3_bucket_survives_a_node_and_keeps_cas_exact() {
    let mut nodes = start_cluster();
    let url = format!(
        "nats://{}",
        nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    );
    let json = json!({"url": url, "bucket": unique_name("r3"), "replicas": 3,
                      "request_timeout_ms": 3000});
    // A fresh cluster elects its JetStream meta leader first, and places a three-replica
    // stream only once all three servers have joined it: on a loaded machine that has
    // taken over a minute ("no suitable peers for placement" until then).
    let store = Arc::new(open_eventually(&json.to_string(), Duration::from_secs(180)));

    let r1 = retry_until(Duration::from_secs(30), || store.put("/c/a", b"1"));
    assert_eq!(&store.get("/c/a").unwrap().value[..], b"1");
    let r2 = store.update("/c/a", b"2", r1).unwrap();
    let conflict = store.update("/c/a", b"stale", r1).unwrap_err();
    assert_eq!(conflict.kind(), ErrorKind::Conflict);
    assert_eq!(conflict.current_revision(), r2);

    // Kill the node the client is most likely on, and one more is not needed: R3 keeps a
    // quorum of two.
    nodes[0].kill();
    let r3 = retry_until(Duration::from_secs(60), || store.put("/c/b", b"after kill"));
    assert!(r3 > r2);
    assert_eq!(&store.get("/c/a").unwrap().value[..], b"2");
    // A scan needs an ephemeral consumer, which waits for a JetStream meta leader: the
    // killed node may have been it, so the first scan may time out during the election.
    assert_eq!(
        retry_until(Duration::from_secs(60), || store.keys("/c/")),
        vec!["/c/a", "/c/b"]
    );
    let conflict = store.create("/c/b", b"again").unwrap_err();
    assert_eq!(conflict.kind(), ErrorKind::Conflict);
    assert_eq!(conflict.current_revision(), r3);
    let conflict = store.delete("/c/a", r1).unwrap_err();
    assert_eq!(conflict.kind(), ErrorKind::Conflict);
    assert_eq!(conflict.current_revision(), r2);

    assert_eq!(common::hammer_counter(&store, "/c/counter", 2_000), 16_000);

    // The killed node comes back and catches up; the handle never noticed.
    nodes[0].restart();
    let r4 = retry_until(Duration::from_secs(60), || store.put("/c/c", b"all three"));
    assert!(r4 > r3);
}

#[test]
fn one_node_of_the_cluster_is_enough_to_open() {
    let nodes = start_cluster();
    let json = json!({"servers": [format!("127.0.0.1:{}", nodes[2].port)],
                      "bucket": unique_name("r3one"), "replicas": 3});
    let store = open_eventually(&json.to_string(), Duration::from_secs(60));
    let rev = retry_until(Duration::from_secs(30), || store.put("/one/a", b"x"));
    assert_eq!(store.get("/one/a").unwrap().revision, rev);
}
