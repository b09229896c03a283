-- Layers and their state, as in sqlite/0001_layers.sql. Arrays are bytea of
-- little-endian float32 (4 bytes a value, the same bytes SQLite keeps); a NULL
-- array is one the layer does not have. Times are Unix milliseconds.
-- id comes from an identity that never reuses a value, so a re-created layer
-- never gets an old id (and so an old ETag).
CREATE TABLE layers (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE,
	num_features bigint NOT NULL CHECK (num_features >= 1),
	eps double precision NOT NULL,
	momentum double precision,            -- NULL: cumulative moving average
	affine boolean NOT NULL,
	track_running_stats boolean NOT NULL,
	weight bytea,
	bias bytea,
	running_mean bytea,
	running_var bytea,
	num_batches_tracked bigint NOT NULL DEFAULT 0,
	step bigint NOT NULL DEFAULT 0,       -- train steps since creation, never rewound
	version bigint NOT NULL DEFAULT 1,    -- bumped by every change, part of the ETag
	created_at bigint NOT NULL,
	updated_at bigint NOT NULL
);

-- One row per train step, the oldest trimmed past --history-limit.
CREATE TABLE history (
	layer_id bigint NOT NULL REFERENCES layers (id) ON DELETE CASCADE,
	step bigint NOT NULL,
	at bigint NOT NULL,
	count bigint NOT NULL,
	num_batches_tracked bigint,
	batch_mean bytea NOT NULL,
	batch_var bytea NOT NULL,
	running_mean bytea,
	running_var bytea,
	PRIMARY KEY (layer_id, step)
);
