/*
 * codec_bench.c: how fast the JSON and .npy tensor codecs go.
 *
 *   codec_bench [MiB]     (default 64)
 *
 * Builds a body of about MiB mebibytes of nested arrays in two spellings,
 * the float32-shortest one batchnormd writes and the 17-digit one Python
 * gives for x.tolist() of a float32 tensor, then times parsing each, writing
 * the tensor back as JSON, and reading and writing it as .npy. Prints MB/s
 * (10^6 bytes of JSON text per second) and values per second; best of 3.
 */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bn/json.h"
#include "bn/npy.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t state = 0x9e3779b97f4a7c15ull;

/* Values like a BatchNorm input: roughly normal, around zero. */
static float sample(void)
{
	float s = 0;

	for (int i = 0; i < 4; i++) {
		state ^= state << 13;
		state ^= state >> 7;
		state ^= state << 17;
		s += (float)(state >> 40) / (float)(1 << 24);
	}
	return (s - 2.0f) * 1.7f;
}

static void report(const char *what, double secs, size_t bytes, size_t values)
{
	printf("%-34s %8.1f ms %9.1f MB/s %8.1f M values/s\n", what, secs * 1e3,
			(double)bytes / secs / 1e6, (double)values / secs / 1e6);
}

static void bench_parse(const char *what, const char *body, size_t len, size_t count)
{
	double best = 1e9;

	for (int rep = 0; rep < 3; rep++) {
		struct bn_tensor t;
		enum bn_tensor_form form;
		struct bn_error err;
		double t0 = now();

		if (bn_json_input_parse(body, len, (size_t)1 << 30, &t, &form, &err) != 0) {
			fprintf(stderr, "%s: %s\n", what, err.detail);
			exit(1);
		}
		double dt = now() - t0;
		if (dt < best)
			best = dt;
		if (t.count != count)
			exit(1);
		bn_tensor_finish(&t);
	}
	report(what, best, len, count);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
	size_t c = 64, hw = 32 * 32, n, count;
	struct bn_tensor t;
	struct bn_buf out, py;
	double best = 1e9;

	/* About 11 bytes per value in the short spelling. */
	n = mib * 1024 * 1024 / (11 * c * hw) + 1;
	if (bn_tensor_init(&t, 4, (size_t[]){ n, c, 32, 32 }, (size_t)1 << 30, NULL) != 0)
		return 1;
	count = t.count;
	for (size_t i = 0; i < count; i++)
		t.data[i] = sample();

	for (int rep = 0; rep < 3; rep++) {
		double t0;

		bn_buf_init(&out, 0);
		bn_buf_puts(&out, "{\"input\": ");
		t0 = now();
		bn_json_tensor_write(&out, &t, BN_FORM_NESTED);
		double dt = now() - t0;
		if (dt < best)
			best = dt;
		bn_buf_puts(&out, "}");
		if (rep < 2)
			bn_buf_finish(&out);
	}
	printf("tensor [%zu, %zu, 32, 32]: %zu values\n", n, c, count);
	report("write JSON (shortest float32)", best, out.len, count);
	bench_parse("parse JSON (shortest float32)", out.data, out.len, count);

	/* The same tensor as Python's json.dumps(x.tolist()) spells it. */
	bn_buf_init(&py, 0);
	bn_buf_puts(&py, "{\"input\": ");
	bn_buf_printf(&py, "[");
	for (size_t i = 0; i < count; i++) {
		size_t row = t.shape[3], plane = row * t.shape[2], chan = plane * t.shape[1];

		if (i % chan == 0)
			bn_buf_puts(&py, i ? "]]], [[[" : "[[[");
		else if (i % plane == 0)
			bn_buf_puts(&py, "]], [[");
		else if (i % row == 0)
			bn_buf_puts(&py, "], [");
		else
			bn_buf_puts(&py, ", ");
		bn_buf_printf(&py, "%.17g", (double)t.data[i]);
	}
	bn_buf_puts(&py, "]]]]}");
	bench_parse("parse JSON (17-digit, x.tolist())", py.data, py.len, count);
	bn_buf_finish(&py);
	bn_buf_finish(&out);

	best = 1e9;
	for (int rep = 0; rep < 3; rep++) {
		struct bn_tensor back;
		double t0;

		bn_buf_init(&out, 0);
		bn_npy_write(&out, &t);
		t0 = now();
		if (bn_npy_read(out.data, out.len, (size_t)1 << 30, &back, NULL) != 0)
			return 1;
		double dt = now() - t0;
		if (dt < best)
			best = dt;
		bn_tensor_finish(&back);
		bn_buf_finish(&out);
	}
	report("read .npy", best, count * 4, count);

	best = 1e9;
	for (int rep = 0; rep < 3; rep++) {
		double t0 = now();

		bn_buf_init(&out, 0);
		if (bn_npy_write(&out, &t) != 0)
			return 1;
		double dt = now() - t0;
		if (dt < best)
			best = dt;
		bn_buf_finish(&out);
	}
	report("write .npy", best, count * 4, count);
	bn_tensor_finish(&t);
	return 0;
}
