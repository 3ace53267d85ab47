//! Build script: links the two start-path binaries (`portcullis-runc`, the
//! runc gate, and `containerd-shim-portcullis-v2`, the shim wrapper) as
//! non-PIE executables. Every container start execs one of them; as PIEs
//! the dynamic loader first applies tens of thousands of relative
//! relocations, dirtying (and so copying) every page of their relocated
//! data, before `main`. A non-PIE executable has its addresses fixed at
//! link time. The price is that these two binaries' own code and data are
//! not at a random address (libraries, stack and heap still are); the
//! registry-supplied bytes are parsed only in the sandboxed child, under
//! seccomp. BENCHMARKS.md has the measurement. The `portcullis` CLI and the
//! tests stay PIE.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        for bin in ["portcullis-runc", "containerd-shim-portcullis-v2"] {
            println!("cargo:rustc-link-arg-bin={bin}=-no-pie");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
