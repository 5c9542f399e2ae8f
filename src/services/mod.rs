//! The service layer the HTTP edges, the pages and the operator commands call: the `Gate`
//! (sessions and entitlement), the `Inbox` (Clerk's deliveries, replays and corrections) and
//! the `Reconciler` (Clerk's Backend API against the database). Only `startup` builds them.

pub mod gate;
pub mod inbox;
pub mod invalidation;
pub mod reconcile;

pub use gate::{Gate, SignedOut, VerifiedToken};
pub use inbox::{Inbox, InboxError, Receipt};
pub use reconcile::{Reconciler, Report};
