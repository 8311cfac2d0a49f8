//! Providers: registering, changing, deleting and checking LLM endpoints. Owns the
//! `llm_providers` table's writes and every event on topic `providers`; keys are sealed here
//! before they are stored, bound to their row.

mod keys;
mod validator;

use std::sync::Arc;

use contracts::{
    CreateProvider, CredentialLocation, EventKind, Page, Provider, ProviderKind, Topic,
    UpdateProvider, ValidationStatus,
};
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::json;
use tracing::field::{Empty, display};
use uuid::Uuid;

pub use keys::{RotationReport, rotate_keys};
pub use validator::{Validator, ValidatorSettings};

use crate::db::providers::{self, Model};
use crate::db::{Violation, Wire, violation};
use crate::domain::providers::{Custody, StoredProvider, key_hint, validate};
use crate::domain::{Invalid, new_id, now};
use crate::events::EventHub;
use crate::outbound::OutboundPolicy;
use crate::secrets::{Keyring, SecretContext};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no provider with id {0}")]
    NotFound(Uuid),
    #[error("an active provider with this name already exists")]
    DuplicateName,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct Providers {
    db: DatabaseConnection,
    keyring: Arc<Keyring>,
    policy: Arc<OutboundPolicy>,
    events: Arc<EventHub>,
    validator: Arc<Validator>,
}

/// A create or update body (they have the same fields).
struct Requested<'a> {
    name: &'a str,
    kind: ProviderKind,
    base_url: Option<String>,
    api_key: Option<String>,
    custody: Custody<'a>,
}

/// A configuration that passed every check, with its key sealed for its row.
struct Settled {
    name: String,
    kind: ProviderKind,
    base_url: Option<String>,
    api_key_ciphertext: Option<Vec<u8>>,
    api_key_hint: Option<String>,
    credential_location: CredentialLocation,
    credential_workers: Vec<String>,
}

impl Providers {
    pub fn new(
        db: DatabaseConnection,
        keyring: Arc<Keyring>,
        policy: Arc<OutboundPolicy>,
        events: Arc<EventHub>,
        validator: Arc<Validator>,
    ) -> Providers {
        Providers {
            db,
            keyring,
            policy,
            events,
            validator,
        }
    }

    /// Active providers, oldest first.
    pub async fn list(&self, limit: u64, offset: u64) -> Result<Page<Provider>, Error> {
        let (rows, total) = providers::list_active(&self.db, limit, offset).await?;
        Ok(Page {
            items: rows.iter().map(Model::to_contract).collect(),
            total,
            limit,
            offset,
        })
    }

    /// One provider, soft-deleted ones included.
    pub async fn get(&self, id: Uuid) -> Result<Provider, Error> {
        Ok(self.find(id).await?.to_contract())
    }

