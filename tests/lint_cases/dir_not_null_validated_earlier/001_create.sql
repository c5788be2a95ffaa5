-- bluegreen: expand
-- expect: none
CREATE TABLE orders (id bigint PRIMARY KEY, note text, memo text);
