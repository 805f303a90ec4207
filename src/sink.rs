//! A file written from a stream of byte chunks (an upload's body) by a blocking thread of its
//! own. Chunks are copied into a few large buffers that take turns: one fills while the thread
//! writes another, so the request never waits on the disk unless all are full, memory stays at
//! [`BUFFERS`] × [`BUFFER`], and hyper's own read buffers are free again at once. Writeback of
//! what is written starts every [`WRITEBACK`] bytes, so the disk works while the network does
//! and the final sync has little left.

use std::fs::File;
use std::io::{self, Write};

use tokio::sync::mpsc;

/// The size of one buffer.
pub const BUFFER: usize = 512 * 1024;
/// Buffers per file.
pub const BUFFERS: usize = 4;
/// Bytes written between two writeback kicks.
pub const WRITEBACK: u64 = 8 * 1024 * 1024;

/// The writing end: [`FileSink::write`] each chunk, then [`FileSink::finish`]. Dropped
/// unfinished, the thread writes the full buffers it was given and stops without syncing.
pub struct FileSink {
    /// The buffer being filled.
    buf: Vec<u8>,
    /// Buffers made so far (up to [`BUFFERS`]).
    made: usize,
    full: Option<mpsc::Sender<Vec<u8>>>,
    empty: mpsc::Receiver<Vec<u8>>,
    writer: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

impl FileSink {
    /// Writes to `file` from its current position.
    pub fn new(file: File) -> FileSink {
        let (full, full_rx) = mpsc::channel(BUFFERS);
        let (empty_tx, empty) = mpsc::channel(BUFFERS);
        let writer = tokio::task::spawn_blocking(move || write_all(file, full_rx, empty_tx));
        FileSink {
            buf: Vec::with_capacity(BUFFER),
            made: 1,
            full: Some(full),
            empty,
            writer: Some(writer),
        }
    }

    /// Takes a chunk (waits only while every buffer is full). An error is the writer's.
    pub async fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = (BUFFER - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == BUFFER {
                self.hand_over().await?;
            }
        }
        Ok(())
    }

    /// Sends the current buffer to the writer and takes an empty one.
    async fn hand_over(&mut self) -> io::Result<()> {
        let next = if let Ok(b) = self.empty.try_recv() {
            b
        } else if self.made < BUFFERS {
            self.made += 1;
            Vec::with_capacity(BUFFER)
        } else {
            match self.empty.recv().await {
                Some(b) => b,
                None => return self.stopped().await,
            }
        };
        let full = std::mem::replace(&mut self.buf, next);
        match &self.full {
            Some(tx) if tx.send(full).await.is_ok() => Ok(()),
            _ => self.stopped().await,
        }
    }

    /// Waits until every byte is written and on disk (`fdatasync`).
    pub async fn finish(mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.hand_over().await?;
        }
        self.full = None;
        match self.writer.take() {
            Some(w) => w.await.map_err(io::Error::other)?,
            None => Err(stopped()),
        }
    }

    /// The writer's error, once it has stopped early.
    async fn stopped(&mut self) -> io::Result<()> {
        self.full = None;
        match self.writer.take() {
            Some(w) => w.await.map_err(io::Error::other)?.and(Err(stopped())),
            None => Err(stopped()),
        }
    }
}

fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the upload writer stopped")
}

/// The writer thread: each full buffer, writeback kicks, and the sync once the sender is done.
fn write_all(
    mut file: File,
    mut full: mpsc::Receiver<Vec<u8>>,
    empty: mpsc::Sender<Vec<u8>>,
) -> io::Result<()> {
    use std::io::Seek;
    let start = file.stream_position()?;
    let (mut written, mut kicked) = (0u64, 0u64);
    while let Some(mut buf) = full.blocking_recv() {
        file.write_all(&buf)?;
        written += buf.len() as u64;
        if written - kicked >= WRITEBACK {
            start_writeback(&file, start + kicked, written - kicked);
            kicked = written;
        }
        buf.clear();
        // Never blocks: there are at most BUFFERS. Gone once the sink is dropped.
        let _ = empty.try_send(buf);
    }
    // `full` ends when the sink is finished or dropped (then the sync is wasted but harmless:
    // the caller decides what the bytes are worth).
    file.sync_data()
}

/// Starts (does not wait for) the writeback of `len` bytes at `offset`.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor; the call only schedules I/O for the range.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &File, _: u64, _: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_every_chunk_in_order_from_the_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"head").unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(4)).unwrap();
        let mut sink = FileSink::new(f);
        let mut want = b"head".to_vec();
        for i in 0..40u8 {
            let chunk = vec![i; 300 * 1024 + usize::from(i)];
            want.extend_from_slice(&chunk);
            sink.write(&chunk).await.unwrap();
        }
        sink.finish().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }

    #[tokio::test]
    async fn a_failing_writer_reports_its_error() {
        // A file opened read-only: the first write fails, and the caller hears why.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"").unwrap();
        let mut sink = FileSink::new(File::open(&path).unwrap());
        let mut err = None;
        let chunk = vec![7u8; BUFFER];
        for _ in 0..(BUFFERS * 2 + 2) {
            if let Err(e) = sink.write(&chunk).await {
                err = Some(e);
                break;
            }
        }
        let err = match err {
            Some(e) => e,
            None => sink.finish().await.unwrap_err(),
        };
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
    }
}
