/*
 * test_stats.c: precise-BN calibration and SyncBatchNorm's update
 * (bn/stats.h) against tests/golden/ops.json (argv[1] is tests/golden).
 *
 * Calibration: batch_average against torch.optim.swa_utils.update_bn on the
 * same batches, and against the float64 average of per-batch means and
 * unbiased variances; population against the float64 NumPy mean and
 * var(ddof=1) of the concatenated data, offset data around 1e4 included;
 * splitting batches into worker summaries, and the order of batches,
 * change nothing. SyncBatchNorm: the global statistics against float64, the
 * running stats against a BatchNorm train step on the concatenated batch.
 * PyTorch sums (N, C) input in float32, so on offset data its running stats
 * carry about 1e-6 relative error, which the offset bound allows.
 * Prints the worst error of each.
 */
#include <errno.h>
#include <float.h>

#include "bn/stats.h"
#include "ops_golden.h"

enum {
	W_BA_TORCH, W_BA_F64, W_POP_F64, W_POP_DOUBLE, W_SPLIT, W_ORDER,
	W_SYNC_STATS, W_SYNC_RUN_TORCH, W_SYNC_RUN_OFFSET, W_COUNT
};
static struct worst worst[W_COUNT] = {
	[W_BA_TORCH] = { "batch_average vs update_bn (float32)", 64 * FLT_EPSILON, 0, 0, 0 },
	[W_BA_F64] = { "batch_average vs float64 reference", FLT_EPSILON / 2, 0, 0, 0 },
	[W_POP_F64] = { "population (float32) vs float64 numpy", FLT_EPSILON / 2, 0, 0, 0 },
	[W_POP_DOUBLE] = { "population (double) vs float64 numpy", 1e-12, 0, 0, 0 },
	[W_SPLIT] = { "summaries vs whole batches (double)", 1e-12, 0, 0, 0 },
	[W_ORDER] = { "reversed order vs in order (double)", 1e-12, 0, 0, 0 },
	[W_SYNC_STATS] = { "sync batch_mean/var/invstd vs float64", FLT_EPSILON / 2, 0, 0, 0 },
	[W_SYNC_RUN_TORCH] = { "sync running stats vs torch train step", 4 * FLT_EPSILON, 0, 0, 0 },
	[W_SYNC_RUN_OFFSET] = { "sync running stats vs torch, offset 1e4", 1e-5, 0, 0, 0 },
};

static void add_batches(struct bn_calibration *cal, const struct bn_config *cfg,
		const json_t *batches, bool reverse)
{
	size_t n = json_array_size(batches);

	for (size_t k = 0; k < n; k++) {
		struct bn_tensor x;

		golden_tensor(json_array_get(batches, reverse ? n - 1 - k : k), &x);
		assert(bn_calibration_add_tensor(cal, cfg, &x, NULL) == 0);
		bn_tensor_finish(&x);
	}
}

/* Each batch as two worker summaries (its first and second half of samples). */
static void add_split(struct bn_calibration *cal, const json_t *batches)
{
	for (size_t k = 0; k < json_array_size(batches); k++) {
		struct bn_tensor x;
		size_t C, S, N, half;

		golden_tensor(json_array_get(batches, k), &x);
		C = x.shape[1], S = bn_tensor_spatial(&x), N = x.shape[0], half = N / 2;
		/* A part needs two values per channel; a batch too small stays whole. */
		if (half * S < 2 || (N - half) * S < 2)
			half = N;
		for (int part = 0; part < (half < N ? 2 : 1); part++) {
			size_t lo = part ? half : 0, hi = part ? N : half;
			double mean[8] = { 0 }, var[8] = { 0 }, n = (double)((hi - lo) * S);

			assert(C <= 8);
			for (size_t c = 0; c < C; c++) {
				for (size_t i = lo; i < hi; i++)
					for (size_t s = 0; s < S; s++)
						mean[c] += x.data[(i * C + c) * S + s];
				mean[c] /= n;
				for (size_t i = lo; i < hi; i++)
					for (size_t s = 0; s < S; s++) {
						double d = x.data[(i * C + c) * S + s] - mean[c];
						var[c] += d * d / n;
					}
			}
			assert(bn_calibration_add_summary(cal, (int64_t)n, mean, var, NULL) == 0);
		}
		bn_tensor_finish(&x);
	}
}

static void check_commit(const struct bn_calibration *cal, const struct bn_config *cfg,
		enum bn_calibration_variance mode, const json_t *want, struct worst *w, const char *name)
{
	struct bn_state st;
	size_t C = cfg->num_features;
	double *got_m, *got_v, *want_m, *want_v;

