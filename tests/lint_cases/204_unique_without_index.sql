-- bluegreen: contract after=2.0.0
-- expect: none
SET lock_timeout = '2s';
-- expect: unique-without-index
ALTER TABLE customers ADD CONSTRAINT customers_email_key UNIQUE (email);
-- expect: unique-without-index
ALTER TABLE audit_log ADD PRIMARY KEY (id);
-- expect: none
ALTER TABLE customers ADD CONSTRAINT customers_phone_key UNIQUE USING INDEX customers_phone_idx;
