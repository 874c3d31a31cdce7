-- A suspended tenant (unpaid, offboarding, under investigation) keeps its data, but its
-- agents' tokens are refused and intake dead-letters its messages until it is resumed.
ALTER TABLE tenants ADD COLUMN suspended_at timestamptz;