	assert(bn_state_init(&st, cfg) == 0);
	assert(bn_calibration_commit(cal, mode, cfg, &st, NULL) == 0);
	assert(st.num_batches_tracked == cal->batches);
	got_m = widen(st.running_mean, C);
	got_v = widen(st.running_var, C);
	want_m = golden_doubles(json_object_get(want, json_object_get(want, "mean") ? "mean" : "running_mean"), NULL);
	want_v = golden_doubles(json_object_get(want, json_object_get(want, "var") ? "var" : "running_var"), NULL);
	worst_check(w, got_m, want_m, C, name);
	worst_check(w, got_v, want_v, C, name);
	if (json_object_get(want, "num_batches_tracked"))
		assert(st.num_batches_tracked == json_integer_value(json_object_get(want, "num_batches_tracked")));
	free(got_m), free(got_v), free(want_m), free(want_v);
	bn_state_finish(&st);
}

static void calibration_case(const json_t *c)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const json_t *batches = json_object_get(c, "batches");
	const json_t *pop = json_object_get(c, "population");
	struct bn_calibration a, b, r;
	struct bn_tensor x0;
	struct bn_config cfg;
	double *mean, *var, *m2, *v2, *want_m, *want_v;
	size_t C;

	golden_tensor(json_array_get(batches, 0), &x0);
	C = x0.shape[1];
	bn_tensor_finish(&x0);
	bn_config_default(&cfg, C);
	assert(bn_calibration_init(&a, C) == 0 && bn_calibration_init(&b, C) == 0 &&
			bn_calibration_init(&r, C) == 0);
	add_batches(&a, &cfg, batches, false);
	add_batches(&r, &cfg, batches, true);
	add_split(&b, batches);
	assert(a.count == json_integer_value(json_object_get(pop, "count")) && b.count == a.count);

	check_commit(&a, &cfg, BN_CALIBRATION_BATCH_AVERAGE,
			json_object_get(json_object_get(c, "batch_average"), "torch"), &worst[W_BA_TORCH], name);
	check_commit(&a, &cfg, BN_CALIBRATION_BATCH_AVERAGE,
			json_object_get(json_object_get(c, "batch_average"), "f64"), &worst[W_BA_F64], name);
	check_commit(&a, &cfg, BN_CALIBRATION_POPULATION, pop, &worst[W_POP_F64], name);

	mean = malloc(4 * C * sizeof(double));
	assert(mean);
	var = mean + C, m2 = var + C, v2 = m2 + C;
	want_m = golden_doubles(json_object_get(pop, "mean"), NULL);
	want_v = golden_doubles(json_object_get(pop, "var"), NULL);
	assert(bn_calibration_result(&a, BN_CALIBRATION_POPULATION, mean, var, NULL) == 0);
	worst_check(&worst[W_POP_DOUBLE], mean, want_m, C, name);
	worst_check(&worst[W_POP_DOUBLE], var, want_v, C, name);
	assert(bn_calibration_result(&b, BN_CALIBRATION_POPULATION, m2, v2, NULL) == 0);
	worst_check(&worst[W_SPLIT], m2, mean, C, name);
	worst_check(&worst[W_SPLIT], v2, var, C, name);
	assert(bn_calibration_result(&r, BN_CALIBRATION_POPULATION, m2, v2, NULL) == 0);
	worst_check(&worst[W_ORDER], m2, mean, C, name);
	worst_check(&worst[W_ORDER], v2, var, C, name);
	free(mean), free(want_m), free(want_v);
	bn_calibration_finish(&a), bn_calibration_finish(&b), bn_calibration_finish(&r);
}

/* Refusals leave the calibration as it was. */
static void calibration_errors(void)
{
	struct bn_calibration c;
	struct bn_error e = { 0 };
	double mean[2] = { 1, 2 }, var[2] = { 1, 1 }, nan_v[2] = { 1, NAN }, neg[2] = { 1, -1 };
	struct bn_config cfg;
	struct bn_state st;

	assert(bn_calibration_init(&c, 2) == 0);
	bn_config_default(&cfg, 2);
	assert(bn_state_init(&st, &cfg) == 0);
	assert(bn_calibration_commit(&c, BN_CALIBRATION_POPULATION, &cfg, &st, &e) == -EINVAL);
	assert(bn_calibration_add_summary(&c, 1, mean, var, &e) == -EINVAL);
	assert(bn_calibration_add_summary(&c, 3, nan_v, var, &e) == -EINVAL);
	assert(bn_calibration_add_summary(&c, 3, mean, neg, &e) == -EINVAL && strstr(e.detail, "var[1]"));
	assert(c.count == 0 && c.batches == 0);
	assert(bn_calibration_add_summary(&c, BN_MAX_COUNT, mean, var, &e) == 0);
	assert(bn_calibration_add_summary(&c, 2, mean, var, &e) == -EOVERFLOW);
	assert(c.count == BN_MAX_COUNT && c.batches == 1 && c.mean[1] == 2);
	cfg.track_running_stats = false;
	assert(bn_calibration_commit(&c, BN_CALIBRATION_POPULATION, &cfg, &st, &e) == -EINVAL);
	assert(st.running_var[0] == 1 && st.num_batches_tracked == 0);
	bn_state_finish(&st);
	bn_calibration_finish(&c);
}

