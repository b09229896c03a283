/*
 * test_npy.c: lib/npy.c against files numpy wrote (tests/unit/npy/, from
 * generate.py) and against hand-made broken ones.
 *
 *   test_npy DIR
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/npy.h"

#define MAX ((size_t)1 << 20)

static const char *dir;

static unsigned char *load(const char *name, size_t *ret_len)
{
	char path[4096];
	unsigned char *b;
	long n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	assert(f);
	assert(fseek(f, 0, SEEK_END) == 0);
	n = ftell(f);
	assert(n > 0);
	rewind(f);
	b = malloc((size_t)n);
	assert(b && fread(b, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	*ret_len = (size_t)n;
	return b;
}

/* The values generate.py writes: i * 0.25 - 1. */
static void check_values(const struct bn_tensor *t)
{
	for (size_t i = 0; i < t->count; i++)
		assert(t->data[i] == (float)i * 0.25f - 1.0f);
}

static void read_ok(const char *name, unsigned rank, const size_t *shape)
{
	struct bn_tensor t;
	struct bn_error err = { 0 };
	unsigned char *b;
	size_t len, count = 1;

	b = load(name, &len);
	assert(bn_npy_read(b, len, MAX, &t, &err) == 0);
	assert(t.rank == rank);
	for (unsigned i = 0; i < rank; i++) {
		assert(t.shape[i] == shape[i]);
		count *= shape[i];
	}
	assert(t.count == count);
	check_values(&t);
	bn_tensor_finish(&t);
	free(b);
}

/* Two files numpy wrote must read to bitwise the same float32: ours against numpy's rounding. */
static void same_as(const char *name, const char *want)
{
	struct bn_tensor a, b;
	struct bn_error err = { 0 };
	unsigned char *x, *y;
	size_t n, m;

	x = load(name, &n);
	y = load(want, &m);
	assert(bn_npy_read(x, n, MAX, &a, &err) == 0);
	assert(bn_npy_read(y, m, MAX, &b, &err) == 0);
	assert(a.count == b.count && a.count > 1);
	assert(memcmp(a.data, b.data, a.count * sizeof(float)) == 0);
	bn_tensor_finish(&a);
	bn_tensor_finish(&b);
	free(x);
	free(y);
}

/* Reading buf must fail with r, code and exactly detail, leaving *ret alone. */
static void refuse_buf(const void *b, size_t len, size_t max, int r, const char *code, const char *detail)
{
	struct bn_tensor t = { .rank = 99 };
	struct bn_error err = { 0 };
	int got = bn_npy_read(b, len, max, &t, &err);

	if (got != r || strcmp(err.code, code) != 0 || (detail && strcmp(err.detail, detail) != 0)) {
		fprintf(stderr, "got %d %s: %s\nwant %d %s: %s\n", got, err.code, err.detail,
				r, code, detail ? detail : "(any)");
		abort();
	}
	assert(t.rank == 99 && t.data == NULL);
}

static void refuse(const char *name, size_t max, int r, const char *code, const char *detail)
{
	size_t len;
	unsigned char *b = load(name, &len);

	refuse_buf(b, len, max, r, code, detail);
	free(b);
}

