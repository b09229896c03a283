-- Layers and their state. Arrays are little-endian float32 BLOBs; a NULL
-- array is one the layer does not have. Times are Unix milliseconds.
-- id is AUTOINCREMENT so a re-created layer never reuses an id (and so an ETag).
CREATE TABLE layers (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL UNIQUE,
	num_features INTEGER NOT NULL CHECK (num_features >= 1),
	eps REAL NOT NULL,
	momentum REAL,                        -- NULL: cumulative moving average
	affine INTEGER NOT NULL,
	track_running_stats INTEGER NOT NULL,
	weight BLOB,
	bias BLOB,
	running_mean BLOB,
	running_var BLOB,
	num_batches_tracked INTEGER NOT NULL DEFAULT 0,
	step INTEGER NOT NULL DEFAULT 0,      -- train steps since creation, never rewound
	version INTEGER NOT NULL DEFAULT 1,   -- bumped by every change, part of the ETag
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

-- One row per train step, the oldest trimmed past --history-limit.
CREATE TABLE history (
	layer_id INTEGER NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
	step INTEGER NOT NULL,
	at INTEGER NOT NULL,
	count INTEGER NOT NULL,
	num_batches_tracked INTEGER,
	batch_mean BLOB NOT NULL,
	batch_var BLOB NOT NULL,
	running_mean BLOB,
	running_var BLOB,
	PRIMARY KEY (layer_id, step)
) WITHOUT ROWID;
