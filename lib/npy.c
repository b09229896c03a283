/*
 * npy.c: NumPy .npy files of float32, in memory (bn/npy.h).
 *
 * The format (numpy.lib.format): the magic "\x93NUMPY", a major and minor
 * version byte, the header length (little-endian u16 for 1.0, u32 for 2.0
 * and 3.0), then the header: a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with
 * spaces and ended by '\n', then the raw data.
 *
 * The header is parsed as the small piece of Python it is: keys in any
 * order, either quote, tuples like (), (3,) and (2, 3). The float dtypes
 * '<f2', '<f4', '<f8' and their big-endian '>' forms are taken and converted
 * to float32 (bn/dtype.h): numpy writes an explicit byte order for these on
 * every machine, so '=f4', '|f4' or a bare 'f4' would only come from
 * hand-made files and are refused with the rest. Order of checks: the file's structure (-EBADMSG), then the dtype
 * (-ENOTSUP), then the data's length against the shape (-EBADMSG), then the
 * tensor's own limits (rank, empty dimensions, element cap), then the values.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bn/dtype.h"
#include "bn/npy.h"

#define MAGIC "\x93NUMPY"
#define MAGIC_LEN 6
#define DESCR_MAX 32

struct header {
	const char *p, *end;
	char descr[DESCR_MAX + 1];
	bool descr_ok;     /* the descr was a plain string that fit */
	bool fortran;
	unsigned ndim;     /* may exceed BN_TENSOR_MAX_RANK; only the first dims are kept */
	size_t shape[BN_TENSOR_MAX_RANK];
	size_t product;    /* SIZE_MAX when it would overflow */
};

static int bad(struct bn_error *err, const char *what)
{
	bn_error_set(err, BN_E_INVALID_NPY, "invalid .npy file: %s", what);
	return -EBADMSG;
}

static void skip_space(struct header *h)
{
	while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n'))
		h->p++;
}

static bool eat(struct header *h, char c)
{
	skip_space(h);
	if (h->p < h->end && *h->p == c) {
		h->p++;
		return true;
	}
	return false;
}

/* A quoted string without escapes, as repr writes the keys and dtype strings. */
static bool string(struct header *h, const char **ret, size_t *ret_len)
{
	char q;
	const char *s;

	skip_space(h);
	if (h->p == h->end || (*h->p != '\'' && *h->p != '"'))
		return false;
	q = *h->p++;
	s = h->p;
	while (h->p < h->end && *h->p != q && *h->p != '\\' && *h->p != '\n')
		h->p++;
	if (h->p == h->end || *h->p != q)
		return false;
	*ret = s;
	*ret_len = (size_t)(h->p++ - s);
	return true;
}

static bool word(struct header *h, const char *w)
{
	size_t n = strlen(w);

	skip_space(h);
	if ((size_t)(h->end - h->p) < n || memcmp(h->p, w, n) != 0)
		return false;
	h->p += n;
	return true;
}

/* A non-negative decimal integer, saturating at SIZE_MAX. */
static bool integer(struct header *h, size_t *ret)
{
	size_t v = 0;

	skip_space(h);
	if (h->p == h->end || *h->p < '0' || *h->p > '9')
		return false;
	for (; h->p < h->end && *h->p >= '0' && *h->p <= '9'; h->p++)
		v = v > (SIZE_MAX - 9) / 10 ? SIZE_MAX : v * 10 + (size_t)(*h->p - '0');
	*ret = v;
	return true;
}

/* (), (3,), (2, 3), with an optional trailing comma after two or more. */
static bool tuple(struct header *h)
{
	size_t d;

	if (!eat(h, '('))
		return false;
	h->ndim = 0;
	h->product = 1;
	if (eat(h, ')'))
		return true;
	for (;;) {
		if (!integer(h, &d))
			return false;
		if (h->ndim < BN_TENSOR_MAX_RANK)
			h->shape[h->ndim] = d;
		h->ndim++;
		if (d && h->product > SIZE_MAX / d)
			h->product = SIZE_MAX;
		else
			h->product *= d;
		if (eat(h, ')'))
			return h->ndim > 1; /* (3) is an int, not a tuple */
		if (!eat(h, ','))
			return false;
		if (eat(h, ')'))
			return true;
	}
}

