/*
 * test_safetensors.c: lib/safetensors.c and lib/dtype.c: a written file
 * reads back bit for bit, every dtype converts as IEEE says, and every
 * malformed header or layout is refused with the tensor named.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/dtype.h"
#include "bn/safetensors.h"

#define HMAX 4096
#define EMAX 16

/* A file from header text and n data bytes (all 0x3c, a harmless pattern). */
static unsigned char *make(const char *header, size_t ndata, size_t *ret_len)
{
	size_t h = strlen(header);
	unsigned char *b = malloc(8 + h + ndata + 1);

	assert(b);
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)h >> (8 * i));
	memcpy(b + 8, header, h);
	memset(b + 8 + h, 0x3c, ndata);
	*ret_len = 8 + h + ndata;
	return b;
}

/* Parsing must fail with r and code, and detail must contain part. */
static void refuse_buf(const void *b, size_t len, int r, const char *code, const char *part)
{
	struct bn_safetensors st = { .count = 99 };
	struct bn_error err = { 0 };
	int got = bn_safetensors_parse(b, len, HMAX, EMAX, &st, &err);

	if (got != r || !err.code || strcmp(err.code, code) != 0 || (part && !strstr(err.detail, part))) {
		fprintf(stderr, "got %d %s: %s\nwant %d %s: ...%s...\n", got, err.code, err.detail, r, code,
			part ? part : "");
		abort();
	}
	assert(st.count == 99);
}

static void refuse(const char *header, size_t ndata, int r, const char *code, const char *part)
{
	size_t len;
	unsigned char *b = make(header, ndata, &len);

	refuse_buf(b, len, r, code, part);
	free(b);
}

static void test_round_trip(void)
{
	const float w[3] = { 1.0f, -0.0f, 3.4028235e38f }, m[3] = { 1e-45f, 0.1f, -2.5f };
	const struct bn_st_out out[] = {
		{ .name = "layer1.0.bn1.weight", .dtype = BN_ST_F32, .rank = 1, .shape = { 3 }, .count = 3, .f32 = w },
		{ .name = "layer1.0.bn1.running_mean", .dtype = BN_ST_F32, .rank = 1, .shape = { 3 }, .count = 3, .f32 = m },
		{ .name = "layer1.0.bn1.num_batches_tracked", .dtype = BN_ST_I64, .count = 1, .i64 = 51 },
		{ .name = "odd \"name\"\\", .dtype = BN_ST_I64, .count = 1, .i64 = -7 },
	};
	const char *meta[] = { "layer1.0.bn1", "\"3-7\"" };
	struct bn_buf b;
	struct bn_safetensors st;
	struct bn_error err = { 0 };
	float v[3];
	int64_t n;

	bn_buf_init(&b, 0);
	assert(bn_safetensors_write(&b, out, 4, meta, 1) == 0);
	assert((b.data[0] | b.data[1] << 8) % 8 == 0); /* the header is padded to 8 */
	assert(bn_safetensors_parse(b.data, b.len, HMAX, EMAX, &st, &err) == 0);
	assert(st.count == 4);
	assert(strcmp(st.entries[0].name, "layer1.0.bn1.weight") == 0 && st.entries[0].rank == 1);
	assert(bn_st_floats(&st.entries[0], v, &err) == 0 && memcmp(v, w, sizeof(w)) == 0);
	assert(bn_st_floats(&st.entries[1], v, &err) == 0 && memcmp(v, m, sizeof(m)) == 0);
	assert(st.entries[2].rank == 0 && st.entries[2].count == 1);
	assert(bn_st_int64(&st.entries[2], &n, &err) == 0 && n == 51);
	assert(strcmp(st.entries[3].name, "odd \"name\"\\") == 0);
	assert(bn_st_int64(&st.entries[3], &n, &err) == 0 && n == -7);
	/* The wrong converter for a dtype is refused, naming the tensor. */
	assert(bn_st_floats(&st.entries[2], v, &err) == -ENOTSUP);
	assert(strstr(err.detail, "layer1.0.bn1.num_batches_tracked: dtype I64"));
	assert(bn_st_int64(&st.entries[0], &n, &err) == -ENOTSUP);
	bn_safetensors_finish(&st);
	/* Every truncation is refused. */
	for (size_t len = 0; len < b.len; len++) {
		struct bn_safetensors t = { .count = 99 };

		assert(bn_safetensors_parse(b.data, len, HMAX, EMAX, &t, &err) < 0 && t.count == 99);
	}
	bn_buf_finish(&b);
}

