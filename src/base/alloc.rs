//! The memory allocator of whatever is built for musl: the two gates, as
//! `packaging/build-gates` ships them. musl's own allocator maps and unmaps
//! memory as a start allocates and frees it (59 `mmap`/`munmap` calls in a
//! warm create when measured). talc instead takes blocks of at least 1 MiB
//! from it and hands them back only once empty: a warm runc-gate create then
//! makes 13 memory calls and runs 13 % fewer instructions, with 8 fewer
//! page faults, and a cold keyless start about 96 fewer (BENCHMARKS.md,
//! "The start-path binaries on musl").
//! The spin lock makes the allocator `Sync`; the gates are single-threaded,
//! so it is never contended there. On glibc nothing changes.

#[global_allocator]
static ALLOCATOR: talc::TalcLock<
    spinning_top::RawSpinlock,
    talc::source::GlobalAllocSource<std::alloc::System>,
> = talc::TalcLock::new(talc::source::GlobalAllocSource::new(std::alloc::System));
