//! The integration tests, as one test binary: each file is a module. One binary links Burn
//! once instead of once per file (see BENCHMARKS.md, "Build time"). Run one group with
//! `cargo test --features ... -- stability::`.

mod common;

mod bad_input;
mod cross_device;
mod data;
mod distiller;
mod download;
mod example;
mod experiment;
mod fair_loop;
mod frozen_teachers;
mod generic_inputs;
mod helpers;
mod loss;
mod models;
mod placement;
mod prescreen_cache;
mod properties;
mod pytorch;
mod real_data;
mod selector;
mod stability;
mod toolkit;
mod training;
