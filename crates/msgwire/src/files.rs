//! `msgwire upload` and `msgwire download`: files through the `upload` (client stream)
//! and `download` (server stream) services, with a progress bar on a terminal and the
//! sha256 checked at both ends.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use msgwire_rpc::{CallError, CallOptions, Dialect, RawValue, Value};
use msgwire_services::files::{hex, DownloadChunk, FileInfo, Uploaded, CHUNK_SIZE};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::call::parse_dialect;
use crate::stream::report_error;
use crate::target::Target;

/// Options of `msgwire upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The server: HOST:PORT, or unix:PATH for a Unix socket.
    #[arg(value_name = "ADDR")]
    pub target: Target,
    /// The file to send.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The content type stored with it.
    #[arg(long, value_name = "MIME", default_value = "application/octet-stream")]
    pub content_type: String,
    /// Wire dialect.
    #[arg(long, value_name = "DIALECT", default_value = "msgpack-rpc", value_parser = parse_dialect)]
    pub dialect: Dialect,
}

/// Options of `msgwire download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// The server: HOST:PORT, or unix:PATH for a Unix socket.
    #[arg(value_name = "ADDR")]
    pub target: Target,
    /// The id `msgwire upload` printed.
    #[arg(value_name = "FILE_ID")]
    pub file_id: String,
    /// Where to write the file (written to OUT.part first, renamed once verified).
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// Wire dialect.
    #[arg(long, value_name = "DIALECT", default_value = "msgpack-rpc", value_parser = parse_dialect)]
    pub dialect: Dialect,
}

/// A bar of `total` bytes on stderr; drawn only when stderr is a terminal.
fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// The sha256 of a file, read once.
async fn sha256_of(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    let digest: [u8; 32] = hasher.finalize().into();
    Ok((hex(&digest), total))
}

/// Sends the file; prints the answer (`{file_id, bytes_uploaded, checksum_verified,
/// checksum}`) as JSON. Exit status 1 when the server refuses it.
pub async fn upload(args: UploadArgs) -> anyhow::Result<u8> {
    let (checksum, size) = sha256_of(&args.file).await?;
    let filename = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    let client = args.target.connect(args.dialect).await?;
    let (mut tx, rx) = client
        .open_stream_raw(
            "upload",
            RawValue::from(Value::Array(vec![])),
            CallOptions::new(),
        )
        .await
        .context("cannot open upload")?;
    let meta = Value::Map(vec![
        ("filename".into(), filename.into()),
        ("total_size".into(), size.into()),
        ("content_type".into(), args.content_type.clone().into()),
        ("checksum".into(), checksum.clone().into()),
    ]);
    let bar = progress(size, "upload");
    let sent = async {
        tx.send_raw(RawValue::from(meta)).await?;
        let mut file = tokio::fs::File::open(&args.file)
            .await
            .map_err(|e| CallError::Io(std::sync::Arc::new(e)))?;
        let mut buf = vec![0u8; CHUNK_SIZE];
        loop {
            let n = read_full(&mut file, &mut buf)
                .await
                .map_err(|e| CallError::Io(std::sync::Arc::new(e)))?;
            if n == 0 {
                break;
            }
            tx.send_raw(RawValue::from(Value::Binary(buf[..n].to_vec())))
                .await?;
            bar.inc(n as u64);
        }
        tx.finish()
    }
    .await;
    // The server's answer says why, if sending stopped early.
    let answered = rx.finish().await;
    bar.finish_and_clear();
    client.close();
    client.closed().await;
    let answer = match (answered, sent) {
        (Ok(answer), _) => answer,
        (Err(error), _) => {
            report_error("upload", "upload", &error);
            return Ok(1);
        }
    };
    let uploaded: Uploaded = answer
        .deserialize()
        .context("the server's answer to upload is not {file_id, bytes_uploaded, ...}")?;
    anyhow::ensure!(
        uploaded.checksum == checksum && uploaded.bytes_uploaded == size,
        "the server stored {} bytes with sha256 {}, sent {size} bytes with sha256 {checksum}",
        uploaded.bytes_uploaded,
        uploaded.checksum
    );
    let line = serde_json::json!({
        "file_id": uploaded.file_id,
        "bytes_uploaded": uploaded.bytes_uploaded,
        "checksum_verified": uploaded.checksum_verified,
        "checksum": uploaded.checksum,
    });
    crate::print_line(&line.to_string())?;
    Ok(0)
}

/// Reads until `buf` is full or the file ends.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// Fetches the file into OUT, checking offsets, size and sha256 against the server's
/// file info; on any failure nothing is left at OUT (nor OUT.part). Prints
/// `{file_id, bytes, checksum_verified, checksum, path}`.
pub async fn download(args: DownloadArgs) -> anyhow::Result<u8> {
    let client = args.target.connect(args.dialect).await?;
    let (input, mut items) = client
        .open_stream_raw(
            "download",
            RawValue::from(Value::Array(vec![args.file_id.clone().into()])),
            CallOptions::new(),
        )
        .await
        .context("cannot open download")?;
    let _ = input.finish();
    let part = part_path(&args.out);
    let mut out = tokio::fs::File::create(&part)
        .await
        .with_context(|| format!("cannot create {}", part.display()))?;
    let mut guard = RemoveOnDrop(Some(part.clone()));
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut bar: Option<ProgressBar> = None;
    let failed = loop {
        match items.next_raw().await {
            None => break None,
            Some(Ok(item)) => {
                let chunk: DownloadChunk = item
                    .deserialize()
                    .context("a download item is not {data, offset, size, total_size}")?;
                anyhow::ensure!(
                    chunk.offset == written && chunk.size == chunk.data.0.len() as u64,
                    "chunk at offset {} of {} bytes, expected offset {written}",
                    chunk.offset,
                    chunk.size
                );
                let bar = bar.get_or_insert_with(|| progress(chunk.total_size, "download"));
                hasher.update(&chunk.data.0);
                out.write_all(&chunk.data.0).await?;
                written += chunk.size;
                bar.set_position(written);
            }
            Some(Err(error)) => break Some(error),
        }
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    client.close();
    client.closed().await;
    if let Some(error) = failed {
        report_error("download", "download", &error);
        return Ok(1);
    }
    out.flush().await?;
    out.sync_all().await?;
    drop(out);
    let info: FileInfo = items
        .result_typed()
        .context("the download ended without the file's info")?
        .context("the download's result is not the file's info")?;
    let digest: [u8; 32] = hasher.finalize().into();
    let checksum = hex(&digest);
    if info.checksum != checksum || info.size != written {
        eprintln!(
            "msgwire download: DATA_LOSS (15): received {written} bytes with sha256 {checksum}, \
             the server has {} bytes with sha256 {}",
            info.size, info.checksum
        );
        return Ok(1);
    }
    tokio::fs::rename(&part, &args.out)
        .await
        .with_context(|| format!("cannot move {} to {}", part.display(), args.out.display()))?;
    guard.0 = None;
    let line = serde_json::json!({
        "file_id": info.file_id,
        "bytes": written,
        "checksum_verified": true,
        "checksum": checksum,
        "path": args.out.display().to_string(),
    });
    crate::print_line(&line.to_string())?;
    Ok(0)
}

/// `OUT.part`, beside OUT.
fn part_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    out.with_file_name(name)
}

/// Removes a partly written file unless told otherwise.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}
