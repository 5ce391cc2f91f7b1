-- Domain verdicts from MX checks, reused across runs while fresh.
CREATE TABLE domains (
    name       TEXT PRIMARY KEY,
    verdict    TEXT NOT NULL,
    mx         TEXT NOT NULL DEFAULT '',   -- MX hosts in preference order, space separated
    detail     TEXT NOT NULL DEFAULT '',
    checked_at INTEGER NOT NULL            -- unix seconds
) STRICT;

-- Addresses and whole domains that must never be mailed again.
CREATE TABLE suppressions (
    value      TEXT PRIMARY KEY,           -- lower-case address, or domain for kind 'domain'
    kind       TEXT NOT NULL CHECK (kind IN ('address', 'domain')),
    reason     TEXT NOT NULL DEFAULT '',
    source     TEXT NOT NULL DEFAULT '',   -- campaign or command that added it
    created_at INTEGER NOT NULL
) STRICT;
