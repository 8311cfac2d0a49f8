//! How a worker reaches the server. A session is two ordered streams of protocol messages;
//! a transport only carries them. The in-process transport (the built-in worker) hands the
//! messages over on channels as they are; the WebSocket transport (remote workers) carries
//! the same values as JSON frames. Worker and server code see only [`Link`]s.

use std::future::Future;
use std::sync::Arc;

use contracts::worker::{ServerMessage, WorkerMessage};
use tokio::sync::mpsc;

/// Messages buffered per direction before a sender waits.
pub const LINK_CAPACITY: usize = 1024;

/// One side of a session: what it sends and what it receives. Dropping the sender closes
/// the session for the other side.
pub struct Link<Out, In> {
    pub tx: mpsc::Sender<Out>,
    pub rx: mpsc::Receiver<In>,
}

/// The worker's side of a session.
pub type WorkerLink = Link<WorkerMessage, ServerMessage>;
/// The server's side of a session.
pub type ServerLink = Link<ServerMessage, WorkerMessage>;

/// Two connected sides.
pub fn pair() -> (WorkerLink, ServerLink) {
    let (to_server, from_worker) = mpsc::channel(LINK_CAPACITY);
    let (to_worker, from_server) = mpsc::channel(LINK_CAPACITY);
    (
        Link {
            tx: to_server,
            rx: from_server,
        },
        Link {
            tx: to_worker,
            rx: from_worker,
        },
    )
}

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server refused this worker for good (revoked, unknown key): stop trying.
    #[error("refused by the server: {0}")]
    Refused(String),
    /// Try again later (server down, network error).
    #[error("server unavailable: {0}")]
    Unavailable(String),
}

/// Opens sessions to the server.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self) -> impl Future<Output = Result<WorkerLink, ConnectError>> + Send;
}

/// The in-process transport: each connection is a channel pair whose server side goes to
/// `accept` (the server's session handler).
#[derive(Clone)]
pub struct InProcess {
    accept: Arc<dyn Fn(ServerLink) -> Result<(), ConnectError> + Send + Sync>,
}

impl InProcess {
    pub fn new(
        accept: impl Fn(ServerLink) -> Result<(), ConnectError> + Send + Sync + 'static,
    ) -> InProcess {
        InProcess {
            accept: Arc::new(accept),
        }
    }
}

impl Connector for InProcess {
    async fn connect(&self) -> Result<WorkerLink, ConnectError> {
        let (worker, server) = pair();
        (self.accept)(server)?;
        Ok(worker)
    }
}
