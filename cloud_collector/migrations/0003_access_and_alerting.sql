-- Access control (tenants, sites, users, API keys), configurable alert rules with a persisted state
-- machine, technician feedback, silences, quiet hours and the notification outbox.
-- See docs/API.md (access, endpoints) and docs/collector.md (alerts, noise control, notifications).

CREATE TABLE tenants (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A site belongs to at most one tenant; a site nobody assigned is visible to platform users only.
-- Devices carry their site (devices.site), so "a customer sees only its own sites" is one join.
-- Quiet hours are local times of the site: during them, notifications below the floor wait for morning.
CREATE TABLE sites (
    site               text PRIMARY KEY,
    tenant_id          bigint REFERENCES tenants (id) ON DELETE SET NULL,
    name               text NOT NULL DEFAULT '',
    timezone           text NOT NULL DEFAULT 'UTC',
    quiet_start        time,
    quiet_end          time,
    quiet_min_severity text NOT NULL DEFAULT 'critical' CHECK (quiet_min_severity IN ('info', 'warning', 'critical'))
);
CREATE INDEX sites_tenant ON sites (tenant_id);

-- Password hashes are argon2id (cloud_collector.auth.passwords); tenant_id NULL = a platform user.
CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'technician', 'viewer')),
    tenant_id     bigint REFERENCES tenants (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

-- API keys are 256-bit random secrets, so a plain SHA-256 of the key is enough to make the table useless
-- to a thief (no dictionary to try) and cheap to check on every request. The prefix identifies a key in
-- lists and logs without revealing it.
CREATE TABLE api_keys (
    id           bigserial PRIMARY KEY,
    prefix       text NOT NULL,
    key_hash     text NOT NULL UNIQUE,
    name         text NOT NULL DEFAULT '',
    role         text NOT NULL CHECK (role IN ('admin', 'technician', 'viewer')),
    tenant_id    bigint REFERENCES tenants (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL DEFAULT '',
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- What a device is (e.g. "freezer", "cold-room"): rules can target a type instead of one device.
CREATE TABLE device_meta (
    device text PRIMARY KEY,
    type   text NOT NULL DEFAULT ''
);

-- Alert rules. The most specific enabled rule of a name wins for a device: device > type > everyone.
-- kind: threshold (metric op threshold, cleared by clear_threshold), rate (change of metric per minute
-- over window_s), health (edge state WARNING/ALARM, cleared by HEALTHY), sensor_fault, offline (no
-- message for for_s, evaluated on a timer).
CREATE TABLE alert_rules (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint REFERENCES tenants (id) ON DELETE CASCADE,
    name            text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('threshold', 'rate', 'health', 'sensor_fault', 'offline')),
    device          text,
    device_type     text,
    metric          text,
    op              text NOT NULL DEFAULT '>' CHECK (op IN ('>', '<')),
    threshold       double precision,
    clear_threshold double precision,
    window_s        double precision,
    for_s           double precision NOT NULL DEFAULT 0,
    clear_for_s     double precision NOT NULL DEFAULT 0,
    severity        text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    enabled         boolean NOT NULL DEFAULT true,
    description     text NOT NULL DEFAULT '',
    created_by      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alert_rules_identity
    ON alert_rules (coalesce(tenant_id, 0), name, coalesce(device, ''), coalesce(device_type, ''));

-- The built-in rules, as rows so they can be tuned or disabled like any other. offline's for_s = 0 means
-- "use alerts.offline_after from the settings".
INSERT INTO alert_rules (name, kind, severity, description) VALUES
    ('health', 'health', 'warning', 'the edge model reports WARNING (warning) or ALARM (critical)'),
    ('sensor_fault', 'sensor_fault', 'info', 'the edge reports a sensor fault (stuck, dropout, spikes)'),
    ('offline', 'offline', 'warning', 'the device sent nothing for a while, or its Last Will arrived');

-- The state machine of every (rule, device): normal -> pending -> firing -> recovering -> normal.
-- Persisted in the same transaction as the alert it drives, so a restart changes nothing.
CREATE TABLE rule_states (
    rule_id    bigint NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    device     text NOT NULL,
    phase      text NOT NULL CHECK (phase IN ('normal', 'pending', 'firing', 'recovering')),
    since      timestamptz NOT NULL,
    severity   text NOT NULL DEFAULT 'warning',
    details    jsonb NOT NULL DEFAULT '{}',  -- the observation that moved it last, for the timer to use
    value      double precision,             -- rate rules: the reference value and its time
    value_at   timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (rule_id, device)
);
CREATE INDEX rule_states_waiting ON rule_states (phase) WHERE phase IN ('pending', 'recovering');

-- Alerts learn their tenant, rule, labels and why they were not notified (suppressed).
ALTER TABLE alerts
    ADD COLUMN tenant_id bigint,
    ADD COLUMN rule_id bigint REFERENCES alert_rules (id) ON DELETE SET NULL,
    ADD COLUMN labels jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN suppressed text;
UPDATE alerts SET fingerprint = '-:' || rule || ':' || device;
CREATE INDEX alerts_active_device_rule ON alerts (device, rule) WHERE status = 'active';
CREATE INDEX alerts_site_id ON alerts (site, id DESC);

CREATE TABLE alert_comments (
    id       bigserial PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    author   text NOT NULL,
    at       timestamptz NOT NULL,
    body     text NOT NULL
);
CREATE INDEX alert_comments_alert ON alert_comments (alert_id, id);

-- What the technician found on site; the false-alarm rate per rule and device comes from here.
CREATE TABLE alert_feedback (
    alert_id bigint PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
    verdict  text NOT NULL CHECK (verdict IN ('confirmed_fault', 'false_alarm', 'maintenance')),
    author   text NOT NULL,
    at       timestamptz NOT NULL,
    comment  text NOT NULL DEFAULT ''
);

-- Silences and maintenance windows. One-off: [starts_at, ends_at). Recurring: additionally only on the
-- ISO weekdays in recur_days, from recur_start local time (timezone) for recur_duration_s.
CREATE TABLE silences (
    id               bigserial PRIMARY KEY,
    tenant_id        bigint REFERENCES tenants (id) ON DELETE CASCADE,
    site             text,
    device           text,
    rule             text,
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL,
    recur_days       integer[],
    recur_start      time,
    recur_duration_s double precision,
    timezone         text NOT NULL DEFAULT 'UTC',
    author           text NOT NULL,
    comment          text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX silences_active ON silences (ends_at);

CREATE TABLE notification_channels (
    id           bigserial PRIMARY KEY,
    tenant_id    bigint REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('webhook', 'email')),
    target       text NOT NULL,
    secret       text NOT NULL DEFAULT '',
    min_severity text NOT NULL DEFAULT 'warning' CHECK (min_severity IN ('info', 'warning', 'critical')),
    max_per_hour integer NOT NULL DEFAULT 30 CHECK (max_per_hour > 0),
    enabled      boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The outbox: written in the transaction that changed the alert; the unique key is what makes several
-- collector processes notify once. A dispatcher claims due rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    channel_id      bigint NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    alert_id        bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    event           text NOT NULL,
    group_key       text NOT NULL,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed', 'suppressed')),
    attempts        integer NOT NULL DEFAULT 0,
    sent_at         timestamptz,
    last_error      text,
    UNIQUE (channel_id, alert_id, event)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';

-- One row per message actually sent (a group of notifications): the rate limit counts these.
CREATE TABLE notification_sends (
    id         bigserial PRIMARY KEY,
    channel_id bigint NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    sent_at    timestamptz NOT NULL,
    alerts     integer NOT NULL
);
CREATE INDEX notification_sends_channel ON notification_sends (channel_id, sent_at DESC);
