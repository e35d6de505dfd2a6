//! Idle connections: a stream wrapper that notes that bytes moved, and a future that ends
//! when none have moved for a while. It wraps the client's TCP stream under TLS, so it sees the
//! same bytes before and after a WebSocket upgrade.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many reads and writes moved bytes on a connection. A count, not a time: every read and
/// write bumps it, and reading the clock there cost 4% of the front door's own instructions
/// per request. A count, not a flag, so that each watcher (the connection's, then a WebSocket
/// tunnel's) sees for itself whether it changed.
#[derive(Debug, Default)]
pub struct Activity {
    moves: AtomicU64,
}

/// The idle check looks this many times per idle limit: a connection closes between one and
/// 1.25 limits after its last byte.
const CHECKS_PER_LIMIT: u32 = 4;

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn touch(&self) {
        self.moves.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends once no byte has moved for at least `limit`.
    pub async fn idle_for(&self, limit: Duration) {
        let step = limit / CHECKS_PER_LIMIT;
        let mut seen = self.moves.load(Ordering::Relaxed);
        let mut quiet_steps = 0;
        while quiet_steps < CHECKS_PER_LIMIT {
            tokio::time::sleep(step).await;
            let now = self.moves.load(Ordering::Relaxed);
            if now == seen {
                quiet_steps += 1;
            } else {
                seen = now;
                quiet_steps = 0;
            }
        }
    }
}

/// A stream that reports its traffic to an [`Activity`].
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test(flavor = "current_thread")]
    async fn idle_only_after_a_whole_limit_without_a_byte() {
        let activity = Activity::new();
        let limit = Duration::from_millis(400);
        let watcher = activity.idle_for(limit);
        tokio::pin!(watcher);
        // Bytes every 100 ms for a second: more than two limits, never idle.
        let traffic = async {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                activity.touch();
            }
        };
        tokio::select! {
            () = &mut watcher => panic!("called idle while bytes moved"),
            () = traffic => {}
        }
        let last_byte = Instant::now();
        watcher.await;
        let idle = last_byte.elapsed();
        // Timers fire no earlier than asked; the slack above 1.25 limits is for a loaded
        // machine (the ARM tiers run under qemu-user).
        assert!(idle >= limit - Duration::from_millis(5), "{idle:?}");
        assert!(
            idle <= limit * 5 / 4 + Duration::from_millis(400),
            "{idle:?}"
        );
    }
}
