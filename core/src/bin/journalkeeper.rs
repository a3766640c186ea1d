//! The `journalkeeper` command line: demo, bench, and (with the cluster) server and client commands.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "journalkeeper",
    version,
    about = "JournalKeeper-rs node, demo and tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo.
    Demo,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => println!(
            "journalkeeper {}: demo not yet implemented",
            journalkeeper::VERSION
        ),
    }
}
