-- Background work that must run once across instances (DESIGN §11): the reconciliation sweep and
-- inbox retention take a named lease before they run. A lease left by a killed instance is taken
-- over once `expires_at` (ms since the epoch) has passed.
create table lease (
    name text primary key,
    holder text not null,
    expires_at bigint not null
);
