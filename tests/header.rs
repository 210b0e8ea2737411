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
