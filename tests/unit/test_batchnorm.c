/*
 * test_batchnorm.c: lib/batchnorm.c's checks, messages, error paths and
 * state handling. The numbers themselves are checked against PyTorch by
 * test_golden.c.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/batchnorm.h"

#define MAX_ELEMENTS ((size_t)1 << 20)

static void tensor(struct bn_tensor *t, unsigned rank, const size_t *shape, const float *data)
{
	assert(bn_tensor_init(t, rank, shape, MAX_ELEMENTS, NULL) == 0);
	if (data)
		memcpy(t->data, data, t->count * sizeof(float));
}

static bool floats_equal(const float *a, const float *b, size_t n)
{
	if (!a || !b)
		return a == b;
	return memcmp(a, b, n * sizeof(float)) == 0;
}

static bool state_equal(const struct bn_state *a, const struct bn_state *b)
{
	size_t n = a->num_features;

	return a->num_features == b->num_features &&
		a->num_batches_tracked == b->num_batches_tracked &&
		floats_equal(a->weight, b->weight, n) && floats_equal(a->bias, b->bias, n) &&
		floats_equal(a->running_mean, b->running_mean, n) &&
		floats_equal(a->running_var, b->running_var, n);
}

static void expect_error(int r, int want_r, const struct bn_error *err,
		const char *code, const char *detail)
{
	if (r != want_r || strcmp(err->code, code) != 0 ||
			(detail && strcmp(err->detail, detail) != 0)) {
		fprintf(stderr, "got %d %s \"%s\", want %d %s \"%s\"\n", r, err->code,
				err->detail, want_r, code, detail ? detail : "(any)");
		abort();
	}
}

static void test_config(void)
{
	struct bn_config cfg, bad;
	struct bn_error err = { 0 };

	bn_config_default(&cfg, 3);
	assert(cfg.num_features == 3 && cfg.eps == 1e-5 && cfg.momentum == 0.1);
	assert(!cfg.cumulative && cfg.affine && cfg.track_running_stats);
	assert(bn_config_check(&cfg, 3, &err) == 0);

	bad = cfg;
	bad.num_features = 0;
	expect_error(bn_config_check(&bad, 8, &err), -EINVAL, &err, BN_E_INVALID_CONFIG, NULL);
	assert(strstr(err.detail, "num_features"));
	bad.num_features = 9;
	expect_error(bn_config_check(&bad, 8, &err), -EINVAL, &err, BN_E_INVALID_CONFIG, NULL);

	const double bad_eps[] = { 0, -1e-5, NAN, INFINITY };
	for (size_t i = 0; i < sizeof(bad_eps) / sizeof(bad_eps[0]); i++) {
		bad = cfg;
		bad.eps = bad_eps[i];
		expect_error(bn_config_check(&bad, 8, &err), -EINVAL, &err, BN_E_INVALID_CONFIG, NULL);
		assert(strstr(err.detail, "eps"));
	}
	const double bad_momentum[] = { -0.1, 1.0000001, NAN, INFINITY };
	for (size_t i = 0; i < sizeof(bad_momentum) / sizeof(bad_momentum[0]); i++) {
		bad = cfg;
		bad.momentum = bad_momentum[i];
		expect_error(bn_config_check(&bad, 8, &err), -EINVAL, &err, BN_E_INVALID_CONFIG, NULL);
		assert(strstr(err.detail, "momentum"));
		/* Cumulative ignores the momentum field. */
		bad.cumulative = true;
		assert(bn_config_check(&bad, 8, &err) == 0);
	}
	bad = cfg;
	bad.momentum = 0;
	assert(bn_config_check(&bad, 8, NULL) == 0);
	bad.momentum = 1;
	assert(bn_config_check(&bad, 8, NULL) == 0);
	/* A NULL err is allowed on failure too. */
	bad.eps = 0;
	assert(bn_config_check(&bad, 8, NULL) == -EINVAL);
}

