-- bluegreen: expand
-- expect: none
SET lock_timeout = '2s';
-- expect: add-required-column
ALTER TABLE orders ADD COLUMN currency text NOT NULL;
-- expect: none
ALTER TABLE orders ADD COLUMN region text NOT NULL DEFAULT 'eu';
-- expect: none
ALTER TABLE orders ADD COLUMN coupon text;
-- expect: none
ALTER TABLE orders ADD COLUMN IF NOT EXISTS placed_at timestamptz DEFAULT now();
