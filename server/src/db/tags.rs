//! Tags and their links: `tags`, `worker_tags` (a worker's tags) and `worker_token_tags` (the
//! tags a registration token gives the worker it registers). Links are by tag id; the API
//! speaks names, resolved here (`ids_of`).

use std::collections::{BTreeMap, HashMap};

use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DbErr, QueryOrder};

pub mod tag {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "tags")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        pub note: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod worker_tag {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "worker_tags")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub worker_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub tag_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod token_tag {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "worker_token_tags")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub tag_id: Uuid,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// By name.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<tag::Model>, DbErr> {
    tag::Entity::find()
        .order_by_asc(tag::Column::Name)
        .all(db)
        .await
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<tag::Model>, DbErr> {
    tag::Entity::find_by_id(id).one(db).await
}

pub async fn find_by_name(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<tag::Model>, DbErr> {
    tag::Entity::find()
        .filter(tag::Column::Name.eq(name))
        .one(db)
        .await
}

pub async fn insert(db: &impl ConnectionTrait, row: tag::Model) -> Result<tag::Model, DbErr> {
    super::insert_returning::<tag::Entity>(db, tag::ActiveModel::from(row)).await
}

/// Deletes a tag; its links to workers and tokens go with it.
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    let deleted = tag::Entity::delete_by_id(id).exec(db).await?;
    Ok(deleted.rows_affected == 1)
}

/// The tags named `names`: their ids by name, and the names no tag has.
pub async fn ids_of(
    db: &impl ConnectionTrait,
    names: &[String],
) -> Result<(BTreeMap<String, Uuid>, Vec<String>), DbErr> {
    if names.is_empty() {
        return Ok((BTreeMap::new(), Vec::new()));
    }
    let found: BTreeMap<String, Uuid> = tag::Entity::find()
        .filter(tag::Column::Name.is_in(names.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.name, t.id))
        .collect();
    let missing = names
        .iter()
        .filter(|n| !found.contains_key(*n))
        .cloned()
        .collect();
    Ok((found, missing))
}

/// How many workers carry each tag (tags on no worker are absent).
pub async fn worker_counts(db: &impl ConnectionTrait) -> Result<HashMap<Uuid, u32>, DbErr> {
    let mut counts = HashMap::new();
    for link in worker_tag::Entity::find().all(db).await? {
        *counts.entry(link.tag_id).or_insert(0) += 1;
    }
    Ok(counts)
}

/// Each worker's tag names, sorted (workers without tags are absent).
pub async fn of_workers(db: &impl ConnectionTrait) -> Result<HashMap<Uuid, Vec<String>>, DbErr> {
    let links = worker_tag::Entity::find().all(db).await?;
    let names = names_by_id(db).await?;
    Ok(grouped(
        &names,
        links.iter().map(|l| (l.worker_id, l.tag_id)),
    ))
}

/// One worker's tag names, sorted.
pub async fn of_worker(db: &impl ConnectionTrait, worker_id: Uuid) -> Result<Vec<String>, DbErr> {
    let ids = ids_of_worker(db, worker_id).await?;
    names_of(db, ids).await
}

/// Each token's tag names, sorted (tokens without tags are absent).
pub async fn of_tokens(db: &impl ConnectionTrait) -> Result<HashMap<Uuid, Vec<String>>, DbErr> {
    let links = token_tag::Entity::find().all(db).await?;
    let names = names_by_id(db).await?;
    Ok(grouped(
        &names,
        links.iter().map(|l| (l.token_id, l.tag_id)),
    ))
}

/// Tag names by owner (worker or token), sorted, from `(owner, tag id)` links.
fn grouped(
    names: &HashMap<Uuid, String>,
    links: impl Iterator<Item = (Uuid, Uuid)>,
) -> HashMap<Uuid, Vec<String>> {
    let mut tags: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (owner, tag_id) in links {
        if let Some(name) = names.get(&tag_id) {
            tags.entry(owner).or_default().push(name.clone());
        }
    }
    for list in tags.values_mut() {
        list.sort();
    }
    tags
}

/// The tag ids a token gives.
pub async fn ids_of_token(db: &impl ConnectionTrait, token_id: Uuid) -> Result<Vec<Uuid>, DbErr> {
    Ok(token_tag::Entity::find()
        .filter(token_tag::Column::TokenId.eq(token_id))
        .all(db)
        .await?
        .into_iter()
        .map(|link| link.tag_id)
        .collect())
}

/// Replaces a worker's tags (call inside a transaction).
pub async fn set_worker(
    db: &impl ConnectionTrait,
    worker_id: Uuid,
    tag_ids: &[Uuid],
) -> Result<(), DbErr> {
    worker_tag::Entity::delete_many()
        .filter(worker_tag::Column::WorkerId.eq(worker_id))
        .exec(db)
        .await?;
    if tag_ids.is_empty() {
        return Ok(());
    }
    let links = tag_ids.iter().map(|&tag_id| worker_tag::ActiveModel {
        worker_id: sea_orm::ActiveValue::Set(worker_id),
        tag_id: sea_orm::ActiveValue::Set(tag_id),
    });
    worker_tag::Entity::insert_many(links)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Gives a new token its tags.
pub async fn set_token(
    db: &impl ConnectionTrait,
    token_id: Uuid,
    tag_ids: &[Uuid],
) -> Result<(), DbErr> {
    if tag_ids.is_empty() {
        return Ok(());
    }
    let links = tag_ids.iter().map(|&tag_id| token_tag::ActiveModel {
        token_id: sea_orm::ActiveValue::Set(token_id),
        tag_id: sea_orm::ActiveValue::Set(tag_id),
    });
    token_tag::Entity::insert_many(links)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

async fn names_by_id(db: &impl ConnectionTrait) -> Result<HashMap<Uuid, String>, DbErr> {
    Ok(tag::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect())
}

/// The names of the tags `ids`, sorted.
pub async fn names_of(db: &impl ConnectionTrait, ids: Vec<Uuid>) -> Result<Vec<String>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = tag::Entity::find()
        .filter(tag::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    Ok(names)
}

/// The workers that carry a tag.
pub async fn workers_with(db: &impl ConnectionTrait, tag_id: Uuid) -> Result<Vec<Uuid>, DbErr> {
    Ok(worker_tag::Entity::find()
        .filter(worker_tag::Column::TagId.eq(tag_id))
        .all(db)
        .await?
        .into_iter()
        .map(|link| link.worker_id)
        .collect())
}

/// The tag ids a worker carries.
pub async fn ids_of_worker(db: &impl ConnectionTrait, worker_id: Uuid) -> Result<Vec<Uuid>, DbErr> {
    Ok(worker_tag::Entity::find()
        .filter(worker_tag::Column::WorkerId.eq(worker_id))
        .all(db)
        .await?
        .into_iter()
        .map(|link| link.tag_id)
        .collect())
}
