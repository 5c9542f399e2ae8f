//! Pure billing domain: plans and gates, the subscription status machine, and the one
//! entitlement decision. Nothing here touches the network, the database or the clock: callers
//! pass `now` in, which keeps every rule unit-testable. `kinds` compiles for both halves of
//! the app; the rest is server-only.

pub mod dates;
pub mod kinds;

#[cfg(feature = "ssr")]
pub mod account;
#[cfg(feature = "ssr")]
pub mod api_key;
#[cfg(feature = "ssr")]
pub mod authorization;
#[cfg(feature = "ssr")]
pub mod entitlement;
#[cfg(feature = "ssr")]
pub mod operator;
#[cfg(feature = "ssr")]
pub mod payer;
#[cfg(feature = "ssr")]
pub mod payments;
#[cfg(feature = "ssr")]
pub mod plans;
#[cfg(feature = "ssr")]
pub mod standing;
#[cfg(feature = "ssr")]
pub mod subscription;
#[cfg(feature = "ssr")]
pub mod summary;
#[cfg(feature = "ssr")]
pub mod usage;

pub use kinds::{PayerKind, Status};

#[cfg(feature = "ssr")]
pub use account::{Access, Account, TokenEvidence};
#[cfg(feature = "ssr")]
pub use entitlement::{decide, Decision, Evidence, Policy, Source, TokenPlan};
#[cfg(feature = "ssr")]
pub use payer::Payer;
#[cfg(feature = "ssr")]
pub use plans::{Catalog, Gate, Limit, Plan, PlansError};
#[cfg(feature = "ssr")]
pub use standing::Standing;
#[cfg(feature = "ssr")]
pub use subscription::{
    current_item, current_plan, listed_event_at, needs_correction, ItemState, OrderKey,
};
#[cfg(feature = "ssr")]
pub use summary::{PlanFacts, PlanSummary};