    #[tracing::instrument(name = "providers.create", skip_all,
        fields(provider.id = Empty, provider.kind = %body.kind))]
    pub async fn create(&self, body: CreateProvider) -> Result<Provider, Error> {
        let id = new_id();
        tracing::Span::current().record("provider.id", display(id));
        let requested = Requested {
            name: &body.name,
            kind: body.kind,
            base_url: body.base_url,
            api_key: body.api_key,
            custody: Custody {
                location: body.credential_location,
                workers: &body.credential_workers,
            },
        };
        let settled = self.settle(id, requested, None).await?;
        let now = now();
        let row = Model {
            id,
            name: settled.name,
            kind: Wire(settled.kind),
            base_url: settled.base_url,
            api_key_ciphertext: settled.api_key_ciphertext,
            api_key_hint: settled.api_key_hint,
            credential_location: Wire(settled.credential_location),
            credential_workers: crate::db::agents::to_names(&settled.credential_workers),
            checked_by: None,
            validation_status: Wire(ValidationStatus::Pending),
            validation_error: None,
            validated_at: None,
            latency_ms: None,
            models: json!([]),
            is_active: true,
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        let row = providers::insert(&self.db, row).await.map_err(duplicate)?;
        tracing::info!("provider created");
        publish(&self.events, EventKind::Created, &row);
        self.validator.trigger(id);
        Ok(row.to_contract())
    }

    /// Replaces an active provider's configuration; the stored key stays unless a new one is
    /// given, and never follows a changed endpoint.
    #[tracing::instrument(name = "providers.update", skip_all, fields(provider.id = %id))]
    pub async fn update(&self, id: Uuid, body: UpdateProvider) -> Result<Provider, Error> {
        let existing = self.find_active(id).await?;
        let requested = Requested {
            name: &body.name,
            kind: body.kind,
            base_url: body.base_url,
            api_key: body.api_key,
            custody: Custody {
                location: body.credential_location,
                workers: &body.credential_workers,
            },
        };
        let settled = self.settle(id, requested, Some(&existing)).await?;
        let row = Model {
            name: settled.name,
            kind: Wire(settled.kind),
            base_url: settled.base_url,
            api_key_ciphertext: settled.api_key_ciphertext,
            api_key_hint: settled.api_key_hint,
            credential_location: Wire(settled.credential_location),
            credential_workers: crate::db::agents::to_names(&settled.credential_workers),
            updated_at: now(),
            ..existing
        };
        let row = providers::update(&self.db, row)
            .await
            .map_err(duplicate)?
            .ok_or(Error::NotFound(id))?;
        tracing::info!(provider.revision = row.revision, "provider updated");
        publish(&self.events, EventKind::Updated, &row);
        self.validator.trigger(id);
        Ok(row.to_contract())
    }

    /// Deletes a provider; while agents reference it, soft-deletes it instead.
    #[tracing::instrument(name = "providers.delete", skip_all, fields(provider.id = %id))]
    pub async fn delete(&self, id: Uuid) -> Result<(), Error> {
        let existing = self.find_active(id).await?;
        let last = if providers::delete(&self.db, id).await? {
            tracing::info!("provider deleted");
            Model {
                is_active: false,
                ..existing
            }
        } else {
            tracing::info!("provider soft-deleted: agents still reference it");
            providers::soft_delete(&self.db, id, now())
                .await?
                .unwrap_or(existing)
        };
        publish(&self.events, EventKind::Deleted, &last);
        Ok(())
    }

    /// Queues a connectivity check now; answers with the provider as it is.
    #[tracing::instrument(name = "providers.validate", skip_all, fields(provider.id = %id))]
    pub async fn validate(&self, id: Uuid) -> Result<Provider, Error> {
        let row = self.find_active(id).await?;
        self.validator.trigger(id);
        Ok(row.to_contract())
    }

    async fn find(&self, id: Uuid) -> Result<Model, Error> {
        providers::find(&self.db, id)
            .await?
            .ok_or(Error::NotFound(id))
    }

    async fn find_active(&self, id: Uuid) -> Result<Model, Error> {
        providers::find(&self.db, id)
            .await?
            .filter(|p| p.is_active)
            .ok_or(Error::NotFound(id))
    }

    /// Checks a create (`existing` is `None`) or update, asks the outbound policy about the
    /// endpoint, and seals a new key for this row (or keeps the stored one).
    async fn settle(
        &self,
        id: Uuid,
        requested: Requested<'_>,
        existing: Option<&Model>,
    ) -> Result<Settled, Error> {
        let Requested {
            name,
            kind,
            base_url,
            api_key,
            custody,
        } = requested;
        let stored = existing.map(|row| StoredProvider {
            kind: *row.kind,
            base_url: row.base_url.as_deref(),
            has_api_key: row.api_key_ciphertext.is_some(),
        });
        let valid = validate(
            name,
            kind,
            base_url.as_deref(),
            api_key.as_deref(),
            custody,
            stored.as_ref(),
        )?;
        self.check_reachable(valid.base_url.as_deref()).await?;
        let (api_key_ciphertext, api_key_hint) = match valid.api_key.as_deref() {
            Some(key) => (
                Some(
                    self.keyring
                        .encrypt(key, &SecretContext::provider_api_key(id)),
                ),
                key_hint(key),
            ),
            // A key that lives on workers is nowhere on the server: a stored one goes.
            None if valid.credential_location == CredentialLocation::Worker => (None, None),
            None => match existing {
                Some(row) => (row.api_key_ciphertext.clone(), row.api_key_hint.clone()),
                None => (None, None),
            },
        };
        Ok(Settled {
            name: valid.name,
            kind: valid.kind,
            base_url: valid.base_url,
            api_key_ciphertext,
            api_key_hint,
            credential_location: valid.credential_location,
            credential_workers: valid.credential_workers,
        })
    }

    /// The outbound policy's verdict on a base URL, as a problem on `/base_url` when refused.
    async fn check_reachable(&self, base_url: Option<&str>) -> Result<(), Invalid> {
        let Some(raw) = base_url else {
            return Ok(());
        };
        let url = url::Url::parse(raw).map_err(|e| Invalid::field("/base_url", e.to_string()))?;
        self.policy
            .check_url_resolving(&url)
            .await
            .map_err(|blocked| Invalid::field("/base_url", blocked.to_string()))
    }
}

/// The one place events on topic `providers` are published: the row as stored.
fn publish(events: &EventHub, kind: EventKind, row: &Model) {
    events.publish(Topic::Providers, kind, row.id, &row.to_contract());
}

fn duplicate(err: DbErr) -> Error {
    match violation(&err) {
        Some(Violation::Unique) => Error::DuplicateName,
        _ => Error::Db(err),
    }
}
