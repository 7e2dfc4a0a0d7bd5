//! The `upload` and `download` methods over a [`FileStore`]: items in and out of the
//! stream, the rest is the store's.

use bytes::Bytes;
use msgwire_rpc::{CallError, StreamReceiver, StreamSender};
use msgwire_wire::{Code, RawValue, RpcError, ValueKind};

use super::{DownloadChunk, FileInfo, FileStore, UploadMeta, Uploaded};

/// `upload`: the first item of `input` is the [`UploadMeta`], every later one a data
/// chunk — a bin, or a map whose `data` is a bin (and whose `offset`, if given, must be
/// the number of bytes sent before it). The answer once the stream ends and the upload
/// is verified; any error (or the peer gone) drops the upload and its temporary file.
///
/// An item the client sends as an error (`$/send_error`) abandons the upload: ABORTED.
pub async fn upload_call(
    store: &FileStore,
    mut input: StreamReceiver<RawValue>,
) -> Result<Uploaded, RpcError> {
    let meta = match input.next_raw().await {
        Some(item) => item_or_abort(item)?,
        None => {
            return Err(RpcError::invalid_argument(
                "the upload ended before its metadata item",
            ))
        }
    };
    let meta: UploadMeta = meta.deserialize().map_err(|e| {
        RpcError::invalid_argument(format!(
            "the first item of an upload is its metadata \
             {{filename, total_size, content_type, checksum}}: {e}"
        ))
    })?;
    let mut upload = store.begin_upload(meta).await?;
    while let Some(item) = input.next_raw().await {
        let data = data_of(item_or_abort(item)?, upload.received())?;
        upload.write(&data).await?;
    }
    upload.finish().await
}

/// `download(file_id)`: the file in [`DownloadChunk`]s, then its [`FileInfo`] as the
/// final result.
pub async fn download_call(
    store: &FileStore,
    file_id: &str,
    mut out: StreamSender<DownloadChunk>,
) -> Result<FileInfo, RpcError> {
    let mut download = store.open(file_id).await?;
    while let Some(chunk) = download.next_chunk().await? {
        out.send(&chunk).await?;
    }
    Ok(download.info().clone())
}

fn item_or_abort(item: Result<RawValue, CallError>) -> Result<RawValue, RpcError> {
    item.map_err(|e| {
        if e.is_item_error() {
            RpcError::new(
                Code::Aborted,
                format!("the client sent an error item, so the upload is abandoned: {e}"),
            )
        } else {
            RpcError::from(e)
        }
    })
}

/// The bytes of a data item: a bin, or `{data: bin, offset?}`.
fn data_of(item: RawValue, received: u64) -> Result<Bytes, RpcError> {
    let not_data = || {
        RpcError::invalid_argument(
            "an upload's data items are bins or {\"data\": bin} maps (the metadata comes \
             first, once)",
        )
    };
    match item.kind() {
        ValueKind::Bin => bin_payload(item.into_bytes()).ok_or_else(not_data),
        ValueKind::Map => {
            if let Some(offset) = item.get("offset") {
                let offset: u64 = offset.deserialize().map_err(|_| not_data())?;
                if offset != received {
                    return Err(RpcError::invalid_argument(format!(
                        "a chunk at offset {offset} where {received} bytes were sent"
                    )));
                }
            }
            let data = item.get("data").ok_or_else(not_data)?;
            if data.kind() != ValueKind::Bin {
                return Err(not_data());
            }
            bin_payload(data.into_bytes()).ok_or_else(not_data)
        }
        _ => Err(not_data()),
    }
}

/// The payload of an encoded bin, without copying it.
fn bin_payload(encoded: Bytes) -> Option<Bytes> {
    let mut rest = &encoded[..];
    let len = rmp::decode::read_bin_len(&mut rest).ok()?;
    let start = encoded.len() - rest.len();
    (usize::try_from(len).ok()? == rest.len()).then(|| encoded.slice(start..))
}

#[cfg(test)]
mod tests {
    use super::*;
    use msgwire_wire::Value;

    #[test]
    fn data_items_are_bins_or_data_maps() {
        let bin = |n: usize| Value::Binary(vec![7; n]);
        for n in [0, 1, 255, 256, 70_000] {
            let raw = RawValue::from(bin(n));
            assert_eq!(data_of(raw, 0).unwrap(), vec![7; n], "bin of {n}");
        }
        let map = RawValue::from(Value::Map(vec![("data".into(), bin(3))]));
        assert_eq!(&data_of(map, 0).unwrap()[..], [7, 7, 7]);
        let at = |offset: u64| {
            RawValue::from(Value::Map(vec![
                ("offset".into(), offset.into()),
                ("data".into(), bin(2)),
            ]))
        };
        assert_eq!(&data_of(at(10), 10).unwrap()[..], [7, 7]);
        assert_eq!(
            data_of(at(9), 10).map_err(|e| e.code),
            Err(Code::InvalidArgument)
        );
        for bad in [
            Value::from("text"),
            Value::Array(vec![1.into()]),
            Value::Map(vec![("data".into(), "str".into())]),
            Value::Map(vec![("filename".into(), "again.txt".into())]),
        ] {
            let code = data_of(RawValue::from(bad.clone()), 0).map_err(|e| e.code);
            assert_eq!(code, Err(Code::InvalidArgument), "{bad}");
        }
    }
}
