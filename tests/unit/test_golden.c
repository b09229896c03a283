/*
 * test_golden.c: libbatchnorm against the numbers PyTorch 1.13 gives.
 *
 * argv[1] is tests/golden, written by tests/golden/generate.py. Every
 * output, batch statistic, running statistic and num_batches_tracked of
 * every case is compared.
 *
 * Tolerances, in float32 ulps:
 *   - spatial size > 1 (PyTorch's NCHW kernel): 0, every value bit for bit.
 *     batchnorm.c rounds as that kernel does, and its statistics come from
 *     the same double sums.
 *   - spatial size 1 ((N, C), (N, C, 1, 1)): PyTorch sums these in float,
 *     so its batch mean carries float rounding error that ours does not;
 *     the running mean and the output inherit it. batch_mean and
 *     running_mean are allowed NC_STAT_ULPS ulps of the channel's largest
 *     |batch mean|, |running mean| or |input|, and outputs NC_OUT_ULPS ulps
 *     of the channel's largest |output|: an error d in the mean moves an
 *     output by a * d, which is a few ulps of the largest output when d is a
 *     few ulps of the inputs. Variances: NC_VAR_ULPS ulps of the value.
 *   - the worked example of API.md and the offset case: see below.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bn/batchnorm.h"

#define NC_STAT_ULPS 2
#define NC_OUT_ULPS 4
#define NC_VAR_ULPS 4
#define MAX_FEATURES 4096
#define MAX_ELEMENTS ((size_t)1 << 24)

/* The largest difference seen of one quantity in one group, and the cap. */
struct tally {
	double worst;     /* in the unit the tolerance uses */
	int64_t worst_ulp; /* in ulps of each value */
	long compared;
};

enum { Q_OUTPUT, Q_BATCH_MEAN, Q_BATCH_VAR, Q_RUNNING_MEAN, Q_RUNNING_VAR, Q_COUNT };
static const char *const qnames[Q_COUNT] = {
	"output", "batch_mean", "batch_var", "running_mean", "running_var",
};

/* [0]: spatial size > 1, [1]: spatial size 1. */
static struct tally tallies[2][Q_COUNT];
static int failures;
static int cases_run;

/* Distance in representable floats between a and b. */
static int64_t ulp_diff(float a, float b)
{
	int32_t ia, ib;

	memcpy(&ia, &a, sizeof(ia));
	memcpy(&ib, &b, sizeof(ib));
	/* Map the sign-magnitude bits to a monotonic integer line. */
	int64_t la = ia < 0 ? (int64_t)INT32_MIN - ia : ia;
	int64_t lb = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
	return la > lb ? la - lb : lb - la;
}

static float ulp_of(float v)
{
	v = fabsf(v);
	return nextafterf(v, INFINITY) - v;
}

static float number(const json_t *j)
{
	assert(json_is_number(j));
	return (float)json_number_value(j);
}

static json_t *member(const json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!v) {
		fprintf(stderr, "golden file: missing \"%s\"\n", key);
		abort();
	}
	return v;
}

static void floats_from(const json_t *arr, float *out, size_t n)
{
	assert(json_is_array(arr) && json_array_size(arr) == n);
	for (size_t i = 0; i < n; i++)
		out[i] = number(json_array_get(arr, i));
}

static void tensor_from(const json_t *j, struct bn_tensor *t)
{
	const json_t *shape = member(j, "shape");
	size_t dims[BN_TENSOR_MAX_RANK];
	unsigned rank = (unsigned)json_array_size(shape);

	assert(rank >= 1 && rank <= BN_TENSOR_MAX_RANK);
	for (unsigned i = 0; i < rank; i++)
		dims[i] = (size_t)json_integer_value(json_array_get(shape, i));
	assert(bn_tensor_init(t, rank, dims, MAX_ELEMENTS, NULL) == 0);
	floats_from(member(j, "data"), t->data, t->count);
}

static void config_from(const json_t *j, struct bn_config *cfg)
{
	const json_t *momentum = member(j, "momentum");

	bn_config_default(cfg, (size_t)json_integer_value(member(j, "num_features")));
	cfg->eps = json_number_value(member(j, "eps"));
	cfg->cumulative = json_is_null(momentum);
	cfg->momentum = cfg->cumulative ? 0.1 : json_number_value(momentum);
	cfg->affine = json_is_true(member(j, "affine"));
	cfg->track_running_stats = json_is_true(member(j, "track_running_stats"));
	assert(bn_config_check(cfg, MAX_FEATURES, NULL) == 0);
}

