//! Tags: labels that workers carry (set by the API or by a worker's registration token,
//! never by the worker itself) and that agents will require of the worker that runs them.
//! Owns the `tags` table and the topic `tags`; the Workers service links tags to workers
//! and tokens through `resolve`.

use std::collections::BTreeSet;
use std::sync::Arc;

use contracts::{CreateTag, EventKind, Tag, Topic};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use uuid::Uuid;

use crate::db::tags;
use crate::domain::fields::Problems;
use crate::domain::{Invalid, new_id, now};
use crate::events::EventHub;

const MAX_NAME_CHARS: usize = 64;
const MAX_NOTE_CHARS: usize = 200;
/// Most tags on one worker or token.
pub const MAX_PER_WORKER: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no tag with id {0}")]
    NotFound(Uuid),
    #[error("a tag with this name already exists")]
    DuplicateName,
    #[error("agents require this tag ({0}); take it out of their required tags first")]
    InUse(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[derive(Clone)]
pub struct Tags {
    db: DatabaseConnection,
    events: Arc<EventHub>,
}

impl Tags {
    pub fn new(db: DatabaseConnection, events: Arc<EventHub>) -> Tags {
        Tags { db, events }
    }

    /// Every tag by name, with how many workers carry it.
    pub async fn list(&self) -> Result<Vec<Tag>, Error> {
        let counts = tags::worker_counts(&self.db).await?;
        Ok(tags::list(&self.db)
            .await?
            .iter()
            .map(|row| view(row, counts.get(&row.id).copied().unwrap_or(0)))
            .collect())
    }

    pub async fn create(&self, body: CreateTag) -> Result<Tag, Error> {
        let mut problems = Problems::new();
        if let Err(why) = check_name(&body.name) {
            problems.add("/name", why);
        }
        let note = check_note(&mut problems, body.note);
        problems.finish(())?;
        if tags::find_by_name(&self.db, &body.name).await?.is_some() {
            return Err(Error::DuplicateName);
        }
        let row = tags::tag::Model {
            id: new_id(),
            name: body.name,
            note,
            created_at: now(),
        };
        // Two requests racing for one name: the unique index refuses the second.
        let row =
            tags::insert(&self.db, row)
                .await
                .map_err(|err| match crate::db::violation(&err) {
                    Some(crate::db::Violation::Unique) => Error::DuplicateName,
                    _ => Error::Db(err),
                })?;
        tracing::info!(tag.id = %row.id, tag.name = %row.name, "tag created");
        let tag = view(&row, 0);
        self.events
            .publish(Topic::Tags, EventKind::Created, row.id, &tag);
        Ok(tag)
    }

    /// Deletes a tag: every worker and token that had it loses it. Returns the workers that
    /// carried it, so their changes can be published.
    pub async fn delete(&self, id: Uuid) -> Result<Vec<Uuid>, Error> {
        let row = tags::find(&self.db, id).await?.ok_or(Error::NotFound(id))?;
        // Taking a required tag away would widen where those agents' runs may execute.
        let agents = crate::db::agents::requiring_tag(&self.db, &row.name).await?;
        if !agents.is_empty() {
            return Err(Error::InUse(agents.join(", ")));
        }
        let carriers = tags::workers_with(&self.db, id).await?;
        if !tags::delete(&self.db, id).await? {
            return Err(Error::NotFound(id));
        }
        tracing::info!(tag.id = %id, workers = carriers.len(), "tag deleted");
        let last = view(&row, u32::try_from(carriers.len()).unwrap_or(u32::MAX));
        self.events
            .publish(Topic::Tags, EventKind::Deleted, id, &last);
        Ok(carriers)
    }

    /// The ids of the tags named in `names` (a worker's or a token's whole set, at `path`):
    /// duplicates count once; a name no tag has, or too many, is a problem at its index.
    pub async fn resolve(&self, path: &str, names: &[String]) -> Result<Vec<Uuid>, Error> {
        let unique: BTreeSet<&String> = names.iter().collect();
        if unique.len() > MAX_PER_WORKER {
            return Err(Invalid::field(path, format!("at most {MAX_PER_WORKER} tags")).into());
        }
        Ok(existing(&self.db, path, names).await??)
    }

    /// Publishes the tags' new worker counts (after workers' tags changed).
    pub async fn counts_changed(&self, ids: &BTreeSet<Uuid>) {
        if ids.is_empty() {
            return;
        }
        let counts = match tags::worker_counts(&self.db).await {
            Ok(counts) => counts,
            Err(err) => return tracing::warn!(error = %err, "tag counts not published"),
        };
        for &id in ids {
            if let Ok(Some(row)) = tags::find(&self.db, id).await {
                let tag = view(&row, counts.get(&id).copied().unwrap_or(0));
                self.events
                    .publish(Topic::Tags, EventKind::Updated, id, &tag);
            }
        }
    }
}

/// The ids of the tags named in `names` (duplicates once), or a problem at the index of each
/// name no tag has. Shared by worker and token tags and by agents' required tags.
pub async fn existing(
    db: &impl ConnectionTrait,
    path: &str,
    names: &[String],
) -> Result<Result<Vec<Uuid>, Invalid>, DbErr> {
    let wanted: Vec<String> = names
        .iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .cloned()
        .collect();
    let (found, missing) = tags::ids_of(db, &wanted).await?;
    let mut problems = Problems::new();
    for (i, name) in names.iter().enumerate() {
        if missing.contains(name) {
            problems.add(
                format!("{path}/{i}"),
                format!("no tag is named `{name}`; create it first (POST /api/tags)"),
            );
        }
    }
    Ok(problems.finish(found.into_values().collect()))
}

fn view(row: &tags::tag::Model, workers: u32) -> Tag {
    Tag {
        id: row.id,
        name: row.name.clone(),
        note: row.note.clone(),
        workers,
        created_at: row.created_at,
    }
}

/// A note (of a tag or a concurrency group): at most 200 characters, without NUL; returned
/// trimmed.
pub(super) fn check_note(problems: &mut Problems, note: Option<String>) -> String {
    let note = note.unwrap_or_default();
    if note.chars().count() > MAX_NOTE_CHARS || note.contains('\0') {
        problems.add(
            "/note",
            format!("at most {MAX_NOTE_CHARS} characters, without NUL"),
        );
    }
    note.trim().to_owned()
}

/// A tag name (and a concurrency group's): 1–64 lowercase letters, digits, `.`, `_`, `-`, `:`
/// or `=`, starting with a letter or a digit. Lowercase only, so `GPU` and `gpu` cannot be two
/// tags that look alike.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = name.chars().count() <= MAX_NAME_CHARS
        && name.chars().next().is_some_and(allowed)
        && name
            .chars()
            .all(|c| allowed(c) || matches!(c, '.' | '_' | '-' | ':' | '='));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "1–{MAX_NAME_CHARS} lowercase letters, digits, `.`, `_`, `-`, `:` or `=`, starting \
             with a letter or a digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn tag_names() {
        for good in [
            "gpu",
            "region=eu",
            "a",
            "x86_64",
            "zone:b-1",
            "0day",
            &"a".repeat(64),
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "GPU",
            "-gpu",
            ".x",
            "gp u",
            "gpü",
            "a/b",
            &"a".repeat(65),
            "\0",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
