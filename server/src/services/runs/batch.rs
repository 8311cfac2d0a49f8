//! Messages of one worker session taken together: acceptances and results that are already
//! waiting in the session's inbox are stored in one transaction each, so a worker that
//! accepts or finishes many runs at once costs a few writes, not a few per run. Order is
//! kept: a batch is a run of consecutive messages of one kind.

use contracts::worker::{JobResult, WorkerMessage};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Most messages stored together.
pub(super) const MAX: usize = 64;

/// What a session handles next.
#[derive(Debug)]
pub(super) enum Batch {
    /// `(run_id, lease_id)` of consecutive `accept`s.
    Accepts(Vec<(Uuid, Uuid)>),
    /// `(run_id, lease_id, result)` of consecutive `result`s.
    Results(Vec<(Uuid, Uuid, JobResult)>),
    /// Any other message, alone.
    One(WorkerMessage),
}

/// The batch that starts with `first`, extended by the messages of the same kind already in
/// `inbox`; also the first message of another kind it took out, to handle next.
pub(super) fn gather(
    first: WorkerMessage,
    inbox: &mut mpsc::Receiver<WorkerMessage>,
) -> (Batch, Option<WorkerMessage>) {
    match first {
        WorkerMessage::Accept { run_id, lease_id } => {
            let mut accepts = vec![(run_id, lease_id)];
            while accepts.len() < MAX {
                match inbox.try_recv() {
                    Ok(WorkerMessage::Accept { run_id, lease_id }) => {
                        accepts.push((run_id, lease_id));
                    }
                    Ok(other) => return (Batch::Accepts(accepts), Some(other)),
                    Err(_) => break,
                }
            }
            (Batch::Accepts(accepts), None)
        }
        WorkerMessage::Result {
            run_id,
            lease_id,
            result,
        } => {
            let mut results = vec![(run_id, lease_id, result)];
            while results.len() < MAX {
                match inbox.try_recv() {
                    Ok(WorkerMessage::Result {
                        run_id,
                        lease_id,
                        result,
                    }) => results.push((run_id, lease_id, result)),
                    Ok(other) => return (Batch::Results(results), Some(other)),
                    Err(_) => break,
                }
            }
            (Batch::Results(results), None)
        }
        other => (Batch::One(other), None),
    }
}

#[cfg(test)]
mod tests {
    use contracts::worker::JobOutcome;

    use super::*;

    fn accept(n: u128) -> WorkerMessage {
        WorkerMessage::Accept {
            run_id: Uuid::from_u128(n),
            lease_id: Uuid::from_u128(n + 1000),
        }
    }

    fn result(n: u128) -> WorkerMessage {
        WorkerMessage::Result {
            run_id: Uuid::from_u128(n),
            lease_id: Uuid::from_u128(n + 1000),
            result: JobResult {
                outcome: JobOutcome::Canceled,
                attempts: 0,
                prompt_tokens: None,
                completion_tokens: None,
                raw_output: None,
                latency_ms: 0,
            },
        }
    }

    fn inbox(messages: Vec<WorkerMessage>) -> mpsc::Receiver<WorkerMessage> {
        let (tx, rx) = mpsc::channel(1024);
        for message in messages {
            tx.try_send(message).unwrap();
        }
        rx
    }

    #[test]
    fn consecutive_messages_of_one_kind_are_taken_together_in_order() {
        let mut rx = inbox(vec![accept(2), accept(3), result(4), accept(5)]);
        let (batch, next) = gather(accept(1), &mut rx);
        let Batch::Accepts(accepts) = batch else {
            panic!("{batch:?}")
        };
        let runs: Vec<u128> = accepts.iter().map(|(run, _)| run.as_u128()).collect();
        assert_eq!(runs, [1, 2, 3]);
        // The result that ended the batch comes next, before the later accept.
        let (batch, next) = gather(next.unwrap(), &mut rx);
        assert!(
            matches!(&batch, Batch::Results(r) if r.len() == 1),
            "{batch:?}"
        );
        let (batch, next) = gather(next.unwrap(), &mut rx);
        assert!(
            matches!(&batch, Batch::Accepts(a) if a.len() == 1 && a[0].0.as_u128() == 5),
            "{batch:?}"
        );
        assert!(next.is_none() && rx.try_recv().is_err());
    }

    #[test]
    fn a_batch_stops_at_its_size_and_other_messages_come_alone() {
        let mut rx = inbox((2..=100).map(result).collect());
        let (batch, next) = gather(result(1), &mut rx);
        assert!(
            matches!(&batch, Batch::Results(r) if r.len() == MAX),
            "{batch:?}"
        );
        assert!(next.is_none());
        assert!(matches!(
            rx.try_recv().unwrap(),
            WorkerMessage::Result { run_id, .. } if run_id.as_u128() == MAX as u128 + 1
        ));
        let mut empty = inbox(vec![accept(9)]);
        let (batch, next) = gather(WorkerMessage::Pong { nonce: 1 }, &mut empty);
        assert!(matches!(
            batch,
            Batch::One(WorkerMessage::Pong { nonce: 1 })
        ));
        assert!(next.is_none(), "a lone message does not take the next one");
    }
}
