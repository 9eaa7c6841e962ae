//! Sets `cfg(live)`, and embeds the XDP object: the file named by
//! `FLOWSCOPE_EBPF_OBJ`, else the one `cargo xtask build` leaves in
//! `target/bpf/`, else nothing (the capture subcommand then says how to get
//! it).
//!
//! The embedded copy is rewritten only when its bytes change, so building
//! with and without the variable does not rebuild the crate each time.
use std::{env, fs, path::PathBuf};

fn main() {
    // `cfg(live)`: the live capture (XDP, AF_XDP, its runtime and
    // subcommands) is built, on Linux with the `live` feature.
    println!("cargo::rustc-check-cfg=cfg(live)");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && env::var_os("CARGO_FEATURE_LIVE").is_some()
    {
        println!("cargo::rustc-cfg=live");
    }
    println!("cargo:rerun-if-env-changed=FLOWSCOPE_EBPF_OBJ");
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let default = manifest.join("../target/bpf/bpfel-unknown-none/release/flowscope");
    let source = env::var_os("FLOWSCOPE_EBPF_OBJ")
        .map(PathBuf::from)
        .unwrap_or(default);
    println!("cargo:rerun-if-changed={}", source.display());
    let bytes = if source.exists() {
        fs::read(&source)
            .unwrap_or_else(|e| panic!("reading the XDP object {}: {e}", source.display()))
    } else if env::var_os("FLOWSCOPE_EBPF_OBJ").is_some() {
        panic!("FLOWSCOPE_EBPF_OBJ={} does not exist", source.display());
    } else {
        Vec::new()
    };
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("flowscope.bpf.o");
    if fs::read(&out).ok().as_deref() != Some(bytes.as_slice()) {
        fs::write(&out, bytes).expect("write the embedded eBPF object");
    }
}
