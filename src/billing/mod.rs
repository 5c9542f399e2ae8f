//! Pure billing domain: plans and gates, the subscription status machine, and the one
//! entitlement decision. Nothing here touches the network, the database or the clock: callers
//! pass `now` in, which keeps every rule unit-testable.

pub mod entitlement;
pub mod plans;
pub mod subscription;

pub use entitlement::{decide, Decision, Evidence, Policy, Source, TokenPlan};
pub use plans::{Catalog, Gate, Plan, PlansError, Scope};
pub use subscription::{ItemState, OrderKey, Status};
