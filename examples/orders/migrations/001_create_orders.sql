-- bluegreen: expand
-- Release 1.x: orders with their total in integer cents.
CREATE TABLE IF NOT EXISTS orders (
    id bigserial PRIMARY KEY,
    item text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    total_cents bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