static void state_from(const json_t *j, const struct bn_config *cfg, struct bn_state *s)
{
	size_t c = cfg->num_features;

	assert(bn_state_init(s, cfg) == 0);
	if (cfg->affine) {
		floats_from(member(j, "weight"), s->weight, c);
		floats_from(member(j, "bias"), s->bias, c);
	}
	if (cfg->track_running_stats) {
		floats_from(member(j, "running_mean"), s->running_mean, c);
		floats_from(member(j, "running_var"), s->running_var, c);
		s->num_batches_tracked = json_integer_value(member(j, "num_batches_tracked"));
	}
}

/* Where a comparison happens, for the message when it fails. */
struct where {
	const char *name;
	const char *phase;
	size_t step;
};

/*
 * Compare got[] with the golden want[] (n values in `channels` channels of
 * a layout where value i belongs to channel (i / inner) % channels).
 * scale_ulps > 0 measures a difference in ulps of the channel's largest
 * magnitude among want[] and the extra[] values (may be NULL); 0 measures
 * it in ulps of each value. tol is the cap in those ulps.
 */
static void compare(const struct where *w, int group, int q, const float *got,
		const json_t *want_json, size_t n, size_t inner, size_t channels,
		const float *extra, size_t extra_n, bool scaled, double tol)
{
	float *want = malloc(n * sizeof(*want));
	float *scale = calloc(channels, sizeof(*scale));
	struct tally *t = &tallies[group][q];

	assert(want && scale);
	floats_from(want_json, want, n);
	for (size_t i = 0; i < n; i++) {
		size_t c = (i / inner) % channels;
		scale[c] = fmaxf(scale[c], fabsf(want[i]));
	}
	for (size_t i = 0; extra && i < extra_n; i++) {
		size_t c = (i / inner) % channels;
		scale[c] = fmaxf(scale[c], fabsf(extra[i]));
	}
	for (size_t i = 0; i < n; i++) {
		size_t c = (i / inner) % channels;
		double d = scaled ? fabs((double)got[i] - want[i]) / ulp_of(scale[c])
				: (double)ulp_diff(got[i], want[i]);

		if (d > t->worst)
			t->worst = d;
		if (ulp_diff(got[i], want[i]) > t->worst_ulp)
			t->worst_ulp = ulp_diff(got[i], want[i]);
		t->compared++;
		if (d > tol || !isfinite(got[i])) {
			failures++;
			fprintf(stderr, "FAIL %s %s step %zu %s[%zu]: got %.9g, want %.9g "
					"(%.3g ulp, allowed %.3g)\n", w->name, w->phase, w->step,
					qnames[q], i, got[i], want[i], d, tol);
		}
	}
	free(want);
	free(scale);
}

