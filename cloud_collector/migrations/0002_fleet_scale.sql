-- Ingest at fleet scale: device metadata, per-boot loss accounting, time-partitioned states, rollups.
-- See docs/collector.md ("Storage") and docs/SCALING.md. Tenants and sites come with 0003 (access).

-- What a device is, kept by the registry (set by an administrator or provisioning, never by a payload).
ALTER TABLE devices
    ADD COLUMN hardware_model text,
    ADD COLUMN firmware       text,
    ADD COLUMN profile        text;

-- Loss accounting, kept up to date by ingest in the same transaction as the readings: per (device, boot)
-- the lowest and highest sequence number stored and how many distinct ones. A reading that never arrived
-- is a gap: last_seq - first_seq + 1 - stored. Only rows that were really inserted (not duplicates) are
-- counted, so redeliveries cannot distort it, and reading it costs one row per boot instead of a scan.
CREATE TABLE device_boots (
    device    text NOT NULL,
    boot      text NOT NULL,
    first_seq bigint NOT NULL,
    last_seq  bigint NOT NULL,
    stored    bigint NOT NULL,
    first_ts  timestamptz NOT NULL,
    last_ts   timestamptz NOT NULL,
    PRIMARY KEY (device, boot)
);

INSERT INTO device_boots
SELECT device, boot, min(seq), max(seq), count(*), min(ts), max(ts) FROM readings GROUP BY device, boot;

-- States, like readings, partitioned by the device timestamp (monthly; cloud_collector.partitions) so
-- retention is dropping partitions. The partition key must be part of the unique key; an agent replays a
-- buffered state byte for byte, so a redelivered state carries the same ts and is still discarded.
ALTER TABLE states RENAME TO states_unpartitioned;
ALTER TABLE states_unpartitioned RENAME CONSTRAINT states_idempotency_key TO states_unpartitioned_key;
ALTER INDEX states_device_ts RENAME TO states_unpartitioned_device_ts;
CREATE TABLE states (
    device       text NOT NULL,
    boot         text NOT NULL,
    seq          bigint NOT NULL,
    ts           timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    state        text NOT NULL,
    previous     text,
    score        double precision,
    model        text,
    reason       text NOT NULL DEFAULT '',
    contributors jsonb NOT NULL DEFAULT '[]',
    CONSTRAINT states_idempotency_key UNIQUE (device, boot, seq, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE states_default PARTITION OF states DEFAULT;
CREATE INDEX states_device_ts ON states (device, ts DESC);
CREATE INDEX states_ts_brin ON states USING brin (ts);
INSERT INTO states SELECT * FROM states_unpartitioned;
DROP TABLE states_unpartitioned;

-- Rollups for the dashboard: per device and bucket, for every point, {"n", "min", "max", "avg"}.
-- Ingest marks the (device, minute) buckets it inserted into (rollup_dirty); cloud_collector.rollups
-- recomputes marked minutes from readings, then their hours from the minutes. Recomputing instead of
-- adding keeps them exact under redelivery, late backlogs and several collectors.
CREATE TABLE readings_1m (
    device   text NOT NULL,
    bucket   timestamptz NOT NULL,
    n        integer NOT NULL,
    "values" jsonb NOT NULL,
    PRIMARY KEY (device, bucket)
) PARTITION BY RANGE (bucket);
CREATE TABLE readings_1m_default PARTITION OF readings_1m DEFAULT;

CREATE TABLE readings_1h (
    device   text NOT NULL,
    bucket   timestamptz NOT NULL,
    n        integer NOT NULL,
    "values" jsonb NOT NULL,
    PRIMARY KEY (device, bucket)
) PARTITION BY RANGE (bucket);
CREATE TABLE readings_1h_default PARTITION OF readings_1h DEFAULT;

-- marked_at is rewritten by every batch that touches the bucket: the row lock it takes is what makes the
-- rollup job wait for an in-flight batch instead of missing its rows (see cloud_collector.rollups).
CREATE TABLE rollup_dirty (
    device    text NOT NULL,
    bucket    timestamptz NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device, bucket)
);
INSERT INTO rollup_dirty (device, bucket)
SELECT DISTINCT device, date_trunc('minute', ts) FROM readings;

CREATE INDEX dead_letters_received ON dead_letters USING brin (received_at);
