-- Human-readable ticket numbers, counted per tenant ("your request #1042 has been received").
CREATE TABLE ticket_numbers (
    tenant_id    text   PRIMARY KEY,
    last_number  bigint NOT NULL CHECK (last_number > 0)
);