static void run_case(const json_t *c)
{
	struct bn_config cfg;
	struct bn_state s;
	struct where w = { .name = json_string_value(member(c, "name")) };
	size_t C;
	json_t *step;
	size_t i;

	config_from(member(c, "config"), &cfg);
	state_from(member(c, "state"), &cfg, &s);
	C = cfg.num_features;

	w.phase = "train";
	json_array_foreach(member(c, "train"), i, step) {
		struct bn_tensor x, y;
		float mean[MAX_FEATURES], var[MAX_FEATURES];
		struct bn_error err = { 0 };
		int g, r;
		size_t S;

		tensor_from(member(step, "input"), &x);
		S = bn_tensor_spatial(&x);
		g = S == 1;
		assert(bn_tensor_init(&y, x.rank, x.shape, MAX_ELEMENTS, NULL) == 0);
		r = bn_forward_train(&cfg, &s, &x, &y, mean, var, &err);
		if (r < 0) {
			fprintf(stderr, "FAIL %s train step %zu: %d %s\n", w.name, i, r, err.detail);
			abort();
		}
		w.step = i;
		compare(&w, g, Q_OUTPUT, y.data, member(step, "output"), y.count, S, C,
				NULL, 0, g, g ? NC_OUT_ULPS : 0);
		compare(&w, g, Q_BATCH_MEAN, mean, member(step, "batch_mean"), C, 1, C,
				x.data, g ? x.count : 0, g, g ? NC_STAT_ULPS : 0);
		compare(&w, g, Q_BATCH_VAR, var, member(step, "batch_var"), C, 1, C,
				NULL, 0, false, g ? NC_VAR_ULPS : 0);
		if (cfg.track_running_stats) {
			compare(&w, g, Q_RUNNING_MEAN, s.running_mean, member(step, "running_mean"),
					C, 1, C, x.data, g ? x.count : 0, g, g ? NC_STAT_ULPS : 0);
			compare(&w, g, Q_RUNNING_VAR, s.running_var, member(step, "running_var"),
					C, 1, C, NULL, 0, false, g ? NC_VAR_ULPS : 0);
			if (s.num_batches_tracked !=
					json_integer_value(member(step, "num_batches_tracked"))) {
				failures++;
				fprintf(stderr, "FAIL %s train step %zu: num_batches_tracked %" PRId64 "\n",
						w.name, i, s.num_batches_tracked);
			}
		}
		bn_tensor_finish(&x);
		bn_tensor_finish(&y);
	}

	w.phase = "eval";
	json_array_foreach(member(c, "eval"), i, step) {
		struct bn_tensor x, y;
		struct bn_error err = { 0 };
		int g;

		tensor_from(member(step, "input"), &x);
		g = bn_tensor_spatial(&x) == 1;
		assert(bn_tensor_init(&y, x.rank, x.shape, MAX_ELEMENTS, NULL) == 0);
		if (bn_forward_eval(&cfg, &s, &x, &y, &err) < 0) {
			fprintf(stderr, "FAIL %s eval %zu: %s\n", w.name, i, err.detail);
			abort();
		}
		w.step = i;
		compare(&w, g, Q_OUTPUT, y.data, member(step, "output"), y.count,
				bn_tensor_spatial(&x), C, NULL, 0, g, g ? NC_OUT_ULPS : 0);
		bn_tensor_finish(&x);
		bn_tensor_finish(&y);
	}
	bn_state_finish(&s);
	cases_run++;
}

static json_t *load(const char *dir, const char *file)
{
	char path[4096];
	json_error_t jerr;
	json_t *root;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	root = json_load_file(path, 0, &jerr);
	if (!root) {
		fprintf(stderr, "%s:%d: %s\n", path, jerr.line, jerr.text);
		exit(1);
	}
	return root;
}

/* API.md's worked example, with the values PyTorch gave the generator: exact. */
static void worked_example(const char *dir)
{
	json_t *root = load(dir, "worked_example.json");
	struct where w = { .name = "worked_example", .phase = "train" };
	struct bn_config cfg;
	struct bn_state s;
	struct bn_tensor x, y;
	float mean[1], var[1];
	json_int_t steps = json_integer_value(member(root, "steps"));

	config_from(member(root, "config"), &cfg);
	assert(bn_state_init(&s, &cfg) == 0);
	tensor_from(member(root, "input"), &x);
	assert(bn_tensor_init(&y, x.rank, x.shape, MAX_ELEMENTS, NULL) == 0);
	assert(steps > 0);
	for (json_int_t k = 0; k < steps; k++)
		assert(bn_forward_train(&cfg, &s, &x, &y, mean, var, NULL) == 0);
	w.step = (size_t)steps;
	compare(&w, 0, Q_OUTPUT, y.data, member(root, "train_output"), 2, 2, 1, NULL, 0, false, 0);
	compare(&w, 0, Q_RUNNING_MEAN, s.running_mean, member(root, "running_mean"),
			1, 1, 1, NULL, 0, false, 0);
	compare(&w, 0, Q_RUNNING_VAR, s.running_var, member(root, "running_var"),
			1, 1, 1, NULL, 0, false, 0);
	assert(s.num_batches_tracked == json_integer_value(member(root, "num_batches_tracked")));
	w.phase = "eval";
	assert(bn_forward_eval(&cfg, &s, &x, &y, NULL) == 0);
	compare(&w, 0, Q_OUTPUT, y.data, member(root, "eval_output"), 2, 2, 1, NULL, 0, false, 0);
	printf("worked example: running_mean %.7g, running_var %.7g, num_batches_tracked %" PRId64
			", eval output [%.7g, %.7g]\n", s.running_mean[0], s.running_var[0],
			s.num_batches_tracked, y.data[0], y.data[1]);
	bn_tensor_finish(&x);
	bn_tensor_finish(&y);
	bn_state_finish(&s);
	json_decref(root);
}

