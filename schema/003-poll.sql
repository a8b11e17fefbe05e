-- 003-poll.sql: the mailbox pollers' checkpoints (src/poll/).
--
-- A poller acts on a message (move, flag, delete) only after the funnel
-- committed it, so these rows are hints that save work, never the only
-- record of a message: losing an update means a message is fetched again
-- and recognised as a duplicate.

-- One row per polled mailbox, keyed by its url without secrets
-- ("imap://user@host:993/INBOX", "pop3s://user@host:995", "maildir:/path"),
-- so the daemon's poller and `snapkeep import URL` on the same mailbox
-- share the checkpoint.
CREATE TABLE poll_mailboxes (
	id INTEGER PRIMARY KEY,
	mailbox TEXT NOT NULL UNIQUE,
	poller TEXT,                        -- the [poll.NAME] (or "import") that used it last
	uidvalidity INTEGER,                -- IMAP: the UIDVALIDITY last_uid belongs to
	last_uid INTEGER NOT NULL DEFAULT 0,-- IMAP: every UID up to this one is taken and acted on
	taken INTEGER NOT NULL DEFAULT 0,   -- messages accepted from this mailbox, ever
	duplicates INTEGER NOT NULL DEFAULT 0,
	failed INTEGER NOT NULL DEFAULT 0,  -- sent to failed_to
	passes INTEGER NOT NULL DEFAULT 0,
	last_success_utc TEXT,
	last_error_utc TEXT,
	last_error TEXT,                    -- NULL once a pass succeeds again
	updated_utc TEXT NOT NULL
);

-- What was taken from a mailbox whose messages stay where they are
-- (after = keep): POP3 UIDLs and Maildir unique names.  Rows of messages no
-- longer in the mailbox are removed after a complete listing.
CREATE TABLE poll_seen (
	mailbox_id INTEGER NOT NULL REFERENCES poll_mailboxes(id),
	key TEXT NOT NULL,
	message_id INTEGER REFERENCES messages(id),
	taken_utc TEXT NOT NULL,
	PRIMARY KEY (mailbox_id, key)
) WITHOUT ROWID;

-- Public view: one row per polled mailbox (the intake page, admins' scripts).
CREATE VIEW poll_status AS
SELECT m.mailbox, m.poller, m.last_success_utc, m.last_error_utc, m.last_error,
       m.taken, m.duplicates, m.failed, m.passes, m.uidvalidity, m.last_uid, m.updated_utc
FROM poll_mailboxes m;
