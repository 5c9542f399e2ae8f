//! `/dashboard/billing`: the subscriber's plan, price, status with the date that matters, the
//! way to fix a failed payment, and the payment history, newest first; the active
//! organization's billing too. Card details stay with Clerk and Stripe: at most a brand and
//! the last four digits appear here.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::page_data::{BillingView, FixPayment, PayerBilling};

#[server]
pub async fn get_billing() -> Result<BillingView, ServerFnError> {
    let state = crate::pages::server::state()?;
    let demo = state.demo().is_some();
    let Some(session) = crate::pages::server::session(&state).await else {
        return Ok(BillingView {
            demo,
            ..Default::default()
        });
    };
    let account = session.account();
    let mut accounts = vec![
        crate::pages::server::payer_billing(&state, &account.caller, "Your subscription".into())
            .await?,
    ];
    if let Some(org) = &account.org {
        let name = session.org_slug.clone().unwrap_or_else(|| org.id.clone());
        accounts.push(
            crate::pages::server::payer_billing(&state, org, format!("Organization {name}"))
                .await?,
        );
    }
    Ok(BillingView {
        signed_in: true,
        demo,
        accounts,
        portal: state.config().clerk().map(|c| c.account_portal_url()),
    })
}

/// "Update your payment method": Clerk's account portal, or the demo's simulated recovery.
#[component]
pub fn FixPaymentButton(fix: FixPayment) -> impl IntoView {
    match fix {
        FixPayment::Portal(url) => view! {
            <a class="button primary" href=url data-testid="update-payment">"Update your payment method"</a>
        }
        .into_any(),
        FixPayment::DemoRecover => view! {
            <form method="post" action="/demo/action" class="inline">
                <input type="hidden" name="action" value="recover"/>
                <input type="hidden" name="back" value="/dashboard/billing"/>
                <button type="submit" class="button primary" data-testid="update-payment">
                    "Update your payment method"
                </button>
                <span class="muted small">" (demo: simulates a card that now works)"</span>
            </form>
        }
        .into_any(),
    }
}

#[component]
fn Account(account: PayerBilling, fix: FixPayment, portal: Option<String>) -> impl IntoView {
    let PayerBilling {
        heading,
        plan,
        price,
        status,
        date_line,
        failure,
        paid,
        payments,
    } = account;
    let empty = payments.is_empty();
    let id = if heading.starts_with("Organization") {
        "billing-org"
    } else {
        "billing-user"
    };
    view! {
        <section class="card billing" aria-labelledby=id>
            <h2 id=id>{heading}</h2>
            {failure.map(|why| view! {
                <div class="banner warn" role="alert" data-testid="past-due-banner">
                    <p><strong>"Your last payment failed. "</strong>{why}</p>
                    <p>"Stripe retries the charge over the next days. Update your payment method to keep your plan."</p>
                    <FixPaymentButton fix=fix.clone()/>
                </div>
            })}
            <dl>
                <dt>"Plan"</dt><dd data-testid="billing-plan">{plan}</dd>
                {price.map(|p| view! { <dt>"Price"</dt><dd data-testid="billing-price">{p}</dd> })}
                {status.map(|s| view! { <dt>"Status"</dt><dd data-testid="billing-status">{s}</dd> })}
                {date_line.map(|d| view! { <dt>"Next"</dt><dd data-testid="billing-date">{d}</dd> })}
            </dl>
            {(paid && portal.is_some()).then(|| view! {
                <p><a href=portal.clone().unwrap_or_default()>"Manage your payment method and invoices with Clerk"</a></p>
            })}
            <h3>"Payment history"</h3>
            {if empty {
                view! { <p data-testid="no-payments">"No payments yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap" tabindex="0" role="region" aria-label="Payment history">
                        <table data-testid="payments">
                            <thead><tr>
                                <th scope="col">"Date"</th><th scope="col">"Amount"</th>
                                <th scope="col">"Status"</th><th scope="col">"Card"</th>
                            </tr></thead>
                            <tbody>
                                {payments.into_iter().map(|p| view! {
                                    <tr data-testid="payment" class=if p.failed { "failed" } else { "" }>
                                        <td>{p.date}</td>
                                        <td>{p.amount}</td>
                                        <td>{p.status}{p.failure.map(|f| format!(": {f}"))}</td>
                                        <td>{p.card.unwrap_or_else(|| "—".into())}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

#[component]
pub fn Billing() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_billing());
    view! {
        <Title text="Billing · plangate"/>
        <section>
            <h1>"Billing"</h1>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || data.get().map(|r| match r {
                    Err(_) => view! { <p class="error">"Your billing could not be loaded. Please retry."</p> }.into_any(),
                    Ok(b) if !b.signed_in => view! {
                        <p>"You are signed out. "<a href="/sign-in" rel="external">"Sign in"</a>" to see your billing."</p>
                    }.into_any(),
                    Ok(b) => {
                        let fix = if b.demo { FixPayment::DemoRecover } else { FixPayment::Portal(b.portal.clone().unwrap_or_default()) };
                        view! {
                            {b.accounts.into_iter().map(|a| view! {
                                <Account account=a fix=fix.clone() portal=b.portal.clone()/>
                            }).collect_view()}
                            <p class="actions">
                                <a class="button" href="/pricing" rel="external">"Change plan"</a>
                                <a class="button" href="/dashboard">"Back to the dashboard"</a>
                            </p>
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}
