//! The `toll` command line, as a library so that tests and benchmarks drive the same code.

pub mod admin;
pub mod chargefile;
pub mod demo_data;
pub mod event_args;
pub mod generate;
pub mod importfile;
pub mod load;
pub mod ratefile;
pub mod rerate_cmd;
pub mod serve;
pub mod stream_cmd;
pub mod suspense_cmd;
pub mod view;
