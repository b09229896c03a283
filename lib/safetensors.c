/*
 * safetensors.c: the safetensors format, in memory (bn/safetensors.h).
 *
 * The header is read by a small parser that knows the one shape of JSON the
 * format uses (an object of tensor objects and an optional __metadata__
 * object of strings), so any other JSON in the header is refused as a bad
 * file rather than ignored. Offsets are then checked against the data
 * buffer: sorted by start, each tensor must begin where the last ended, and
 * the last must end at the buffer's end, as the reference implementation
 * demands.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/dtype.h"
#include "bn/safetensors.h"

static const struct {
	const char *name;
	size_t size;
} dtypes[] = {
	[BN_ST_F32] = { "F32", 4 }, [BN_ST_F64] = { "F64", 8 }, [BN_ST_F16] = { "F16", 2 },
	[BN_ST_BF16] = { "BF16", 2 }, [BN_ST_I64] = { "I64", 8 }, [BN_ST_BOOL] = { "BOOL", 1 },
	[BN_ST_U8] = { "U8", 1 }, [BN_ST_I8] = { "I8", 1 }, [BN_ST_F8_E5M2] = { "F8_E5M2", 1 },
	[BN_ST_F8_E4M3] = { "F8_E4M3", 1 }, [BN_ST_I16] = { "I16", 2 }, [BN_ST_U16] = { "U16", 2 },
	[BN_ST_I32] = { "I32", 4 }, [BN_ST_U32] = { "U32", 4 }, [BN_ST_U64] = { "U64", 8 },
};
#define N_DTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

/* The header parser: a cursor, and where the current tensor's name is for messages. */
struct hp {
	const char *p, *end;
	const char *what;
	struct bn_error *err;
};

const char *bn_st_dtype_name(enum bn_st_dtype dt)
{
	return (size_t)dt < N_DTYPES ? dtypes[dt].name : "?";
}

__attribute__((format(printf, 2, 3)))
static int bad(struct hp *h, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	bn_error_set(h->err, BN_E_INVALID_SAFETENSORS, "invalid safetensors header%s%.80s%s: %s",
		h->what ? " at \"" : "", h->what ? h->what : "", h->what ? "\"" : "", msg);
	return -EBADMSG;
}

static void ws(struct hp *h)
{
	while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
		h->p++;
}

static bool eat(struct hp *h, char c)
{
	ws(h);
	if (h->p < h->end && *h->p == c) {
		h->p++;
		return true;
	}
	return false;
}