static void test_state(void)
{
	struct bn_config cfg;
	struct bn_state s, copy, zero = { 0 };

	bn_config_default(&cfg, 4);
	assert(bn_state_init(&s, &cfg) == 0);
	assert(s.num_features == 4 && s.num_batches_tracked == 0);
	for (size_t c = 0; c < 4; c++)
		assert(s.weight[c] == 1 && s.bias[c] == 0 &&
				s.running_mean[c] == 0 && s.running_var[c] == 1);

	s.weight[1] = 2.5f;
	s.running_mean[2] = -3;
	s.running_var[3] = 7;
	s.num_batches_tracked = 12;
	assert(bn_state_copy(&copy, &s) == 0);
	assert(state_equal(&copy, &s));
	assert(copy.weight != s.weight && copy.running_var != s.running_var);
	copy.weight[1] = 9;
	assert(s.weight[1] == 2.5f);

	bn_state_reset_running_stats(&s);
	assert(s.num_batches_tracked == 0 && s.weight[1] == 2.5f);
	for (size_t c = 0; c < 4; c++)
		assert(s.running_mean[c] == 0 && s.running_var[c] == 1);
	bn_state_finish(&s);
	assert(!s.weight && !s.running_mean && s.num_features == 0);
	bn_state_finish(&s); /* twice is fine */
	bn_state_finish(&copy);
	bn_state_finish(&zero);

	/* Arrays a config does not have stay NULL, also through copy and reset. */
	cfg.affine = false;
	cfg.track_running_stats = false;
	assert(bn_state_init(&s, &cfg) == 0);
	assert(!s.weight && !s.bias && !s.running_mean && !s.running_var);
	assert(bn_state_copy(&copy, &s) == 0);
	assert(!copy.weight && !copy.running_var && copy.num_features == 4);
	bn_state_reset_running_stats(&copy);
	bn_state_finish(&copy);
	bn_state_finish(&s);
}

static void test_input_check(void)
{
	struct bn_config cfg;
	struct bn_error err = { 0 };
	struct bn_tensor x;
	struct bn_tensor rank6 = { .rank = 6 };

	bn_config_default(&cfg, 3);
	expect_error(bn_input_check(&cfg, &rank6, true, &err), -EINVAL, &err,
			BN_E_BAD_RANK, "expected 2D to 5D input (got 6D input)");

	tensor(&x, 1, (size_t[]){ 3 }, NULL);
	expect_error(bn_input_check(&cfg, &x, false, &err), -EINVAL, &err,
			BN_E_BAD_RANK, "expected 2D to 5D input (got 1D input)");
	bn_tensor_finish(&x);

	tensor(&x, 2, (size_t[]){ 2, 4 }, NULL);
	expect_error(bn_input_check(&cfg, &x, true, &err), -EINVAL, &err,
			BN_E_WRONG_CHANNELS, "expected 3 channels (num_features), got 4");
	bn_tensor_finish(&x);

	tensor(&x, 2, (size_t[]){ 1, 3 }, NULL);
	expect_error(bn_input_check(&cfg, &x, true, &err), -EINVAL, &err, BN_E_TOO_FEW_VALUES,
			"Expected more than 1 value per channel when training, got input size [1, 3]");
	assert(bn_input_check(&cfg, &x, false, &err) == 0);
	bn_tensor_finish(&x);

	tensor(&x, 5, (size_t[]){ 1, 3, 1, 1, 1 }, NULL);
	expect_error(bn_input_check(&cfg, &x, true, &err), -EINVAL, &err, BN_E_TOO_FEW_VALUES,
			"Expected more than 1 value per channel when training, got input size "
			"[1, 3, 1, 1, 1]");
	bn_tensor_finish(&x);

	/* Two values per channel is enough, in either dimension. */
	const size_t ok[][5] = { { 2, 3 }, { 1, 3, 2 }, { 1, 3, 1, 1, 2 } };
	const unsigned ok_rank[] = { 2, 3, 5 };
	for (size_t i = 0; i < 3; i++) {
		tensor(&x, ok_rank[i], ok[i], NULL);
		assert(bn_input_check(&cfg, &x, true, &err) == 0);
		bn_tensor_finish(&x);
	}
}

/* Every failing call must leave the state exactly as it was. */
static void expect_refused(const struct bn_config *cfg, struct bn_state *s,
		const struct bn_tensor *x, bool train, int want_r, const char *code,
		const char *detail_part)
{
	struct bn_state before;
	struct bn_tensor y;
	struct bn_error err = { 0 };
	float mean[8] = { 42 }, var[8] = { 42 };
	int r;

	assert(bn_state_copy(&before, s) == 0);
	if (x->rank >= 1 && x->rank <= BN_TENSOR_MAX_RANK)
		tensor(&y, x->rank, x->shape, NULL);
	else
		y = *x;
	r = train ? bn_forward_train(cfg, s, x, &y, mean, var, &err)
		: bn_forward_eval(cfg, s, x, &y, &err);
	expect_error(r, want_r, &err, code, NULL);
	if (detail_part && !strstr(err.detail, detail_part)) {
		fprintf(stderr, "\"%s\" does not say \"%s\"\n", err.detail, detail_part);
		abort();
	}
	assert(state_equal(&before, s));
	assert(mean[0] == 42 && var[0] == 42);
	if (y.data != x->data)
		bn_tensor_finish(&y);
	bn_state_finish(&before);
}

