-- 1.1.0 stores prices in cents
UPDATE item SET price = price*100;
