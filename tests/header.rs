//! The committed header must be exactly what cbindgen generates from src/ffi today.
//! (build.rs rewrites include/coordkv.h in a developer tree; CI sets COORDKV_CHECK_HEADER=1
//! so the build leaves the committed file alone and this test sees any drift.)

#[test]
fn committed_header_matches_generated() {
    let root = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{root}/cbindgen.toml")).unwrap();
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(format!("{root}/src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let committed = std::fs::read(format!("{root}/include/coordkv.h")).unwrap();
    assert!(
        generated == committed,
        "include/coordkv.h differs from the header generated from src/ffi: run `cargo build` and commit it"
    );
}

/// The header's status constants are exactly `CKV_OK` and one per `ErrorKind`, each with
/// the kind's code and named as the kind (the build already checks the other direction).
#[test]
fn header_statuses_are_the_error_kinds() {
    let root = env!("CARGO_MANIFEST_DIR");
    let header = std::fs::read_to_string(format!("{root}/include/coordkv.h")).unwrap();
    let mut statuses = std::collections::BTreeMap::new();
    for line in header.lines() {
        let mut words = line.split_whitespace();
        if let (Some("#define"), Some(name), Some(value)) =
            (words.next(), words.next(), words.next())
        {
            let groups = ["CKV_EVENT_", "CKV_CANCEL_", "CKV_OP_"];
            if name.starts_with("CKV_") && !groups.iter().any(|g| name.starts_with(g)) {
                statuses.insert(name.to_string(), value.parse::<i32>().unwrap());
            }
        }
    }
    let mut expected: std::collections::BTreeMap<String, i32> = coordkv::ErrorKind::ALL
        .iter()
        .map(|k| (format!("CKV_{}", k.name()), *k as i32))
        .collect();
    expected.insert("CKV_OK".to_string(), 0);
    assert_eq!(statuses, expected);
}