static double rel(double got, double want)
{
	return fabs(got - want) / fabs(want);
}

/*
 * Offset data: our variances must be within 1e-6 of float64's. PyTorch's
 * float32 ones are printed beside them, not asserted on.
 */
static void offset_case(const char *dir)
{
	json_t *root = load(dir, "offset.json");
	struct bn_config cfg;
	struct bn_state s;
	struct bn_tensor x, y;
	float mean[MAX_FEATURES], var[MAX_FEATURES];
	double ours = 0, ours_biased = 0, theirs = 0, ours_mean = 0, theirs_mean = 0;
	size_t C;

	tensor_from(member(root, "input"), &x);
	C = x.shape[1];
	bn_config_default(&cfg, C);
	cfg.affine = false;
	cfg.momentum = 1.0;
	assert(bn_state_init(&s, &cfg) == 0);
	assert(bn_tensor_init(&y, x.rank, x.shape, MAX_ELEMENTS, NULL) == 0);
	assert(bn_forward_train(&cfg, &s, &x, &y, mean, var, NULL) == 0);
	for (size_t c = 0; c < C; c++) {
		double ref_u = json_number_value(json_array_get(member(root, "float64_unbiased_var"), c));
		double ref_b = json_number_value(json_array_get(member(root, "float64_biased_var"), c));
		double ref_m = json_number_value(json_array_get(member(root, "float64_mean"), c));
		double torch_u = json_number_value(
				json_array_get(member(root, "torch_float32_unbiased_var"), c));
		double torch_m = json_number_value(
				json_array_get(member(root, "torch_float32_mean"), c));

		ours = fmax(ours, rel(s.running_var[c], ref_u));
		ours_biased = fmax(ours_biased, rel(var[c], ref_b));
		theirs = fmax(theirs, rel(torch_u, ref_u));
		ours_mean = fmax(ours_mean, rel(mean[c], ref_m));
		theirs_mean = fmax(theirs_mean, rel(torch_m, ref_m));
	}
	printf("offset (%zu, %zu) around 1e4: max relative error of the variance: "
			"ours %.2e (biased %.2e), PyTorch float32 %.2e; of the mean: ours %.2e, PyTorch %.2e\n",
			x.shape[0], C, ours, ours_biased, theirs, ours_mean, theirs_mean);
	if (!(ours <= 1e-6) || !(ours_biased <= 1e-6)) {
		failures++;
		fprintf(stderr, "FAIL offset: variance off by more than 1e-6 relative\n");
	}
	bn_tensor_finish(&x);
	bn_tensor_finish(&y);
	bn_state_finish(&s);
	json_decref(root);
}

static void summary(void)
{
	static const char *const groups[2] = { "spatial > 1", "spatial 1" };

	for (int g = 0; g < 2; g++) {
		printf("golden %s:", groups[g]);
		for (int q = 0; q < Q_COUNT; q++)
			printf(" %s %.3g ulp (%" PRId64 " of the value; %ld compared)%s", qnames[q],
					tallies[g][q].worst, tallies[g][q].worst_ulp,
					tallies[g][q].compared, q + 1 < Q_COUNT ? "," : "\n");
	}
}

int main(int argc, char **argv)
{
	json_t *root, *c;
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s GOLDEN_DIR\n", argv[0]);
		return 2;
	}
	root = load(argv[1], "cases.json");
	json_array_foreach(member(root, "cases"), i, c)
		run_case(c);
	json_decref(root);
	worked_example(argv[1]);
	offset_case(argv[1]);

	printf("golden: %d cases from PyTorch, max difference (ulps; spatial 1 scaled to the channel):\n",
			cases_run);
	summary();
	if (failures) {
		printf("golden: %d values differ beyond their tolerance\n", failures);
		return 1;
	}
	printf("golden: all values within tolerance\n");
	return 0;
}
