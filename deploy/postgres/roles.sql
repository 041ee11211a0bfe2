-- Least-privilege roles for the SignalCraft collector. Run once as a superuser (psql -f roles.sql), after
-- replacing the passwords. Then:
--   database.owner_url    = "postgresql://signalcraft_owner:…@db/signalcraft"      (migrate, maintain)
--   database.url          = "postgresql://signalcraft_collector:…@db/signalcraft"  (serve)
--   database.runtime_role = "signalcraft_collector"
-- `signalcraft-collector migrate` (as the owner) creates the schema and grants the runtime role row access
-- (SELECT/INSERT/UPDATE/DELETE, sequences) on every table; it owns nothing and cannot create, alter or drop
-- tables. Partitions are created ahead and dropped for retention by `signalcraft-collector maintain`, run
-- daily as the owner (systemd timer or cron). `signalcraft-collector doctor` checks all of this.

CREATE ROLE signalcraft_owner LOGIN PASSWORD 'change-me-owner';
CREATE ROLE signalcraft_collector LOGIN PASSWORD 'change-me-collector' CONNECTION LIMIT 50;

CREATE DATABASE signalcraft OWNER signalcraft_owner;
\connect signalcraft
-- PostgreSQL 15 already refuses CREATE in schema public to other roles; make the owner own it.
ALTER SCHEMA public OWNER TO signalcraft_owner;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE signalcraft FROM PUBLIC;
-- CONNECT to log in, TEMP for the per-connection COPY staging tables (temporary, not schema DDL).
GRANT CONNECT, TEMP ON DATABASE signalcraft TO signalcraft_collector;
