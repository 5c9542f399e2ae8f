-- Demo mode's API keys (README, "API keys"): in production Clerk issues, stores and verifies
-- keys; the demo stands in for it behind the same verification request. Only a SHA-256 of each
-- secret is kept (the secret is shown once, when the key is made), with a hint to tell keys apart.
create table api_key (
    id text primary key,
    secret_hash text not null unique,
    subject text not null,
    name text not null,
    hint text not null,
    created_at bigint not null,
    revoked_at bigint
);

create index api_key_subject on api_key (subject);
