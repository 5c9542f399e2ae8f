//! The demo's stand-in for the two Backend API calls the operator console makes (cancel an
//! item, extend a free trial). It answers as Clerk would: refused when Clerk would refuse, and
//! otherwise with the Clerk events of that change, signed and delivered to the app's own webhook
//! endpoint, so the stored state changes the production way (by webhook, never by a guess).

use std::sync::Arc;

use super::{
    delivery,
    lifecycle::{self, Action},
    DemoIssuer,
};
use crate::{
    billing::{Catalog, ItemState, PayerKind, Status},
    clerk_api::ClerkApiError,
    db::{self, now_ms, Db},
};

pub struct DemoBackend {
    issuer: Arc<DemoIssuer>,
    http: reqwest::Client,
    /// The app's own webhook endpoint.
    webhook_url: String,
    db: Db,
    catalog: Arc<Catalog>,
}

impl DemoBackend {
    pub fn new(
        issuer: Arc<DemoIssuer>,
        http: reqwest::Client,
        webhook_url: String,
        db: Db,
        catalog: Arc<Catalog>,
    ) -> DemoBackend {
        DemoBackend {
            issuer,
            http,
            webhook_url,
            db,
            catalog,
        }
    }

    fn refused(path: &str, status: u16) -> ClerkApiError {
        ClerkApiError::Status {
            path: path.into(),
            status,
        }
    }

    /// `DELETE /v1/billing/subscription_items/{id}?end_now=…`: a paid item that is active or
    /// past due is canceled (at period end) or ended (now); anything else is refused as Clerk
    /// refuses it (404 unknown item, 400 nothing to cancel).
    pub async fn cancel_item(&self, item_id: &str, end_now: bool) -> Result<(), ClerkApiError> {
        let path = format!("/v1/billing/subscription_items/{item_id}");
        let item = self.stored(&path, item_id).await?;
        let paid = self
            .catalog
            .plan(&item.plan_slug)
            .is_some_and(|p| !p.is_free());
        let cancelable = match item.status {
            Status::Active | Status::PastDue => true,
            Status::Canceled => end_now,
            _ => false,
        };
        if !paid || !cancelable || item.payer.kind != PayerKind::User {
            return Err(Self::refused(&path, 400));
        }
        let action = if end_now { Action::End } else { Action::Cancel };
        let bodies = self.events(&path, &item, &action)?;
        self.deliver(&path, bodies).await
    }

    /// `POST …/extend_free_trial`: an item in a free trial gets the new end (Clerk's
    /// `subscriptionItem.updated`, delivered to the app); Clerk refuses an item without a trial
    /// (400) and an unknown one (404).
    pub async fn extend_free_trial(&self, item_id: &str, to: i64) -> Result<(), ClerkApiError> {
        let path = format!("/v1/billing/subscription_items/{item_id}/extend_free_trial");
        let item = self.stored(&path, item_id).await?;
        if !item.is_free_trial
            || item.status != Status::Active
            || item.payer.kind != PayerKind::User
        {
            return Err(Self::refused(&path, 400));
        }
        let bodies = self.events(&path, &item, &Action::ExtendTrial { to })?;
        self.deliver(&path, bodies).await
    }

    /// The stored item, or Clerk's 404 for an id it does not know.
    async fn stored(&self, path: &str, item_id: &str) -> Result<ItemState, ClerkApiError> {
        let mut conn = self.db.conn().await.map_err(|e| unreachable(path, e))?;
        db::items::get(&mut conn, item_id)
            .await
            .map_err(|e| unreachable(path, e))?
            .ok_or_else(|| Self::refused(path, 404))
    }

    /// The events of `action` for the stored `item`.
    fn events(
        &self,
        path: &str,
        item: &ItemState,
        action: &Action,
    ) -> Result<Vec<serde_json::Value>, ClerkApiError> {
        let user_id = item.payer.user_id.clone().unwrap_or(item.payer.id.clone());
        let email = item
            .payer
            .email
            .clone()
            .or_else(|| super::email_of(&user_id))
            .unwrap_or_default();
        let now = now_ms();
        let base = lifecycle::spec_for(&user_id, &email, now);
        lifecycle::events_for(action, base, Some(item), &self.catalog, now)
            .map_err(|_| Self::refused(path, 400))
    }

    async fn deliver(
        &self,
        path: &str,
        bodies: Vec<serde_json::Value>,
    ) -> Result<(), ClerkApiError> {
        delivery::post_all(&self.http, &self.webhook_url, self.issuer.secret(), bodies)
            .await
            .map_err(|e| unreachable(path, e))
    }
}

fn unreachable(path: &str, e: impl std::fmt::Display) -> ClerkApiError {
    ClerkApiError::Unreachable {
        path: path.into(),
        reason: e.to_string(),
    }
}
