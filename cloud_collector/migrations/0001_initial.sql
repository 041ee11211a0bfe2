-- The collector's first schema: devices, readings (partitioned by time), states, alerts, dead letters.
-- Applied once, in one transaction, by cloud_collector.migrate (see docs/collector.md).

-- One row per device ever heard from. "last_seen" is the collector's clock (offline detection must not
-- trust a device clock); "last_state_at" and "last_reading_at" are the device's own timestamps.
CREATE TABLE devices (
    device               text PRIMARY KEY,
    site                 text NOT NULL,
    first_seen           timestamptz NOT NULL,
    last_seen            timestamptz NOT NULL,
    last_boot            text,
    model                text,
    last_state           text,
    last_state_at        timestamptz,
    last_score           double precision,
    last_reading_at      timestamptz,
    last_values          jsonb,
    online               boolean,
    status_at            timestamptz,
    status_reason        text,
    agent_version        text,
    duplicates_discarded bigint NOT NULL DEFAULT 0
);

-- Readings, range-partitioned by the device timestamp. The collector creates monthly partitions ahead of
-- time (cloud_collector.partitions); the default partition catches anything outside them (a device with
-- a wrong clock) so an insert never fails. Retention = dropping old monthly partitions.
--
-- PostgreSQL requires the partition key in every unique index of a partitioned table, so the
-- idempotency key (device, boot, seq) is enforced together with ts. An agent replays the readings it
-- buffered byte for byte, so a redelivered reading always carries the same ts and is discarded.
CREATE TABLE readings (
    device      text NOT NULL,
    boot        text NOT NULL,
    seq         bigint NOT NULL,
    ts          timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    "values"    jsonb NOT NULL,
    missing     text[] NOT NULL DEFAULT '{}',
    score       double precision,
    state       text,
    model       text,
    CONSTRAINT readings_idempotency_key UNIQUE (device, boot, seq, ts)
) PARTITION BY RANGE (ts);

CREATE TABLE readings_default PARTITION OF readings DEFAULT;

-- BRIN: readings arrive roughly in time order, so a tiny block-range index serves time-range scans.
CREATE INDEX readings_ts_brin ON readings USING brin (ts);
-- The API's "readings of one device between two times".
CREATE INDEX readings_device_ts ON readings (device, ts DESC);

-- Health state transitions as the edge reported them, with the explanation.
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
    CONSTRAINT states_idempotency_key UNIQUE (device, boot, seq)
);
CREATE INDEX states_device_ts ON states (device, ts DESC);

-- Alerts and their lifecycle (active -> cleared). The partial unique index is what makes "open or bump"
-- safe across processes: two collectors can never both open the active alert of one fingerprint.
CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    device          text NOT NULL,
    site            text NOT NULL,
    rule            text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    status          text NOT NULL CHECK (status IN ('active', 'cleared')),
    fingerprint     text NOT NULL,
    opened_at       timestamptz NOT NULL,
    cleared_at      timestamptz,
    last_seen       timestamptz NOT NULL,
    occurrences     integer NOT NULL DEFAULT 1,
    acknowledged_by text,
    acknowledged_at timestamptz,
    ack_comment     text,
    details         jsonb NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX alerts_one_active_per_fingerprint ON alerts (fingerprint) WHERE status = 'active';
CREATE INDEX alerts_device_opened ON alerts (device, opened_at DESC);
CREATE INDEX alerts_status_opened ON alerts (status, opened_at DESC);

-- Messages the collector refused, with the precise reason, kept for inspection and replay.
-- "device" comes from the topic when it parses (the broker ACL binds it to the publisher's identity);
-- "client_id" is only known when a v5 publisher sends it as a user property.
CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    topic        text NOT NULL,
    client_id    text,
    device       text,
    reason       text NOT NULL,
    payload      bytea NOT NULL,
    payload_size integer NOT NULL
);
CREATE INDEX dead_letters_device ON dead_letters (device, received_at DESC);
