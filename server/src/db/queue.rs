//! The run queue: statements that offer queued runs to workers, lease them and take them
//! back. Every statement is one conditional update, fenced by the run's status and, once a
//! worker holds it, by its current lease id: a worker whose lease was taken back can neither
//! report progress nor finish the run, whatever it sends late.
//!
//! `claim` takes a batch of the oldest queued runs with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so several servers on one database never offer the same run twice; SQLite has
//! one writer (and one dispatcher per process), so it needs no row locks. Each offer gets its
//! own random lease id, so `accept` can take a batch of offers by lease id alone.

use chrono::{DateTime, Utc};
use contracts::RunStatus;
use sea_orm::entity::prelude::*;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExprTrait, QuerySelect, Statement,
    TransactionTrait,
};

use super::Wire;
use super::concurrency;
use super::runs::{Finish, finishing, run};

const LEASED: [RunStatus; 2] = [RunStatus::Assigned, RunStatus::Running];

fn leased_statuses() -> impl Iterator<Item = Wire<RunStatus>> {
    LEASED.into_iter().map(Wire)
}

/// `now + secs`.
pub fn after(now: DateTime<Utc>, duration: std::time::Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// Offers up to `limit` of the oldest queued runs whose route key is one of `keys` (the
/// routes the worker may take) to `worker_id`, each under a new lease (a random id the
/// database draws per row) that must be accepted by `ack_deadline`; in queue order, empty
/// when nothing it may take is queued. One statement, however many runs.
///
/// `groups` is `None` while no concurrency group exists (every run may go); otherwise runs
/// of no group may go, and of each group listed at most its room (`concurrency::room`), its
/// oldest first: a full group's runs wait without holding back anyone else's.
pub async fn claim(
    db: &impl ConnectionTrait,
    worker_id: Uuid,
    limit: u32,
    keys: &[String],
    groups: Option<&[(Uuid, u32)]>,
    now: DateTime<Utc>,
    ack_deadline: DateTime<Utc>,
) -> Result<Vec<run::Model>, DbErr> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let routes = (0..keys.len())
        .map(|i| format!("${}", i + 7))
        .collect::<Vec<_>>()
        .join(", ");
    let mut values: Vec<sea_orm::Value> = vec![
        Wire(RunStatus::Assigned).into(),
        worker_id.into(),
        ack_deadline.into(),
        now.into(),
        Wire(RunStatus::Queued).into(),
        i64::from(limit).into(),
    ];
    values.extend(keys.iter().map(|key| key.clone().into()));
    // PostgreSQL: `ARRAY(subquery)` is evaluated once, before the update, so `SKIP LOCKED`
    // picks `limit` rows no other server holds (an `IN` semi-join may re-run it per row and
    // claim the whole queue). SQLite has one writer: the plain subquery is enough.
    let (lock, new_lease) = match backend {
        DbBackend::Postgres => (" FOR UPDATE SKIP LOCKED", "gen_random_uuid()"),
        _ => ("", "randomblob(16)"),
    };
    let queued =
        format!("SELECT id, queued_at FROM runs WHERE status = $5 AND route_key IN ({routes})");
    let order = "ORDER BY queued_at, id";
    let picked = match groups {
        None => format!(
            "SELECT id FROM runs WHERE status = $5 AND route_key IN ({routes}) {order} LIMIT $6{lock}"
        ),
        Some(groups) => {
            // One index range per group (`ix_runs_group`), each cut to the group's room, and
            // the oldest `limit` of them all. Each branch sits in a derived table: PostgreSQL
            // refuses a locking clause directly inside a UNION.
            let mut branches = vec![format!(
                "SELECT * FROM ({queued} AND concurrency_group_id IS NULL {order} LIMIT $6{lock}) b0"
            )];
            for (i, (group, room)) in groups.iter().enumerate() {
                let at = values.len();
                values.push((*group).into());
                values.push(i64::from(*room).into());
                branches.push(format!(
                    "SELECT * FROM ({queued} AND concurrency_group_id = ${} {order} LIMIT ${}{lock}) b{}",
                    at + 1,
                    at + 2,
                    i + 1
                ));
            }
            format!(
                "SELECT id FROM ({}) picked {order} LIMIT $6",
                branches.join(" UNION ALL ")
            )
        }
    };
    let chosen = match backend {
        DbBackend::Postgres => format!("id = ANY(ARRAY({picked}))"),
        _ => format!("id IN ({picked})"),
    };
    let sql = format!(
        "UPDATE runs SET status = $1, worker_id = $2, lease_id = {new_lease}, \
         lease_expires_at = $3, assigned_at = $4 WHERE {chosen} AND status = $5 RETURNING *"
    );
    let mut rows = run::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await?;
    rows.sort_by_key(|r| (r.queued_at, r.id));
    Ok(rows)
}

