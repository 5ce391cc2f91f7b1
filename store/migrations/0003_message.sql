-- Message composition: the HTML alternative, the sender settings fixed at
-- plan time (JSON), the secret behind per-recipient tokens, attachments.
ALTER TABLE campaigns ADD COLUMN html_template TEXT NOT NULL DEFAULT '';
ALTER TABLE campaigns ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE campaigns ADD COLUMN secret BLOB NOT NULL DEFAULT x'';

CREATE TABLE campaign_attachments (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL,
    PRIMARY KEY (campaign_id, seq)
) STRICT;
