//! 1,000 callback watches are served by a small fixed pool of library threads, not one
//! thread per watch, and each still sees every write to its prefix, in order. Alone in
//! its own test binary so the process's thread count is this test's.

mod common;
mod watch_support;

use common::test_stores_with;
use coordkv::{Event, WatchOptions};
use std::sync::{Arc, Mutex};
use watch_support::eventually;

/// Threads named by coordkv: delivery pool, progress ticker, runtime workers.
fn library_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("coordkv"))
        .count()
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn a_thousand_callback_watches_run_on_a_bounded_number_of_threads() {
    for (backend, store) in test_stores_with("callbacks", "") {
        let threads_before = thread_count();
        let seen: Arc<Vec<Mutex<Vec<u64>>>> =
            Arc::new((0..1000).map(|_| Mutex::new(Vec::new())).collect());
        let watches: Vec<_> = (0..1000)
            .map(|i| {
                let seen = seen.clone();
                store
                    .watch_callback(
                        &format!("/cb/{}", i % 10),
                        WatchOptions {
                            prefix: true,
                            ..WatchOptions::default()
                        },
                        move |e: &Event| seen[i].lock().unwrap().push(e.revision),
                    )
                    .unwrap()
            })
            .collect();
        let mut written = vec![Vec::new(); 10];
        for n in 0..50 {
            for (p, revs) in written.iter_mut().enumerate() {
                revs.push(store.put(&format!("/cb/{p}/k{n}"), b"v").unwrap());
            }
        }
        let peak = thread_count();
        eventually("every callback watch to see every write", || {
            (0..1000).all(|i| seen[i].lock().unwrap().len() == 50)
        });
        for i in 0..1000 {
            assert_eq!(
                *seen[i].lock().unwrap(),
                written[i % 10],
                "{backend} watch {i}"
            );
        }
        // The delivery pool and the runtime are a few threads, not one per watch.
        let added = thread_count().max(peak).saturating_sub(threads_before);
        assert!(
            added <= 8,
            "{added} threads added for 1,000 callback watches"
        );
        let library = library_threads();
        assert!(
            library <= 4,
            "{library} coordkv threads for 1,000 callback watches"
        );
        drop(watches);
        assert_eq!(store.watcher_count(), 0);
    }
}
