-- The portal's application role: what web processes, workers and beat need, and on the audit
-- table nothing but reading, appending and sealing (README "Security", docs/decisions.md
-- 2026-12-04 "The audit trail against its owner").
--
-- Two roles:
--   portal_owner  owns the tables; runs `manage.py migrate`; the running portal never uses it.
--   portal        the application role: the DATABASE_URL of web, worker and beat.
-- Not being the owner, the application role can neither disable nor drop the audit table's
-- triggers; with the grants below it cannot DELETE, TRUNCATE or UPDATE audit events either,
-- except the three chain columns, which the trigger lets it set on an unsealed event only.
--
-- Once, as a superuser:
--   CREATE ROLE portal_owner LOGIN PASSWORD '...';
--   CREATE ROLE portal LOGIN PASSWORD '...';
--   ALTER DATABASE portal OWNER TO portal_owner;
--   \c portal
--   ALTER SCHEMA public OWNER TO portal_owner;
-- An existing database: also ALTER TABLE ... OWNER TO portal_owner for each table and sequence
-- the application role owned (`\dt`, `\ds`).
--
-- Then, as portal_owner, after the first `migrate` and again after every later one (each
-- statement can be run any number of times):
--   DATABASE_URL=postgres://portal_owner:...@db/portal .venv/bin/python manage.py migrate
--   psql postgres://portal_owner:...@db/portal -v app=portal -f docs/deploy/postgresql-app-role.sql

GRANT USAGE ON SCHEMA public TO :"app";
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app";
-- Tables and sequences that later migrations create get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"app";

-- The audit trail: read it, append to it, seal it (portal.audit.seal sets seq, prev_hash and
-- hash of unsealed events). No DELETE, no TRUNCATE, no UPDATE of any other column.
REVOKE ALL ON portal_auditevent FROM :"app";
GRANT SELECT, INSERT ON portal_auditevent TO :"app";
GRANT UPDATE (seq, prev_hash, hash) ON portal_auditevent TO :"app";
