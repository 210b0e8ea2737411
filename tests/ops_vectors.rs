//! The shared KV scenarios of tests/vectors/ops.json (its "comment" is the format), run
//! through the core's `Store` on every backend `common::test_stores_with` provides. The
//! C, Python and Go suites run the same file; what only Rust can say stays in
//! tests/store_suite.rs.

mod common;

use coordkv::{Entry, Error, Store};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// How far the server's clock may be from ours when it stamps an entry.
const CLOCK_SLACK_NS: u64 = 5_000_000_000;

fn now_ns() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since_epoch.as_nanos()).unwrap()
}

fn scenarios() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/ops.json");
    let vectors: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    vectors["scenarios"].as_array().unwrap().clone()
}

#[test]
fn every_scenario_on_every_backend() {
    let mut failures = Vec::new();
    let mut runs = 0;
    for scenario in scenarios() {
        let name = scenario["name"].as_str().unwrap();
        // `"history":3`: the config object's fields, as test_stores_with takes them.
        let config = scenario.get("config").map_or(String::new(), |c| {
            let text = c.to_string();
            text[1..text.len() - 1].to_string()
        });
        for (backend, store) in common::test_stores_with(name, &config) {
            runs += 1;
            if let Err(why) = Scenario::new().run(&store, &scenario["steps"]) {
                failures.push(format!("{backend} {name}: {why}"));
            }
            store.close();
        }
    }
    assert!(runs > 0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What a call gave back: the revision of a write, or a result to compare with `expect`.
enum Outcome {
    Written(u64),
    Entries(Vec<Entry>),
    Read(Value),
}

/// One run of one scenario: the revisions its writes named, and what it has seen.
struct Scenario {
    named: HashMap<String, u64>,
    latest: u64,
    started_ns: u64,
}

impl Scenario {
    fn new() -> Scenario {
        Scenario {
            named: HashMap::new(),
            latest: 0,
            started_ns: now_ns(),
        }
    }

    fn run(&mut self, store: &Store, steps: &Value) -> Result<(), String> {
        for (index, step) in steps.as_array().unwrap().iter().enumerate() {
            self.step(store, step)
                .map_err(|why| format!("step {index} {step}: {why}"))?;
        }
        Ok(())
    }

    fn step(&mut self, store: &Store, step: &Value) -> Result<(), String> {
        let mut saw = Vec::new();
        let outcome = self.call(store, step, &mut saw);
        // JSON null: the function was given no live value.
        let want_saw: Vec<Value> = step
            .get("saw")
            .map(|v| {
                v.as_str()
                    .map_or(Value::Null, |text| value_json(text.as_bytes()))
            })
            .into_iter()
            .collect();
        if saw != want_saw {
            return Err(format!("the function saw {saw:?}, want {want_saw:?}"));
        }
        let want_status = step.get("status").map_or("OK", |s| s.as_str().unwrap());
        match outcome {
            Err(e) => self.check_error(step, want_status, &e),
            Ok(_) if want_status != "OK" => Err(format!("succeeded, want {want_status}")),
            Ok(Outcome::Written(revision)) => {
                if revision <= self.latest {
                    return Err(format!("revision {revision} after {}", self.latest));
                }
                self.latest = revision;
                if let Some(name) = step.get("as") {
                    self.named
                        .insert(name.as_str().unwrap().to_string(), revision);
                }
                Ok(())
            }
            Ok(Outcome::Entries(entries)) => {
                let got = self.entries_json(&entries)?;
                let want = self.expected(step)?;
                if got != want {
                    return Err(format!("got {got}, want {want}"));
                }
                Ok(())
            }
            Ok(Outcome::Read(got)) => {
                let want = self.expected(step)?;
                if got != want {
                    return Err(format!("got {got}, want {want}"));
                }
                Ok(())
            }
        }
    }

    /// Makes the step's call; read_modify_write's function records what it saw in `saw`.
    fn call(&self, store: &Store, step: &Value, saw: &mut Vec<Value>) -> coordkv::Result<Outcome> {
        let text = |field: &str| step.get(field).map_or("", |v| v.as_str().unwrap());
        let (key, prefix) = (text("key"), text("prefix"));
        let value = || bytes_of(step.get("value"), step.get("value_hex"));
        let rev = || self.revision(step.get("rev").unwrap_or(&json!(0)));
        use Outcome::{Entries, Read, Written};
        Ok(match step["op"].as_str().unwrap() {
            "put" => Written(store.put(key, &value())?),
            "create" => Written(store.create(key, &value())?),
            "update" => Written(store.update(key, &value(), rev().unwrap())?),
            "delete" => Written(store.delete(key, rev().unwrap())?),
            "purge" => Written(store.purge(key)?),
            "read_modify_write" => Written(store.read_modify_write(key, &mut |current| {
                saw.push(current.map_or(Value::Null, |e| value_json(&e.value)));
                Ok(value())
            })?),
            "get" => Entries(vec![store.get(key)?]),
            "list" => Entries(store.list(prefix)?),
            "history" => Entries(store.history(key)?),
            "keys" => Read(json!(store.keys(prefix)?)),
            "delete_prefix" => Read(json!(store.delete_prefix(prefix)?)),
            "last_revision" => Read(json!(store.last_revision()?)),
            "close" => {
                store.close();
                Read(Value::Null)
            }
            other => panic!("unknown op {other:?}"),
        })
    }

    fn check_error(&self, step: &Value, want_status: &str, e: &Error) -> Result<(), String> {
        let message = e.to_string();
        let want_current = self.revision(step.get("current").unwrap_or(&json!(0)))?;
        let has = step.get("message_has").map_or("", |m| m.as_str().unwrap());
        if e.kind().name() != want_status
            || !message.starts_with(&format!("{want_status}: "))
            || !message.contains(has)
            || e.current_revision() != want_current
        {
            return Err(format!(
                "failed with {message:?} (current revision {}), want {want_status} \
                 containing {has:?} (current revision {want_current})",
                e.current_revision()
            ));
        }
        Ok(())
    }

    /// A revision argument: a number, or "$name" for the revision a write named.
    fn revision(&self, reference: &Value) -> Result<u64, String> {
        match reference.as_str() {
            Some(name) => name
                .strip_prefix('$')
                .and_then(|name| self.named.get(name).copied())
                .ok_or_else(|| format!("no revision named {name:?} yet")),
            None => Ok(reference.as_u64().unwrap()),
        }
    }

    /// The step's `expect`, in the form `step` compares results (get's entry in a list).
    fn expected(&self, step: &Value) -> Result<Value, String> {
        let expect = step.get("expect").unwrap_or(&Value::Null);
        let entry = |e: &Value| -> Result<Value, String> {
            let key = e.get("key").or(step.get("key")).unwrap();
            Ok(json!({
                "key": key,
                "value": value_json(&bytes_of(e.get("value"), e.get("value_hex"))),
                "rev": self.revision(&e["rev"])?,
                "op": e["op"],
            }))
        };
        match step["op"].as_str().unwrap() {
            "get" => Ok(json!([entry(expect)?])),
            "list" | "history" => expect.as_array().unwrap().iter().map(entry).collect(),
            "last_revision" => Ok(json!(self.revision(expect)?)),
            _ => Ok(expect.clone()),
        }
    }

    /// An entry as `expected` spells one; its timestamp must fall within the run.
    fn entry_json(&self, e: &Entry) -> Result<Value, String> {
        let (earliest, latest) = (self.started_ns - CLOCK_SLACK_NS, now_ns() + CLOCK_SLACK_NS);
        if !(earliest..=latest).contains(&e.timestamp_ns) {
            return Err(format!("{} has timestamp {}", e.key, e.timestamp_ns));
        }
        Ok(json!({
            "key": &*e.key,
            "value": value_json(&e.value),
            "rev": e.revision,
            "op": e.operation.name(),
        }))
    }

    fn entries_json(&self, entries: &[Entry]) -> Result<Value, String> {
        entries.iter().map(|e| self.entry_json(e)).collect()
    }
}

/// The bytes of a `value` (text) or `value_hex` field; neither is the empty value.
fn bytes_of(text: Option<&Value>, hex: Option<&Value>) -> Vec<u8> {
    match (text.and_then(Value::as_str), hex.and_then(Value::as_str)) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(hex)) => (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect(),
        (None, None) => Vec::new(),
    }
}

/// Bytes as comparable (and readable) JSON: the text when it is UTF-8, else hex.
fn value_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!(text),
        Err(_) => json!({ "hex": bytes.iter().map(|b| format!("{b:02x}")).collect::<String>() }),
    }
}
