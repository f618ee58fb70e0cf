//! Where log lines go: a bounded queue drained by one writer thread, so that
//! logging can neither fail nor block the code that logs.
//!
//! Why: the log stream is the host's (a pipe into journald, a terminal, a
//! `| cat`), and it can break. Written straight from the tasks, a broken
//! pipe made `tracing-subscriber` report the failed write with `eprintln!`,
//! which panics on that same broken stderr, killing whichever task logged:
//! deliveries stopped and the SIGTERM handler died with its log line. A
//! reader that stops reading fills the pipe and would block every task that
//! logs. Here a task only puts its line in the queue; a line the queue has
//! no room for is dropped, and a line the stream refuses is dropped by the
//! writer thread, both counted (`hoursync_log_lines_dropped_total`), never
//! reported on the stream that failed.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;

/// Lines waiting for the writer thread at most; more are dropped. Enough
/// for a burst of a few seconds of debug logging while the stream is slow.
pub const QUEUE_LINES: usize = 4096;

enum Message {
    Line(Vec<u8>),
    Flush(SyncSender<()>),
}

/// Lines dropped since the start, by reason.
#[derive(Debug, Default)]
pub struct Dropped {
    /// The stream refused the write (e.g. EPIPE: its reader is gone).
    pub write_failed: AtomicU64,
    /// The queue was full: the stream is not taking lines as fast as they come.
    pub queue_full: AtomicU64,
}

impl Dropped {
    pub fn total(&self) -> u64 {
        self.write_failed.load(Ordering::Relaxed) + self.queue_full.load(Ordering::Relaxed)
    }
}

/// The sending end; cheap to clone. The writer thread ends when every
/// clone is gone.
#[derive(Clone)]
pub struct LogSink {
    tx: SyncSender<Message>,
    dropped: Arc<Dropped>,
}

impl LogSink {
    /// Starts the writer thread over `out`, holding at most `capacity` lines.
    pub fn start(out: impl Write + Send + 'static, capacity: usize) -> Self {
        let (tx, rx) = sync_channel(capacity);
        let dropped = Arc::new(Dropped::default());
        let counts = dropped.clone();
        std::thread::Builder::new()
            .name("hoursync-log".into())
            .spawn(move || write_lines(rx, out, &counts))
            .expect("log writer thread");
        Self { tx, dropped }
    }

    /// What was dropped so far.
    pub fn dropped(&self) -> &Dropped {
        &self.dropped
    }

    /// Queues one line, or drops and counts it; never waits.
    fn send(&self, line: Vec<u8>) {
        match self.tx.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.queue_full.fetch_add(1, Ordering::Relaxed);
                crate::metrics::log_line_dropped("queue_full");
            }
            // The writer thread is gone (it never exits while we exist,
            // but a line is not worth a panic).
            Err(TrySendError::Disconnected(_)) => {
                self.dropped.write_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits up to `limit` for the lines queued so far to be written (or
    /// dropped), so the last lines of a process that exits reach the stream
    /// when it takes them. Returns whether they did.
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (ack_tx, ack_rx) = sync_channel(1);
        let mut message = Message::Flush(ack_tx);
        loop {
            match self.tx.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                    message = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(TrySendError::Full(_)) => return false,
            }
        }
        ack_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

fn write_lines(rx: Receiver<Message>, mut out: impl Write, dropped: &Dropped) {
    for message in rx {
        match message {
            Message::Line(line) => {
                if out.write_all(&line).and_then(|()| out.flush()).is_err() {
                    dropped.write_failed.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::log_line_dropped("write_failed");
                }
            }
            Message::Flush(ack) => {
                let _ = out.flush();
                let _ = ack.try_send(());
            }
        }
    }
}

/// One event's text, sent as one line when the formatter is done with it.
pub struct LineWriter<'a> {
    sink: &'a LogSink,
    line: Vec<u8>,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.sink.send(std::mem::take(&mut self.line));
        }
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            sink: self,
            line: Vec::with_capacity(256),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A stream that fails every write, like a pipe whose reader is gone.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    /// A stream that blocks until released, like a pipe nobody reads.
    struct Stuck(Arc<Mutex<()>>);

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            drop(self.0.lock().unwrap());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log(sink: &LogSink, text: &str) {
        let mut w = sink.make_writer();
        w.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn lines_reach_the_stream_whole_and_in_order() {
        let out = Arc::new(Mutex::new(Vec::new()));
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = LogSink::start(Shared(out.clone()), 16);
        log(&sink, "one\n");
        log(&sink, "two\n");
        assert!(sink.flush(Duration::from_secs(5)));
        assert_eq!(&*out.lock().unwrap(), b"one\ntwo\n");
        assert_eq!(sink.dropped().total(), 0);
    }

    #[test]
    fn a_broken_stream_drops_and_counts_lines_and_never_fails_the_caller() {
        let sink = LogSink::start(Broken, 16);
        for _ in 0..10 {
            log(&sink, "lost\n");
        }
        assert!(sink.flush(Duration::from_secs(5)));
        assert_eq!(sink.dropped().write_failed.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn a_stream_nobody_reads_never_blocks_the_caller() {
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let sink = LogSink::start(Stuck(gate.clone()), 4);
        let started = Instant::now();
        for _ in 0..100 {
            log(&sink, "waiting\n");
        }
        assert!(started.elapsed() < Duration::from_secs(1));
        // One line is in the stuck write, four wait in the queue.
        assert!(sink.dropped().queue_full.load(Ordering::Relaxed) >= 95);
        assert!(
            !sink.flush(Duration::from_millis(50)),
            "nothing was written"
        );
        drop(held);
        assert!(sink.flush(Duration::from_secs(5)));
    }
}
