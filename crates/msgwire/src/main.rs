//! The `msgwire` command: see `msgwire --help`.

mod inspect;
mod json;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// MessagePack messaging over byte streams.
///
/// msgwire frames MessagePack messages on TCP and other byte streams, calls them as RPC,
/// and debugs captures. Run `msgwire <COMMAND> --help` for each command's options.
#[derive(Debug, Parser)]
#[command(name = "msgwire", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the reference services.
    ///
    /// The RPC layer has not landed yet: today this prints what it will serve and exits
    /// with status 0.
    Serve(ServeArgs),
    /// Decode a captured byte stream into one JSON line per message.
    ///
    /// Each line is {"offset": <byte offset of the frame>, "length": <payload bytes>,
    /// "value": <payload as JSON>}. MessagePack binary prints as {"$bin": "<base64>"}, a
    /// payload that is not MessagePack as {"$bin": ...} with a "note". WebSocket lines add
    /// "opcode". On corrupt or truncated input, every good message is printed, then one
    /// error line naming the byte offset goes to stderr and the exit status is 1.
    Inspect(inspect::InspectArgs),
}

/// Options of `msgwire serve`.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address of the RPC listener.
    #[arg(long, default_value = "127.0.0.1:7420")]
    rpc: String,
    /// Address of the HTTP listener (gateway, health, metrics).
    #[arg(long, default_value = "127.0.0.1:7421")]
    http: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            println!(
                "msgwire serve: will serve math, users and orders over RPC on {} and HTTP on {}; \
                 the RPC layer has not landed yet, so nothing is served",
                args.rpc, args.http
            );
            Ok(true)
        }
        Command::Inspect(args) => inspect::run(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("msgwire: {e:#}");
            ExitCode::from(2)
        }
    }
}
