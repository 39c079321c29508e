/*
 * Guarded, locked regions. See memguard.h for the layout.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "memguard.h"
#include "sys.h"

/* Secret plus tail canary: size rounded up to MG_ALIGN; 0 on overflow. */
static size_t span_for(size_t size)
{
	if (size == 0 || size > SIZE_MAX - MG_ALIGN)
		return 0;
	return (size + MG_ALIGN - 1) & ~(size_t)(MG_ALIGN - 1);
}

size_t mg_pages_for_page(size_t size, size_t page)
{
	size_t need = span_for(size);

	if (page == 0 || need == 0 || need > SIZE_MAX - MG_CANARY_LEN - page)
		return 0;
	need += MG_CANARY_LEN;
	return (need + page - 1) / page * page;
}

size_t mg_pages_for(size_t size)
{
	return mg_pages_for_page(size, mg_page_size());
}

/*
 * Canaries come from a pool refilled by one getrandom call per
 * sizeof(pool) / MG_CANARY_LEN canaries: a syscall per allocation would cost
 * more than the rest of a cached allocation. Bytes are wiped from the pool
 * as they are handed out.
 */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char pool[64 * MG_CANARY_LEN];
static size_t pool_next = sizeof pool;

static int next_canary(unsigned char out[MG_CANARY_LEN])
{
	int st = MG_OK, saved;

	if (pthread_mutex_lock(&pool_mu) != 0) /* only fails on misuse */
		return mg_random(out, MG_CANARY_LEN);
	if (pool_next == sizeof pool) {
		st = mg_random(pool, sizeof pool);
		if (st == MG_OK)
			pool_next = 0;
	}
	if (st == MG_OK) {
		memcpy(out, pool + pool_next, MG_CANARY_LEN);
		mg_wipe(pool + pool_next, MG_CANARY_LEN);
		pool_next += MG_CANARY_LEN;
	}
	saved = errno;
	(void)pthread_mutex_unlock(&pool_mu); /* cannot fail: we hold it */
	errno = saved;
	return st;
}

#ifdef MG_FAULT_INJECTION
void mg_canary_pool_empty(void)
{
	(void)pthread_mutex_lock(&pool_mu);
	mg_wipe(pool, sizeof pool);
	pool_next = sizeof pool;
	(void)pthread_mutex_unlock(&pool_mu);
}
#endif

int mg_region_place(mg_region *r, size_t size)
{
	size_t span = span_for(size), i;

	if (span == 0 || span > r->pages_len - MG_CANARY_LEN)
		return MG_EINVAL;
	if (next_canary(r->canary) != MG_OK)
		return MG_ERANDOM;
	r->data = r->pages + r->pages_len - span;
	r->size = size;
	r->tail_len = span - size;
	memcpy(r->data - MG_CANARY_LEN, r->canary, MG_CANARY_LEN);
	for (i = 0; i < r->tail_len; i++)
		r->data[size + i] = r->canary[i];
	return MG_OK;
}

int mg_region_new(size_t size, unsigned flags, mg_region **out)
{
	size_t pages_len = mg_pages_for(size);
	mg_map m;
	mg_region *r;
	int st, saved;

	*out = NULL;
	if (pages_len == 0)
		return MG_EINVAL;
	r = sys_calloc(1, sizeof *r);
	if (r == NULL)
		return MG_ENOMEM;
	st = mg_map_new(pages_len, flags, &m);
	if (st != MG_OK) {
		saved = errno;
		free(r);
		errno = saved;
		return st;
	}
	r->base = m.base;
	r->map_len = m.map_len;
	r->pages = m.pages;
	r->pages_len = m.pages_len;
	r->locked = m.locked;
	r->secret = m.secret;
	st = mg_region_place(r, size);
	if (st != MG_OK) {
		saved = errno;
		(void)mg_map_free(&m); /* nothing secret yet; errno is kept */
		free(r);
		errno = saved;
		return st;
	}
	*out = r;
	return MG_OK;
}