static void test_numpy_files(void)
{
	read_ok("f4_2x3.npy", 2, (size_t[]){ 2, 3 });
	read_ok("f4_rank1.npy", 1, (size_t[]){ 7 });
	read_ok("f4_rank5.npy", 5, (size_t[]){ 2, 1, 3, 1, 2 });
	read_ok("f4_4x3x5.npy", 3, (size_t[]){ 4, 3, 5 });
	read_ok("f4_v2.npy", 2, (size_t[]){ 2, 3 });
	read_ok("f4_v3.npy", 2, (size_t[]){ 3, 2 });

	/* Other float dtypes and byte orders convert (values i * 0.25 - 1 are exact in all). */
	read_ok("f8.npy", 2, (size_t[]){ 2, 3 });
	read_ok("f4_big_endian.npy", 2, (size_t[]){ 2, 3 });
	read_ok("f8_big_endian.npy", 2, (size_t[]){ 2, 3 });
	read_ok("f2.npy", 2, (size_t[]){ 2, 3 });
	read_ok("f2_big_endian.npy", 2, (size_t[]){ 2, 3 });
	same_as("f8_round.npy", "f8_round_f4.npy");
	same_as("f2_odd.npy", "f2_odd_f4.npy");
	refuse("f8_huge.npy", MAX, -EINVAL, BN_E_OUT_OF_RANGE,
			"value at flat index 1: 3.40282e+38 is beyond float32");
	refuse("f2_inf.npy", MAX, -EINVAL, BN_E_NOT_FINITE,
			"value at flat index 2 is not finite (NaN or infinity)");
	refuse("i4.npy", MAX, -ENOTSUP, BN_E_UNSUPPORTED_DTYPE,
			"dtype '<i4' is not supported: send float16, float32 or float64 ('<f2', '<f4', '<f8', or '>' for big-endian)");
	refuse("structured.npy", MAX, -ENOTSUP, BN_E_UNSUPPORTED_DTYPE,
			"dtype (structured or too long) is not supported: send float16, float32 or float64 ('<f2', '<f4', '<f8', or '>' for big-endian)");
	refuse("fortran.npy", MAX, -ENOTSUP, BN_E_UNSUPPORTED_DTYPE,
			"fortran_order True is not supported: send a C-order array (np.ascontiguousarray)");
	refuse("scalar.npy", MAX, -EINVAL, BN_E_BAD_RANK,
			"expected a tensor of rank 1 to 5, got rank 0");
	refuse("rank6.npy", MAX, -EINVAL, BN_E_BAD_RANK,
			"expected a tensor of rank 1 to 5, got rank 6");
	refuse("empty.npy", MAX, -EINVAL, BN_E_EMPTY_DIMENSION, "dimension 0 is empty (size 0)");
	refuse("nan.npy", MAX, -EINVAL, BN_E_NOT_FINITE, "value at flat index 4 is not finite (nan)");
	refuse("neg_inf.npy", MAX, -EINVAL, BN_E_NOT_FINITE, "value at flat index 5 is not finite (-inf)");
	/* The cap: 60 elements. */
	refuse("f4_4x3x5.npy", 59, -E2BIG, BN_E_TOO_LARGE, "tensor has more than 59 elements");
}

/* A version 1.0 file with this header text, padded as numpy pads, and n data bytes. */
static unsigned char *make(const char *header, size_t ndata, size_t *ret_len)
{
	size_t hlen = strlen(header), total = (10 + hlen + 1 + 63) / 64 * 64;
	unsigned char *b = calloc(1, total + ndata);

	assert(b);
	memcpy(b, "\x93NUMPY\x01\x00", 8);
	b[8] = (unsigned char)((total - 10) & 0xff);
	b[9] = (unsigned char)((total - 10) >> 8);
	memset(b + 10, ' ', total - 10);
	memcpy(b + 10, header, hlen);
	b[total - 1] = '\n';
	*ret_len = total + ndata;
	return b;
}

static void header_ok(const char *header, size_t ndata, unsigned rank, size_t dim0)
{
	struct bn_tensor t;
	size_t len;
	unsigned char *b = make(header, ndata, &len);

	assert(bn_npy_read(b, len, MAX, &t, NULL) == 0);
	assert(t.rank == rank && t.shape[0] == dim0 && t.count * 4 == ndata);
	bn_tensor_finish(&t);
	free(b);
}

static void header_bad(const char *header, size_t ndata, int r, const char *code, const char *detail)
{
	size_t len;
	unsigned char *b = make(header, ndata, &len);

	refuse_buf(b, len, MAX, r, code, detail);
	free(b);
}

