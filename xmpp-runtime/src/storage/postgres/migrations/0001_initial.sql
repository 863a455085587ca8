-- Vireo schema version 1 (issue 15). Applied by xmpp-runtime's
-- storage::postgres::schema in one transaction, recorded in vireo_schema.
--
-- Every text column that is a key or is listed in key order uses the "C"
-- collation: byte order, like the embedded stores (roster items by contact
-- JID, documents by key), whatever the database's default collation is.

-- An account exists iff it has a row here (credentials are SCRAM keys,
-- never a password).
CREATE TABLE accounts (
    account           TEXT COLLATE "C" PRIMARY KEY,
    iterations        INTEGER NOT NULL,
    salt              BYTEA NOT NULL,
    sha1_stored_key   BYTEA NOT NULL,
    sha1_server_key   BYTEA NOT NULL,
    sha256_stored_key BYTEA NOT NULL,
    sha256_server_key BYTEA NOT NULL,
    roster_version    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE roster (
    account     TEXT COLLATE "C" NOT NULL REFERENCES accounts ON DELETE CASCADE,
    contact     TEXT COLLATE "C" NOT NULL,
    name        TEXT,
    sub_to      BOOLEAN NOT NULL,
    sub_from    BOOLEAN NOT NULL,
    pending_out BOOLEAN NOT NULL,
    pending_in  BOOLEAN NOT NULL,
    groups      TEXT[] NOT NULL,
    in_roster   BOOLEAN NOT NULL,
    PRIMARY KEY (account, contact)
);

-- Offline messages (XEP-0160), oldest first by seq.
CREATE TABLE offline (
    account TEXT COLLATE "C" NOT NULL REFERENCES accounts ON DELETE CASCADE,
    seq     BIGINT GENERATED ALWAYS AS IDENTITY,
    stanza  TEXT NOT NULL,
    PRIMARY KEY (account, seq)
);

-- Stored XML documents (vCard, private XML, PEP items, rooms, ...). An
-- owner without '@' is a service or one of its entities and has no
-- account row, so there is no foreign key: deleting an account deletes
-- its documents explicitly.
CREATE TABLE documents (
    owner TEXT COLLATE "C" NOT NULL,
    key   TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (owner, key)
);

-- Message archives (XEP-0313). Ids (16 bytes) begin with the archive time,
-- so (owner, id) is each archive in chronological order.
CREATE TABLE archive (
    owner     TEXT COLLATE "C" NOT NULL,
    id        BYTEA NOT NULL,
    with_jid  TEXT COLLATE "C" NOT NULL,
    with_bare TEXT COLLATE "C" NOT NULL,
    stanza    TEXT NOT NULL,
    PRIMARY KEY (owner, id)
);
CREATE INDEX archive_with ON archive (owner, with_bare, id);

-- Message counts per archive (with_bare '') and per bare JID in it, for
-- XEP-0059 <count/> without counting rows.
CREATE TABLE archive_totals (
    owner     TEXT COLLATE "C" NOT NULL,
    with_bare TEXT COLLATE "C" NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (owner, with_bare)
);
