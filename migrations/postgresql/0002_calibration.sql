-- A layer's open calibration, as in sqlite/0002_calibration.sql: arrays are
-- bytea of little-endian float64.
CREATE TABLE calibration (
	layer_id bigint PRIMARY KEY REFERENCES layers (id) ON DELETE CASCADE,
	count bigint NOT NULL CHECK (count >= 0),
	batches bigint NOT NULL CHECK (batches >= 0),
	mean bytea NOT NULL,
	m2 bytea NOT NULL,
	batch_mean_sum bytea NOT NULL,
	batch_var_sum bytea NOT NULL,
	created_at bigint NOT NULL,
	updated_at bigint NOT NULL
);
