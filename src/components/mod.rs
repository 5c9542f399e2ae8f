//! Reusable view pieces.

pub mod clerk;
pub mod plans;
