//! One module per subcommand: each has `Args` (clap) and `run(args, ctx)`.

pub mod bench;
pub mod bus;
pub mod demo;
pub mod gen;
pub mod ingest;
pub mod parity;
pub mod replay;
pub mod run;
pub mod sort;

use crate::cli::{Command, Ctx};

/// Dispatch a parsed command.
pub fn run(command: Command, ctx: &Ctx) -> anyhow::Result<()> {
    match command {
        Command::Demo(a) => demo::run(a, ctx),
        Command::Gen(a) => gen::run(a, ctx),
        Command::Run(a) => self::run::run(a, ctx),
        Command::Sort(a) => sort::run(a, ctx),
        Command::Bus(c) => bus::run(c, ctx),
        Command::Bench(c) => bench::run(c, ctx),
        Command::Replay(a) => replay::run(a, ctx),
        Command::Ingest(c) => ingest::run(c, ctx),
        Command::Parity(c) => parity::run(c, ctx),
    }
}