static void test_headers(void)
{
	/* Keys in any order, either quote, spacing, tuples with or without a trailing comma. */
	header_ok("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24, 2, 2);
	header_ok("{'shape': (3,), 'fortran_order': False, 'descr': '<f4'}", 12, 1, 3);
	header_ok("{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(2,3,)}", 24, 2, 2);
	header_ok("{ 'fortran_order' : False , 'shape' : ( 4 , 1 ) , 'descr' : '<f4' , }", 16, 2, 4);

	header_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", 12, -EBADMSG,
			BN_E_INVALID_NPY, "invalid .npy file: the header's shape is not a tuple of integers");
	header_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 0, -EBADMSG,
			BN_E_INVALID_NPY, "invalid .npy file: the header's shape is not a tuple of integers");
	header_bad("{'descr': '<f4', 'fortran_order': false, 'shape': (2,), }", 8, -EBADMSG,
			BN_E_INVALID_NPY, "invalid .npy file: the header's fortran_order is not True or False");
	header_bad("{'descr': '<f4', 'shape': (2,), }", 8, -EBADMSG, BN_E_INVALID_NPY,
			"invalid .npy file: the header lacks one of 'descr', 'fortran_order' and 'shape'");
	header_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, -EBADMSG,
			BN_E_INVALID_NPY, "invalid .npy file: unexpected or repeated key 'x' in the header");
	header_bad("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8,
			-EBADMSG, BN_E_INVALID_NPY,
			"invalid .npy file: unexpected or repeated key 'descr' in the header");
	header_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8, -EBADMSG,
			BN_E_INVALID_NPY, "invalid .npy file: junk after the header's dict");
	header_bad("['descr', '<f4']", 8, -EBADMSG, BN_E_INVALID_NPY,
			"invalid .npy file: the header is not a dict");
	header_bad("{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", 8, -EBADMSG,
			BN_E_INVALID_NPY, "invalid .npy file: expected ',' or '}' in the header");
	header_bad("{'descr': <f4, 'fortran_order': False, 'shape': (2,)}", 8, -EBADMSG,
			BN_E_INVALID_NPY, "invalid .npy file: the header's descr does not parse");
	header_bad("{descr: '<f4', 'fortran_order': False, 'shape': (2,)}", 8, -EBADMSG,
			BN_E_INVALID_NPY, "invalid .npy file: expected a quoted key and ':' in the header");
	/* Other spellings of float32 are refused too: numpy always writes '<f4'. */
	header_bad("{'descr': '=f4', 'fortran_order': False, 'shape': (2,)}", 8, -ENOTSUP,
			BN_E_UNSUPPORTED_DTYPE, "dtype '=f4' is not supported: "
			"send float16, float32 or float64 ('<f2', '<f4', '<f8', or '>' for big-endian)");
	/* Data shorter or longer than the shape says. */
	header_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20, -EBADMSG,
			BN_E_INVALID_NPY, "invalid .npy file: 20 data bytes, but the shape needs 24");
	header_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28, -EBADMSG,
			BN_E_INVALID_NPY, "invalid .npy file: 28 data bytes, but the shape needs 24");
	header_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 3)}",
			4, -EBADMSG, BN_E_INVALID_NPY, NULL);
	/* A consistent file over the cap: too large, decided before any value is copied. */
	header_bad("{'descr': '<f4', 'fortran_order': False, 'shape': (1025, 1024)}",
			1025 * 1024 * 4, -E2BIG, BN_E_TOO_LARGE, "tensor has more than 1048576 elements");
}

