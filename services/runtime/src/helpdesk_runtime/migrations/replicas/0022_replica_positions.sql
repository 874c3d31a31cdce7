-- Where each replica of a compacted topic (compacted.py) has read to, kept with what it
-- read: a restored database goes on from the position it was backed up with. A platform
-- table: it names topics and partitions, no tenant's data.
CREATE TABLE replica_positions (
    topic       text    NOT NULL,
    partition   integer NOT NULL,
    next_offset bigint  NOT NULL,
    PRIMARY KEY (topic, partition)
);
