//! Test support shared by the Rust integration tests: which stores a shared suite runs on.
//! mem:// always; the NATS backend adds its stores here.

#![allow(dead_code)]

use coordkv::Store;

/// The stores a backend-parametrized test runs against, each with a label for messages.
pub fn test_stores(_name: &str) -> Vec<(String, Store)> {
    vec![(
        "mem".to_string(),
        Store::open("mem://").expect("mem:// opens"),
    )]
}
