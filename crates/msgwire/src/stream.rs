//! `msgwire stream`: a server stream's items as JSON lines, until it ends.

use clap::Args;
use msgwire_rpc::{CallError, CallOptions, RawValue};

use crate::call::RequestSpec;
use msgwire_http::json::to_json;

/// Options of `msgwire stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    #[command(flatten)]
    pub request: RequestSpec,

    /// Print the final result too, as a last line {"result": ...}.
    #[arg(long)]
    pub result: bool,
}

/// The message of `error`: the peer's own for an error it sent.
fn message(error: &CallError) -> String {
    match error {
        CallError::Rpc(e) | CallError::Item(e) => e.message.clone(),
        other => other.to_string(),
    }
}

/// What the stream's end says about the exit status.
pub fn report_error(command: &str, method: &str, error: &CallError) {
    let code = error.code();
    eprintln!(
        "msgwire {command}: {method} failed: {} ({}): {}",
        code.name(),
        code.as_i64(),
        message(error)
    );
}

/// Runs the stream; `Ok(false)` when it ended with an error (exit status 1). Ctrl-C
/// cancels it (the server is sent `$/cancel` and drops its handler) and exits 130.
pub async fn run(args: StreamArgs) -> anyhow::Result<u8> {
    let params = args.request.params()?;
    // Listening from the start: a Ctrl-C at any point from here on is seen (one
    // listener for the whole run; a listener made later would miss an earlier signal).
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| anyhow::anyhow!("cannot listen for Ctrl-C: {e}"))?;
    let client = args.request.target.connect(args.request.dialect).await?;
    let (input, mut items) = client
        .open_stream_raw(
            args.request.method.as_str(),
            RawValue::from(params),
            CallOptions::new(),
        )
        .await
        .map_err(|e| {
            anyhow::Error::new(e).context(format!("cannot open {}", args.request.method))
        })?;
    // A server stream takes no input.
    let _ = input.finish();
    let outcome = loop {
        let next = tokio::select! {
            next = items.next_raw() => next,
            _ = interrupt.recv() => break Outcome::Interrupted,
        };
        match next {
            None => break Outcome::Ended,
            Some(Ok(item)) => print_value(&item)?,
            // A per-item error: the stream goes on.
            Some(Err(error)) if error.is_item_error() => {
                let code = error.code();
                let line = serde_json::json!({"error": {"code": code.as_i64(), "name": code.name(), "message": message(&error)}});
                crate::print_line(&line.to_string())?;
            }
            Some(Err(error)) => break Outcome::Failed(error),
        }
    };
    let status = match &outcome {
        Outcome::Ended => {
            if args.result {
                if let Some(result) = items.result() {
                    let value = result.to_value().unwrap_or(msgwire_rpc::Value::Nil);
                    crate::print_line(
                        &serde_json::json!({ "result": to_json(&value) }).to_string(),
                    )?;
                }
            }
            0
        }
        Outcome::Failed(error) => {
            report_error("stream", &args.request.method, error);
            1
        }
        Outcome::Interrupted => {
            eprintln!(
                "msgwire stream: interrupted; {} cancelled",
                args.request.method
            );
            130
        }
    };
    // Dropping the receiver cancels a stream that has not ended; the cancel goes out
    // before the connection closes.
    drop(items);
    client.close();
    client.closed().await;
    Ok(status)
}

enum Outcome {
    Ended,
    Failed(CallError),
    Interrupted,
}

/// One item as a JSON line.
fn print_value(item: &RawValue) -> anyhow::Result<()> {
    let value = item
        .to_value()
        .map_err(|e| anyhow::anyhow!("an item is not MessagePack: {e}"))?;
    crate::print_line(&to_json(&value).to_string())?;
    Ok(())
}