static void sync_case(const json_t *c)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const json_t *ws = json_object_get(c, "workers"), *init = json_object_get(c, "init");
	const json_t *f64 = json_object_get(c, "f64"), *tor = json_object_get(c, "torch");
	const json_t *mom = json_object_get(c, "momentum");
	size_t n = json_array_size(ws), C = 0;
	struct bn_worker_stats w[8];
	struct bn_sync_result out;
	struct bn_config cfg;
	struct bn_state st;
	float *rm, *rv, f[3][8];
	bool offset = strstr(name, "offset") != NULL;

	assert(n <= 8);
	for (size_t k = 0; k < n; k++) {
		const json_t *wk = json_array_get(ws, k);

		w[k] = (struct bn_worker_stats){ json_integer_value(json_object_get(wk, "count")),
			golden_doubles(json_object_get(wk, "mean"), &C),
			golden_doubles(json_object_get(wk, "var"), NULL) };
	}
	bn_config_default(&cfg, C);
	cfg.cumulative = json_is_null(mom);
	cfg.momentum = cfg.cumulative ? 0 : json_number_value(mom);
	assert(bn_state_init(&st, &cfg) == 0);
	rm = golden_floats(json_object_get(init, "running_mean"), NULL);
	rv = golden_floats(json_object_get(init, "running_var"), NULL);
	memcpy(st.running_mean, rm, C * sizeof(float));
	memcpy(st.running_var, rv, C * sizeof(float));
	out = (struct bn_sync_result){ 0, f[0], f[1], f[2] };
	assert(bn_sync_train(&cfg, &st, w, n, &out, NULL) == 0);
	assert(st.num_batches_tracked == json_integer_value(json_object_get(tor, "num_batches_tracked")));
	const char *keys[3] = { "mean", "var", "invstd" };
	for (int q = 0; q < 3; q++) {
		double *got = widen(f[q], C), *want = golden_doubles(json_object_get(f64, keys[q]), NULL);

		worst_check(&worst[W_SYNC_STATS], got, want, C, name);
		free(got), free(want);
	}
	const char *rk[2] = { "running_mean", "running_var" };
	float *rs[2] = { st.running_mean, st.running_var };
	for (int q = 0; q < 2; q++) {
		double *got = widen(rs[q], C), *want = golden_doubles(json_object_get(tor, rk[q]), NULL);

		worst_check(&worst[offset ? W_SYNC_RUN_OFFSET : W_SYNC_RUN_TORCH], got, want, C, name);
		free(got), free(want);
	}
	/* One value in all is refused, and changes nothing. */
	memcpy(rm, st.running_mean, C * sizeof(float));
	w[0].count = 1;
	assert(bn_sync_train(&cfg, &st, w, 1, &out, NULL) == -EINVAL);
	assert(!memcmp(rm, st.running_mean, C * sizeof(float)));
	for (size_t k = 0; k < n; k++)
		free((void *)w[k].mean), free((void *)w[k].var);
	free(rm), free(rv);
	bn_state_finish(&st);
}

int main(int argc, char **argv)
{
	json_t *g;
	int failures;

	if (argc < 2) {
		fprintf(stderr, "usage: %s tests/golden\n", argv[0]);
		return 2;
	}
	g = golden_load(argv[1]);
	for (size_t i = 0; i < json_array_size(json_object_get(g, "calibration")); i++)
		calibration_case(json_array_get(json_object_get(g, "calibration"), i));
	calibration_errors();
	for (size_t i = 0; i < json_array_size(json_object_get(g, "sync")); i++)
		sync_case(json_array_get(json_object_get(g, "sync"), i));
	printf("stats against PyTorch %s and float64 references:\n",
			json_string_value(json_object_get(g, "torch_version")));
	failures = worst_report(worst, W_COUNT);
	json_decref(g);
	return failures ? 1 : 0;
}
