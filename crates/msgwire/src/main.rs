//! The `msgwire` command: see `msgwire --help`.

mod backends;
mod bench;
mod call;
mod files;
mod gateway;
mod inspect;
mod kafka;
mod serve;
mod stream;
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

// Parsed once at start: the size of the largest variant (serve's flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the reference services (math, users, orders, files, chat, events, chunked)
    /// over RPC.
    ///
    /// One TCP port speaks all three dialects, detected per connection; --unix adds a
    /// Unix socket. On SIGTERM or Ctrl-C the server stops accepting, lets calls in flight
    /// finish (up to --shutdown-grace), then exits.
    Serve(serve::ServeArgs),
    /// Serve the HTTP side alone, forwarding to the services in other processes.
    ///
    /// The same endpoints as `msgwire serve --http` (JSON and MessagePack, POST
    /// /rpc/METHOD, /health, /metrics), each call sent over RPC to the upstream named for
    /// its service, with a pool of connections per upstream, a per-call timeout and
    /// bounded retries after connection failures. An upstream that cannot be reached
    /// answers 502 and shows in /health as down (503) until it is back; the gateway
    /// reconnects by itself.
    ///
    /// Example: msgwire gateway --http 0.0.0.0:8080 --upstream users=127.0.0.1:7430
    /// --upstream orders=127.0.0.1:7440
    Gateway(gateway::GatewayArgs),
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
    /// Call a server stream and print each item as a JSON line until it ends.
    ///
    /// Exit status 0 when the stream ends normally (--result prints its final result as
    /// a last line {"result": ...}); a per-item error is printed as a line
    /// {"error": {"code", "name", "message"}} and the stream goes on; 1 with
    /// "<CODE> (<n>): <message>" on stderr when it ends with an error; 130 on Ctrl-C,
    /// which cancels the stream (the server drops its handler); 2 when the server cannot
    /// be reached or the arguments are not JSON.
    ///
    /// Example: msgwire stream 127.0.0.1:7420 subscribeEvents 42 '["login"]'
    Stream(stream::StreamArgs),
    /// Upload a file to the `upload` service; prints {"file_id", ...} as JSON.
    ///
    /// The sha256 is computed first and sent with the metadata; the server stores the
    /// file only if it matches (else DATA_LOSS, exit status 1). A progress bar is drawn
    /// on stderr when it is a terminal.
    Upload(files::UploadArgs),
    /// Download a file from the `download` service into OUT.
    ///
    /// Chunks are checked for order, and size and sha256 against the server's file
    /// info; OUT appears only once all of it checked out (exit status 1 otherwise,
    /// nothing left behind).
    Download(files::DownloadArgs),
    /// JSON lines in and out of a Kafka topic, MessagePack on the wire (like kcat).
    ///
    /// `produce` appends each JSON line from stdin as one MessagePack record and
    /// counts it once the broker acknowledged it; `consume` prints records as JSON
    /// lines {"partition", "offset", "key", "timestamp", "value"}. The broker is
    /// --brokers, else $MSGWIRE_KAFKA, else 127.0.0.1:9092.
    ///
    /// Example: msgwire kafka consume msgwire.events --from-beginning --exit
    Kafka(kafka::KafkaArgs),
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
    let status = |ok: bool| u8::from(!ok);
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(&args).map(status),
        command => runtime().and_then(|rt| {
            rt.block_on(async move {
                match command {
                    Command::Serve(args) => serve::run(args).await.map(|()| 0),
                    Command::Gateway(args) => gateway::run(args).await.map(|()| 0),
                    Command::Call(args) => call::run(args).await.map(status),
                    Command::Bench(args) => bench::run(args).await.map(status),
                    Command::Inspect(args) => inspect::run(&args).map(status),
                    Command::Stream(args) => stream::run(args).await,
                    Command::Upload(args) => files::upload(args).await,
                    Command::Download(args) => files::download(args).await,
                    Command::Kafka(args) => kafka::run(args).await,
                }
            })
        }),
    };
    match result {
        Ok(code) => ExitCode::from(code),
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
