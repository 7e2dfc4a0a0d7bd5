//! The `msgwire` command.

use clap::{Parser, Subcommand};

/// MessagePack messaging over byte streams.
#[derive(Debug, Parser)]
#[command(name = "msgwire", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the reference services (RPC arrives with the RPC layer; today this prints
    /// what it will serve and exits).
    Serve,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => {
            println!("msgwire serve: nothing to serve yet");
            Ok(())
        }
    }
}