static void test_refusals(void)
{
	struct bn_config cfg;
	struct bn_state s;
	struct bn_tensor x, y;
	struct bn_tensor rank6 = { .rank = 6 };
	float mean[3], var[3];
	struct bn_error err = { 0 };

	bn_config_default(&cfg, 3);
	assert(bn_state_init(&s, &cfg) == 0);
	/* A state that has moved, so "unchanged" is not just "initial". */
	tensor(&x, 2, (size_t[]){ 2, 3 }, (float[]){ 0, 1, 2, 3, 5, 8 });
	tensor(&y, 2, x.shape, NULL);
	assert(bn_forward_train(&cfg, &s, &x, &y, mean, var, NULL) == 0);
	assert(s.num_batches_tracked == 1);
	bn_tensor_finish(&y);
	bn_tensor_finish(&x);

	tensor(&x, 2, (size_t[]){ 2, 4 }, NULL);
	expect_refused(&cfg, &s, &x, true, -EINVAL, BN_E_WRONG_CHANNELS, NULL);
	expect_refused(&cfg, &s, &x, false, -EINVAL, BN_E_WRONG_CHANNELS, NULL);
	bn_tensor_finish(&x);
	expect_refused(&cfg, &s, &rank6, true, -EINVAL, BN_E_BAD_RANK, NULL);
	expect_refused(&cfg, &s, &rank6, false, -EINVAL, BN_E_BAD_RANK, NULL);
	tensor(&x, 2, (size_t[]){ 1, 3 }, NULL);
	expect_refused(&cfg, &s, &x, true, -EINVAL, BN_E_TOO_FEW_VALUES, NULL);
	bn_tensor_finish(&x);

	/* An output of the wrong shape. */
	tensor(&x, 2, (size_t[]){ 2, 3 }, NULL);
	tensor(&y, 3, (size_t[]){ 2, 3, 1 }, NULL);
	assert(bn_forward_train(&cfg, &s, &x, &y, mean, var, &err) == -EINVAL);
	assert(strcmp(err.code, BN_E_SHAPE_MISMATCH) == 0);
	assert(bn_forward_eval(&cfg, &s, &x, &y, &err) == -EINVAL);
	assert(s.num_batches_tracked == 1);
	bn_tensor_finish(&y);
	bn_tensor_finish(&x);

	/* Huge weight: the coefficient itself overflows (train and eval). */
	s.weight[0] = 3e38f;
	tensor(&x, 2, (size_t[]){ 2, 3 }, (float[]){ 0, 0, 0, 1, 1, 1 });
	expect_refused(&cfg, &s, &x, true, -ERANGE, BN_E_NON_FINITE_OUTPUT,
			"channel 0: the output would not be finite");
	s.running_var[0] = 0;
	expect_refused(&cfg, &s, &x, false, -ERANGE, BN_E_NON_FINITE_OUTPUT, "channel 0");
	bn_tensor_finish(&x);

	/* Finite coefficients, but one output beyond FLT_MAX (in the last channel). */
	s.weight[0] = 1;
	s.running_var[0] = 1;
	s.weight[2] = 2e38f;
	tensor(&x, 2, (size_t[]){ 4, 3 }, (float[]){ 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 4 });
	expect_refused(&cfg, &s, &x, true, -ERANGE, BN_E_NON_FINITE_OUTPUT,
			"channel 2: the output");
	bn_tensor_finish(&x);
	tensor(&x, 3, (size_t[]){ 1, 3, 5 },
			(float[]){ 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 0, 0, 0, 4 });
	expect_refused(&cfg, &s, &x, true, -ERANGE, BN_E_NON_FINITE_OUTPUT,
			"channel 2: the output");
	s.weight[2] = 1e36f; /* eval: about 3.5 * 1e36 / sqrt(1 + eps) is finite... */
	tensor(&y, 3, x.shape, NULL);
	assert(bn_forward_eval(&cfg, &s, &x, &y, NULL) == 0);
	s.running_var[2] = 1e-6f; /* ...and 3.5 * 1e36 / sqrt(1.1e-5) is not */
	expect_refused(&cfg, &s, &x, false, -ERANGE, BN_E_NON_FINITE_OUTPUT, "channel 2");
	bn_tensor_finish(&y);
	bn_tensor_finish(&x);
	s.weight[2] = 1;
	s.running_var[2] = 1;

	/* A spread whose squares overflow float: the batch variance is infinite. */
	tensor(&x, 2, (size_t[]){ 2, 3 }, (float[]){ -3e38f, 0, 0, 3e38f, 1, 1 });
	expect_refused(&cfg, &s, &x, true, -ERANGE, BN_E_NON_FINITE_OUTPUT,
			"channel 0: the batch variance");
	bn_tensor_finish(&x);

	/* num_batches_tracked at its cap: -EOVERFLOW; one below it still counts. */
	tensor(&x, 2, (size_t[]){ 2, 3 }, (float[]){ 0, 1, 2, 3, 5, 8 });
	s.num_batches_tracked = BN_MAX_BATCHES_TRACKED;
	expect_refused(&cfg, &s, &x, true, -EOVERFLOW, BN_E_OUT_OF_RANGE, "num_batches_tracked");
	tensor(&y, 2, x.shape, NULL);
	assert(bn_forward_eval(&cfg, &s, &x, &y, NULL) == 0); /* eval does not count */
	s.num_batches_tracked = BN_MAX_BATCHES_TRACKED - 1;
	cfg.cumulative = true;
	assert(bn_forward_train(&cfg, &s, &x, &y, mean, var, NULL) == 0);
	assert(s.num_batches_tracked == BN_MAX_BATCHES_TRACKED);
	expect_refused(&cfg, &s, &x, true, -EOVERFLOW, BN_E_OUT_OF_RANGE, NULL);
	cfg.cumulative = false;
	bn_tensor_finish(&y);

	/* A state that does not match the config. */
	float *w = s.weight;
	s.weight = NULL;
	expect_refused(&cfg, &s, &x, true, -EINVAL, BN_E_INVALID_CONFIG, NULL);
	expect_refused(&cfg, &s, &x, false, -EINVAL, BN_E_INVALID_CONFIG, NULL);
	s.weight = w;
	bn_tensor_finish(&x);
	bn_state_finish(&s);
}