static int parse_header(struct header *h, struct bn_error *err)
{
	bool seen_descr = false, seen_fortran = false, seen_shape = false;

	if (!eat(h, '{'))
		return bad(err, "the header is not a dict");
	while (!eat(h, '}')) {
		const char *key, *s;
		size_t n, len;

		if (!string(h, &key, &n) || !eat(h, ':'))
			return bad(err, "expected a quoted key and ':' in the header");
		if (n == 5 && memcmp(key, "descr", 5) == 0 && !seen_descr) {
			seen_descr = true;
			skip_space(h);
			if (string(h, &s, &len)) {
				h->descr_ok = len <= DESCR_MAX;
				memcpy(h->descr, s, h->descr_ok ? len : 0);
				h->descr[h->descr_ok ? len : 0] = '\0';
			} else if (h->p < h->end && *h->p == '[') {
				/* A structured dtype: refused by name below, so skip to the list's end. */
				const char *close = memchr(h->p, ']', (size_t)(h->end - h->p));

				if (!close)
					return bad(err, "the header's descr does not parse");
				h->p = close + 1;
			} else {
				return bad(err, "the header's descr does not parse");
			}
		} else if (n == 13 && memcmp(key, "fortran_order", 13) == 0 && !seen_fortran) {
			seen_fortran = true;
			if (word(h, "True"))
				h->fortran = true;
			else if (!word(h, "False"))
				return bad(err, "the header's fortran_order is not True or False");
		} else if (n == 5 && memcmp(key, "shape", 5) == 0 && !seen_shape) {
			seen_shape = true;
			if (!tuple(h))
				return bad(err, "the header's shape is not a tuple of integers");
		} else {
			bn_error_set(err, BN_E_INVALID_NPY, "invalid .npy file: unexpected or repeated key "
					"'%.*s' in the header", n > 32 ? 32 : (int)n, key);
			return -EBADMSG;
		}
		if (!eat(h, ',')) {
			if (!eat(h, '}'))
				return bad(err, "expected ',' or '}' in the header");
			break;
		}
	}
	skip_space(h);
	if (h->p != h->end)
		return bad(err, "junk after the header's dict");
	if (!seen_descr || !seen_fortran || !seen_shape)
		return bad(err, "the header lacks one of 'descr', 'fortran_order' and 'shape'");
	return 0;
}

/*
 * The element type of a descr numpy writes for a float array: '<f2', '<f4',
 * '<f8' or their big-endian '>' forms. -ENOTSUP for anything else.
 */
