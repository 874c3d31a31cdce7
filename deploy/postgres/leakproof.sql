-- Run once per database as a superuser (in template1 too, for databases created later).
--
-- Row-level security makes PostgreSQL check a row's tenant before any filter whose function
-- is not LEAKPROOF, so an index cannot serve such a filter: ticket search, tag and e-mail
-- filters and name prefixes would read every row of the tenant. These built-in functions
-- raise no error that depends on a row's data, but LIKE with a pattern ending in its escape
-- character, which our queries never build (a prefix is followed by '%'). The services warn
-- at start-up while one is not marked (helpdesk_runtime.tenancy.INDEXED_FUNCTIONS is the
-- same list).
ALTER FUNCTION ts_match_vq(tsvector, tsquery) LEAKPROOF;
ALTER FUNCTION arraycontains(anyarray, anyarray) LEAKPROOF;
ALTER FUNCTION arrayoverlap(anyarray, anyarray) LEAKPROOF;
ALTER FUNCTION lower(text) LEAKPROOF;
ALTER FUNCTION textlike(text, text) LEAKPROOF;
