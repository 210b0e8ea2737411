//! The watcher index: which watchers does a write to `key` concern?
//!
//! Exact-key watchers live in a map by key. Prefix watchers live in a map by their
//! segment-aligned directory: `/nodes/` under `/nodes/`, and a non-aligned prefix such as
//! `/nodes/n-1` under its aligned parent `/nodes/`, where the byte-wise match is checked.
//! A lookup walks the key's own directories (`/`, `/nodes/`, … — one per path segment)
//! plus the exact map, so its cost follows the key's depth and the number of watchers
//! that sit on those directories, never the total number of watchers.
//!
//! Generic over what is stored so the lookup can be tested on its own.
//!
//! Each directory (and each exact key) holds its watchers in a plain vector, and every id
//! remembers where it is filed and at which index, so removal is a swap with the last one.
//! A dispatch touches the key's directory entries and those vectors, nothing per watcher
//! beyond the ones it delivers to: an aligned prefix matches by its length alone, without
//! reading its text.

use hashbrown::hash_map::EntryRef;
use hashbrown::HashMap;

struct Registered<T> {
    id: u64,
    /// The watched prefix (for an aligned prefix, the same as the bucket's directory).
    prefix: Box<str>,
    value: T,
}

/// Where a registered id is filed, so removal is a direct lookup.
struct Filed {
    /// The exact key, or the prefix's directory.
    bucket: Box<str>,
    prefix: bool,
    /// Its position in that bucket's vector.
    index: usize,
}

pub struct Registry<T> {
    exact: HashMap<Box<str>, Vec<Registered<T>>>,
    by_directory: HashMap<Box<str>, Vec<Registered<T>>>,
    filed: HashMap<u64, Filed>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry {
            exact: HashMap::new(),
            by_directory: HashMap::new(),
            filed: HashMap::new(),
        }
    }
}

/// The segment-aligned directory a prefix is filed under: up to and including its last '/'.
fn directory_of(prefix: &str) -> &str {
    match prefix.rfind('/') {
        Some(i) => &prefix[..=i],
        None => "/",
    }
}

impl<T> Registry<T> {
    pub fn len(&self) -> usize {
        self.filed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filed.is_empty()
    }

    /// Files `value` under `id` for an exact key or a prefix. `id` must be unused.
    pub fn insert(&mut self, id: u64, target: &str, prefix: bool, value: T) {
        let (map, bucket) = if prefix {
            (&mut self.by_directory, directory_of(target))
        } else {
            (&mut self.exact, target)
        };
        let filed = match map.entry_ref(bucket) {
            EntryRef::Occupied(o) => o.into_mut(),
            EntryRef::Vacant(v) => v.insert_with_key(bucket.into(), Vec::new()),
        };
        filed.push(Registered {
            id,
            prefix: target.into(),
            value,
        });
        self.filed.insert(
            id,
            Filed {
                bucket: bucket.into(),
                prefix,
                index: filed.len() - 1,
            },
        );
    }

    /// Unfiles `id`; returns its value if it was registered.
    pub fn remove(&mut self, id: u64) -> Option<T> {
        let Filed {
            bucket,
            prefix,
            index,
        } = self.filed.remove(&id)?;
        let map = if prefix {
            &mut self.by_directory
        } else {
            &mut self.exact
        };
        let filed = map.get_mut(&bucket)?;
        let removed = filed.swap_remove(index);
        if let Some(moved) = filed.get(index) {
            if let Some(f) = self.filed.get_mut(&moved.id) {
                f.index = index;
            }
        }
        if filed.is_empty() {
            map.remove(&bucket);
        }
        Some(removed.value)
    }

    /// Calls `visit` with every value registered for a key or prefix that matches `key`.
    /// Returns how many registrations were examined (the lookup's cost).
    pub fn for_each_match(&self, key: &str, mut visit: impl FnMut(u64, &T)) -> usize {
        let mut examined = 0;
        if let Some(filed) = self.exact.get(key) {
            for registered in filed {
                examined += 1;
                visit(registered.id, &registered.value);
            }
        }
        if self.by_directory.is_empty() {
            return examined;
        }
        for (i, byte) in key.bytes().enumerate() {
            if byte != b'/' {
                continue;
            }
            let Some(filed) = self.by_directory.get(&key[..=i]) else {
                continue;
            };
            for registered in filed {
                examined += 1;
                // An aligned prefix is its directory, which `key` starts with.
                if registered.prefix.len() == i + 1 || key.starts_with(&*registered.prefix) {
                    visit(registered.id, &registered.value);
                }
            }
        }
        examined
    }

