//! One file per page, each with the server functions it calls.

pub mod dashboard;
pub mod demo;
pub mod gated;
pub mod home;
pub mod not_found;
pub mod pricing;
pub mod sign_in;

use leptos::prelude::*;

use crate::views::Site;

/// Who is looking, and whether this is demo mode (for the layout).
#[server]
pub async fn site_info() -> Result<Site, ServerFnError> {
    let state = crate::server::state()?;
    let session = crate::server::session(&state).await;
    Ok(Site {
        demo: state.demo.is_some(),
        signed_in: session.is_some(),
        user_id: session.map(|s| s.user_id),
    })
}

pub fn format_money(cents: u32) -> String {
    if cents % 100 == 0 {
        format!("${}", cents / 100)
    } else {
        format!("${}.{:02}", cents / 100, cents % 100)
    }
}
