-- Which ticket a conversation in another system (a mail thread, a chat) currently belongs
-- to. Repointed when a message to a closed ticket's thread opens a follow-up.
CREATE TABLE ticket_threads (
    tenant_id  text NOT NULL,
    source     text NOT NULL,
    thread_id  text NOT NULL,
    ticket_id  uuid NOT NULL,
    PRIMARY KEY (tenant_id, source, thread_id)
);
