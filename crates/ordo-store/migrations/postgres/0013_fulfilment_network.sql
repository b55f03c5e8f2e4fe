-- The fulfilment network (issue 16): where a node ships, what it can handle, its capacity,
-- cut-off and costs; the products' fulfilment attributes. Lists are JSON arrays of strings;
-- money is minor units in cost_currency; booleans are 0/1.
ALTER TABLE locations ADD COLUMN country TEXT;
ALTER TABLE locations ADD COLUMN ships_to TEXT NOT NULL DEFAULT '[]';
ALTER TABLE locations ADD COLUMN capabilities TEXT NOT NULL DEFAULT '[]';
ALTER TABLE locations ADD COLUMN daily_capacity BIGINT;
ALTER TABLE locations ADD COLUMN cutoff TEXT;
ALTER TABLE locations ADD COLUMN timezone TEXT;
ALTER TABLE locations ADD COLUMN handling_cost BIGINT NOT NULL DEFAULT 0;
ALTER TABLE locations ADD COLUMN cost_per_100km BIGINT NOT NULL DEFAULT 0;
ALTER TABLE locations ADD COLUMN cost_currency TEXT NOT NULL DEFAULT 'USD';
ALTER TABLE locations ADD COLUMN active BIGINT NOT NULL DEFAULT 1;
ALTER TABLE products ADD COLUMN hazmat BIGINT NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN cold_chain BIGINT NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN weight_grams BIGINT;
