//! `ReadSandboxLogs` for the process backend: the captured `stdout.log` and
//! `stderr.log`, from the start (or their last bytes), then, when following, what is
//! appended while the main process runs; the stream ends once it has ended and both
//! files are drained, when the sandbox is deleted, or when the caller goes away.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::Entry;
use crate::ComputeError as Error;
use crate::backend::{LogChunk, LogRequest, LogSource, LogStream};

/// Largest chunk sent at once.
const CHUNK: usize = 64 * 1024;
/// How often a followed file is checked for more output.
const POLL: Duration = Duration::from_millis(100);

struct Source {
    source: LogSource,
    path: PathBuf,
    file: Option<tokio::fs::File>,
}

/// The output of `entry`, as `request` asks.
pub(super) fn stream(
    entry: Arc<Entry>,
    files: [(LogSource, PathBuf); 2],
    request: LogRequest,
) -> LogStream {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut sources: Vec<Source> = files
            .into_iter()
            .map(|(source, path)| Source {
                source,
                path,
                file: None,
            })
            .collect();
        for source in &mut sources {
            source.file = open_at(&source.path, request.tail_bytes).await;
        }
        loop {
            // Whether the process had ended before this pass: then what the pass reads
            // is everything there will be.
            let ended = entry.state.lock().await.running().is_none()
                || entry.removed.load(Ordering::Relaxed);
            let mut sent = false;
            for source in &mut sources {
                if source.file.is_none() {
                    source.file = open_at(&source.path, 0).await;
                }
                let Some(file) = source.file.as_mut() else {
                    continue;
                };
                loop {
                    let mut buffer = vec![0; CHUNK];
                    let read = match file.read(&mut buffer).await {
                        Ok(0) => break,
                        Ok(read) => read,
                        Err(error) => {
                            let _ = tx
                                .send(Err(Error::Storage {
                                    action: "read",
                                    path: source.path.clone(),
                                    source: error,
                                }))
                                .await;
                            return;
                        }
                    };
                    buffer.truncate(read);
                    let chunk = LogChunk {
                        source: source.source,
                        data: buffer,
                    };
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                    sent = true;
                }
            }
            if !request.follow || ended {
                return;
            }
            if !sent {
                tokio::select! {
                    () = tx.closed() => return,
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// The file at `path`, positioned `tail` bytes before its end (0: at its start);
/// `None` while it does not exist.
async fn open_at(path: &std::path::Path, tail: u64) -> Option<tokio::fs::File> {
    let mut file = tokio::fs::File::open(path).await.ok()?;
    if tail > 0 {
        let len = file.metadata().await.ok()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(tail)))
            .await
            .ok()?;
    }
    Some(file)
}