/*
 * Whether n bytes at p are all zero. The padding is not secret, so this may
 * stop at the first difference: libc's vectorised memcmp checks a page
 * several times faster than a loop over words, and every Destroy checks
 * one.
 */
static int all_zero(const unsigned char *p, size_t n)
{
	static const unsigned char zeros[4096]; /* a chunk, not a page */
	size_t m;

	for (; n > 0; p += m, n -= m) {
		m = n < sizeof zeros ? n : sizeof zeros;
		if (memcmp(p, zeros, m) != 0)
			return 0;
	}
	return 1;
}

int mg_region_verify(const mg_region *r)
{
	const unsigned char *lead = r->data - MG_CANARY_LEN;
	int ok;

	if (r->prot == MG_PROT_NONE)
		return MG_EPROTECT; /* reading would fault */
	ok = mg_equal(lead, r->canary, MG_CANARY_LEN) &
		 mg_equal(r->data + r->size, r->canary, r->tail_len);

	/* The padding is never written, so anything but zero is an underflow
	 * that jumped the leading canary. */
	ok &= all_zero(r->pages, (size_t)(lead - r->pages));
	return ok ? MG_OK : MG_ECANARY;
}

int mg_region_wipe(mg_region *r)
{
	if (r->prot != MG_PROT_RW)
		return MG_EPROTECT;
	mg_wipe_touched(r->data, r->size);
	return MG_OK;
}

int mg_region_clear(mg_region *r)
{
	unsigned char *p = r->data - MG_CANARY_LEN;
	size_t n = MG_CANARY_LEN + r->size + r->tail_len;

	if (r->prot != MG_PROT_RW)
		return MG_EPROTECT;
	/* A cleared region is reused. Skipping pages not in memory is safe
	 * only if they were never written, which holds for locked pages; an
	 * unlocked page may be in swap, and would come back with its secret
	 * into the next Buffer. */
	if (r->locked)
		mg_wipe_touched(p, n);
	else
		mg_wipe(p, n);
	return MG_OK;
}

int mg_region_recycle(mg_region *r)
{
	int st = mg_region_verify(r);

	return st == MG_OK ? mg_region_clear(r) : st;
}

int mg_region_free(mg_region *r)
{
	return mg_regions_free(&r, 1);
}

static int by_base(const void *a, const void *b)
{
	const unsigned char *x = (*(mg_region *const *)a)->base;
	const unsigned char *y = (*(mg_region *const *)b)->base;

	return (x > y) - (x < y);
}

int mg_regions_free(mg_region **rs, size_t n)
{
	size_t i, j, len;
	int st = MG_OK, saved = 0;

	if (n == 0)
		return MG_OK; /* and rs may be NULL, which qsort must not see */
	/* All data pages, padding included: after an underflow it may hold
	 * secret bytes too. Pages that are not writable are unmapped all the
	 * same, which hands them back to the kernel to zero before reuse.
	 * munmap drops the lock, so there is no munlock. */
	for (i = 0; i < n; i++) {
		if (rs[i]->prot == MG_PROT_RW)
			mg_wipe_touched(rs[i]->pages, rs[i]->pages_len);
		else
			st = MG_EPROTECT;
	}
	qsort(rs, n, sizeof *rs, by_base);
	for (i = 0; i < n; i = j) {
		len = rs[i]->map_len;
		for (j = i + 1; j < n && rs[j]->base == rs[j - 1]->base + rs[j - 1]->map_len; j++)
			len += rs[j]->map_len;
		if (sys_munmap(rs[i]->base, len) != 0) {
			st = MG_EUNMAP;
			saved = errno;
		}
	}
	for (i = 0; i < n; i++) {
		mg_wipe(rs[i], sizeof *rs[i]);
		free(rs[i]);
	}
	errno = saved;
	return st;
}
