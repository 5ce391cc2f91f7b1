-- Every state change rewrote this index too: a run paid for it on each
-- message, while only status's counts read it, and they scan a campaign's
-- rows through recipients_by_job just as well.
DROP INDEX recipients_by_state;
