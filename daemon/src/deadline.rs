//! A connection whose writes must make progress within a time limit and which is closed after
//! a time without reading anything: a client that stops reading (or never sends its next
//! request) cannot hold a connection, and its permit, for ever.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{sleep, Sleep};

/// `inner` with a deadline on pending writes and on pending reads.
#[derive(Debug)]
pub struct Deadline<S> {
    inner: S,
    write_timeout: Duration,
    idle_timeout: Duration,
    write_timer: Option<Pin<Box<Sleep>>>,
    read_timer: Option<Pin<Box<Sleep>>>,
}

impl<S> Deadline<S> {
    pub fn new(inner: S, write_timeout: Duration, idle_timeout: Duration) -> Self {
        Deadline {
            inner,
            write_timeout,
            idle_timeout,
            write_timer: None,
            read_timer: None,
        }
    }
}

/// Arms `timer` for `after` unless it runs, and answers whether it has fired.
fn expired(timer: &mut Option<Pin<Box<Sleep>>>, after: Duration, cx: &mut Context<'_>) -> bool {
    let timer = timer.get_or_insert_with(|| Box::pin(sleep(after)));
    if timer.is_elapsed() {
        return true;
    }
    timer.as_mut().poll(cx).is_ready()
}

/// What a poll of the inner stream becomes: ready disarms `timer`; pending arms it, and fails
/// with `TimedOut` (naming `what`) once it has run for `after`.
fn within<T>(
    timer: &mut Option<Pin<Box<Sleep>>>,
    after: Duration,
    what: &str,
    cx: &mut Context<'_>,
    polled: Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    match polled {
        Poll::Ready(r) => {
            *timer = None;
            Poll::Ready(r)
        }
        Poll::Pending if expired(timer, after, cx) => Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what} timed out"),
        ))),
        Poll::Pending => Poll::Pending,
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        within(
            &mut this.read_timer,
            this.idle_timeout,
            "idle connection",
            cx,
            polled,
        )
    }
}

impl<S> Deadline<S> {
    fn track<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        within(
            &mut self.write_timer,
            self.write_timeout,
            "write",
            cx,
            polled,
        )
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.track(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.track(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.track(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.track(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_fails_after_the_timeout() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = Deadline::new(server, Duration::from_secs(10), Duration::from_secs(60));
        let started = Instant::now();
        let err = server.write_all(&[0; 1024]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(10));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_closes_and_a_busy_one_does_not() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = Deadline::new(server, Duration::from_secs(10), Duration::from_secs(60));
        let reader = tokio::spawn(async move {
            let started = Instant::now();
            let mut got = 0;
            let mut byte = [0u8; 1];
            loop {
                match server.read_exact(&mut byte).await {
                    Ok(_) => got += 1,
                    Err(e) => return (got, e.kind(), started.elapsed()),
                }
            }
        });
        // A byte every 50 s keeps the connection open past the 60 s idle timeout.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(50)).await;
            client.write_all(b"x").await.unwrap();
        }
        let (got, kind, elapsed) = reader.await.unwrap();
        assert_eq!((got, kind), (3, io::ErrorKind::TimedOut));
        assert!(elapsed >= Duration::from_secs(210), "{elapsed:?}");
        drop(client);
    }
}
