//! The `toll` command line, as a library so that tests and benchmarks drive the same code.

pub mod admin;
pub mod bill_cmd;
pub mod chargefile;
pub mod demo_cmd;
pub mod demo_data;
pub mod generate;
pub mod importfile;
pub mod load;
pub mod ratefile;
pub mod rerate_cmd;
pub mod serve;
pub mod stream_cmd;
pub mod suspense_cmd;
pub mod user_cmd;

/// Rating's text-to-event and explanation views, kept under their old paths for the CLI's modules.
pub use toll_rating::{event_text as event_args, view};
