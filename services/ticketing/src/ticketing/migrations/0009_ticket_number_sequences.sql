-- Ticket numbers come from a sequence per tenant instead of a counter row.
-- A counter row stays locked from the first reservation to the commit, so two batches of the
-- same tenants (two intake replicas at month start, say) took turns through all their work;
-- nextval never waits. A number reserved by a transaction that rolls back is skipped, as
-- the TicketNumbers port has always allowed.

-- The tenant's sequence, created on first use; a long tenant id would not fit a name
-- (63 bytes), so the name is derived from its hash.
CREATE FUNCTION ticket_number_sequence(tenant text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'ticket_numbers_' || left(md5(tenant), 20) $$;

-- `count` new numbers of a tenant, increasing (consecutive unless another transaction
-- reserved in between).
CREATE FUNCTION next_ticket_numbers(tenant text, count int) RETURNS SETOF bigint
LANGUAGE plpgsql AS $$
DECLARE
    seq text := ticket_number_sequence(tenant);
BEGIN
    IF to_regclass(seq) IS NULL THEN
        -- Two first reservations at once: the second waits for the first to commit.
        PERFORM pg_advisory_xact_lock(hashtext('ticket_numbers:' || tenant));
        EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I AS bigint', seq);
    END IF;
    RETURN QUERY SELECT nextval(seq::regclass) FROM generate_series(1, count);
END $$;

-- The counters so far become the sequences' starting points.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT tenant_id, last_number FROM ticket_numbers LOOP
        EXECUTE format('CREATE SEQUENCE %I AS bigint START WITH %s',
                       ticket_number_sequence(r.tenant_id), r.last_number + 1);
    END LOOP;
END $$;

DROP TABLE ticket_numbers;
