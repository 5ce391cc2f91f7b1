-- Running campaigns: attempts' age, the run lock, provider pauses.
ALTER TABLE recipients ADD COLUMN first_attempt_at INTEGER;
ALTER TABLE campaigns ADD COLUMN possible_dups INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN state_detail TEXT NOT NULL DEFAULT '';

-- One run of a campaign at a time: who holds it, and when it last said so.
CREATE TABLE campaign_locks (
    campaign_id INTEGER PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    holder      TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    heartbeat   INTEGER NOT NULL
) STRICT;

-- A provider that throttled or blocked the sender rests until "until".
CREATE TABLE provider_pauses (
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    grp         TEXT NOT NULL,
    until       INTEGER NOT NULL,
    cooldown_s  INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (campaign_id, grp)
) STRICT;

CREATE INDEX recipients_by_state ON recipients (campaign_id, state);
