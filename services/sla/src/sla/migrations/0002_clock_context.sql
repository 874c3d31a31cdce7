-- What the ticket was when a clock's outcome was decided (kept up to date while the clock
-- is open, left as it was once it ends), so reports group a clock by the priority, channel,
-- group and assignee it was judged under, not by what the ticket became later.
ALTER TABLE clocks
    ADD COLUMN priority    text,
    ADD COLUMN channel     text,
    ADD COLUMN group_id    text,
    ADD COLUMN assignee_id text;
