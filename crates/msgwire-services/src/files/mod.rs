//! files: uploads verified before they are kept, and downloads in 64 KiB chunks, in one
//! data directory.
//!
//! ```text
//!  upload (client stream)                              data dir
//!   item 0  {filename, total_size, content_type,  ──►  .<id>.part      written as chunks
//!            checksum: sha256 hex}                      │               come, hashed on
//!   item 1… bin  or  {data: bin}                   ──►  │               the way
//!   end                                                 ▼ size and sha256 match?
//!                                                  ◄──  <id>.meta, then <id>   (renamed)
//!   result {file_id, bytes_uploaded, checksum_verified, checksum}
//!
//!  download(file_id) (server stream)
//!   items  {offset, size, total_size, data: bin}   64 KiB each, the last one shorter
//!   result {file_id, filename, content_type, size, checksum, uploaded_at}
//! ```
//!
//! # What an upload promises
//!
//! * **Nothing is visible until it is verified.** Data goes to a temporary file,
//!   `.<id>.part`; only when the declared number of bytes has arrived and their sha256
//!   matches the metadata's is the file synced to disk and renamed to its id. A
//!   download names a file by id, so a file in progress cannot be read.
//! * **Nothing is left behind.** Any error — data past `total_size` (INVALID_ARGUMENT),
//!   `total_size` over the server's cap (RESOURCE_EXHAUSTED, before any data), a wrong
//!   checksum (DATA_LOSS, 15), a stream that ends early (INVALID_ARGUMENT), a full disk
//!   (RESOURCE_EXHAUSTED) — and any disconnect or cancel removes the temporary file: it
//!   belongs to the handler's future, and the runtime drops that future when the peer
//!   goes away. A server that was killed leaves `.part` files, which
//!   [`FileStore::remove_leftovers`] clears at the next start.
//! * **The peer never chooses a path.** The file id is 128 random bits in hex, made by
//!   the server; `filename` and `content_type` are only metadata, kept beside the data
//!   in `<id>.meta`. A download of anything but 32 lowercase hex digits is
//!   INVALID_ARGUMENT; of an id with no file, NOT_FOUND.
//!
//! A data directory belongs to one server: the leftovers it clears at start are any
//! `.part` files in it.
//!
//! # Example
//!
//! ```
//! use msgwire_services::files::{sha256_hex, FileStore, UploadMeta};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = FileStore::new(dir.path(), 1 << 20);
//! let data = b"hello, files";
//! let mut upload = store
//!     .begin_upload(UploadMeta::new("hello.txt", data.len() as u64, sha256_hex(data)))
//!     .await?;
//! upload.write(data).await?;
//! let uploaded = upload.finish().await?;
//! assert!(uploaded.checksum_verified);
//!
//! let mut download = store.open(&uploaded.file_id).await?;
//! let chunk = download.next_chunk().await?.ok_or("no chunk")?;
//! assert_eq!((&chunk.data.0[..], chunk.offset, chunk.total_size), (&data[..], 0, 12));
//! assert!(download.next_chunk().await?.is_none());
//! assert_eq!(download.info().filename, "hello.txt");
//! # Ok(()) }
//! ```

mod download;
mod rpc;
mod upload;

use std::io;
use std::path::{Path, PathBuf};

use msgwire_wire::{Code, RpcError};
use serde::{Deserialize, Serialize};

pub use download::{Download, DownloadChunk};
pub use rpc::{download_call, upload_call};
pub use upload::{Upload, Uploaded};

/// The size of a download chunk: 64 KiB.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// The default cap on one upload: 1 GiB.
pub const DEFAULT_MAX_UPLOAD: u64 = 1 << 30;

/// The longest `filename` kept, in bytes.
pub const MAX_FILENAME_LEN: usize = 1024;

/// The longest `content_type` kept, in bytes.
pub const MAX_CONTENT_TYPE_LEN: usize = 256;

/// The `content_type` of an upload whose metadata names none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The first item of an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadMeta {
    /// The client's name for the file: kept as metadata, never used as a path.
    pub filename: String,
    /// How many bytes will follow.
    pub total_size: u64,
    /// A MIME type; [`DEFAULT_CONTENT_TYPE`] when absent.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The sha256 of the data, 64 hex digits.
    pub checksum: String,
}

impl UploadMeta {
    /// Metadata with no `content_type`.
    pub fn new(filename: impl Into<String>, total_size: u64, checksum: impl Into<String>) -> Self {
        Self {
            filename: filename.into(),
            total_size,
            content_type: None,
            checksum: checksum.into(),
        }
    }
}