static int descr_dtype(const struct header *h, enum bn_dtype *ret, bool *ret_big)
{
	if (!h->descr_ok || strlen(h->descr) != 3 || (h->descr[0] != '<' && h->descr[0] != '>') ||
	    h->descr[1] != 'f')
		return -ENOTSUP;
	switch (h->descr[2]) {
	case '2': *ret = BN_DTYPE_F16; break;
	case '4': *ret = BN_DTYPE_F32; break;
	case '8': *ret = BN_DTYPE_F64; break;
	default: return -ENOTSUP;
	}
	*ret_big = h->descr[0] == '>';
	return 0;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Split the file into header text and data. */
static int locate(const unsigned char *b, size_t len, struct header *h,
		const unsigned char **ret_data, size_t *ret_data_len, struct bn_error *err)
{
	size_t start, hlen;

	if (len < MAGIC_LEN + 2 || memcmp(b, MAGIC, MAGIC_LEN) != 0)
		return bad(err, "it does not start with \\x93NUMPY");
	if (b[6] < 1 || b[6] > 3 || b[7] != 0) {
		bn_error_set(err, BN_E_INVALID_NPY, "invalid .npy file: format version %u.%u is not "
				"1.0, 2.0 or 3.0", b[6], b[7]);
		return -EBADMSG;
	}
	start = b[6] == 1 ? 10 : 12;
	if (len < start)
		return bad(err, "the file ends inside the header length");
	hlen = b[6] == 1 ? (size_t)(b[8] | b[9] << 8) : le32(b + 8);
	if (hlen > len - start) {
		bn_error_set(err, BN_E_INVALID_NPY, "invalid .npy file: header length %zu runs past "
				"the end of the file (%zu bytes)", hlen, len);
		return -EBADMSG;
	}
	if (hlen == 0 || b[start + hlen - 1] != '\n')
		return bad(err, "the header does not end with a newline");
	h->p = (const char *)b + start;
	h->end = h->p + hlen - 1;
	*ret_data = b + start + hlen;
	*ret_data_len = len - start - hlen;
	return 0;
}

/* Values checked for finiteness at a time: a fixed count, so the loop vectorizes. */
#define CHUNK 1024

static int not_finite(size_t i, uint32_t bits, struct bn_error *err)
{
	bn_error_set(err, BN_E_NOT_FINITE, "value at flat index %zu is not finite (%s)", i,
			bits & 0x7fffff ? "nan" : bits >> 31 ? "-inf" : "inf");
	return -EINVAL;
}

/* Whether any of v[0..CHUNK) has every exponent bit set (NaN or infinity). */
static bool chunk_has_nonfinite(const uint32_t *v)
{
	uint32_t bad = 0;

	for (size_t i = 0; i < CHUNK; i++)
		bad |= (~v[i] & 0x7f800000) == 0;
	return bad;
}

/*
 * '<f4' data into t->data, refusing the first value that is not finite.
 * The data is copied whole, then checked a chunk at a time (while the chunk
 * is in cache) by a fixed-length OR that the compiler turns into vector
 * instructions; only a chunk that holds a bad value, and the tail, are
 * looked at one value at a time. Each dtype the reader takes has such a
 * function.
 */
static int decode_f4(struct bn_tensor *t, const unsigned char *data, struct bn_error *err)
{
	uint32_t *v = (uint32_t *)(void *)t->data;
	size_t at = 0;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(v, data, 4 * t->count);
#else
	for (size_t i = 0; i < t->count; i++)
		v[i] = le32(data + 4 * i);
#endif
	while (at + CHUNK <= t->count && !chunk_has_nonfinite(v + at))
		at += CHUNK;
	for (; at < t->count; at++)
		if (!(~v[at] & 0x7f800000))
			return not_finite(at, v[at], err);
	return 0;
}

int bn_npy_read(const void *buf, size_t len, size_t max_elements,
		struct bn_tensor *ret, struct bn_error *err)
{
	struct header h = { 0 };
	const unsigned char *data;
	size_t data_len;
	struct bn_tensor t;
	enum bn_dtype dt;
	size_t size;
	bool big;
	int r;

	r = locate(buf, len, &h, &data, &data_len, err);
	if (r < 0)
		return r;
	r = parse_header(&h, err);
	if (r < 0)
		return r;
	if (descr_dtype(&h, &dt, &big) < 0) {
		bn_error_set(err, BN_E_UNSUPPORTED_DTYPE, "dtype %s%s%s is not supported: send float16, "
				"float32 or float64 ('<f2', '<f4', '<f8', or '>' for big-endian)",
				h.descr_ok ? "'" : "", h.descr_ok ? h.descr : "(structured or too long)",
				h.descr_ok ? "'" : "");
		return -ENOTSUP;
	}
	if (h.fortran) {
		bn_error_set(err, BN_E_UNSUPPORTED_DTYPE, "fortran_order True is not supported: "
				"send a C-order array (np.ascontiguousarray)");
		return -ENOTSUP;
	}
	size = bn_dtype_size(dt);
	if (h.product > SIZE_MAX / size || data_len != h.product * size) {
		bn_error_set(err, BN_E_INVALID_NPY, "invalid .npy file: %zu data bytes, but the shape "
				"needs %s%zu", data_len, h.product > SIZE_MAX / size ? "more than " : "",
				h.product > SIZE_MAX / size ? SIZE_MAX : h.product * size);
		return -EBADMSG;
	}
	r = bn_tensor_init_raw(&t, h.ndim, h.shape, max_elements, err);
	if (r < 0)
		return r;
	if (dt != BN_DTYPE_F32 || big)
		r = bn_dtype_to_f32(data, dt, big, t.count, t.data, "value", err);
	else
		r = decode_f4(&t, data, err);
	if (r < 0) {
		bn_tensor_finish(&t);
		return r;
	}
	*ret = t;
	return 0;
}

int bn_npy_write(struct bn_buf *out, const struct bn_tensor *t)
{
	char header[256];
	size_t n, pad, total;
	unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0 };

	n = (size_t)snprintf(header, sizeof(header), "{'descr': '<f4', 'fortran_order': False, 'shape': (");
	for (unsigned i = 0; i < t->rank; i++)
		n += (size_t)snprintf(header + n, sizeof(header) - n, "%s%zu", i ? ", " : "", t->shape[i]);
	n += (size_t)snprintf(header + n, sizeof(header) - n, "%s), }", t->rank == 1 ? "," : "");
	/* Pad with spaces so the data starts at a multiple of 64, as numpy does. */
	total = (sizeof(pre) + n + 1 + 63) / 64 * 64;
	pad = total - sizeof(pre) - n - 1;
	pre[8] = (unsigned char)((total - sizeof(pre)) & 0xff);
	pre[9] = (unsigned char)((total - sizeof(pre)) >> 8);
	if (t->count > (SIZE_MAX - total) / 4)
		return -E2BIG;
	if (bn_buf_reserve(out, total + t->count * 4) < 0)
		return out->err;
	bn_buf_append(out, pre, sizeof(pre));
	bn_buf_append(out, header, n);
	memset(header, ' ', pad);
	header[pad] = '\n';
	bn_buf_append(out, header, pad + 1);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	bn_buf_append(out, t->data, t->count * 4);
#else
	for (size_t i = 0; i < t->count; i++) {
		uint32_t bits;
		unsigned char le[4];

		memcpy(&bits, &t->data[i], 4);
		le[0] = bits & 0xff, le[1] = bits >> 8 & 0xff, le[2] = bits >> 16 & 0xff, le[3] = bits >> 24;
		bn_buf_append(out, le, 4);
	}
#endif
	return out->err;
}

int bn_npy_write_i64(struct bn_buf *out, int64_t v)
{
	static const char header[] = "{'descr': '<i8', 'fortran_order': False, 'shape': (), }";
	/* Prefix, header, spaces and a newline fill two 64-byte blocks, as numpy pads it. */
	unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 128 - 10, 0 };
	size_t n = sizeof(header) - 1, pad = 128 - 10 - n;
	unsigned char le[8];
	char spaces[128];

	memset(spaces, ' ', sizeof(spaces));
	spaces[pad - 1] = '\n';
	bn_buf_append(out, pre, sizeof(pre));
	bn_buf_append(out, header, n);
	bn_buf_append(out, spaces, pad);
	for (int i = 0; i < 8; i++)
		le[i] = (unsigned char)((uint64_t)v >> (8 * i));
	bn_buf_append(out, le, 8);
	return out->err;
}
