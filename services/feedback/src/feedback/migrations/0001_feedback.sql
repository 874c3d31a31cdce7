-- A tenant's survey settings as saved (absent: the defaults of domain/surveys.py).
CREATE TABLE survey_settings (
    tenant_id  text        NOT NULL PRIMARY KEY,
    settings   jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
SELECT helpdesk_isolate('survey_settings');

-- What the service knows of each ticket, folded from ticketing.tickets.v2: enough to decide
-- on a survey and to file scores by agent, group, channel and priority. No personal data.
CREATE TABLE tickets (
    tenant_id          text        NOT NULL,
    ticket_id          uuid        NOT NULL,
    number             bigint      NOT NULL,
    customer_id        text        NOT NULL,
    channel            text        NOT NULL,
    priority           text        NOT NULL,
    opened_at          timestamptz NOT NULL,
    language           text,
    organisation_id    text,
    account_manager_id text,
    group_id           text,
    assignee_id        text,
    last_replier_id    text,
    tags               text[]      NOT NULL DEFAULT '{}',
    status             text        NOT NULL CHECK (status IN ('open', 'solved', 'closed')),
    merged             boolean     NOT NULL DEFAULT false,
    first_response_at  timestamptz,
    solved_at          timestamptz,
    solved_by_system   boolean     NOT NULL DEFAULT false,
    assignee_at_solve  text,
    last_customer_at   timestamptz,
    reopens            integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, ticket_id)
);
CREATE INDEX tickets_by_customer ON tickets (tenant_id, customer_id, opened_at);
SELECT helpdesk_isolate('tickets');

-- One decision per ticket, made when its survey is due: the invitation sent, or why none
-- was (`skipped`). A ticket solved again later is not surveyed twice.
CREATE TABLE invitations (
    tenant_id    text        NOT NULL,
    ticket_id    uuid        NOT NULL,
    number       bigint      NOT NULL,
    decided_at   timestamptz NOT NULL,
    skipped      text,
    survey_id    uuid,
    customer_id  text        NOT NULL,
    survey       text,
    agent_id     text,
    group_id     text,
    channel      text        NOT NULL,
    priority     text        NOT NULL,
    language     text,
    expires_at   timestamptz,
    answered_at  timestamptz,
    -- The answer that counts (the latest, when the customer answered again).
    answer_id    uuid,
    PRIMARY KEY (tenant_id, ticket_id),
    CHECK ((skipped IS NULL) = (survey_id IS NOT NULL))
);
CREATE UNIQUE INDEX invitations_by_survey ON invitations (tenant_id, survey_id);
CREATE INDEX invitations_by_customer ON invitations (tenant_id, customer_id, decided_at)
    WHERE survey_id IS NOT NULL;
CREATE INDEX invitations_sent ON invitations (tenant_id, decided_at) WHERE survey_id IS NOT NULL;
SELECT helpdesk_isolate('invitations');

-- Every answer, from our survey page or from other systems, once (by feedback id). The
-- dimensions are copied from the invitation or the ticket when it came, so scores group
-- without joins. `replaced_by`: a later answer to the same invitation; only the latest
-- counts. `comment` is the customer's words: blanked when the customer is erased.
CREATE TABLE answers (
    tenant_id       text        NOT NULL,
    feedback_id     uuid        NOT NULL,
    survey_id       uuid,
    ticket_id       uuid,
    customer_id     text        NOT NULL,
    survey          text        NOT NULL CHECK (survey IN ('csat', 'nps', 'ces')),
    score           smallint    NOT NULL,
    reason          text,
    comment         text,
    agent_id        text,
    group_id        text,
    channel         text,
    priority        text,
    organisation_id text,
    source          text        NOT NULL,
    answered_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    replaces        uuid,
    replaced_by     uuid,
    PRIMARY KEY (tenant_id, feedback_id)
);
CREATE INDEX answers_counted ON answers (tenant_id, survey, answered_at) WHERE replaced_by IS NULL;
CREATE INDEX answers_by_customer ON answers (tenant_id, customer_id, answered_at);
CREATE INDEX answers_by_survey ON answers (tenant_id, survey_id) WHERE survey_id IS NOT NULL;
SELECT helpdesk_isolate('answers');

-- Bad feedback to follow up: one flag per invitation (else per answer), however often the
-- customer answers it. open -> acknowledged -> resolved (with the follow-up's outcome).
CREATE TABLE flags (
    tenant_id       text        NOT NULL,
    flag_id         uuid        NOT NULL,
    flagged_for     uuid        NOT NULL,
    feedback_id     uuid        NOT NULL,
    ticket_id       uuid,
    customer_id     text        NOT NULL,
    survey          text        NOT NULL,
    score           smallint    NOT NULL,
    threshold       smallint    NOT NULL,
    reason          text,
    agent_id        text,
    group_id        text,
    raised_at       timestamptz NOT NULL,
    state           text        NOT NULL DEFAULT 'open'
                    CHECK (state IN ('open', 'acknowledged', 'resolved')),
    acknowledged_by text,
    acknowledged_at timestamptz,
    outcome         text,
    note            text,
    resolved_by     text,
    resolved_at     timestamptz,
    PRIMARY KEY (tenant_id, flag_id)
);
CREATE UNIQUE INDEX flags_once ON flags (tenant_id, flagged_for);
CREATE INDEX flags_by_state ON flags (tenant_id, state, raised_at);
SELECT helpdesk_isolate('flags');