/* y may be x itself: the result must be the same as out of place. */
static void test_in_place(void)
{
	const size_t shapes[][5] = { { 4, 3 }, { 2, 3, 7 }, { 3, 3, 2, 5 }, { 2, 3, 1, 1, 9 } };
	const unsigned ranks[] = { 2, 3, 4, 5 };
	struct bn_config cfg;

	bn_config_default(&cfg, 3);
	for (size_t k = 0; k < 4; k++) {
		struct bn_state s1, s2;
		struct bn_tensor x, y;
		float m1[3], v1[3], m2[3], v2[3];

		tensor(&x, ranks[k], shapes[k], NULL);
		for (size_t i = 0; i < x.count; i++)
			x.data[i] = (float)((i * 37) % 11) * 0.75f - 2.0f;
		tensor(&y, x.rank, x.shape, NULL);
		assert(bn_state_init(&s1, &cfg) == 0);
		s1.weight[1] = -1.5f;
		s1.bias[2] = 0.25f;
		assert(bn_state_copy(&s2, &s1) == 0);

		assert(bn_forward_train(&cfg, &s1, &x, &y, m1, v1, NULL) == 0);
		assert(bn_forward_train(&cfg, &s2, &x, &x, m2, v2, NULL) == 0);
		assert(floats_equal(x.data, y.data, x.count));
		assert(floats_equal(m1, m2, 3) && floats_equal(v1, v2, 3) && state_equal(&s1, &s2));

		assert(bn_forward_eval(&cfg, &s1, &x, &y, NULL) == 0);
		assert(bn_forward_eval(&cfg, &s1, &x, &x, NULL) == 0);
		assert(floats_equal(x.data, y.data, x.count));
		bn_tensor_finish(&x);
		bn_tensor_finish(&y);
		bn_state_finish(&s1);
		bn_state_finish(&s2);
	}
}

static void train(const struct bn_config *cfg, struct bn_state *s, const float *data,
		float *mean, float *var)
{
	struct bn_tensor x, y;

	tensor(&x, 2, (size_t[]){ 2, 1 }, data);
	tensor(&y, 2, x.shape, NULL);
	assert(bn_forward_train(cfg, s, &x, &y, mean, var, NULL) == 0);
	bn_tensor_finish(&x);
	bn_tensor_finish(&y);
}

