-- bluegreen: expand
-- expect: none
CREATE TABLE orders (id bigint PRIMARY KEY, note varchar(50), total numeric(10, 2), code varchar(20), quantity int);
