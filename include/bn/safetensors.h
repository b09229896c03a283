/*
 * bn/safetensors.h: the safetensors file format, read and written in memory.
 *
 * A file is an 8-byte little-endian header length N, N bytes of a JSON
 * object {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
 * ..., "__metadata__": {"key": "value"}} (possibly padded with spaces), then
 * the data buffer. The reader is strict: a header over the caller's cap, a
 * header that is not exactly that shape of JSON, a repeated name, a dtype the
 * format does not define, offsets whose length disagrees with dtype and
 * shape, or tensors that do not tile the data buffer exactly (no gaps, no
 * overlap, nothing after the last) are -EBADMSG (BN_E_INVALID_SAFETENSORS),
 * naming the tensor at fault. Reading copies nothing: each entry points into
 * the caller's buffer, which must outlive it.
 */
#ifndef BN_SAFETENSORS_H
#define BN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "bn/buf.h"
#include "bn/error.h"

#define BN_E_INVALID_SAFETENSORS "invalid_safetensors" /* -EBADMSG */

#define BN_ST_RANK_MAX 8     /* the most dimensions a tensor may have */
#define BN_ST_NAME_MAX 1024  /* the longest tensor name, bytes */

/* The dtypes the format defines; only the first five convert (bn_st_floats, bn_st_int64). */
enum bn_st_dtype {
	BN_ST_F32, BN_ST_F64, BN_ST_F16, BN_ST_BF16, BN_ST_I64,
	BN_ST_BOOL, BN_ST_U8, BN_ST_I8, BN_ST_F8_E5M2, BN_ST_F8_E4M3,
	BN_ST_I16, BN_ST_U16, BN_ST_I32, BN_ST_U32, BN_ST_U64,
};

struct bn_st_entry {
	char *name;                  /* NUL-terminated, owned by the file */
	enum bn_st_dtype dtype;
	unsigned rank;               /* 0 for a scalar */
	size_t shape[BN_ST_RANK_MAX];
	size_t count;                /* product of shape (1 for a scalar) */
	const unsigned char *data;   /* into the parsed buffer */
	size_t bytes;
};

struct bn_safetensors {
	struct bn_st_entry *entries; /* in header order */
	size_t count;
};

/* The format's name of a dtype ("F32"). */
const char *bn_st_dtype_name(enum bn_st_dtype dt);

/*
 * Parse buf[0..len). The header may be at most max_header bytes and hold at
 * most max_entries tensors (-E2BIG, BN_E_TOO_LARGE, beyond either, checked
 * before the header is read). *ret is written only on success; release it
 * with bn_safetensors_finish().
 */
int bn_safetensors_parse(const void *buf, size_t len, size_t max_header, size_t max_entries,
		struct bn_safetensors *ret, struct bn_error *err);

/* Free what parse allocated. Accepts a zeroed struct. */
void bn_safetensors_finish(struct bn_safetensors *st);

/*
 * e's values as float32 into out[0..e->count): F32 as is, F16 and BF16
 * exactly, F64 rounded to nearest (bn/dtype.h). -ENOTSUP
 * (BN_E_UNSUPPORTED_DTYPE) for another dtype; -EINVAL for a value not
 * finite or beyond float32. The details name the tensor.
 */
int bn_st_floats(const struct bn_st_entry *e, float *out, struct bn_error *err);

/*
 * The one value of an I64 tensor of one element (shape [] or [1]), as
 * PyTorch stores num_batches_tracked. -ENOTSUP for another dtype, -EINVAL
 * for another element count. *ret is written only on success.
 */
int bn_st_int64(const struct bn_st_entry *e, int64_t *ret, struct bn_error *err);

/* A tensor to write: float32 values (F32) or one int64 (I64, shape []). */
struct bn_st_out {
	const char *name;
	enum bn_st_dtype dtype;      /* BN_ST_F32 or BN_ST_I64 */
	unsigned rank;
	size_t shape[BN_ST_RANK_MAX];
	size_t count;
	const float *f32;            /* F32: count values */
	int64_t i64;                 /* I64 */
};

/*
 * Append a safetensors file of the n tensors (in that order) to out, with
 * the metadata pairs meta[0..2*n_meta) (key, value, key, value...) when
 * n_meta > 0. The header is padded with spaces to a multiple of 8 bytes.
 * Returns out's error state (0, -E2BIG, -ENOMEM).
 */
int bn_safetensors_write(struct bn_buf *out, const struct bn_st_out *t, size_t n,
		const char *const *meta, size_t n_meta);

#endif
