-- relayctl serve: the relay's durable queue, its users, and who used it.

-- A message accepted by the relay; its body is in queue_bodies, so that
-- listing and purging the queue read small rows.
-- AUTOINCREMENT: a queue id is never reused, even once the queue has
-- drained, so "queued as 42" in a client's log names one message for ever.
CREATE TABLE queue_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,          -- unix seconds
    mail_from   TEXT NOT NULL,             -- '' is the null sender (a DSN)
    client      TEXT NOT NULL,             -- the client's IP address
    username    TEXT NOT NULL DEFAULT '',  -- the authenticated user, if any
    size        INTEGER NOT NULL
) STRICT;

CREATE INDEX queue_messages_received ON queue_messages (received_at);

-- The message as it will be sent (with our Received field), CRLF ends.
CREATE TABLE queue_bodies (
    message_id INTEGER PRIMARY KEY REFERENCES queue_messages (id) ON DELETE CASCADE,
    body       BLOB NOT NULL
) STRICT;

-- One recipient of a queued message. notified: 0 nothing sent to the
-- sender yet, 1 a delay warning went, 2 done (a failure DSN went, or none
-- was due: the sender was null).
CREATE TABLE queue_recipients (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   INTEGER NOT NULL REFERENCES queue_messages (id) ON DELETE CASCADE,
    rcpt         TEXT NOT NULL,
    domain       TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL DEFAULT 0,
    last_attempt INTEGER,
    reply        TEXT NOT NULL DEFAULT '',
    notified     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX queue_recipients_due ON queue_recipients (state, next_attempt);
CREATE INDEX queue_recipients_message ON queue_recipients (message_id);
-- Recipients whose sender is owed a failure notice.
CREATE INDEX queue_recipients_owed ON queue_recipients (message_id)
    WHERE state IN ('bounced', 'failed') AND notified < 2;

-- A provider that throttled the relay rests until "until".
CREATE TABLE queue_pauses (
    grp        TEXT PRIMARY KEY,
    until      INTEGER NOT NULL,
    cooldown_s INTEGER NOT NULL,
    reason     TEXT NOT NULL
) STRICT;

-- Messages and recipients accepted per client (IP, or user when
-- authenticated) per UTC day: the inventory a relay operator keeps.
CREATE TABLE client_days (
    day        TEXT NOT NULL,   -- 2006-01-02
    client     TEXT NOT NULL,
    username   TEXT NOT NULL,
    messages   INTEGER NOT NULL,
    recipients INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    PRIMARY KEY (day, client, username)
) STRICT;

-- Who may relay after AUTH. hash is bcrypt; cram_secret, set only for
-- users allowed CRAM-MD5, is the password itself, which CRAM-MD5 needs.
CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    hash        TEXT NOT NULL,
    cram_secret TEXT,
    created_at  INTEGER NOT NULL
) STRICT;

-- One relayctl serve per database delivers its queue.
CREATE TABLE server_locks (
    name      TEXT PRIMARY KEY,
    holder    TEXT NOT NULL,
    host      TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    heartbeat INTEGER NOT NULL
) STRICT;
