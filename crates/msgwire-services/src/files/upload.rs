//! One upload in progress: a temporary file that is removed unless the upload is
//! verified and renamed into place.

use std::io::{self, Write as _};
use std::path::PathBuf;

use msgwire_wire::{Code, RpcError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{
    check_file_id, hex, io_error, new_file_id, parse_sha256, FileInfo, FileStore, UploadMeta,
    DEFAULT_CONTENT_TYPE, MAX_CONTENT_TYPE_LEN, MAX_FILENAME_LEN,
};
use crate::events::unix_millis;

/// The answer to a finished upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploaded {
    /// The stored file's id, for `download` and `fileInfo`.
    pub file_id: String,
    /// How many bytes were stored.
    pub bytes_uploaded: u64,
    /// Always true: an upload whose checksum does not match is DATA_LOSS instead.
    pub checksum_verified: bool,
    /// The data's sha256, lowercase hex.
    pub checksum: String,
}

/// A temporary file that is removed when dropped, unless kept.
#[derive(Debug)]
struct PartFile {
    path: PathBuf,
    kept: bool,
}

impl PartFile {
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.kept {
            // Unlinking is one quick system call; an open handle (a write still under
            // way on the blocking pool) is fine on Unix, the data goes with the inode.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// An upload in progress, from [`FileStore::begin_upload`]: [`write`](Upload::write)
/// the data, then [`finish`](Upload::finish). Dropping it at any point before
/// `finish` succeeds removes its temporary file; nothing else was written.
#[derive(Debug)]
pub struct Upload {
    store: FileStore,
    id: String,
    filename: String,
    content_type: String,
    expected: [u8; 32],
    declared: u64,
    received: u64,
    hasher: Sha256,
    // Declared before `part` so that it is closed first when the upload is dropped.
    file: tokio::fs::File,
    part: PartFile,
}

impl FileStore {
    /// Checks `meta` and opens the upload's temporary file. INVALID_ARGUMENT for a
    /// checksum that is not 64 hex digits or an over-long filename or content type;
    /// RESOURCE_EXHAUSTED for a `total_size` over the cap.
    pub async fn begin_upload(&self, meta: UploadMeta) -> Result<Upload, RpcError> {
        let expected = parse_sha256(&meta.checksum).ok_or_else(|| {
            RpcError::invalid_argument("checksum must be a sha256 as 64 hex digits")
        })?;
        if meta.total_size > self.max_upload {
            return Err(RpcError::resource_exhausted(format!(
                "an upload of {} bytes is over this server's limit of {} bytes",
                meta.total_size, self.max_upload
            )));
        }
        if meta.filename.len() > MAX_FILENAME_LEN {
            return Err(RpcError::invalid_argument(format!(
                "filename is longer than {MAX_FILENAME_LEN} bytes"
            )));
        }
        let content_type = meta
            .content_type
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
        if content_type.len() > MAX_CONTENT_TYPE_LEN {
            return Err(RpcError::invalid_argument(format!(
                "content_type is longer than {MAX_CONTENT_TYPE_LEN} bytes"
            )));
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| io_error("creating the data directory", &e))?;
        let id = new_file_id();
        let path = self.part_path(&id, "");
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| io_error("creating the upload's temporary file", &e))?;
        Ok(Upload {
            store: self.clone(),
            id,
            filename: meta.filename,
            content_type,
            expected,
            declared: meta.total_size,
            received: 0,
            hasher: Sha256::new(),
            file,
            part: PartFile { path, kept: false },
        })
    }
}

impl Upload {
    /// The id the file will have.
    pub fn file_id(&self) -> &str {
        &self.id
    }

    /// Bytes written so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The `total_size` declared.
    pub fn declared(&self) -> u64 {
        self.declared
    }

    /// Appends `data`. INVALID_ARGUMENT if it goes past the declared size (nothing of
    /// it is written); RESOURCE_EXHAUSTED for a full disk. After an error, drop the
    /// upload.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), RpcError> {
        let received = self.received.saturating_add(data.len() as u64);
        if received > self.declared {
            return Err(RpcError::invalid_argument(format!(
                "data past the declared size: {received} bytes of {}",
                self.declared
            )));
        }
        self.hasher.update(data);
        self.file
            .write_all(data)
            .await
            .map_err(|e| io_error("writing the upload", &e))?;
        self.received = received;
        Ok(())
    }

    /// Verifies the upload and puts it in place: INVALID_ARGUMENT if fewer bytes than
    /// declared arrived, DATA_LOSS (15) if their sha256 is not the declared one. Then
    /// the data is synced to disk, the metadata written, and the file renamed to its id
    /// — all on the blocking pool, to the end even if this future is dropped meanwhile,
    /// so the file is either wholly there or not at all.
    pub async fn finish(mut self) -> Result<Uploaded, RpcError> {
        if self.received < self.declared {
            return Err(RpcError::invalid_argument(format!(
                "the upload ended after {} of its {} bytes",
                self.received, self.declared
            )));
        }
        let digest: [u8; 32] = self.hasher.finalize().into();
        let checksum = hex(&digest);
        if digest != self.expected {
            return Err(RpcError::new(
                Code::DataLoss,
                format!(
                    "checksum mismatch: the data's sha256 is {checksum}, the metadata said {}",
                    hex(&self.expected)
                ),
            ));
        }
        self.file
            .flush()
            .await
            .map_err(|e| io_error("writing the upload", &e))?;
        let file = self.file.into_std().await;
        let info = FileInfo {
            file_id: self.id,
            filename: self.filename,
            content_type: self.content_type,
            size: self.received,
            checksum,
            uploaded_at: unix_millis(),
        };
        let (store, part) = (self.store, self.part);
        let put = move || put_in_place(&store, file, part, &info).map(|()| info);
        let info = tokio::task::spawn_blocking(put)
            .await
            .map_err(|e| RpcError::internal(format!("storing the upload: {e}")))??;
        Ok(Uploaded {
            file_id: info.file_id,
            bytes_uploaded: info.size,
            checksum_verified: true,
            checksum: info.checksum,
        })
    }
}

/// Syncs the data, writes `<id>.meta` (through a part file of its own), renames the
/// data to `<id>`. On any failure what was written is removed again.
fn put_in_place(
    store: &FileStore,
    file: std::fs::File,
    data_part: PartFile,
    info: &FileInfo,
) -> Result<(), RpcError> {
    let id = check_file_id(&info.file_id)?;
    file.sync_all()
        .map_err(|e| io_error("syncing the upload", &e))?;
    drop(file);
    let meta = rmp_serde::to_vec_named(info)
        .map_err(|e| RpcError::internal(format!("encoding the file's metadata: {e}")))?;
    let meta_part = PartFile {
        path: store.part_path(id, "meta."),
        kept: false,
    };
    write_new(&meta_part.path, &meta).map_err(|e| io_error("writing the file's metadata", &e))?;
    let meta_path = store.meta_path(id);
    std::fs::rename(&meta_part.path, &meta_path)
        .map_err(|e| io_error("storing the file's metadata", &e))?;
    meta_part.keep();
    if let Err(e) = std::fs::rename(&data_part.path, store.data_path(id)) {
        let _ = std::fs::remove_file(&meta_path);
        return Err(io_error("storing the upload", &e));
    }
    data_part.keep();
    Ok(())
}

fn write_new(path: &std::path::Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
