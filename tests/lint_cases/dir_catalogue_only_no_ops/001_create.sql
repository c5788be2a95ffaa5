-- bluegreen: expand
-- expect: none
CREATE TABLE accounts (id uuid PRIMARY KEY, owner uuid NOT NULL, email text, created_at timestamptz NOT NULL);
