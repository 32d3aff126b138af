//! `bench`: the benchmark suite (work in progress).
fn main() {}