/* One tensor of dtype with these raw little-endian bytes; converts to want (or fails with r). */
static void convert(const char *dtype, const unsigned char *raw, size_t n, size_t count,
		const float *want, int r, const char *code)
{
	char header[256];
	struct bn_safetensors st;
	struct bn_error err = { 0 };
	unsigned char *b;
	float v[8];
	size_t len;

	snprintf(header, sizeof(header), "{\"t\": {\"dtype\": \"%s\", \"shape\": [%zu], \"data_offsets\": [0, %zu]}}",
		dtype, count, n);
	b = make(header, n, &len);
	memcpy(b + len - n, raw, n);
	assert(bn_safetensors_parse(b, len, HMAX, EMAX, &st, &err) == 0);
	assert(bn_st_floats(&st.entries[0], v, &err) == r);
	if (r == 0) {
		for (size_t i = 0; i < count; i++)
			assert(memcmp(&v[i], &want[i], 4) == 0);
	} else {
		assert(strcmp(err.code, code) == 0 && strstr(err.detail, "t at flat index"));
	}
	bn_safetensors_finish(&st);
	free(b);
}

static void test_dtypes(void)
{
	/* binary16: 1, -2, 65504, the smallest subnormal, -0. */
	const unsigned char f16[] = { 0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b, 0x01, 0x00, 0x00, 0x80 };
	const float f16_want[] = { 1.0f, -2.0f, 65504.0f, 5.9604645e-8f, -0.0f };
	/* bfloat16: 1, -3, 1.0078125. */
	const unsigned char bf16[] = { 0x80, 0x3f, 0x40, 0xc0, 0x81, 0x3f };
	const float bf16_want[] = { 1.0f, -3.0f, 1.0078125f };
	const unsigned char f16_inf[] = { 0x00, 0x3c, 0x00, 0x7c };
	unsigned char f64[3 * 8];
	const double d[3] = { 0.1, 1.0 + 0x1p-24, 1.0 + 0x1.8p-23 };
	const float f64_want[3] = { 0.1f, 1.0f, 1.0f + 0x1p-22f }; /* nearest, ties to even */
	unsigned char huge[8];
	const double h = 0x1.ffffffp127; /* float32's largest plus half an ulp: rounds to infinity */

	convert("F16", f16, sizeof(f16), 5, f16_want, 0, NULL);
	convert("BF16", bf16, sizeof(bf16), 3, bf16_want, 0, NULL);
	convert("F16", f16_inf, sizeof(f16_inf), 2, NULL, -EINVAL, BN_E_NOT_FINITE);
	memcpy(f64, d, sizeof(d)); /* little-endian hosts only, as CI is */
	convert("F64", f64, sizeof(f64), 3, f64_want, 0, NULL);
	memcpy(huge, &h, 8);
	convert("F64", huge, 8, 1, NULL, -EINVAL, BN_E_OUT_OF_RANGE);
	/* Every binary16 pattern: exact against the float arithmetic definition. */
	for (uint32_t u = 0; u < 0x10000; u++) {
		unsigned e = u >> 10 & 0x1f, mant = u & 0x3ff;
		float f = bn_dtype_f16_to_f32((uint16_t)u), want;

		if (e == 31) {
			assert(mant ? isnan(f) : isinf(f));
			continue;
		}
		want = e ? ldexpf(1.0f + (float)mant / 1024.0f, (int)e - 15) : ldexpf((float)mant, -24);
		want = u >> 15 ? -want : want;
		assert(memcmp(&f, &want, 4) == 0);
	}
}