/* Four hex digits. */
static int hex4(struct hp *h, unsigned *ret)
{
	unsigned v = 0;

	if (h->end - h->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = *h->p++;

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*ret = v;
	return 0;
}

/* Append code point cp as UTF-8 to s at *n (s has room for 4 more). */
static void utf8(char *s, size_t *n, unsigned cp)
{
	if (cp < 0x80) {
		s[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		s[(*n)++] = (char)(0xc0 | cp >> 6);
		s[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		s[(*n)++] = (char)(0xe0 | cp >> 12);
		s[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
		s[(*n)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		s[(*n)++] = (char)(0xf0 | cp >> 18);
		s[(*n)++] = (char)(0x80 | (cp >> 12 & 0x3f));
		s[(*n)++] = (char)(0x80 | (cp >> 6 & 0x3f));
		s[(*n)++] = (char)(0x80 | (cp & 0x3f));
	}
}

/* A \u escape (after the 'u'), with a surrogate pair's second half. */
static int escape_u(struct hp *h, unsigned *ret)
{
	unsigned cp, lo;

	if (hex4(h, &cp) < 0)
		return -1;
	if (cp >= 0xdc00 && cp < 0xe000)
		return -1;
	if (cp >= 0xd800 && cp < 0xdc00) {
		if (h->end - h->p < 2 || h->p[0] != '\\' || h->p[1] != 'u')
			return -1;
		h->p += 2;
		if (hex4(h, &lo) < 0 || lo < 0xdc00 || lo >= 0xe000)
			return -1;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	*ret = cp;
	return 0;
}

/* A JSON string of at most BN_ST_NAME_MAX bytes into a new NUL-terminated *ret. */
static int string(struct hp *h, char **ret)
{
	char s[BN_ST_NAME_MAX + 4];
	size_t n = 0;

	if (!eat(h, '"'))
		return bad(h, "expected a string");
	while (h->p < h->end && *h->p != '"') {
		unsigned char c = (unsigned char)*h->p++;
		unsigned cp;

		if (n >= BN_ST_NAME_MAX)
			return bad(h, "a string is longer than %d bytes", BN_ST_NAME_MAX);
		if (c < 0x20)
			return bad(h, "a control character in a string");
		if (c != '\\') {
			s[n++] = (char)c;
			continue;
		}
		if (h->p == h->end)
			break;
		c = (unsigned char)*h->p++;
		switch (c) {
		case '"': case '\\': case '/': s[n++] = (char)c; break;
		case 'b': s[n++] = '\b'; break;
		case 'f': s[n++] = '\f'; break;
		case 'n': s[n++] = '\n'; break;
		case 'r': s[n++] = '\r'; break;
		case 't': s[n++] = '\t'; break;
		case 'u':
			if (escape_u(h, &cp) < 0 || cp == 0)
				return bad(h, "a bad \\u escape in a string");
			utf8(s, &n, cp);
			break;
		default:
			return bad(h, "a bad escape in a string");
		}
	}
	if (h->p == h->end)
		return bad(h, "a string does not end");
	h->p++;
	*ret = malloc(n + 1);
	if (!*ret) {
		bn_error_set(h->err, BN_E_NO_MEMORY, "out of memory");
		return -ENOMEM;
	}
	memcpy(*ret, s, n);
	(*ret)[n] = '\0';
	return 0;
}

/* A non-negative JSON integer (no sign, fraction, exponent or leading zero). */
static int integer(struct hp *h, size_t *ret)
{
	size_t v = 0;

	ws(h);
	if (h->p == h->end || *h->p < '0' || *h->p > '9')
		return bad(h, "expected a non-negative integer");
	if (*h->p == '0' && h->end - h->p > 1 && h->p[1] >= '0' && h->p[1] <= '9')
		return bad(h, "an integer with a leading zero");
	for (; h->p < h->end && *h->p >= '0' && *h->p <= '9'; h->p++) {
		if (v > (SIZE_MAX - 9) / 10)
			return bad(h, "an integer is too large");
		v = v * 10 + (size_t)(*h->p - '0');
	}
	if (h->p < h->end && (*h->p == '.' || *h->p == 'e' || *h->p == 'E'))
		return bad(h, "expected an integer, got a fraction or exponent");
	*ret = v;
	return 0;
}

/* [a, b, ...] of at most max integers. */
static int integers(struct hp *h, size_t *out, size_t max, unsigned *ret_n)
{
	unsigned n = 0;
	int rc;

	if (!eat(h, '['))
		return bad(h, "expected an array of integers");
	if (eat(h, ']')) {
		*ret_n = 0;
		return 0;
	}
	do {
		if (n >= max)
			return bad(h, "an array has more than %zu integers", max);
		rc = integer(h, &out[n++]);
		if (rc < 0)
			return rc;
	} while (eat(h, ','));
	if (!eat(h, ']'))
		return bad(h, "expected ',' or ']' in an array");
	*ret_n = n;
	return 0;
}

static int dtype_named(struct hp *h, const char *s, enum bn_st_dtype *ret)
{
	for (size_t i = 0; i < N_DTYPES; i++) {
		if (strcmp(s, dtypes[i].name) == 0) {
			*ret = (enum bn_st_dtype)i;
			return 0;
		}
	}
	return bad(h, "dtype \"%.16s\" is not one the format defines", s);
}

/* One field of a tensor's object, by its key. seen: bit per field. */
static int field(struct hp *h, const char *key, struct bn_st_entry *e, size_t off[2], unsigned *seen)
{
	unsigned n, bit = strcmp(key, "dtype") == 0 ? 1 : strcmp(key, "shape") == 0 ? 2 :
		strcmp(key, "data_offsets") == 0 ? 4 : 0;
	char *s;
	int rc;

	if (!bit)
		return bad(h, "unexpected key \"%.32s\" (a tensor has dtype, shape, data_offsets)", key);
	if (*seen & bit)
		return bad(h, "repeated key \"%s\"", key);
	*seen |= bit;
	if (bit == 1) {
		rc = string(h, &s);
		if (rc < 0)
			return rc;
		rc = dtype_named(h, s, &e->dtype);
		free(s);
		return rc;
	}
	if (bit == 2) {
		rc = integers(h, e->shape, BN_ST_RANK_MAX, &e->rank);
		return rc;
	}
	rc = integers(h, off, 2, &n);
	if (rc == 0 && (n != 2 || off[1] < off[0]))
		return bad(h, "data_offsets must be [begin, end] with begin <= end");
	return rc;
}

/* A tensor's {"dtype", "shape", "data_offsets"}, then its size. */
static int tensor(struct hp *h, struct bn_st_entry *e, size_t off[2])
{
	unsigned seen = 0;
	char *key;
	int rc;

	if (!eat(h, '{'))
		return bad(h, "a tensor must be an object");
	do {
		rc = string(h, &key);
		if (rc < 0)
			return rc;
		rc = eat(h, ':') ? field(h, key, e, off, &seen) : bad(h, "expected ':'");
		free(key);
		if (rc < 0)
			return rc;
	} while (eat(h, ','));
	if (!eat(h, '}'))
		return bad(h, "expected ',' or '}' in a tensor");
	if (seen != 7)
		return bad(h, "a tensor needs dtype, shape and data_offsets");
	e->count = 1;
	for (unsigned i = 0; i < e->rank; i++) {
		if (e->shape[i] && e->count > SIZE_MAX / e->shape[i])
			return bad(h, "the shape's element count overflows");
		e->count *= e->shape[i];
	}
	if (e->count > SIZE_MAX / dtypes[e->dtype].size)
		return bad(h, "the shape's byte count overflows");
	e->bytes = e->count * dtypes[e->dtype].size;
	if (off[1] - off[0] != e->bytes)
		return bad(h, "data_offsets span %zu bytes, but %s of that shape takes %zu",
			off[1] - off[0], dtypes[e->dtype].name, e->bytes);
	return 0;
}

/* The __metadata__ object: string values only, as the format says. */
static int metadata(struct hp *h)
{
	char *s;
	int rc;

	if (!eat(h, '{'))
		return bad(h, "__metadata__ must be an object of strings");
	if (eat(h, '}'))
		return 0;
	do {
		for (int i = 0; i < 2; i++) {
			rc = string(h, &s);
			if (rc < 0)
				return rc;
			free(s);
			if (i == 0 && !eat(h, ':'))
				return bad(h, "expected ':' in __metadata__");
		}
	} while (eat(h, ','));
	return eat(h, '}') ? 0 : bad(h, "expected ',' or '}' in __metadata__");
}

static int cmp_offset(const void *a, const void *b)
{
	const size_t *x = a, *y = b;

	return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1];
}

static int cmp_name(const void *a, const void *b)
{
	const struct bn_st_entry *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* Every tensor tiles the data buffer exactly, and no name repeats. off: (begin, end, index) triples. */
static int check_layout(struct hp *h, struct bn_safetensors *st, size_t *off, size_t data_len)
{
	const struct bn_st_entry **by_name;
	size_t at = 0;
	int rc = 0;

	if (st->count)
		qsort(off, st->count, 3 * sizeof(*off), cmp_offset);
	for (size_t i = 0; i < st->count; i++) {
		h->what = st->entries[off[3 * i + 2]].name;
		if (off[3 * i] != at)
			return bad(h, "data_offsets begin at %zu, but the previous tensor ends at %zu "
				"(tensors must tile the data buffer)", off[3 * i], at);
		at = off[3 * i + 1];
	}
	h->what = NULL;
	if (at != data_len)
		return bad(h, "the tensors end at byte %zu of a %zu-byte data buffer", at, data_len);
	by_name = malloc((st->count ? st->count : 1) * sizeof(*by_name));
	if (!by_name) {
		bn_error_set(h->err, BN_E_NO_MEMORY, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < st->count; i++)
		by_name[i] = &st->entries[i];
	qsort(by_name, st->count, sizeof(*by_name), cmp_name);
	for (size_t i = 1; i < st->count && rc == 0; i++) {
		if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0) {
			h->what = by_name[i]->name;
			rc = bad(h, "the name appears twice");
		}
	}
	free(by_name);
	return rc;
}

/* One "name": {...} member of the header into a new entry of st. */
static int member(struct hp *h, struct bn_safetensors *st, size_t **off, size_t *cap, size_t max_entries)
{
	struct bn_st_entry *e;
	size_t o[2] = { 0, 0 };
	char *name;
	int rc;

	rc = string(h, &name);
	if (rc < 0)
		return rc;
	h->what = name;
	if (!eat(h, ':')) {
		rc = bad(h, "expected ':'");
	} else if (strcmp(name, "__metadata__") == 0) {
		rc = metadata(h);
	} else if (st->count >= max_entries) {
		bn_error_set(h->err, BN_E_TOO_LARGE, "the safetensors header holds more than %zu tensors",
			max_entries);
		rc = -E2BIG;
	} else {
		if (st->count == *cap) {
			size_t n = *cap ? *cap * 2 : 16;
			struct bn_st_entry *v = realloc(st->entries, n * sizeof(*v));
			size_t *w = v ? realloc(*off, n * 3 * sizeof(*w)) : NULL;

			if (v)
				st->entries = v;
			if (!w) {
				free(name);
				bn_error_set(h->err, BN_E_NO_MEMORY, "out of memory");
				return -ENOMEM;
			}
			*off = w;
			*cap = n;
		}
		e = &st->entries[st->count];
		memset(e, 0, sizeof(*e));
		rc = tensor(h, e, o);
		if (rc == 0) {
			e->name = name;
			(*off)[3 * st->count] = o[0];
			(*off)[3 * st->count + 1] = o[1];
			(*off)[3 * st->count + 2] = st->count;
			st->count++;
			h->what = NULL;
			return 0;
		}
	}
	h->what = NULL;
	free(name);
	return rc;
}

int bn_safetensors_parse(const void *buf, size_t len, size_t max_header, size_t max_entries,
		struct bn_safetensors *ret, struct bn_error *err)
{
	const unsigned char *b = buf;
	struct bn_safetensors st = { 0 };
	struct hp h = { .err = err };
	size_t *off = NULL, cap = 0;
	uint64_t n = 0;
	int rc;

	if (len < 8) {
		bn_error_set(err, BN_E_INVALID_SAFETENSORS, "invalid safetensors file: %zu bytes is shorter "
			"than the 8-byte header length", len);
		return -EBADMSG;
	}
	for (int i = 0; i < 8; i++)
		n |= (uint64_t)b[i] << (8 * i);
	if (n > max_header) {
		bn_error_set(err, BN_E_TOO_LARGE, "the safetensors header is %llu bytes, over the limit of %zu",
			(unsigned long long)n, max_header);
		return -E2BIG;
	}
	if (n > len - 8 || n < 2) {
		bn_error_set(err, BN_E_INVALID_SAFETENSORS, "invalid safetensors file: header length %llu "
			"does not fit the %zu bytes after it", (unsigned long long)n, len - 8);
		return -EBADMSG;
	}
	h.p = (const char *)b + 8;
	h.end = h.p + n;
	if (!eat(&h, '{')) {
		rc = bad(&h, "the header is not a JSON object");
		goto out;
	}
	if (!eat(&h, '}')) {
		do {
			rc = member(&h, &st, &off, &cap, max_entries);
			if (rc < 0)
				goto out;
		} while (eat(&h, ','));
		if (!eat(&h, '}')) {
			rc = bad(&h, "expected ',' or '}' after a tensor");
			goto out;
		}
	}
	ws(&h);
	if (h.p != h.end) {
		rc = bad(&h, "junk after the header's object");
		goto out;
	}
	rc = check_layout(&h, &st, off, len - 8 - (size_t)n);
out:
	/* off is sorted by begin now; its third column says whose offset each is. */
	if (rc == 0) {
		for (size_t i = 0; i < st.count; i++)
			st.entries[off[3 * i + 2]].data = b + 8 + n + off[3 * i];
	}
	free(off);
	if (rc < 0) {
		bn_safetensors_finish(&st);
		return rc;
	}
	*ret = st;
	return 0;
}

void bn_safetensors_finish(struct bn_safetensors *st)
{
	for (size_t i = 0; i < st->count; i++)
		free(st->entries[i].name);
	free(st->entries);
	st->entries = NULL;
	st->count = 0;
}

int bn_st_floats(const struct bn_st_entry *e, float *out, struct bn_error *err)
{
	enum bn_dtype dt;

	switch (e->dtype) {
	case BN_ST_F32: dt = BN_DTYPE_F32; break;
	case BN_ST_F64: dt = BN_DTYPE_F64; break;
	case BN_ST_F16: dt = BN_DTYPE_F16; break;
	case BN_ST_BF16: dt = BN_DTYPE_BF16; break;
	default:
		bn_error_set(err, BN_E_UNSUPPORTED_DTYPE, "%.100s: dtype %s is not supported here: "
			"send F32, F64, F16 or BF16", e->name, dtypes[e->dtype].name);
		return -ENOTSUP;
	}
	return bn_dtype_to_f32(e->data, dt, false, e->count, out, e->name, err);
}

int bn_st_int64(const struct bn_st_entry *e, int64_t *ret, struct bn_error *err)
{
	uint64_t v = 0;

	if (e->dtype != BN_ST_I64) {
		bn_error_set(err, BN_E_UNSUPPORTED_DTYPE, "%.100s: dtype %s is not supported here: send I64",
			e->name, dtypes[e->dtype].name);
		return -ENOTSUP;
	}
	if (e->count != 1 || e->rank > 1) {
		bn_error_set(err, BN_E_SHAPE_MISMATCH, "%.100s: expected one value (shape [] or [1]), "
			"got %zu", e->name, e->count);
		return -EINVAL;
	}
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)e->data[i] << (8 * i);
	*ret = (int64_t)v;
	return 0;
}

/* Append "name" as a JSON string (names here are printable; escape what JSON needs). */
static void put_string(struct bn_buf *out, const char *s)
{
	bn_buf_puts(out, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			bn_buf_printf(out, "\\%c", c);
		else if (c < 0x20)
			bn_buf_printf(out, "\\u%04x", c);
		else
			bn_buf_append(out, s, 1);
	}
	bn_buf_puts(out, "\"");
}

static void put_le(struct bn_buf *out, uint64_t v, size_t n)
{
	unsigned char b[8];

	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	bn_buf_append(out, b, n);
}

int bn_safetensors_write(struct bn_buf *out, const struct bn_st_out *t, size_t n,
		const char *const *meta, size_t n_meta)
{
	struct bn_buf hdr;
	size_t at = 0;

	bn_buf_init(&hdr, 0);
	bn_buf_puts(&hdr, "{");
	for (size_t i = 0; i < n; i++) {
		size_t bytes = t[i].dtype == BN_ST_I64 ? 8 : t[i].count * 4;

		bn_buf_puts(&hdr, i ? "," : "");
		put_string(&hdr, t[i].name);
		bn_buf_printf(&hdr, ":{\"dtype\":\"%s\",\"shape\":[", t[i].dtype == BN_ST_I64 ? "I64" : "F32");
		for (unsigned d = 0; d < t[i].rank; d++)
			bn_buf_printf(&hdr, "%s%zu", d ? "," : "", t[i].shape[d]);
		bn_buf_printf(&hdr, "],\"data_offsets\":[%zu,%zu]}", at, at + bytes);
		at += bytes;
	}
	for (size_t i = 0; i < n_meta; i++) {
		bn_buf_puts(&hdr, i ? "," : n ? ",\"__metadata__\":{" : "\"__metadata__\":{");
		put_string(&hdr, meta[2 * i]);
		bn_buf_puts(&hdr, ":");
		put_string(&hdr, meta[2 * i + 1]);
	}
	bn_buf_puts(&hdr, n_meta ? "}}" : "}");
	while (hdr.len % 8)
		bn_buf_puts(&hdr, " ");
	if (hdr.err) {
		bn_buf_finish(&hdr);
		return -ENOMEM;
	}
	put_le(out, hdr.len, 8);
	bn_buf_append(out, hdr.data, hdr.len);
	bn_buf_finish(&hdr);
	for (size_t i = 0; i < n; i++) {
		if (t[i].dtype == BN_ST_I64) {
			put_le(out, (uint64_t)t[i].i64, 8);
			continue;
		}
		for (size_t k = 0; k < t[i].count; k++) {
			uint32_t u;

			memcpy(&u, &t[i].f32[k], 4);
			put_le(out, u, 4);
		}
	}
	return out->err;
}
