-- A layer's open calibration (precise BN), at most one, deleted with the layer.
-- Arrays are little-endian float64 BLOBs of num_features values: the exact
-- per-channel mean and M2 (sum of squared deviations) of every value seen,
-- merged with Chan et al.'s formula, and, for the batch_average result, the
-- sums over batches of each batch's mean and unbiased variance.
CREATE TABLE calibration (
	layer_id INTEGER PRIMARY KEY REFERENCES layers (id) ON DELETE CASCADE,
	count INTEGER NOT NULL CHECK (count >= 0),
	batches INTEGER NOT NULL CHECK (batches >= 0),
	mean BLOB NOT NULL,
	m2 BLOB NOT NULL,
	batch_mean_sum BLOB NOT NULL,
	batch_var_sum BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
