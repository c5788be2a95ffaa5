-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- A generator restating the type it already has (PostgreSQL converts nothing, rewrites nothing).
-- expect: none
ALTER TABLE accounts ALTER COLUMN owner TYPE uuid, ALTER COLUMN owner DROP NOT NULL;
-- owner is nullable again now; created_at has been NOT NULL since 001: setting it again does nothing.
-- expect: none
ALTER TABLE accounts ALTER COLUMN created_at SET NOT NULL;
-- expect: set-not-null, set-not-null-scan
ALTER TABLE accounts ALTER COLUMN owner SET NOT NULL;
-- A real type change still rewrites.
-- expect: change-column-type, table-rewrite
ALTER TABLE accounts ALTER COLUMN email TYPE varchar(100);
-- The same type with USING converts every row.
-- expect: change-column-type, table-rewrite
ALTER TABLE accounts ALTER COLUMN id TYPE uuid USING id::text::uuid;
