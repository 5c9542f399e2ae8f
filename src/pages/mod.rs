//! One file per page, each with the server functions it calls.

pub mod api_keys;
pub mod billing;
#[cfg(feature = "ssr")]
pub mod console;
pub mod dashboard;
pub mod demo;
pub mod gated;
pub mod home;
pub mod not_found;
pub mod pricing;
#[cfg(feature = "ssr")]
pub mod server;
pub mod sign_in;

use leptos::prelude::*;

use crate::page_data::Site;

/// Who is looking, and whether this is demo mode (for the layout).
#[server]
pub async fn site_info() -> Result<Site, ServerFnError> {
    let state = crate::pages::server::state()?;
    let session = crate::pages::server::session(&state).await;
    let name = match &session {
        Some(s) => Some(crate::pages::server::display_name(&state, s).await?),
        None => None,
    };
    Ok(Site {
        demo: state.demo().is_some(),
        signed_in: session.is_some(),
        name,
        user_id: session.map(|s| s.user_id),
        clerk: state
            .config()
            .clerk()
            .map(|c| crate::page_data::ClerkScripts {
                publishable_key: c.publishable_key.clone(),
                js_url: c.clerk_js_url(),
                ui_url: c.clerk_ui_url(),
            }),
    })
}

pub fn format_money(cents: u32) -> String {
    if cents.is_multiple_of(100) {
        format!("${}", cents / 100)
    } else {
        format!("${}.{:02}", cents / 100, cents % 100)
    }
}
