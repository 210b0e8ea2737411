//! Generates include/coordkv.h from src/ffi with cbindgen, so the header can never drift
//! from the code. The header is committed; tests/header.rs fails when they differ.

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let crate_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    let out = std::path::Path::new(&crate_dir)
        .join("target")
        .join("coordkv.h");
    // Only src/ffi is the ABI: the core's own enums and constants stay out of the header.
    // Only src/ffi is the ABI (cbindgen follows its `mod` items): the core's own enums and
    // constants stay out of the header.
    let builder = cbindgen::Builder::new()
        .with_config(config)
        .with_src(format!("{crate_dir}/src/ffi/mod.rs"));
    match builder.generate() {
        Ok(bindings) => {
            bindings.write_to_file(&out);
            // Keep include/coordkv.h current in a developer tree; CI compares, never writes.
            if std::env::var_os("COORDKV_CHECK_HEADER").is_none() {
                bindings.write_to_file(format!("{crate_dir}/include/coordkv.h"));
            }
        }
        Err(e) => println!("cargo:warning=cbindgen could not generate the header: {e}"),
    }
}