    /// Calls `visit` with every registered value, whatever its target.
    pub fn for_each(&self, mut visit: impl FnMut(u64, &T)) {
        for filed in self.exact.values().chain(self.by_directory.values()) {
            for registered in filed {
                visit(registered.id, &registered.value);
            }
        }
    }

    /// Every registered value, for shutdown.
    pub fn drain(&mut self) -> Vec<T> {
        self.filed.clear();
        self.exact
            .drain()
            .chain(self.by_directory.drain())
            .flat_map(|(_, filed)| filed.into_iter().map(|r| r.value))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(registry: &Registry<u64>, key: &str) -> (Vec<u64>, usize) {
        let mut found = Vec::new();
        let examined = registry.for_each_match(key, |id, _| found.push(id));
        found.sort_unstable();
        (found, examined)
    }

    #[test]
    fn lookup_among_100_000_watchers_examines_only_the_key_path() {
        let mut registry = Registry::default();
        let mut id = 0;
        // 99,990 unrelated watchers: exact keys and aligned prefixes spread over a tree.
        for a in 0..300 {
            for b in 0..333 {
                let prefix = b % 2 == 0;
                let target = if prefix {
                    format!("/svc{a}/node{b}/")
                } else {
                    format!("/svc{a}/node{b}")
                };
                registry.insert(id, &target, prefix, id);
                id += 1;
            }
        }
        let base = id;
        // The watchers that concern /svc7/node8/cfg, and near misses that must not match.
        let wanted = [
            ("/", true),
            ("/svc7/", true),
            ("/svc7/node8/", true),
            ("/svc7/node8/cfg", false),
            ("/sv", true),
            ("/svc7/no", true),
            ("/svc7/node8/cf", true),
        ];
        let unwanted = [
            ("/svc7/node8/cfg2", false),
            ("/svc7/node8/cfg/", true),
            ("/svc70/", true),
        ];
        for (i, (target, prefix)) in wanted.iter().chain(unwanted.iter()).enumerate() {
            registry.insert(base + i as u64, target, *prefix, base + i as u64);
        }
        assert_eq!(registry.len(), 99_900 + wanted.len() + unwanted.len());
        // /svc7/node8/ is also one of the 99,900 (b = 8 is even): it matches too.
        let (found, examined) = matches(&registry, "/svc7/node8/cfg");
        let mut expected: Vec<u64> = (0..wanted.len() as u64).map(|i| base + i).collect();
        expected.push(7 * 333 + 8);
        expected.sort_unstable();
        assert_eq!(found, expected);
        // Examined: the exact bucket of the key (1), and the buckets of its directories
        // "/" (/, /sv), "/svc7/" (/svc7/, /svc7/no), "/svc7/node8/" (the spread's
        // /svc7/node8/, ours, and /svc7/node8/cf) — never the other ~99,900.
        assert_eq!(
            examined,
            1 + 2 + 2 + 3,
            "lookup examined {examined} registrations"
        );
    }

    #[test]
    fn remove_unfiles_and_empty_buckets_disappear() {
        let mut registry = Registry::default();
        registry.insert(1, "/a/b", false, "exact");
        registry.insert(2, "/a/", true, "aligned");
        registry.insert(3, "/a/x", true, "bytewise");
        assert_eq!(registry.remove(2), Some("aligned"));
        assert_eq!(registry.remove(2), None);
        let mut seen = Vec::new();
        registry.for_each_match("/a/b", |_, v| seen.push(*v));
        assert_eq!(seen, vec!["exact"]);
        seen.clear();
        registry.for_each_match("/a/xy", |_, v| seen.push(*v));
        assert_eq!(seen, vec!["bytewise"]);
        assert_eq!(registry.remove(1), Some("exact"));
        assert_eq!(registry.remove(3), Some("bytewise"));
        assert!(registry.is_empty());
        assert!(registry.exact.is_empty() && registry.by_directory.is_empty());
    }

    #[test]
    fn removal_from_the_middle_keeps_every_other_watcher_findable() {
        let mut registry = Registry::default();
        for id in 0..5 {
            registry.insert(id, "/d/", true, id);
            registry.insert(10 + id, "/d/k", false, 10 + id);
        }
        // Each removal swaps the last one into the hole; the moved ones must stay removable.
        for gone in [0, 11, 2, 14, 4] {
            assert_eq!(registry.remove(gone), Some(gone));
        }
        let (found, _) = matches(&registry, "/d/k");
        assert_eq!(found, vec![1, 3, 10, 12, 13]);
        for id in [1, 3, 10, 12, 13] {
            assert_eq!(registry.remove(id), Some(id), "watcher {id}");
        }
        assert!(registry.is_empty());
        assert!(registry.exact.is_empty() && registry.by_directory.is_empty());
    }
}
