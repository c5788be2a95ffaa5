-- bluegreen: expand
-- expect: none
CREATE VIEW orders AS SELECT * FROM purchases;
