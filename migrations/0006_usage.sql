-- Usage limits (README, "Usage limits"): one counter per payer, metered feature and billing
-- period. `used` counts the units handed out to instances (spent, or held in one's memory and
-- given back when unspent); a crashed instance's held units stay counted, so a crash can leave
-- units unused but never lets more through than the limit. `extra` is units an operator granted
-- for the period; `last_grant` is the size of the last block handed out (read back by the
-- statement that hands it out).
create table usage_counter (
    payer_kind text not null,
    payer_id text not null,
    feature text not null,
    period_start bigint not null,
    period_end bigint not null,
    used bigint not null default 0,
    extra bigint not null default 0,
    last_grant bigint not null default 0,
    updated_at bigint not null,
    primary key (payer_kind, payer_id, feature, period_start)
);
