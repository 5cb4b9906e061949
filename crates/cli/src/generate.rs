//! `toll gen`: seeded generators for large tariffs and event files (benchmarks, load tests).
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum GenCmd {}

pub fn run(cmd: &GenCmd) -> anyhow::Result<ExitCode> {
    match *cmd {}
}
