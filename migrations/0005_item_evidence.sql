-- What an item's state rests on (billing::standing, billing::subscription): whether it was only
-- inferred by reconciliation (Clerk stopped listing the item), and the latest payment failure
-- and payment seen for it, merged from every delivery, stale ones included.
alter table subscription_item add column inferred bigint not null default 0;
alter table subscription_item add column failed_at bigint;
alter table subscription_item add column paid_at bigint;
