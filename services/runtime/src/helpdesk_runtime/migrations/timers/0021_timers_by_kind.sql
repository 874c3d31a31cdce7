-- A scheduler of one lane (service.py: timer_lanes) claims `WHERE kind = ANY(...) AND
-- due_at <= now ORDER BY due_at`: with this index it reads its own kinds' earliest timers,
-- not every other lane's due timers before them (100,000 survey invitations due first).
CREATE INDEX timers_kind_due ON timers (kind, due_at);
