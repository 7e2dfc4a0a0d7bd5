//! The `msgwire` command: see `msgwire --help`.

mod bench;
mod call;
mod inspect;
mod json;
mod serve;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// MessagePack messaging over byte streams.
///
/// msgwire serves and calls MessagePack RPC in three wire dialects (msgpack-rpc as
/// Neovim speaks it, framed-binary, framed-map) and decodes captures. Run
/// `msgwire <COMMAND> --help` for each command's options. Logs go to stderr; set
/// RUST_LOG (e.g. RUST_LOG=debug) for more.
#[derive(Debug, Parser)]
#[command(name = "msgwire", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the reference services (math, users, orders) over RPC.
    ///
    /// One TCP port speaks all three dialects, detected per connection; --unix adds a
    /// Unix socket. On SIGTERM or Ctrl-C the server stops accepting, lets calls in flight
    /// finish (up to --shutdown-grace), then exits.
    Serve(serve::ServeArgs),
    /// Make one call: JSON arguments in, the JSON result out.
    ///
    /// Exit status 0 with the result on stdout; 1 with "<CODE> (<n>): <message>" on
    /// stderr when the server answers with an error or the call times out; 2 when the
    /// server cannot be reached or the arguments are not JSON.
    ///
    /// Example: msgwire call 127.0.0.1:7420 add 1 2
    Call(call::CallArgs),
    /// Load-test a server: calls/s and latency percentiles, every answer verified.
    ///
    /// Opens --connections connections, keeps --in-flight calls in flight on each, and
    /// runs for --duration seconds or --calls calls. Every answer must equal the first
    /// call's; exit status 1 if any call failed or answered differently.
    Bench(bench::BenchArgs),
    /// Decode a captured byte stream into one JSON line per message.
    ///
    /// Each line is {"offset": <byte offset of the frame>, "length": <payload bytes>,
    /// "value": <payload as JSON>}. MessagePack binary prints as {"$bin": "<base64>"}, a
    /// payload that is not MessagePack as {"$bin": ...} with a "note". WebSocket lines add
    /// "opcode". On corrupt or truncated input, every good message is printed, then one
    /// error line naming the byte offset goes to stderr and the exit status is 1.
    Inspect(inspect::InspectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(&args),
        command => runtime().and_then(|rt| {
            rt.block_on(async move {
                match command {
                    Command::Serve(args) => serve::run(args).await.map(|()| true),
                    Command::Call(args) => call::run(args).await,
                    Command::Bench(args) => bench::run(args).await,
                    Command::Inspect(args) => inspect::run(&args),
                }
            })
        }),
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

/// Writes `text` and a newline to stdout, flushed. A reader that has gone away
/// (`msgwire call … | head -c 10`, a supervisor that closed the pipe) is not an error:
/// the output is not wanted, so it is dropped instead of panicking like `println!`.
pub(crate) fn print_line(text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
