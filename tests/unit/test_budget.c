/*
 * test_budget.c: server/budget.c's reservations, refusals, peak and metrics,
 * and that the limit holds when threads reserve and release at once.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "budget.h"

#define LIMIT 1000
#define THREADS 4
#define ROUNDS 2000000
#define HOLD 3

static atomic_size_t most_seen;
static pthread_barrier_t start;

static void test_counts(void)
{
	struct bn_buf out;

	bnd_budget_init(LIMIT);
	assert(bnd_budget_limit() == LIMIT && bnd_budget_reserved() == 0);
	assert(bnd_budget_reserve(600) == 0);
	assert(bnd_budget_reserve(401) == -ENOBUFS);   /* 1001 would pass it */
	assert(bnd_budget_reserve(LIMIT + 1) == -E2BIG); /* never fits */
	assert(bnd_budget_reserved() == 600);
	assert(bnd_budget_reserve(400) == 0);          /* exactly the limit fits */
	assert(bnd_budget_reserve(1) == -ENOBUFS);
	bnd_budget_release(1000);
	assert(bnd_budget_reserved() == 0);
	bn_buf_init(&out, 0);
	assert(bnd_budget_metrics_write(&out) == 0);
	assert(strstr(out.data, "\nbatchnormd_memory_budget_bytes 1000\n"));
	assert(strstr(out.data, "\nbatchnormd_memory_reserved_bytes 0\n"));
	assert(strstr(out.data, "\nbatchnormd_memory_reserved_peak_bytes 1000\n"));
	assert(strstr(out.data, "\nbatchnormd_memory_budget_refusals_total 3\n"));
	bn_buf_finish(&out);
	/* No limit at all. */
	bnd_budget_init(0);
	assert(bnd_budget_limit() == 0 && bnd_budget_reserve((size_t)1 << 40) == 0);
	bnd_budget_release((size_t)1 << 40);
}

/* Each thread holds up to HOLD reservations, releasing its oldest as it takes a new one. */
static void *hammer(void *arg)
{
	unsigned seed = (unsigned)(size_t)arg;
	size_t held[HOLD] = { 0 };

	pthread_barrier_wait(&start);
	for (int i = 0; i < ROUNDS; i++) {
		size_t n = (seed = seed * 1103515245u + 12345u) % 400 + 1;
		size_t *slot = &held[i % HOLD], now, seen;

		bnd_budget_release(*slot);
		*slot = 0;
		if (bnd_budget_reserve(n) < 0)
			continue;
		*slot = n;
		now = bnd_budget_reserved();
		seen = atomic_load(&most_seen);
		while (now > seen && !atomic_compare_exchange_weak(&most_seen, &seen, now))
			;
	}
	for (int i = 0; i < HOLD; i++)
		bnd_budget_release(held[i]);
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[THREADS];
	struct bn_buf out;

	bnd_budget_init(LIMIT);
	pthread_barrier_init(&start, NULL, THREADS);
	for (size_t i = 0; i < THREADS; i++)
		assert(pthread_create(&t[i], NULL, hammer, (void *)(i + 1)) == 0);
	for (size_t i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&start);
	assert(bnd_budget_reserved() == 0);
	assert(atomic_load(&most_seen) <= LIMIT);
	bn_buf_init(&out, 0);
	bnd_budget_metrics_write(&out);
	{
		const char *p = strstr(out.data, "\nbatchnormd_memory_reserved_peak_bytes ");
		unsigned long long peak = 0;

		assert(p);
		for (p += strlen("\nbatchnormd_memory_reserved_peak_bytes "); *p >= '0' && *p <= '9'; p++)
			peak = peak * 10 + (unsigned)(*p - '0');
		printf("peak reserved %llu of %d, most seen %zu\n", peak, LIMIT, atomic_load(&most_seen));
		fflush(stdout);
		assert(peak > 0 && peak <= LIMIT);
	}
	bn_buf_finish(&out);
}

int main(void)
{
	test_counts();
	test_threads();
	return 0;
}
