//! The service layer the HTTP edges and the pages call: the `Gate` (sessions and
//! entitlement) and the `Inbox` (Clerk's deliveries). Only `startup` builds them.

pub mod gate;
pub mod inbox;

pub use gate::{Gate, VerifiedToken};
pub use inbox::{Inbox, InboxError};
