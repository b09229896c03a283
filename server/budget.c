/*
 * budget.c: the process-wide memory budget (budget.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>

#include "budget.h"
#include "registry.h"

static size_t limit;
static atomic_size_t reserved;
static atomic_size_t peak;
static atomic_uint_fast64_t refusals;

/* A layer's text beyond its arrays: name, config, times, keys, num_batches_tracked. */
#define LAYER_TEXT_FIXED 1024

size_t bnd_floats_text_max(size_t n)
{
	return n * BND_JSON_FLOAT_MAX + 2;
}

size_t bnd_tensor_text_max(const struct bn_tensor *t, enum bn_tensor_form form)
{
	size_t arrays = 0, items = 0, p = 1;

	if (form == BN_FORM_SHAPED)
		return bnd_floats_text_max(t->count) + 256; /* {"shape": [up to 5 sizes], "data": } */
	/* A value is at most 19 bytes; every item (value or array) one ", "; every array "[]". */
	for (unsigned i = 0; i < t->rank; i++) {
		arrays += p;
		p *= t->shape[i];
		items += p;
	}
	return t->count * (BND_JSON_FLOAT_MAX - 2) + 2 * items + 2 * arrays + 16;
}

size_t bnd_layer_text_max(size_t num_features)
{
	return 4 * bnd_floats_text_max(num_features) + LAYER_TEXT_FIXED + 2 * BND_NAME_MAX;
}

void bnd_budget_init(size_t max_bytes)
{
	limit = max_bytes ? max_bytes : SIZE_MAX;
	atomic_store(&reserved, 0);
	atomic_store(&peak, 0);
	atomic_store(&refusals, 0);
}

size_t bnd_budget_limit(void)
{
	return limit == SIZE_MAX ? 0 : limit;
}

size_t bnd_budget_reserved(void)
{
	return atomic_load(&reserved);
}

int bnd_budget_reserve(size_t n)
{
	size_t cur = atomic_load(&reserved), high;

	if (n > limit) {
		atomic_fetch_add_explicit(&refusals, 1, memory_order_relaxed);
		return -E2BIG;
	}
	do {
		if (cur > limit - n) {
			atomic_fetch_add_explicit(&refusals, 1, memory_order_relaxed);
			return -ENOBUFS;
		}
	} while (!atomic_compare_exchange_weak(&reserved, &cur, cur + n));
	high = atomic_load_explicit(&peak, memory_order_relaxed);
	while (cur + n > high &&
	       !atomic_compare_exchange_weak_explicit(&peak, &high, cur + n, memory_order_relaxed,
			memory_order_relaxed))
		;
	return 0;
}

void bnd_budget_release(size_t n)
{
	if (n)
		atomic_fetch_sub(&reserved, n);
}

int bnd_budget_metrics_write(struct bn_buf *out)
{
	bn_buf_printf(out, "# HELP batchnormd_memory_budget_bytes The memory budget (--max-memory); "
		"0: none.\n# TYPE batchnormd_memory_budget_bytes gauge\nbatchnormd_memory_budget_bytes %zu\n",
		bnd_budget_limit());
	bn_buf_printf(out, "# HELP batchnormd_memory_reserved_bytes Bytes that requests under way "
		"have reserved for bodies and answers.\n# TYPE batchnormd_memory_reserved_bytes gauge\n"
		"batchnormd_memory_reserved_bytes %zu\n", atomic_load(&reserved));
	bn_buf_printf(out, "# HELP batchnormd_memory_reserved_peak_bytes The most bytes reserved at "
		"once since the start.\n# TYPE batchnormd_memory_reserved_peak_bytes gauge\n"
		"batchnormd_memory_reserved_peak_bytes %zu\n", atomic_load_explicit(&peak, memory_order_relaxed));
	bn_buf_printf(out, "# HELP batchnormd_memory_budget_refusals_total Reservations refused "
		"because they would pass the budget.\n# TYPE batchnormd_memory_budget_refusals_total counter\n"
		"batchnormd_memory_budget_refusals_total %" PRIuFAST64 "\n",
		(uint_fast64_t)atomic_load_explicit(&refusals, memory_order_relaxed));
	return out->err;
}