/// `claim` keeping every concurrency group within its limit: each group's room is read
/// just before the claim. On PostgreSQL the group rows stay locked from the count to the
/// claim, so servers sharing the database take turns; SQLite has one dispatcher per database
/// (one server), whose claims follow one another.
pub async fn claim_within_limits(
    db: &DatabaseConnection,
    worker_id: Uuid,
    limit: u32,
    keys: &[String],
    now: DateTime<Utc>,
    ack_deadline: DateTime<Utc>,
) -> Result<Vec<run::Model>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        let room = concurrency::room(db).await?;
        return claim(db, worker_id, limit, keys, Some(&room), now, ack_deadline).await;
    }
    let tx = db.begin().await?;
    concurrency::lock_all(&tx).await?;
    let room = concurrency::room(&tx).await?;
    let rows = claim(&tx, worker_id, limit, keys, Some(&room), now, ack_deadline).await?;
    tx.commit().await?;
    Ok(rows)
}

/// The worker accepted these offers (by lease id, unique per offer): each run is `running`
/// under the same lease until `lease_expires_at`, and one more delivery is counted. Returns
/// the runs as stored; an offer not among them was withdrawn meanwhile.
pub async fn accept(
    db: &impl ConnectionTrait,
    lease_ids: &[Uuid],
    now: DateTime<Utc>,
    lease_expires_at: DateTime<Utc>,
) -> Result<Vec<run::Model>, DbErr> {
    if lease_ids.is_empty() {
        return Ok(Vec::new());
    }
    run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(Wire(RunStatus::Running)))
        .col_expr(run::Column::StartedAt, Expr::value(Some(now)))
        .col_expr(
            run::Column::Deliveries,
            Expr::col(run::Column::Deliveries).add(1),
        )
        .col_expr(
            run::Column::LeaseExpiresAt,
            Expr::value(Some(lease_expires_at)),
        )
        .filter(run::Column::LeaseId.is_in(lease_ids.iter().copied()))
        .filter(run::Column::Status.eq(Wire(RunStatus::Assigned)))
        .exec_with_returning(db)
        .await
}

