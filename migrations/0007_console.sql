-- The operator console (README, "Operator console").
-- Every operator action, whatever its result: who, what, on what, with which parameters, and how
-- it ended. Never purged by inbox retention. `id` is random (the same on both engines); rows are
-- read newest first by `at`.
create table audit_log (
    id text primary key,
    at bigint not null,
    operator text not null,
    action text not null,
    target text not null,
    params text not null,
    result text not null
);

create index audit_log_at on audit_log (at);

-- One-time form tokens: one per form rendered for an operator, stored as a SHA-256 so a copy of
-- the table cannot act. A token acts once (`used_at` set by the statement that accepts it), only
-- for the operator it was issued to, and only before `expires_at`.
create table form_token (
    token_hash text primary key,
    operator text not null,
    expires_at bigint not null,
    used_at bigint
);

create index form_token_expires on form_token (expires_at);

-- The last run of a background job across instances (the reconciliation sweep): when, and how it
-- ended, for the console's start page.
create table job_run (
    name text primary key,
    at bigint not null,
    result text not null
);
