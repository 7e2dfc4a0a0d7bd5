//! Reading a stored file back in [`CHUNK_SIZE`] chunks.

use std::io;

use bytes::Bytes;
use msgwire_wire::{Code, RpcError};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::{check_file_id, io_error, Data, FileInfo, FileStore, CHUNK_SIZE};

/// One item of a download: `{offset, size, total_size, data}`.
///
/// `data` goes last on the wire (readers go by the keys, so the order is free): once a
/// reader has the bin's header it knows where the whole item ends, and msgwire's reader
/// then reads the rest of it straight into a buffer of that size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadChunk {
    /// Where the bytes start in the file.
    pub offset: u64,
    /// How many there are (`data`'s length).
    pub size: u64,
    /// The whole file's size.
    pub total_size: u64,
    /// The bytes, as a bin.
    pub data: Data,
}

/// A stored file being read, from [`FileStore::open`].
#[derive(Debug)]
pub struct Download {
    file: tokio::fs::File,
    info: FileInfo,
    offset: u64,
}

impl FileStore {
    /// Opens file `file_id` for reading: INVALID_ARGUMENT for a malformed id, NOT_FOUND
    /// if there is no such file, DATA_LOSS if the data and its metadata disagree on
    /// its size.
    pub async fn open(&self, file_id: &str) -> Result<Download, RpcError> {
        let info = self.info(file_id).await?;
        let id = check_file_id(&info.file_id)?;
        let file = match tokio::fs::File::open(self.data_path(id)).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RpcError::not_found(format!("no file {id}")))
            }
            Err(e) => return Err(io_error("opening the file", &e)),
        };
        let len = file
            .metadata()
            .await
            .map_err(|e| io_error("reading the file's size", &e))?
            .len();
        if len != info.size {
            return Err(damaged(id, len, info.size));
        }
        Ok(Download {
            file,
            info,
            offset: 0,
        })
    }
}

fn damaged(id: &str, actual: u64, recorded: u64) -> RpcError {
    RpcError::new(
        Code::DataLoss,
        format!("file {id} is damaged: {actual} bytes where {recorded} were stored"),
    )
}

impl Download {
    /// What is kept about the file.
    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// The next chunk: [`CHUNK_SIZE`] bytes, fewer for the last one; `None` at the
    /// end (at once for an empty file).
    pub async fn next_chunk(&mut self) -> Result<Option<DownloadChunk>, RpcError> {
        let total_size = self.info.size;
        let left = total_size - self.offset;
        if left == 0 {
            return Ok(None);
        }
        let want = usize::try_from(left).map_or(CHUNK_SIZE, |left| left.min(CHUNK_SIZE));
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            let n = self
                .file
                .read(&mut buf[filled..])
                .await
                .map_err(|e| io_error("reading the file", &e))?;
            if n == 0 {
                let short = self.offset + filled as u64;
                return Err(damaged(&self.info.file_id, short, total_size));
            }
            filled += n;
        }
        let chunk = DownloadChunk {
            data: Data(Bytes::from(buf)),
            offset: self.offset,
            size: want as u64,
            total_size,
        };
        self.offset += want as u64;
        Ok(Some(chunk))
    }
}
