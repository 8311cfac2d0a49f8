//! The server's side of template rendering: a small pool of render helper processes
//! ([`super::helper`]), started on first use and kept for the next run. Each rendering
//! takes one helper; a helper that misses the deadline is killed, one that dies (a template
//! that ran out of memory) is reaped, and the run is refused with the reason; the next
//! rendering starts a fresh helper.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

use super::helper::{self, HELLO, MEMORY_LIMIT_BYTES, Request};

/// Longest a prompt may take to render before its run is refused.
pub const RENDER_DEADLINE: Duration = Duration::from_secs(2);

/// Longest a new helper may take to start and say hello.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// Renders user prompt templates in helper processes.
#[derive(Debug)]
pub struct Renderer {
    program: PathBuf,
    idle: Mutex<Vec<Helper>>,
    /// One permit per helper that may exist at once.
    slots: Semaphore,
}

impl Renderer {
    /// Helpers run `program --render-helper`; at most `helpers` render at once (more would
    /// only share the same cores).
    pub fn new(program: PathBuf, helpers: usize) -> Renderer {
        Renderer {
            program,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(helpers.max(1)),
        }
    }

    /// Process ids of the helpers waiting for work (for diagnostics and tests).
    pub fn idle_helpers(&self) -> Vec<u32> {
        self.idle
            .lock()
            .iter()
            .filter_map(|h| h.child.id())
            .collect()
    }

    /// The prompt for `input`, or why there is none: the template's own error, that it took
    /// too long or too much memory, or that no helper could be started (the server's problem,
    /// not the request's).
    pub async fn render(&self, template: &str, input: &Value) -> Result<String, RenderError> {
        let mut request = serde_json::to_vec(&Request {
            template: template.into(),
            input: std::borrow::Cow::Borrowed(input),
        })
        .map_err(|err| RenderError::Template(format!("cannot be rendered: {err}")))?;
        request.push(b'\n');
        let _slot = self.slots.acquire().await.map_err(|_| {
            RenderError::Unavailable("the template renderer is stopping".to_owned())
        })?;
        // A helper that died while idle (killed from outside) is replaced, not blamed.
        let idle = self.idle.lock().pop();
        let mut helper = match idle.and_then(|mut helper| helper.is_alive().then_some(helper)) {
            Some(helper) => helper,
            None => Helper::start(&self.program).await.map_err(|err| {
                tracing::error!(program = %self.program.display(), "render helper: {err}");
                RenderError::Unavailable(format!("the template renderer does not start ({err})"))
            })?,
        };
        match tokio::time::timeout(RENDER_DEADLINE, helper.call(&request)).await {
            Ok(Ok(reply)) => {
                self.idle.lock().push(helper);
                reply.map_err(RenderError::Template)
            }
            Ok(Err(_)) => Err(RenderError::Template(helper.died().await)),
            // Dropping the helper kills it (mid-rendering; nothing else is lost).
            Err(_) => Err(RenderError::Template(format!(
                "takes more than {} s to render",
                RENDER_DEADLINE.as_secs()
            ))),
        }
    }
}

/// Why a prompt could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template with this input: its own error, or it ran away (time, memory).
    #[error("{0}")]
    Template(String),
    /// No helper could render it (it does not start, the server is stopping).
    #[error("{0}")]
    Unavailable(String),
}

/// One helper process and its pipes. Dropping it kills the process (tokio reaps it).
#[derive(Debug)]
struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: ChildStderr,
    line: String,
}

impl Helper {
    async fn start(program: &Path) -> Result<Helper, String> {
        let mut child = Command::new(program)
            .arg(helper::FLAG)
            // Nothing of the server's environment (keys, tokens) is the helper's business.
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Read when it dies (it writes nothing else): see `died`.
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| err.to_string())?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("no pipes to the helper".to_owned());
        };
        let mut helper = Helper {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            stderr,
            line: String::new(),
        };
        match tokio::time::timeout(START_DEADLINE, helper.read_line()).await {
            Ok(Ok(())) if helper.line.trim_end() == HELLO => Ok(helper),
            Ok(Ok(())) => Err(format!(
                "{} is not an agentry render helper",
                program.display()
            )),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no hello within {} s", START_DEADLINE.as_secs())),
        }
    }

    fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends one request line and reads the reply line.
    async fn call(&mut self, request: &[u8]) -> std::io::Result<Result<String, String>> {
        self.stdin.write_all(request).await?;
        self.stdin.flush().await?;
        self.read_line().await?;
        serde_json::from_str(&self.line).map_err(std::io::Error::other)
    }

    async fn read_line(&mut self) -> std::io::Result<()> {
        self.line.clear();
        if self.stdout.read_line(&mut self.line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Why the helper stopped answering, once it has exited; its last words are logged.
    async fn died(mut self) -> String {
        let status = tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await;
        let mut last_words = Vec::new();
        let mut stderr = (&mut self.stderr).take(4096);
        let _ =
            tokio::time::timeout(Duration::from_secs(1), stderr.read_to_end(&mut last_words)).await;
        let last_words = String::from_utf8_lossy(&last_words);
        tracing::warn!(?status, stderr = %last_words.trim_end(), "render helper ended");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            // Rust aborts (SIGABRT) when an allocation fails: the template went past the
            // helper's memory limit.
            if let Ok(Ok(status)) = &status
                && status.signal() == Some(6)
            {
                return format!(
                    "needs more than {} MiB of memory to render",
                    MEMORY_LIMIT_BYTES >> 20
                );
            }
        }
        "cannot be rendered: the template renderer stopped unexpectedly".to_owned()
    }
}