/// What is kept about a stored file (`<id>.meta`), answered by `fileInfo` and as a
/// download's final result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// The file's id: 32 lowercase hex digits.
    pub file_id: String,
    /// The name the uploader gave.
    pub filename: String,
    /// The type the uploader gave.
    pub content_type: String,
    /// Bytes.
    pub size: u64,
    /// sha256, lowercase hex.
    pub checksum: String,
    /// When the upload was verified, in milliseconds since the Unix epoch.
    pub uploaded_at: i64,
}

/// Bytes that travel as a MessagePack bin: [`msgwire_wire::Bin`], read without a copy
/// from the frame a chunk arrived in.
pub use msgwire_wire::Bin as Data;

/// The sha256 of `data` in lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(data))
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A sha256 given as 64 hex digits (either case).
fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

/// A new file id: 128 random bits as 32 lowercase hex digits.
fn new_file_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// `id` if it is a file id (32 lowercase hex digits), else INVALID_ARGUMENT.
fn check_file_id(id: &str) -> Result<&str, RpcError> {
    let hex_digit = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    if id.len() == 32 && id.bytes().all(hex_digit) {
        Ok(id)
    } else {
        let shown = msgwire_wire::text::excerpt(id, 64);
        Err(RpcError::invalid_argument(format!(
            "{shown:?} is not a file id (32 lowercase hex digits)"
        )))
    }
}

/// An I/O failure as the peer sees it: RESOURCE_EXHAUSTED for a full disk, INTERNAL
/// otherwise. The message says what was being done, not where (no server paths).
fn io_error(doing: &str, error: &io::Error) -> RpcError {
    let code = match error.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Code::ResourceExhausted,
        _ => Code::Internal,
    };
    RpcError::new(code, format!("{doing}: {}", error.kind()))
}

/// The data directory: stored files, their metadata, uploads in progress.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    max_upload: u64,
}

impl FileStore {
    /// A store in `dir` (created at the first upload) taking uploads of at most
    /// `max_upload` bytes.
    pub fn new(dir: impl Into<PathBuf>, max_upload: u64) -> Self {
        Self {
            dir: dir.into(),
            max_upload,
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cap on one upload, in bytes.
    pub fn max_upload(&self) -> u64 {
        self.max_upload
    }

    fn data_path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.meta"))
    }

    fn part_path(&self, id: &str, what: &str) -> PathBuf {
        self.dir.join(format!(".{id}.{what}part"))
    }

    /// Removes the temporary files that uploads cut short by a crash left in the data
    /// directory; how many. Nothing to do (0) if the directory does not exist yet.
    pub fn remove_leftovers(&self) -> io::Result<usize> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with("part") && entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// What is kept about file `file_id`: INVALID_ARGUMENT for a malformed id,
    /// NOT_FOUND if there is no such file.
    pub async fn info(&self, file_id: &str) -> Result<FileInfo, RpcError> {
        let id = check_file_id(file_id)?;
        let bytes = match tokio::fs::read(self.meta_path(id)).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RpcError::not_found(format!("no file {id}")))
            }
            Err(e) => return Err(io_error("reading the file's metadata", &e)),
        };
        rmp_serde::from_slice(&bytes).map_err(|e| {
            RpcError::new(
                Code::DataLoss,
                format!("the metadata of file {id} is damaged: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_checksums() {
        let id = new_file_id();
        assert_eq!(check_file_id(&id), Ok(id.as_str()));
        assert_ne!(new_file_id(), id);
        for bad in [
            "",
            "../../etc/passwd",
            "0123456789abcdef0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef.meta",
            ".0123456789abcdef0123456789abcde",
        ] {
            let err = check_file_id(bad).map_err(|e| e.code);
            assert_eq!(err, Err(Code::InvalidArgument), "{bad:?}");
        }
        let empty = sha256_hex(b"");
        assert_eq!(
            empty,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let parsed = parse_sha256(&empty.to_uppercase()).map(|d| hex(&d));
        assert_eq!(parsed.as_deref(), Some(empty.as_str()));
        assert_eq!(parse_sha256(&empty[1..]), None);
        assert_eq!(parse_sha256(&format!("{}zz", &empty[2..])), None);
        assert_eq!(parse_sha256(&format!("é{}", &empty[2..])), None);
    }

    #[test]
    fn data_is_a_bin() {
        let bytes = rmp_serde::to_vec(&Data(bytes::Bytes::from_static(b"\x00\x01"))).unwrap();
        assert_eq!(bytes, [0xc4, 2, 0, 1]);
        let back: Data = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back.0, bytes::Bytes::from_static(b"\x00\x01"));
        assert!(
            rmp_serde::from_slice::<Data>(&[0x92, 0, 1]).is_err(),
            "not an array"
        );
    }
}