static void test_running_stats(void)
{
	struct bn_config cfg;
	struct bn_state s;
	float mean, var;

	/* momentum 1: the running stats become the batch's, variance unbiased. */
	bn_config_default(&cfg, 1);
	cfg.momentum = 1;
	assert(bn_state_init(&s, &cfg) == 0);
	train(&cfg, &s, (float[]){ 1, 2 }, &mean, &var);
	assert(mean == 1.5f && var == 0.25f);
	assert(s.running_mean[0] == 1.5f && s.running_var[0] == 0.5f);
	assert(s.num_batches_tracked == 1);

	/* momentum 0: they stay, but the step is counted. */
	cfg.momentum = 0;
	train(&cfg, &s, (float[]){ 10, 20 }, &mean, &var);
	assert(s.running_mean[0] == 1.5f && s.running_var[0] == 0.5f);
	assert(s.num_batches_tracked == 2 && mean == 15 && var == 25);

	/* momentum null after a reset: factor 1 / num_batches_tracked from 1 again. */
	cfg.cumulative = true;
	bn_state_reset_running_stats(&s);
	train(&cfg, &s, (float[]){ 2, 4 }, &mean, &var);
	assert(s.num_batches_tracked == 1);
	assert(s.running_mean[0] == 3 && s.running_var[0] == 2);
	train(&cfg, &s, (float[]){ 6, 8 }, &mean, &var);
	assert(s.num_batches_tracked == 2);
	assert(s.running_mean[0] == 5 && s.running_var[0] == 2);
	train(&cfg, &s, (float[]){ 8, 8 }, &mean, &var);
	assert(s.num_batches_tracked == 3 && var == 0);
	assert(fabsf(s.running_mean[0] - 6) <= 6 * FLT_EPSILON);
	assert(fabsf(s.running_var[0] - 4.0f / 3.0f) <= FLT_EPSILON);
	bn_state_finish(&s);

	/* Without running stats, train changes nothing and eval uses the batch. */
	cfg.track_running_stats = false;
	cfg.affine = false;
	assert(bn_state_init(&s, &cfg) == 0);
	train(&cfg, &s, (float[]){ 1, 3 }, &mean, &var);
	assert(s.num_batches_tracked == 0 && mean == 2 && var == 1);
	struct bn_tensor x, y;
	struct bn_error err = { 0 };
	tensor(&x, 2, (size_t[]){ 2, 1 }, (float[]){ 1, 3 });
	tensor(&y, 2, x.shape, NULL);
	assert(bn_forward_eval(&cfg, &s, &x, &y, NULL) == 0);
	assert(y.data[0] < -0.99f && y.data[0] > -1.0f && y.data[1] == -y.data[0]);
	bn_tensor_finish(&x);
	tensor(&x, 2, (size_t[]){ 1, 1 }, (float[]){ 1 });
	assert(bn_forward_eval(&cfg, &s, &x, &x, &err) == -EINVAL);
	assert(strcmp(err.code, BN_E_TOO_FEW_VALUES) == 0);
	bn_tensor_finish(&x);
	bn_tensor_finish(&y);
	bn_state_finish(&s);
}

/*
 * Far from zero, the variance still has float accuracy. Here the mean
 * 100000.780109375 rounds to the float 100000.78125, and squares taken from
 * that float mean alone would make the variance 6e-6 too large.
 */
static void test_offset_accuracy(void)
{
	const size_t n = 1000;
	struct bn_config cfg;
	struct bn_state s;
	struct bn_tensor x, y;
	float mean, var;
	double sum = 0, ss = 0;

	bn_config_default(&cfg, 1);
	cfg.momentum = 1;
	assert(bn_state_init(&s, &cfg) == 0);
	tensor(&x, 3, (size_t[]){ 10, 1, n / 10 }, NULL);
	for (size_t i = 0; i < n; i++)
		x.data[i] = 1e5f + (float)((i * 7919) % 101) / 64.0f;
	for (size_t i = 0; i < n; i++)
		sum += x.data[i];
	for (size_t i = 0; i < n; i++)
		ss += (x.data[i] - sum / n) * (x.data[i] - sum / n);
	tensor(&y, x.rank, x.shape, NULL);
	assert(bn_forward_train(&cfg, &s, &x, &y, &mean, &var, NULL) == 0);
	assert(fabs(var - ss / n) <= 1e-6 * (ss / n));
	assert(fabs(s.running_var[0] - ss / (n - 1)) <= 1e-6 * (ss / (n - 1)));
	assert(fabs(mean - sum / n) <= 0.5 * 1e5 * FLT_EPSILON);
	bn_tensor_finish(&x);
	bn_tensor_finish(&y);
	bn_state_finish(&s);
}

int main(void)
{
	test_config();
	test_state();
	test_input_check();
	test_refusals();
	test_in_place();
	test_running_stats();
	test_offset_accuracy();
	printf("batchnorm: all checks passed\n");
	return 0;
}