static void test_refusals(void)
{
	const char *bad = BN_E_INVALID_SAFETENSORS;
	unsigned char b[16] = { 0 };

	refuse_buf(b, 7, -EBADMSG, bad, "shorter than the 8-byte header length");
	b[1] = 0x20; /* 8192 > HMAX: refused on the length alone */
	refuse_buf(b, 16, -E2BIG, BN_E_TOO_LARGE, "header is 8192 bytes, over the limit of 4096");
	b[1] = 0;
	b[0] = 9;
	refuse_buf(b, 16, -EBADMSG, bad, "header length 9 does not fit the 8 bytes");
	refuse("[]", 0, -EBADMSG, bad, "not a JSON object");
	refuse("{} x", 0, -EBADMSG, bad, "junk after");
	refuse("{}", 4, -EBADMSG, bad, "end at byte 0 of a 4-byte data buffer");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 12, -EBADMSG, bad,
		"end at byte 8 of a 12-byte");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 12]}}", 12, -EBADMSG, bad,
		"at \"a\": data_offsets span 12 bytes, but F32 of that shape takes 8");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
		"\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", 12, -EBADMSG, bad,
		"at \"b\": data_offsets begin at 8, but the previous tensor ends at 4");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
		"\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, -EBADMSG, bad,
		"previous tensor ends at 8");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
		"\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8, -EBADMSG, bad,
		"at \"a\": the name appears twice");
	refuse("{\"a\": {\"dtype\": \"F33\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, -EBADMSG, bad,
		"at \"a\": dtype \"F33\" is not one the format defines");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, -EBADMSG, bad,
		"needs dtype, shape and data_offsets");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4], \"x\": 1}}", 4, -EBADMSG,
		bad, "unexpected key \"x\"");
	refuse("{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
		-EBADMSG, bad, "repeated key \"dtype\"");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4, -EBADMSG, bad,
		"expected a non-negative integer");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [1.0], \"data_offsets\": [0, 4]}}", 4, -EBADMSG, bad,
		"fraction or exponent");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [01], \"data_offsets\": [0, 4]}}", 4, -EBADMSG, bad,
		"leading zero");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
		-EBADMSG, bad, "more than 8 integers");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4, -EBADMSG, bad,
		"begin <= end");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], "
		"\"data_offsets\": [0, 4]}}", 4, -EBADMSG, bad, "overflows");
	refuse("{\"__metadata__\": {\"k\": 1}}", 0, -EBADMSG, bad, "expected a string");
	refuse("{\"a\\ud800\": {}}", 0, -EBADMSG, bad, "bad \\u escape");
	refuse("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}", 4, -EBADMSG, bad,
		"expected ',' or '}'");
	/* More tensors than the cap, decided as they are met. */
	{
		char h[2048];
		size_t n = 0;

		n += (size_t)snprintf(h + n, sizeof(h) - n, "{");
		for (int i = 0; i <= EMAX; i++)
			n += (size_t)snprintf(h + n, sizeof(h) - n, "%s\"t%d\": {\"dtype\": \"U8\", \"shape\": [1], "
				"\"data_offsets\": [%d, %d]}", i ? ", " : "", i, i, i + 1);
		snprintf(h + n, sizeof(h) - n, "}");
		refuse(h, EMAX + 1, -E2BIG, BN_E_TOO_LARGE, "more than 16 tensors");
	}
}

static void test_accepts(void)
{
	/* Escapes, metadata, a zero-size tensor, other dtypes tiling the buffer, trailing spaces. */
	const char *h = "{\"__metadata__\": {\"format\": \"pt\"}, \"b\\u00e9\": {\"dtype\": \"U8\", \"shape\": [3], "
		"\"data_offsets\": [4, 7]}, \"e\": {\"dtype\": \"F32\", \"shape\": [0, 2], \"data_offsets\": [4, 4]}, "
		"\"a\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 4]}}    ";
	struct bn_safetensors st;
	struct bn_error err = { 0 };
	size_t len;
	unsigned char *b = make(h, 7, &len);

	assert(bn_safetensors_parse(b, len, HMAX, EMAX, &st, &err) == 0);
	assert(st.count == 3);
	assert(strcmp(st.entries[0].name, "b\xc3\xa9") == 0 && st.entries[0].data == b + len - 3);
	assert(st.entries[1].count == 0 && st.entries[1].bytes == 0);
	assert(st.entries[2].dtype == BN_ST_BF16 && st.entries[2].data == b + len - 7);
	assert(bn_st_floats(&st.entries[0], NULL, &err) == -ENOTSUP && strstr(err.detail, "dtype U8"));
	bn_safetensors_finish(&st);
	free(b);
}

int main(void)
{
	test_round_trip();
	test_dtypes();
	test_refusals();
	test_accepts();
	printf("safetensors: ok\n");
	return 0;
}
