//! Embeds the XDP object when `FLOWSCOPE_EBPF_OBJ` names it.
//!
//! `cargo xtask build|test|run|demo` build the eBPF crate with the nightly and
//! set the variable; a plain `cargo build` embeds nothing and the capture
//! subcommand then says how to get the object. Rebuilds when the variable or
//! the object changes.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=FLOWSCOPE_EBPF_OBJ");
    let out =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("flowscope.bpf.o");
    let bytes = match env::var_os("FLOWSCOPE_EBPF_OBJ") {
        Some(path) => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&path).display());
            fs::read(&path).unwrap_or_else(|e| {
                panic!("FLOWSCOPE_EBPF_OBJ={}: {e}", PathBuf::from(&path).display())
            })
        }
        None => Vec::new(),
    };
    fs::write(&out, bytes).expect("write the embedded eBPF object");
}
