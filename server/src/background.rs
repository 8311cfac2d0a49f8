//! Background work: every task the server starts besides request handlers (runs, provider
//! checks, the registry sweeper, WebSocket sessions) is spawned here, so a graceful stop can
//! tell them all to wind down and wait for them. `tokio::spawn` is disallowed elsewhere
//! (clippy.toml).

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Cheap to clone: both halves are shared handles.
#[derive(Debug, Clone, Default)]
pub struct Background {
    tracker: TaskTracker,
    stopping: CancellationToken,
}

impl Background {
    pub fn new() -> Background {
        Background::default()
    }

    /// Runs `task` in the background, tracked until it completes.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        #[expect(
            clippy::disallowed_methods,
            reason = "the one place that spawns: the tracker sees every task"
        )]
        self.tracker.spawn(task)
    }

    /// Tracks a future someone else spawns (axum runs each WebSocket session itself).
    pub fn track<F: Future>(&self, task: F) -> impl Future<Output = F::Output> + use<F> {
        self.tracker.track_future(task)
    }

    /// Completes when the server starts stopping: loops and sessions select on it.
    pub fn stopping(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.stopping.clone().cancelled_owned()
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Tells every task to wind down; new tasks may still be spawned (a run finishing its
    /// last write), but `wait` no longer waits for ones started later than it returns.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Waits up to `grace` for every tracked task to finish; `false` if some did not.
    pub async fn wait(&self, grace: Duration) -> bool {
        self.tracker.close();
        let finished = tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok();
        self.tracker.reopen();
        finished
    }

    /// Tasks still running.
    pub fn running(&self) -> usize {
        self.tracker.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_returns_once_every_task_has_seen_the_stop() {
        let background = Background::new();
        for _ in 0..3 {
            let stopping = background.stopping();
            background.spawn(stopping);
        }
        assert_eq!(background.running(), 3);
        assert!(
            !background.wait(Duration::from_millis(20)).await,
            "still running"
        );
        background.stop();
        assert!(background.wait(Duration::from_secs(5)).await);
        assert_eq!(background.running(), 0);
    }

    #[tokio::test]
    async fn tracked_futures_count_until_they_complete() {
        let background = Background::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let tracked = background.track(async move {
            let _ = rx.await;
        });
        assert_eq!(background.running(), 1);
        let _ = tx.send(());
        tracked.await;
        assert!(background.wait(Duration::from_secs(1)).await);
    }
}
