//! Reusable view pieces.

pub mod clerk;
pub mod meters;
pub mod plans;
