//! `msgwire call`: one call, JSON in, JSON out.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use msgwire_rpc::{CallError, CallOptions, Dialect, Value};

use crate::target::Target;
use msgwire_http::json::{from_json, to_json};

/// What `msgwire call`, `bench` and `stream` all take: where, which method, which
/// arguments, in which dialect.
#[derive(Debug, Args)]
pub struct RequestSpec {
    /// The server: HOST:PORT, or unix:PATH for a Unix socket.
    #[arg(value_name = "ADDR")]
    pub target: Target,

    /// The method to call.
    #[arg(value_name = "METHOD")]
    pub method: String,

    /// Arguments, each one JSON value (quote strings: '"Alice"'). They are sent as
    /// positional params; with --named, give one JSON object to send named params.
    /// {"$bin": "<base64>"} sends MessagePack binary.
    #[arg(value_name = "ARG", allow_negative_numbers = true)]
    pub args: Vec<String>,

    /// Wire dialect. msgpack-rpc (the default) also talks to Neovim (`nvim --listen`).
    #[arg(long, value_name = "DIALECT", default_value = "msgpack-rpc", value_parser = parse_dialect)]
    pub dialect: Dialect,

    /// Send the single ARG, a JSON object, as named params (a map) instead of an array.
    #[arg(long)]
    pub named: bool,
}

impl RequestSpec {
    /// The params the ARGs stand for.
    pub fn params(&self) -> anyhow::Result<Value> {
        params(&self.args, self.named)
    }
}

/// What `msgwire call` and `msgwire bench` both take: the request, with a deadline.
#[derive(Debug, Args)]
pub struct CallSpec {
    #[command(flatten)]
    pub request: RequestSpec,

    /// Give up on a call after this many seconds: it fails with DEADLINE_EXCEEDED and
    /// the server is told to cancel it.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
}

impl CallSpec {
    /// The per-call options (the deadline).
    pub fn options(&self) -> anyhow::Result<CallOptions> {
        Ok(CallOptions::timeout(timeout(self.timeout)?))
    }
}

/// Options of `msgwire call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    #[command(flatten)]
    pub call: CallSpec,
}

/// `msgpack-rpc`, `framed-binary` or `framed-map`.
pub fn parse_dialect(s: &str) -> Result<Dialect, String> {
    s.parse()
        .map_err(|e: msgwire_rpc::UnknownDialect| e.to_string())
}

/// The params `args` stand for.
fn params(args: &[String], named: bool) -> anyhow::Result<Value> {
    let values = args
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let json: serde_json::Value = serde_json::from_str(text).with_context(|| {
                format!(
                    "argument {} is not JSON: {text} (quote strings, e.g. '\"Alice\"')",
                    i + 1
                )
            })?;
            from_json(&json).map_err(|e| anyhow::anyhow!("argument {}: {e}", i + 1))
        })
        .collect::<anyhow::Result<Vec<Value>>>()?;
    if !named {
        return Ok(Value::Array(values));
    }
    match <[Value; 1]>::try_from(values) {
        Ok([map @ Value::Map(_)]) => Ok(map),
        _ => anyhow::bail!("--named wants exactly one argument, a JSON object"),
    }
}

/// A positive number of seconds as a duration.
pub fn timeout(secs: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--timeout wants a positive number of seconds, not {secs}"))
}

/// Runs one call; `Ok(false)` when the server answered with an error (exit status 1).
pub async fn run(args: CallArgs) -> anyhow::Result<bool> {
    let timeout = args.call.timeout;
    let options = args.call.options()?;
    let args = args.call.request;
    let params = args.params()?;
    let client = args.target.connect(args.dialect).await?;
    let result = client
        .call_with(args.method.as_str(), params, options)
        .await;
    client.close();
    // Let a cancel notification (sent when the deadline passed) leave before exiting.
    client.closed().await;
    match result {
        Ok(value) => {
            crate::print_line(&to_json(&value).to_string()).context("cannot print the result")?;
            Ok(true)
        }
        Err(CallError::Rpc(e)) => {
            eprintln!(
                "msgwire call: {} failed: {} ({}): {}",
                args.method,
                e.code.name(),
                e.code.as_i64(),
                e.message
            );
            Ok(false)
        }
        Err(e @ CallError::DeadlineExceeded) => {
            eprintln!(
                "msgwire call: {} failed: {} ({}): no answer within {} s",
                args.method,
                e.code().name(),
                e.code().as_i64(),
                timeout
            );
            Ok(false)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("{} failed", args.method))),
    }
}