/// Replaces the lease `lease_id` of a run by `new_lease_id`, valid until `expires_at`.
/// `false` when `lease_id` is not the current lease any more.
pub async fn extend(
    db: &impl ConnectionTrait,
    run_id: Uuid,
    lease_id: Uuid,
    new_lease_id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let updated = run::Entity::update_many()
        .col_expr(run::Column::LeaseId, Expr::value(Some(new_lease_id)))
        .col_expr(run::Column::LeaseExpiresAt, Expr::value(Some(expires_at)))
        .filter(run::Column::Id.eq(run_id))
        .filter(run::Column::LeaseId.eq(lease_id))
        .filter(run::Column::Status.eq(Wire(RunStatus::Running)))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Whether `lease_id` is the current lease of a running run (events are stored only then).
pub async fn holds(db: &impl ConnectionTrait, run_id: Uuid, lease_id: Uuid) -> Result<bool, DbErr> {
    Ok(run::Entity::find()
        .filter(run::Column::Id.eq(run_id))
        .filter(run::Column::LeaseId.eq(lease_id))
        .filter(run::Column::Status.eq(Wire(RunStatus::Running)))
        .count(db)
        .await?
        == 1)
}

/// Records progress of a run (attempt count and last raw answer) reported under `lease_id`;
/// the run as stored, or `None` when the lease is not current.
pub async fn record_progress(
    db: &impl ConnectionTrait,
    run_id: Uuid,
    lease_id: Uuid,
    attempts: i32,
    raw_output: Option<String>,
) -> Result<Option<run::Model>, DbErr> {
    Ok(run::Entity::update_many()
        .col_expr(run::Column::Attempts, Expr::value(attempts))
        .col_expr(
            run::Column::RawOutput,
            Expr::value(raw_output.map(super::storable)),
        )
        .filter(run::Column::Id.eq(run_id))
        .filter(run::Column::LeaseId.eq(lease_id))
        .filter(run::Column::Status.eq(Wire(RunStatus::Running)))
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Ends a run with the result its worker reported under `lease_id`; `None` when that lease is
/// not current (taken back, or the run ended otherwise).
pub async fn finish(
    db: &impl ConnectionTrait,
    run_id: Uuid,
    lease_id: Uuid,
    to: RunStatus,
    now: DateTime<Utc>,
    result: Finish,
) -> Result<Option<run::Model>, DbErr> {
    let update = run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(Wire(to)))
        .filter(run::Column::Id.eq(run_id))
        .filter(run::Column::LeaseId.eq(lease_id))
        .filter(run::Column::Status.eq(Wire(RunStatus::Running)));
    Ok(finishing(update, to, now, result)
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Puts runs back in the queue (they keep their `worker_id`, the worker that last had them).
fn requeue(now: DateTime<Utc>) -> sea_orm::UpdateMany<run::Entity> {
    run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(Wire(RunStatus::Queued)))
        .col_expr(run::Column::LeaseId, Expr::value(Option::<Uuid>::None))
        .col_expr(
            run::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(run::Column::QueuedAt, Expr::value(Some(now)))
        .filter(run::Column::Status.is_in(leased_statuses()))
}

/// Takes the run of `lease_id` back into the queue (declined, offer not accepted in time,
/// worker disabled); `None` when that lease is not current.
pub async fn take_back(
    db: &impl ConnectionTrait,
    run_id: Uuid,
    lease_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<run::Model>, DbErr> {
    Ok(requeue(now)
        .filter(run::Column::Id.eq(run_id))
        .filter(run::Column::LeaseId.eq(lease_id))
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Takes back every run leased to `worker_id` except those under `keep` (leases a
/// reconnecting worker still holds).
pub async fn take_back_worker(
    db: &impl ConnectionTrait,
    worker_id: Uuid,
    keep: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<run::Model>, DbErr> {
    let mut update = requeue(now).filter(run::Column::WorkerId.eq(worker_id));
    if !keep.is_empty() {
        update = update.filter(run::Column::LeaseId.is_not_in(keep.iter().copied()));
    }
    update.exec_with_returning(db).await
}

/// Offers not accepted by their deadline, queued again (the worker missed its ack).
pub async fn expire_offers(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Vec<run::Model>, DbErr> {
    requeue(now)
        .filter(run::Column::Status.eq(Wire(RunStatus::Assigned)))
        .filter(run::Column::LeaseExpiresAt.lt(now))
        .exec_with_returning(db)
        .await
}

/// Running runs whose lease ran out by `now` (their worker stopped renewing it): those
/// already delivered `max_deliveries` times fail with `lost_error`, the others are queued
/// again. Returns `(requeued, failed)` as stored.
pub async fn expire_leases(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    max_deliveries: u32,
    lost_error: &str,
) -> Result<(Vec<run::Model>, Vec<run::Model>), DbErr> {
    let max = i32::try_from(max_deliveries).unwrap_or(i32::MAX);
    let lost = Finish {
        error: Some(lost_error.to_owned()),
        ..Finish::default()
    };
    let failed = finishing(
        run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(Wire(RunStatus::Failed)))
            .filter(run::Column::Status.eq(Wire(RunStatus::Running)))
            .filter(run::Column::LeaseExpiresAt.lt(now))
            .filter(run::Column::Deliveries.gte(max)),
        RunStatus::Failed,
        now,
        lost,
    )
    .exec_with_returning(db)
    .await?;
    let requeued = requeue(now)
        .filter(run::Column::Status.eq(Wire(RunStatus::Running)))
        .filter(run::Column::LeaseExpiresAt.lt(now))
        .exec_with_returning(db)
        .await?;
    Ok((requeued, failed))
}

/// Unfinished runs stored before the queue existed (no job to hand a worker) fail with
/// `error`.
pub async fn fail_jobless(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    error: &str,
) -> Result<Vec<run::Model>, DbErr> {
    let finish = Finish {
        error: Some(error.to_owned()),
        ..Finish::default()
    };
    finishing(
        run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(Wire(RunStatus::Failed)))
            .filter(
                run::Column::Status
                    .is_in(RunStatus::Failed.predecessors().iter().copied().map(Wire)),
            )
            .filter(run::Column::Job.is_null()),
        RunStatus::Failed,
        now,
        finish,
    )
    .exec_with_returning(db)
    .await
}

/// Unfinished runs of a deleted concurrency group count against no group from now on.
pub async fn leave_group(db: &impl ConnectionTrait, group: Uuid) -> Result<u64, DbErr> {
    let unfinished = [RunStatus::Queued, RunStatus::Assigned, RunStatus::Running].map(Wire);
    Ok(run::Entity::update_many()
        .col_expr(
            run::Column::ConcurrencyGroupId,
            Expr::value(Option::<Uuid>::None),
        )
        .filter(run::Column::ConcurrencyGroupId.eq(group))
        .filter(run::Column::Status.is_in(unfinished))
        .exec(db)
        .await?
        .rows_affected)
}

/// Queued runs whose queue deadline passed by `now` (no worker took them in time).
pub async fn overdue(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Vec<run::Model>, DbErr> {
    run::Entity::find()
        .filter(run::Column::Status.eq(Wire(RunStatus::Queued)))
        .filter(run::Column::QueueDeadline.lt(now))
        .all(db)
        .await
}

/// A run queued again waits its full queue timeout anew: its deadline moves to `deadline`.
pub async fn reset_deadline(
    db: &impl ConnectionTrait,
    run_id: Uuid,
    deadline: DateTime<Utc>,
) -> Result<(), DbErr> {
    run::Entity::update_many()
        .col_expr(run::Column::QueueDeadline, Expr::value(Some(deadline)))
        .filter(run::Column::Id.eq(run_id))
        .filter(run::Column::Status.eq(Wire(RunStatus::Queued)))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends a queued run whose deadline passed as failed with `error`; `None` when it is no longer
/// queued (a worker took it meanwhile) or its deadline moved.
pub async fn fail_overdue(
    db: &impl ConnectionTrait,
    run_id: Uuid,
    now: DateTime<Utc>,
    error: String,
) -> Result<Option<run::Model>, DbErr> {
    let finish = Finish {
        error: Some(error),
        ..Finish::default()
    };
    let update = run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(Wire(RunStatus::Failed)))
        .filter(run::Column::Id.eq(run_id))
        .filter(run::Column::Status.eq(Wire(RunStatus::Queued)))
        .filter(run::Column::QueueDeadline.lt(now));
    Ok(finishing(update, RunStatus::Failed, now, finish)
        .exec_with_returning(db)
        .await?
        .pop())
}

/// Runs currently leased to `worker_id`.
pub async fn leased_to(
    db: &impl ConnectionTrait,
    worker_id: Uuid,
) -> Result<Vec<run::Model>, DbErr> {
    run::Entity::find()
        .filter(run::Column::WorkerId.eq(worker_id))
        .filter(run::Column::Status.is_in(leased_statuses()))
        .all(db)
        .await
}

/// How many runs workers hold (offered or running) and how many wait in the queue, read in
/// one statement: read one after the other, a run claimed in between is in neither count,
/// and a poll waiting for both to reach 0 stops while it still runs.
pub async fn unfinished(db: &impl ConnectionTrait) -> Result<(u64, u64), DbErr> {
    #[derive(Debug, sea_orm::FromQueryResult)]
    struct Count {
        status: Wire<RunStatus>,
        count: i64,
    }
    let statuses = [RunStatus::Queued, LEASED[0], LEASED[1]].map(Wire);
    let rows = run::Entity::find()
        .select_only()
        .column(run::Column::Status)
        .column_as(run::Column::Id.count(), "count")
        .filter(run::Column::Status.is_in(statuses))
        .group_by(run::Column::Status)
        .into_model::<Count>()
        .all(db)
        .await?;
    let (mut leased, mut queued) = (0, 0);
    for row in rows {
        let count = u64::try_from(row.count).unwrap_or(0);
        if row.status.0 == RunStatus::Queued {
            queued += count;
        } else {
            leased += count;
        }
    }
    Ok((leased, queued))
}

/// The route keys of unfinished runs (queued, or leased and possibly queued again).
pub async fn unfinished_route_keys(
    db: &impl ConnectionTrait,
) -> Result<std::collections::BTreeSet<String>, DbErr> {
    #[derive(Debug, sea_orm::FromQueryResult)]
    struct Key {
        route_key: String,
    }
    Ok(run::Entity::find()
        .select_only()
        .column(run::Column::RouteKey)
        .distinct()
        .filter(run::Column::Status.is_in([
            Wire(RunStatus::Queued),
            Wire(RunStatus::Assigned),
            Wire(RunStatus::Running),
        ]))
        .into_model::<Key>()
        .all(db)
        .await?
        .into_iter()
        .map(|k| k.route_key)
        .collect())
}

/// Sets the waiting reason of the queued runs of route `key` where it differs; returns those
/// runs as stored.
pub async fn set_waiting_reason(
    db: &impl ConnectionTrait,
    key: &str,
    reason: Option<&str>,
) -> Result<Vec<run::Model>, DbErr> {
    let differs = match reason {
        Some(reason) => run::Column::WaitingReason
            .is_null()
            .or(run::Column::WaitingReason.ne(reason)),
        None => run::Column::WaitingReason.is_not_null(),
    };
    run::Entity::update_many()
        .col_expr(
            run::Column::WaitingReason,
            Expr::value(reason.map(str::to_owned)),
        )
        .filter(run::Column::Status.eq(Wire(RunStatus::Queued)))
        .filter(run::Column::RouteKey.eq(key))
        .filter(differs)
        .exec_with_returning(db)
        .await
}
