//! `nats://` without a host: the server list comes from NATS_URL, like other NATS tools.
//! Alone in its own test binary because it sets a process-wide environment variable.

mod common;

use common::NatsServer;
use coordkv::Store;

#[test]
fn a_bare_nats_url_reads_nats_url() {
    let server = NatsServer::start_default();
    std::env::set_var("NATS_URL", format!("127.0.0.1:{}", server.port));
    let store = Store::open("nats://").unwrap();
    let rev = store.put("/env/a", b"from NATS_URL").unwrap();
    assert_eq!(store.get("/env/a").unwrap().revision, rev);
    assert_eq!(store.last_revision().unwrap(), rev);
}
