-- A campaign: one message template sent to one cleaned list, split into jobs.
CREATE TABLE campaigns (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    state          TEXT NOT NULL DEFAULT 'planned',
    list_path      TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    template       TEXT NOT NULL,            -- the message template's source
    columns        TEXT NOT NULL,            -- JSON array: the list columns the template uses
    per_job        INTEGER NOT NULL,
    gap_s          INTEGER NOT NULL,         -- seconds between one job's end and the next's start
    start_at       INTEGER NOT NULL,
    not_after      INTEGER,                  -- jobs not started by then are not sent
    connections    INTEGER NOT NULL,         -- connections in total
    rows_read      INTEGER NOT NULL,
    recipients     INTEGER NOT NULL,
    rejected       INTEGER NOT NULL,
    reasons        TEXT NOT NULL,            -- JSON object: rejected rows by reason
    notes          TEXT NOT NULL DEFAULT '[]' -- JSON array: what planning warned about
) STRICT;

-- Shaping limits per group (a provider, or a domain of its own) of a campaign.
CREATE TABLE campaign_groups (
    campaign_id      INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    grp              TEXT NOT NULL,
    connections      INTEGER NOT NULL,
    per_connection   INTEGER NOT NULL,
    per_message      INTEGER NOT NULL,
    max_conn_age_s   INTEGER NOT NULL,
    per_hour         INTEGER NOT NULL,
    recipients       INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, grp)
) STRICT;

CREATE TABLE jobs (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    not_before   INTEGER NOT NULL,          -- planned start (estimate for jobs after the first)
    state        TEXT NOT NULL DEFAULT 'pending',
    recipients   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    PRIMARY KEY (campaign_id, seq)
) STRICT;

-- Planned recipients per job and provider (domains of their own summed as "other").
CREATE TABLE job_providers (
    campaign_id  INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    provider     TEXT NOT NULL,
    recipients   INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, seq, provider),
    FOREIGN KEY (campaign_id, seq) REFERENCES jobs (campaign_id, seq) ON DELETE CASCADE
) STRICT;

CREATE TABLE recipients (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    job_seq         INTEGER NOT NULL,
    slot            REAL NOT NULL,          -- order within the job: providers interleave
    row             INTEGER NOT NULL,       -- the list row it came from
    email           TEXT NOT NULL,
    domain          TEXT NOT NULL,
    grp             TEXT NOT NULL,
    fields          TEXT NOT NULL,          -- JSON object: the columns the template uses
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'deferred', 'bounced', 'failed', 'suppressed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    reply           TEXT NOT NULL DEFAULT '',
    updated_at      INTEGER
) STRICT;

CREATE INDEX recipients_by_job ON recipients (campaign_id, job_seq, slot);
