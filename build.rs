//! Build script: links the two start-path binaries (`portcullis-runc`, the
//! runc gate, and `containerd-shim-portcullis-v2`, the shim wrapper) as
//! non-PIE executables. Every container start execs one of them; as PIEs
//! the dynamic loader first applies tens of thousands of relative
//! relocations, dirtying (and so copying) every page of their relocated
//! data, before `main`. A non-PIE executable has its addresses fixed at
//! link time. The price is that these two binaries' own code and data are
//! not at a random address (libraries, stack, heap and mappings still
//! are); the registry-supplied bytes are parsed only in the sandboxed
//! child, under seccomp. BENCHMARKS.md has the measurement. The
//! `portcullis` CLI and the tests stay PIE.
//!
//! A statically linked build (`crt-static`, as `packaging/build-gates`
//! makes the shipped binaries for musl, with the C library's code then also
//! at a fixed address) gets nothing from here: rustc chooses between a static PIE and
//! `-static -no-pie` from the relocation model, and `-no-pie` added to a
//! static PIE's link yields a binary that crashes at its first instruction.

fn main() {
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    // Only glibc: musl targets link statically by default, and cargo does
    // not always list that default in CARGO_CFG_TARGET_FEATURE (a test
    // build for musl without RUSTFLAGS saw none, and its `-no-pie` gates
    // crashed in musl's static-PIE start code).
    let glibc = std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    let crt_static = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|f| f.split(',').any(|f| f == "crt-static"));
    if linux && glibc && !crt_static {
        for bin in ["portcullis-runc", "containerd-shim-portcullis-v2"] {
            println!("cargo:rustc-link-arg-bin={bin}=-no-pie");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
