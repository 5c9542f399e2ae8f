-- The billing page's history (README, "Billing page"): one row per payment attempt id, the
-- newest evidence winning (`order_key`, as for items). Only what the page shows is kept: no
-- card number, no expiry, no CVV, no failure text (the code alone); at most the card's brand
-- and last four digits. Rows are not raw payloads: inbox retention does not remove them.
create table payment_attempt (
    id text primary key,
    payer_kind text not null,
    payer_id text not null,
    status text not null,
    amount bigint not null,
    currency text not null,
    charge_type text,
    at bigint not null,
    failed_code text,
    card_brand text,
    card_last4 text,
    statement_id text,
    event_at bigint not null,
    order_key text not null,
    updated_at bigint not null
);

create index payment_attempt_payer on payment_attempt (payer_kind, payer_id, at);
