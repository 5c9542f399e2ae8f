-- Written for both SQLite and PostgreSQL: text and bigint only, times in ms since the epoch,
-- flags as 0/1, no engine-specific defaults.

create table app_user (
    id text primary key,
    email text,
    deleted bigint not null,
    -- event time of the state shown, and the full ordering key (see billing::subscription)
    event_at bigint not null,
    order_key text not null,
    created_at bigint not null,
    updated_at bigint not null
);

create table subscription_item (
    id text primary key,
    subscription_id text,
    payer_kind text not null,
    payer_id text not null,
    payer_user_id text,
    payer_email text,
    plan_slug text not null,
    plan_name text,
    status text not null,
    period_start bigint,
    period_end bigint,
    is_free_trial bigint not null,
    canceled_at bigint,
    past_due_at bigint,
    event_at bigint not null,
    order_key text not null,
    created_at bigint not null,
    updated_at bigint not null
);

create index subscription_item_payer on subscription_item (payer_kind, payer_id);

-- The inbox: one row per delivery, keyed by svix-id, so a redelivery is a no-op.
create table webhook_event (
    svix_id text primary key,
    event_type text not null,
    event_at bigint not null,
    received_at bigint not null,
    outcome text not null,
    subject_id text,
    payload text not null
);

create index webhook_event_received on webhook_event (received_at);
create index webhook_event_subject on webhook_event (subject_id, received_at);

-- Side effects queued in the same transaction as the state change; keyed by (event, effect).
create table mail_outbox (
    id text primary key,
    recipient text not null,
    subject text not null,
    body text not null,
    status text not null,
    attempts bigint not null,
    next_attempt_at bigint not null,
    last_error text,
    created_at bigint not null,
    sent_at bigint
);

create index mail_outbox_due on mail_outbox (status, next_attempt_at);
