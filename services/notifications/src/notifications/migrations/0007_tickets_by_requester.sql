-- A customer at risk concerns no ticket: their latest ticket known here (the highest
-- number of the tenant's) says whose team leads hear of it when they have no account manager.
CREATE INDEX tickets_by_requester ON tickets (tenant_id, requester_id, number DESC);
