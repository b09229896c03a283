/*
 * test_backward.c: BatchNorm's gradients and folding (bn/backward.h)
 * against tests/golden/ops.json (argv[1] is tests/golden): autograd of
 * torch.nn.functional.batch_norm in train and eval mode for ranks 2..5,
 * affine or not, in float32 and in float64; and
 * torch.nn.utils.fusion.fuse_conv_bn_weights. Errors are relative to the
 * largest |value| of the tensor or vector compared. Prints the worst.
 */
#include <errno.h>
#include <float.h>

#include "bn/backward.h"
#include "ops_golden.h"

enum { W_TORCH, W_F64, W_PARAM_TORCH, W_PARAM_F64, W_FOLD_TORCH, W_FOLD_F64, W_COUNT };
static struct worst worst[W_COUNT] = {
	[W_TORCH] = { "grad_input vs torch autograd (float32)", 16 * FLT_EPSILON, 0, 0, 0 },
	[W_F64] = { "grad_input vs float64 autograd", FLT_EPSILON, 0, 0, 0 },
	[W_PARAM_TORCH] = { "grad_weight, grad_bias vs torch (float32)", 16 * FLT_EPSILON, 0, 0, 0 },
	[W_PARAM_F64] = { "grad_weight, grad_bias vs float64 autograd", FLT_EPSILON, 0, 0, 0 },
	[W_FOLD_TORCH] = { "folded scale, shift vs fuse_conv_bn_weights", 2 * FLT_EPSILON, 0, 0, 0 },
	[W_FOLD_F64] = { "folded scale, shift vs float64", FLT_EPSILON / 2, 0, 0, 0 },
};

static void load_state(const json_t *js, struct bn_config *cfg, struct bn_state *st)
{
	const char *keys[4] = { "weight", "bias", "running_mean", "running_var" };

	assert(bn_state_init(st, cfg) == 0);
	for (int k = 0; k < 4; k++) {
		float **dst[4] = { &st->weight, &st->bias, &st->running_mean, &st->running_var };
		const json_t *v = json_object_get(js, keys[k]);
		float *f;

		if (!v || !*dst[k])
			continue;
		f = golden_floats(v, NULL);
		memcpy(*dst[k], f, cfg->num_features * sizeof(float));
		free(f);
	}
}

static void compare(struct worst *w, const float *got, const json_t *want, size_t n, const char *name)
{
	size_t len;
	double *g = widen(got, n), *v = golden_doubles(want, &len);

	assert(len == n);
	worst_check(w, g, v, n, name);
	free(g), free(v);
}

static void backward_case(const json_t *c)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const json_t *js = json_object_get(c, "state");
	bool affine = json_object_get(js, "weight") != NULL;
	bool train = !strcmp(json_string_value(json_object_get(c, "mode")), "train");
	struct bn_tensor x, dy, dx;
	struct bn_config cfg;
	struct bn_state st, before;
	float gw[8], gb[8];
	const char *refs[2] = { "torch", "f64" };

	golden_tensor(json_object_get(c, "input"), &x);
	golden_tensor(json_object_get(c, "grad_output"), &dy);
	assert(bn_tensor_init(&dx, x.rank, x.shape, x.count, NULL) == 0);
	bn_config_default(&cfg, x.shape[1]);
	cfg.affine = affine;
	cfg.eps = json_number_value(json_object_get(c, "eps"));
	load_state(js, &cfg, &st);
	assert(bn_state_copy(&before, &st) == 0);
	assert(bn_backward(&cfg, &st, train, &x, &dy, &dx, gw, gb, NULL) == 0);
	assert(!memcmp(before.running_var, st.running_var, cfg.num_features * sizeof(float)));
	for (int r = 0; r < 2; r++) {
		const json_t *want = json_object_get(c, refs[r]);

		compare(&worst[r ? W_F64 : W_TORCH], dx.data, json_object_get(want, "grad_input"), dx.count, name);
		if (!affine)
			continue;
		compare(&worst[r ? W_PARAM_F64 : W_PARAM_TORCH], gw, json_object_get(want, "grad_weight"),
				cfg.num_features, name);
		compare(&worst[r ? W_PARAM_F64 : W_PARAM_TORCH], gb, json_object_get(want, "grad_bias"),
				cfg.num_features, name);
	}
	/* A grad_output of another shape is refused. */
	dy.shape[0]++;
	assert(bn_backward(&cfg, &st, train, &x, &dy, &dx, gw, gb, NULL) == -EINVAL);
	dy.shape[0]--;
	bn_state_finish(&st), bn_state_finish(&before);
	bn_tensor_finish(&x), bn_tensor_finish(&dy), bn_tensor_finish(&dx);
}

static void fold_case(const json_t *c)
{
	const json_t *js = json_object_get(c, "state");
	struct bn_config cfg;
	struct bn_state st;
	struct bn_error e;
	size_t C = json_array_size(json_object_get(js, "weight"));
	float scale[8], shift[8];
	const char *refs[2] = { "torch", "f64" };

	bn_config_default(&cfg, C);
	cfg.eps = json_number_value(json_object_get(c, "eps"));
	load_state(js, &cfg, &st);
	assert(bn_fold(&cfg, &st, scale, shift, NULL) == 0);
	for (int r = 0; r < 2; r++) {
		const json_t *want = json_object_get(c, refs[r]);

		compare(&worst[r ? W_FOLD_F64 : W_FOLD_TORCH], scale, json_object_get(want, "scale"), C, "fold");
		compare(&worst[r ? W_FOLD_F64 : W_FOLD_TORCH], shift, json_object_get(want, "shift"), C, "fold");
	}
	bn_state_finish(&st);
	cfg.track_running_stats = false;
	assert(bn_state_init(&st, &cfg) == 0);
	assert(bn_fold(&cfg, &st, scale, shift, &e) == -EINVAL);
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
	for (size_t i = 0; i < json_array_size(json_object_get(g, "backward")); i++)
		backward_case(json_array_get(json_object_get(g, "backward"), i));
	for (size_t i = 0; i < json_array_size(json_object_get(g, "fold")); i++)
		fold_case(json_array_get(json_object_get(g, "fold"), i));
	printf("backward and fold against PyTorch %s and float64 references:\n",
			json_string_value(json_object_get(g, "torch_version")));
	failures = worst_report(worst, W_COUNT);
	json_decref(g);
	return failures ? 1 : 0;
}
