-- bluegreen: expand
-- expect: none
CREATE TABLE invoices (id bigint PRIMARY KEY, order_id bigint);