static void test_structure(void)
{
	size_t len;
	unsigned char *good = load("f4_2x3.npy", &len), *b = malloc(len + 1);

	assert(b);
	/* Every truncation is refused as a broken file. */
	for (size_t n = 0; n < len; n++)
		refuse_buf(good, n, MAX, -EBADMSG, BN_E_INVALID_NPY, NULL);
	refuse_buf(good, 5, MAX, -EBADMSG, BN_E_INVALID_NPY,
			"invalid .npy file: it does not start with \\x93NUMPY");
	memcpy(b, good, len);
	b[len] = 0;
	refuse_buf(b, len + 1, MAX, -EBADMSG, BN_E_INVALID_NPY,
			"invalid .npy file: 25 data bytes, but the shape needs 24");
	b[0] = 0x92;
	refuse_buf(b, len, MAX, -EBADMSG, BN_E_INVALID_NPY,
			"invalid .npy file: it does not start with \\x93NUMPY");
	memcpy(b, good, len);
	b[6] = 4;
	refuse_buf(b, len, MAX, -EBADMSG, BN_E_INVALID_NPY,
			"invalid .npy file: format version 4.0 is not 1.0, 2.0 or 3.0");
	b[6] = 1;
	b[7] = 1;
	refuse_buf(b, len, MAX, -EBADMSG, BN_E_INVALID_NPY,
			"invalid .npy file: format version 1.1 is not 1.0, 2.0 or 3.0");
	memcpy(b, good, len);
	b[8] = 0xff;
	b[9] = 0xff;
	refuse_buf(b, len, MAX, -EBADMSG, BN_E_INVALID_NPY,
			"invalid .npy file: header length 65535 runs past the end of the file (152 bytes)");
	memcpy(b, good, len);
	b[127] = ' ';
	refuse_buf(b, len, MAX, -EBADMSG, BN_E_INVALID_NPY,
			"invalid .npy file: the header does not end with a newline");
	free(b);
	free(good);
}

static void test_write(void)
{
	static const size_t shapes[][6] = {
		/* rank, dims */
		{ 1, 7 }, { 2, 2, 3 }, { 3, 4, 3, 5 }, { 5, 2, 1, 3, 1, 2 }, { 2, 1000, 1 },
	};

	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		struct bn_tensor t, back;
		struct bn_buf out;
		size_t hlen;

		assert(bn_tensor_init(&t, (unsigned)shapes[s][0], &shapes[s][1], MAX, NULL) == 0);
		for (size_t i = 0; i < t.count; i++)
			t.data[i] = (float)i * 0.25f - 1.0f;
		bn_buf_init(&out, 0);
		assert(bn_npy_write(&out, &t) == 0);
		/* Version 1.0, the data 64-byte aligned after a header ending in '\n'. */
		assert(memcmp(out.data, "\x93NUMPY\x01\x00", 8) == 0);
		hlen = (size_t)((unsigned char)out.data[8] | (unsigned char)out.data[9] << 8);
		assert((10 + hlen) % 64 == 0 && out.data[10 + hlen - 1] == '\n');
		assert(out.len == 10 + hlen + t.count * 4);
		assert(bn_npy_read(out.data, out.len, MAX, &back, NULL) == 0);
		assert(back.rank == t.rank && memcmp(back.shape, t.shape, sizeof(t.shape)) == 0);
		assert(memcmp(back.data, t.data, t.count * 4) == 0);
		bn_tensor_finish(&back);
		bn_tensor_finish(&t);
		bn_buf_finish(&out);
	}
	/* What numpy 1.24 wrote for the same array, byte for byte. */
	const char *same[] = { "f4_2x3.npy", "f4_4x3x5.npy" };
	for (size_t i = 0; i < 2; i++) {
		struct bn_tensor t;
		struct bn_buf out;
		size_t len;
		unsigned char *b = load(same[i], &len);

		assert(bn_npy_read(b, len, MAX, &t, NULL) == 0);
		bn_buf_init(&out, 0);
		assert(bn_npy_write(&out, &t) == 0);
		assert(out.len == len && memcmp(out.data, b, len) == 0);
		bn_buf_finish(&out);
		bn_tensor_finish(&t);
		free(b);
	}
	/* The buffer's cap holds. */
	{
		struct bn_tensor t;
		struct bn_buf out;

		assert(bn_tensor_init(&t, 2, (size_t[]){ 10, 10 }, MAX, NULL) == 0);
		bn_buf_init(&out, 100);
		assert(bn_npy_write(&out, &t) == -E2BIG && out.err == -E2BIG);
		bn_buf_finish(&out);
		bn_tensor_finish(&t);
	}
}

int main(int argc, char **argv)
{
	assert(argc == 2);
	dir = argv[1];
	test_numpy_files();
	test_headers();
	test_structure();
	test_write();
	return 0;
}
