//go:build ignore
// (Built and run by `make test-c`, not by the Go tool.)

/*
 * Tests for the compact slot arena on its own. Built by `make test` with
 * -fsanitize=address,undefined and -DMG_FAULT_INJECTION; ASan's leak check
 * at exit covers every failure path below.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "memguard.h"

/* The expected tail canary of slot s: the lead of the slot after it. */
#define TAIL(s) ((s).canary + MG_CANARY_LEN)

/* The fault that makes locking a chunk fail: mlock2(MLOCK_ONFAULT) is
 * what the core tries first. */
#ifdef MLOCK_ONFAULT
#define LOCK_FAULT MG_F_MLOCK2
#else
#define LOCK_FAULT MG_F_MLOCK
#endif

/* Slots of a class in a chunk of n pages. */
static size_t per_chunk(size_t n, size_t cap)
{
	return (n * page - MG_CANARY_LEN) / (MG_CANARY_LEN + cap);
}

static mg_arena *must_arena(unsigned flags)
{
	mg_arena *a = NULL;

	CHECK(mg_arena_new(flags, &a) == MG_OK && a != NULL);
	return a;
}

static int live(mg_arena *a, mg_arena_stats *st)
{
	mg_arena_stats s;

	CHECK(mg_arena_stats_get(a, &s) == MG_OK);
	if (st != NULL)
		*st = s;
	return (int)s.live;
}

static int zero(const unsigned char *p, size_t n)
{
	while (n > 0 && p[n - 1] == 0)
		n--;
	return n == 0;
}

static size_t maps_lines(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	size_t n = 0;
	int ch;

	if (f == NULL)
		return 0;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

/* Layout and the invariant of memguard.h for every size 1..MG_ARENA_MAX. */
static void test_layout(void)
{
	mg_arena *a = must_arena(MG_MAP_LOCK);
	mg_slot s, t;
	size_t size, j, cap, bad;

	for (size = 1; size <= MG_ARENA_MAX; size++) {
		CHECK(mg_arena_alloc(a, size, &s) == MG_OK);
		for (cap = 32; cap < size; cap *= 2)
			;
		CHECK(s.cap == cap && s.size == size && s.locked == 1);
		CHECK((uintptr_t)s.data % MG_ALIGN == 0);
		CHECK(memcmp(s.data - MG_CANARY_LEN, s.canary, MG_CANARY_LEN) == 0);
		CHECK(memcmp(s.data + cap, TAIL(s), MG_CANARY_LEN) == 0);
		CHECK(memcmp(s.canary, TAIL(s), MG_CANARY_LEN) != 0);
		for (j = 0; j < size; j++)
			if (s.data[j] != 0)
				break;
		CHECK(j == size);
		for (j = size; j < cap; j++)
			if (s.data[j] != TAIL(s)[j % MG_CANARY_LEN])
				break;
		CHECK(j == cap);
		CHECK(mg_slot_check(&s) == MG_OK);
		memset(s.data, 0xA5, size);
		CHECK(mg_slot_check(&s) == MG_OK);
		/* every byte the check covers, each on its own: lead canary,
		 * padding, tail canary */
		for (bad = 0, j = 0; j < MG_CANARY_LEN + cap + MG_CANARY_LEN; j++) {
			unsigned char *at = s.data - MG_CANARY_LEN + j;
			if (j >= MG_CANARY_LEN && j < MG_CANARY_LEN + size)
				continue; /* the secret */
			*at ^= 0x01;
			bad += mg_slot_check(&s) != MG_ECANARY;
			*at ^= 0x01;
		}
		CHECK(bad == 0);
		CHECK(mg_slot_check(&s) == MG_OK);
		/* the next slot of the class follows, sharing the canary */
		CHECK(mg_arena_alloc(a, size, &t) == MG_OK);
		CHECK(t.data == s.data + cap + MG_CANARY_LEN && t.canary == TAIL(s));
		CHECK(t.chunk == s.chunk && t.index == s.index + 1);
		CHECK(mg_arena_verify(a) == MG_OK);
		mg_slot_wipe(&s);
		CHECK(s.data[0] == 0 && s.data[size - 1] == 0);
		CHECK(mg_slot_check(&s) == MG_OK);
		CHECK(mg_arena_free(&t) == MG_OK);
		CHECK(mg_arena_free(&s) == MG_OK && s.data == NULL);
	}
	CHECK(live(a, NULL) == 0);
	CHECK(mg_arena_verify(a) == MG_OK);

	/* a chunk's first slot: C0 starts the first page */
	{
		mg_arena *b = must_arena(0);
		CHECK(mg_arena_alloc(b, 100, &s) == MG_OK && s.index == 0);
		CHECK((uintptr_t)(s.data - MG_CANARY_LEN) % page == 0);
		CHECK(s.locked == 0 && s.secret == 0);
		CHECK(mg_arena_destroy(b) == MG_OK);
	}
	CHECK(mg_arena_destroy(a) == MG_OK);
}

/* Whether memory belongs to the arena: its chunks, and nothing else. */
static void test_overlaps(void)
{
	mg_arena *a = must_arena(MG_MAP_LOCK);
	const mg_span *sp = mg_arena_span(a);
	mg_slot s;
	unsigned char local[16];
	uintptr_t lo, hi, d;

	/* empty: the span holds no address */
	CHECK(sp->lo == UINTPTR_MAX && sp->hi == 0);
	CHECK(mg_arena_overlaps_range(a, (uintptr_t)local, sizeof local) == 0);
	CHECK(mg_arena_alloc(a, 24, &s) == MG_OK);
	CHECK(sp->lo <= (uintptr_t)s.data && (uintptr_t)s.data + 24 <= sp->hi);
	CHECK(mg_arena_overlaps_range(a, (uintptr_t)s.data, 1) == 1);
	CHECK(mg_arena_overlaps_range(a, (uintptr_t)s.data + 8, 64) == 1);
	CHECK(mg_arena_overlaps_range(a, (uintptr_t)local, sizeof local) == 0);
	/* just outside the span, and just inside at either end */
	CHECK(mg_arena_overlaps_range(a, sp->lo - 16, 16) == 0);
	CHECK(mg_arena_overlaps_range(a, sp->hi, 16) == 0);
	CHECK(mg_arena_overlaps_range(a, sp->lo - 16, 17) == 1);
	CHECK(mg_arena_overlaps_range(a, sp->hi - 1, 16) == 1);
	d = (uintptr_t)s.data;
	CHECK(mg_arena_free(&s) == MG_OK);
	/* the span never narrows, though the chunk is gone */
	lo = sp->lo;
	hi = sp->hi;
	CHECK(mg_arena_trim(a) == MG_OK);
	CHECK(sp->lo == lo && sp->hi == hi);
	CHECK(mg_arena_overlaps_range(a, d, 1) == 0);
	CHECK(mg_arena_destroy(a) == MG_OK);
}

static void test_invalid(void)
{
	mg_arena *a = must_arena(MG_MAP_LOCK);
	mg_slot s, copy;

	memset(&s, 0x55, sizeof s);
	CHECK(mg_arena_alloc(a, 0, &s) == MG_EINVAL && s.data == NULL);
	CHECK(mg_arena_alloc(a, MG_ARENA_MAX + 1, &s) == MG_EINVAL);
	CHECK(mg_arena_free(&s) == MG_EINVAL); /* zeroed: no slot */

	CHECK(mg_arena_alloc(a, 8, &s) == MG_OK);
	copy = s;
	CHECK(mg_arena_free(&s) == MG_OK);
	CHECK(mg_arena_free(&copy) == MG_EINVAL); /* double free */
	CHECK(mg_arena_alloc(a, 8, &s) == MG_OK);
	copy = s;
	copy.size = 9;
	CHECK(mg_arena_free(&copy) == MG_EINVAL);
	copy = s;
	copy.data += 16;
	CHECK(mg_arena_free(&copy) == MG_EINVAL);
	copy = s;
	copy.index = 5000;
	CHECK(mg_arena_free(&copy) == MG_EINVAL);
	CHECK(mg_slot_check(&s) == MG_OK && live(a, NULL) == 1);
	CHECK(mg_arena_destroy(a) == MG_OK);
}

/*
 * Three neighbours p, s, n in one chunk; each corruption is seen from the
 * secret and, when it reaches a neighbour's canary, from the neighbour.
 */
static void test_overflow(void)
{
	size_t sizes[] = {1, 20, 31, 32, 33, 64, 100, 128, 200, 256};
	size_t i;

	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t size = sizes[i];
		int where;

		for (where = 0; where < 5; where++) {
			mg_arena *a = must_arena(MG_MAP_LOCK);
			mg_slot p, s, n;
			mg_arena_stats st;
			unsigned char *at;
			int pad;

			CHECK(mg_arena_alloc(a, size, &p) == MG_OK);
			CHECK(mg_arena_alloc(a, size, &s) == MG_OK);
			CHECK(mg_arena_alloc(a, size, &n) == MG_OK);
			CHECK(s.index == p.index + 1 && n.index == s.index + 1);
			pad = size < s.cap;
			switch (where) {
			case 0: /* one byte past the secret */
				at = s.data + size;
				break;
			case 1: /* the last padding byte */
				at = s.data + s.cap - 1;
				break;
			case 2: /* the first byte of the next canary */
				at = s.data + s.cap;
				break;
			case 3: /* one byte before the secret */
				at = s.data - 1;
				break;
			default: /* the first byte of the lead canary */
				at = s.data - MG_CANARY_LEN;
				break;
			}
			if (where == 1 && !pad)
				at = s.data + s.cap + MG_CANARY_LEN - 1;
			*at ^= 0x01;
			CHECK(mg_slot_check(&s) == MG_ECANARY);
			CHECK(mg_arena_verify(a) == MG_ECANARY);
			/* in the padding: the neighbours are untouched */
			if (where < 2 && pad) {
				CHECK(mg_slot_check(&p) == MG_OK);
				CHECK(mg_slot_check(&n) == MG_OK);
			} else {
				/* no padding: the byte past the secret is C(i+1);
				 * for where 1, its last byte */
				CHECK(mg_slot_check(&n) ==
				      (where <= 2 ? MG_ECANARY : MG_OK));
				CHECK(mg_slot_check(&p) ==
				      (where >= 3 ? MG_ECANARY : MG_OK));
			}
			/* freed all the same, wiped, never reused */
			at = s.data;
			CHECK(mg_arena_free(&s) == MG_ECANARY);
			CHECK(at[0] == 0 && at[size - 1] == 0);
			CHECK(live(a, &st) == 2 && st.quarantined == 1);
			CHECK(mg_arena_alloc(a, size, &s) == MG_OK);
			CHECK(s.data != at);
			CHECK(mg_arena_free(&s) == MG_OK);
			CHECK(mg_arena_destroy(a) == MG_OK);
		}
	}
}

/* Freed slots read as zero, data and padding; canaries stay. */
static void test_wipe_on_free(void)
{
	mg_arena *a = must_arena(MG_MAP_LOCK);
	mg_slot keep, s;
	unsigned char *d, lead[MG_CANARY_LEN], tail[MG_CANARY_LEN];
	size_t j, bad = 0;

	CHECK(mg_arena_alloc(a, 32, &keep) == MG_OK); /* keeps the chunk used */
	CHECK(mg_arena_alloc(a, 10, &s) == MG_OK);
	CHECK(mg_arena_alloc(a, 10, &s) == MG_OK); /* index 2; 1 lives on */
	CHECK(mg_arena_free(&s) == MG_OK);
	CHECK(mg_arena_alloc(a, 10, &s) == MG_OK && s.index == 2);
	memset(s.data, 0x5A, 10);
	d = s.data;
	memcpy(lead, s.canary, sizeof lead);
	memcpy(tail, TAIL(s), sizeof tail);
	CHECK(mg_arena_free(&s) == MG_OK);
	for (j = 0; j < 32; j++)
		bad += d[j] != 0;
	CHECK(bad == 0);
	CHECK(memcmp(d - MG_CANARY_LEN, lead, sizeof lead) == 0);
	CHECK(memcmp(d + 32, tail, sizeof tail) == 0);
	CHECK(mg_arena_verify(a) == MG_OK);
	CHECK(mg_arena_free(&keep) == MG_OK);
	CHECK(live(a, NULL) == 1);
	CHECK(mg_arena_destroy(a) == MG_OK); /* with a live slot */
	CHECK(!mapped(d));
}

/* Chunks grow by doubling; the smallest empty one stays mapped. */
static void test_growth_and_release(void)
{
	enum { N = 2000 };
	static mg_slot s[N];
	mg_arena *a = must_arena(MG_MAP_LOCK);
	mg_arena_stats st;
	size_t i, j;

	for (i = 0; i < N; i++)
		CHECK(mg_arena_alloc(a, 32, &s[i]) == MG_OK);
	live(a, &st);
	/* chunks of 1, 2, 4, ... pages */
	for (i = 0, j = 0; j < N; i++)
		j += per_chunk((size_t)1 << i, 32);
	CHECK(st.chunks == i && st.live == N);
	CHECK(st.locked <= 2 * N * 48 + page);
	/* newest first: the biggest chunk empties first, and is released
	 * once a smaller one empties */
	for (i = N; i-- > 0;)
		CHECK(mg_arena_free(&s[i]) == MG_OK);
	live(a, &st);
	CHECK(st.chunks == 1 && st.live == 0 && st.locked == page);
	CHECK(mg_arena_verify(a) == MG_OK);
	/* alloc and free in a loop reuses the spare chunk */
	for (i = 0; i < 1000; i++) {
		CHECK(mg_arena_alloc(a, 32, &s[0]) == MG_OK);
		CHECK(mg_arena_free(&s[0]) == MG_OK);
	}
	live(a, &st);
	CHECK(st.chunks == 1);
	/* trim unmaps the spare, and the next chunk is one page again */
	CHECK(mg_arena_trim(a) == MG_OK);
	live(a, &st);
	CHECK(st.chunks == 0 && st.locked == 0 && st.mapped == 0);
	CHECK(mg_arena_alloc(a, 32, &s[0]) == MG_OK);
	live(a, &st);
	CHECK(st.chunks == 1 && st.locked == page);
	/* a chunk holding a live slot is no spare: trim keeps it */
	CHECK(mg_arena_trim(a) == MG_OK);
	CHECK(live(a, &st) == 1 && st.chunks == 1);
	CHECK(mg_arena_free(&s[0]) == MG_OK);
	CHECK(mg_arena_destroy(a) == MG_OK);
}

/* 1,000,000 live 32-byte secrets: mappings and locked bytes. */
static void test_million(void)
{
	enum { N = 1000000 };
	mg_slot *s = calloc(N, sizeof *s);
	mg_arena *a = must_arena(MG_MAP_LOCK);
	mg_arena_stats st;
	size_t before = maps_lines(), after, i;
	int ok = 1;

	if (s == NULL)
		return;
	for (i = 0; i < N; i++)
		ok &= mg_arena_alloc(a, 32, &s[i]) == MG_OK;
	CHECK(ok);
	after = maps_lines();
	live(a, &st);
	printf("1M 32-byte slots: %zu chunks, %zu maps lines added, "
	       "%.1f bytes locked and %.1f mapped per slot\n",
	       st.chunks, after - before, (double)st.locked / N,
	       (double)st.mapped / N);
	CHECK(st.locked <= (size_t)64 * N);
	CHECK(st.chunks <= 1000 && after - before <= 1000);
	CHECK(mg_arena_verify(a) == MG_OK);
	for (i = 0; i < N; i += 2)
		ok &= mg_arena_free(&s[i]) == MG_OK;
	CHECK(ok);
	CHECK(mg_arena_destroy(a) == MG_OK);
	free(s);
}

/* Threads allocate, fill, check and free; one slot in seven is freed by
 * another thread than the one that allocated it. */
enum { THREADS = 8, ROUNDS = 20000, HELD = 64 };
static mg_arena *shared_arena;
static pthread_mutex_t swap_mu = PTHREAD_MUTEX_INITIALIZER;
static mg_slot swap[HELD];
static int stress_bad;

static void *stress(void *arg)
{
	mg_slot held[HELD] = {{0}}, tmp;
	unsigned int seed = (unsigned int)(uintptr_t)arg, r;
	int bad = 0, i, j;

	for (i = 0; i < ROUNDS; i++) {
		r = (unsigned int)rand_r(&seed);
		j = (int)(r % HELD);
		/* lock-free, while other threads use the neighbours */
		if (held[(j + 1) % HELD].data != NULL)
			bad |= mg_slot_check(&held[(j + 1) % HELD]) != MG_OK;
		if (held[j].data != NULL) {
			for (size_t k = 0; k < held[j].size; k++)
				bad |= held[j].data[k] != (unsigned char)held[j].size;
			bad |= mg_slot_check(&held[j]) != MG_OK;
			bad |= mg_arena_free(&held[j]) != MG_OK;
		}
		if (mg_arena_alloc(shared_arena, 1 + (r >> 8) % MG_ARENA_MAX,
				   &held[j]) != MG_OK) {
			bad = 1;
			continue;
		}
		memset(held[j].data, (int)held[j].size, held[j].size);
		if (r % 7 == 0) { /* hand it to whichever thread comes next */
			pthread_mutex_lock(&swap_mu);
			tmp = swap[j];
			swap[j] = held[j];
			held[j] = tmp;
			pthread_mutex_unlock(&swap_mu);
		}
	}
	for (j = 0; j < HELD; j++)
		if (held[j].data != NULL)
			bad |= mg_arena_free(&held[j]) != MG_OK;
	pthread_mutex_lock(&swap_mu);
	stress_bad |= bad;
	pthread_mutex_unlock(&swap_mu);
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[THREADS];
	mg_arena_stats st;
	int i;

	shared_arena = must_arena(MG_MAP_LOCK);
	for (i = 0; i < THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, stress, (void *)(uintptr_t)(i + 1)) == 0);
	for (i = 0; i < THREADS; i++)
		CHECK(pthread_join(t[i], NULL) == 0);
	CHECK(!stress_bad);
	for (i = 0; i < HELD; i++)
		if (swap[i].data != NULL)
			CHECK(mg_arena_free(&swap[i]) == MG_OK);
	CHECK(live(shared_arena, &st) == 0 && st.quarantined == 0);
	CHECK(mg_arena_verify(shared_arena) == MG_OK);
	CHECK(mg_arena_destroy(shared_arena) == MG_OK);
}

/* A slot that only another shard has room for, once mlock fails. */
static mg_arena *steal_arena;
static mg_slot stolen;
static int stolen_st = -1;

static void *alloc_one(void *arg)
{
	(void)arg;
	stolen_st = mg_arena_alloc(steal_arena, 64, &stolen);
	return NULL;
}

static void test_steal(void)
{
	pthread_t t;
	mg_slot s;
	mg_arena_stats st;

	steal_arena = must_arena(MG_MAP_LOCK);
	CHECK(mg_arena_alloc(steal_arena, 1, &s) == MG_OK); /* pins our shard */
	CHECK(mg_arena_free(&s) == MG_OK);
	CHECK(pthread_create(&t, NULL, alloc_one, NULL) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	CHECK(stolen_st == MG_OK);
	mg_fault_set(LOCK_FAULT, 0, EAGAIN);
	CHECK(mg_arena_alloc(steal_arena, 64, &s) == MG_OK);
	mg_fault_clear();
	CHECK(s.chunk == stolen.chunk && s.index == stolen.index + 1);
	live(steal_arena, &st);
	CHECK(st.chunks == 2); /* the 32-byte class's and the thread's */
	CHECK(mg_arena_free(&s) == MG_OK);
	CHECK(mg_arena_free(&stolen) == MG_OK);
	CHECK(mg_arena_destroy(steal_arena) == MG_OK);
}

/* Each OS failure maps to its status and errno, leaks nothing and leaves
 * the arena as it was: it verifies, and the next allocation works. */
static void test_faults(void)
{
	struct {
		enum mg_fault which;
		int after, err, want;
	} cases[] = {
		{MG_F_MALLOC, 0, ENOMEM, MG_ENOMEM},   /* chunk metadata */
		{MG_F_MMAP, 0, ENOMEM, MG_ENOMEM},
		{MG_F_MPROTECT, 0, EACCES, MG_EPROTECT},
		{MG_F_MPROTECT, 0, ENOMEM, MG_ENOMEM}, /* vm.max_map_count */
		{MG_F_MADVISE, 0, EINVAL, MG_EPROTECT},
		{MG_F_MADVISE, 1, EINVAL, MG_EPROTECT},
		{MG_F_MADVISE, 1, ENOMEM, MG_ENOMEM},
		{LOCK_FAULT, 0, EAGAIN, MG_ELOCK},     /* one page: no retry */
		{MG_F_RANDOM, 0, EIO, MG_ERANDOM},     /* C0 */
	};
	mg_arena *a;
	mg_arena_stats st;
	mg_slot s;
	size_t i;

	mg_fault_set(MG_F_MALLOC, 0, ENOMEM);
	a = (mg_arena *)1;
	CHECK(mg_arena_new(MG_MAP_LOCK, &a) == MG_ENOMEM && a == NULL && errno == ENOMEM);
	mg_fault_clear();

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		a = must_arena(MG_MAP_LOCK);
		errno = 0;
		memset(&s, 0x55, sizeof s);
		mg_fault_set(cases[i].which, cases[i].after, cases[i].err);
		CHECK(mg_arena_alloc(a, 48, &s) == cases[i].want);
		CHECK(errno == cases[i].err && s.data == NULL);
		mg_fault_clear();
		live(a, &st);
		CHECK(st.chunks == 0 && st.live == 0 && st.locked == 0);
		CHECK(mg_arena_verify(a) == MG_OK);
		CHECK(mg_arena_alloc(a, 48, &s) == MG_OK);
		CHECK(mg_arena_free(&s) == MG_OK);
		CHECK(mg_arena_destroy(a) == MG_OK);
	}

	/* random failure for a fresh slot's tail canary, once the shard's
	 * pool runs dry: nothing changes, and the next allocation works */
	a = must_arena(MG_MAP_LOCK);
	CHECK(mg_arena_alloc(a, 16, &s) == MG_OK); /* fills the pool */
	mg_fault_set(MG_F_RANDOM, 0, EIO);
	for (i = 1; i < 200; i++)
		if (mg_arena_alloc(a, 16, &s) != MG_OK)
			break;
	mg_fault_clear();
	CHECK(i > 1 && i < 200 && errno == EIO && s.data == NULL);
	CHECK(mg_arena_verify(a) == MG_OK && live(a, &st) == (int)i);
	CHECK(st.chunks == 1);
	CHECK(mg_arena_alloc(a, 16, &s) == MG_OK && s.index == i);
	CHECK(mg_arena_destroy(a) == MG_OK);

	/* mlock refused at the preferred size: the chunk is retried smaller
	 * (4 pages, then 2) and the next starts from what fitted */
	a = must_arena(MG_MAP_LOCK);
	{
		size_t per1 = per_chunk(1, 32), per2 = per_chunk(2, 32), n = 0;
		mg_slot *many = calloc(per1 + 3 * per2, sizeof *many);
		int ok = 1;

		while (many != NULL && n < per1 + per2)
			ok &= mg_arena_alloc(a, 32, &many[n++]) == MG_OK;
		live(a, &st);
		CHECK(ok && st.chunks == 2 && st.locked == 3 * page);
		/* a retry that fails otherwise reports that, changing nothing */
		mg_fault_set(LOCK_FAULT, 0, EAGAIN);
		mg_fault_set(MG_F_MMAP, 1, ENOMEM);
		CHECK(mg_arena_alloc(a, 32, &many[n]) == MG_ENOMEM);
		mg_fault_clear();
		live(a, &st);
		CHECK(st.chunks == 2 && st.locked == 3 * page);
		CHECK(mg_arena_verify(a) == MG_OK);
		mg_fault_set(LOCK_FAULT, 0, EAGAIN);
		CHECK(mg_arena_alloc(a, 32, &many[n++]) == MG_OK);
		mg_fault_clear();
		live(a, &st);
		CHECK(st.chunks == 3 && st.locked == 5 * page);
		while (n < per1 + 2 * per2 + 1)
			ok &= mg_arena_alloc(a, 32, &many[n++]) == MG_OK;
		live(a, &st);
		CHECK(ok && st.chunks == 4 && st.locked == 7 * page);
		while (n-- > 0)
			CHECK(mg_arena_free(&many[n]) == MG_OK);
		free(many);
	}
	CHECK(mg_arena_destroy(a) == MG_OK);

	/* a failed unmap is reported, on release and on destroy */
	a = must_arena(MG_MAP_LOCK);
	{
		size_t per1 = per_chunk(1, 32), n, end = per1 + per_chunk(2, 32);
		mg_slot *x = calloc(end, sizeof *x);
		unsigned char *base1, *base2;

		for (n = 0; x != NULL && n < end; n++) {
			CHECK(mg_arena_alloc(a, 32, &x[n]) == MG_OK);
			memset(x[n].data, 0x77, 32);
		}
		base1 = x[0].data - MG_CANARY_LEN - page;
		base2 = x[per1].data - MG_CANARY_LEN - page;
		/* emptying the first chunk makes it the spare; emptying the
		 * second releases it */
		for (n = 0; n < end; n++) {
			if (n + 1 == end)
				mg_fault_set(MG_F_MUNMAP, 0, EINVAL);
			CHECK(mg_arena_free(&x[n]) ==
			      (n + 1 == end ? MG_EUNMAP : MG_OK));
		}
		mg_fault_clear();
		live(a, &st);
		CHECK(st.chunks == 1 && st.live == 0);
		/* what munmap was given had been wiped: canaries too */
		CHECK(zero(base2 + page, 2 * page));
		mg_fault_set(MG_F_MUNMAP, 0, EINVAL);
		CHECK(mg_arena_destroy(a) == MG_EUNMAP && errno == EINVAL);
		mg_fault_clear();
		CHECK(zero(base1 + page, page));
		/* unmapped here, so the process keeps no stray mappings */
		CHECK(munmap(base1, 3 * page) == 0);
		CHECK(munmap(base2, 4 * page) == 0);
		free(x);
	}
}

/*
 * RLIMIT_MEMLOCK of 64 KiB, enforced: in a child that drops root (root's
 * CAP_IPC_LOCK ignores the limit). At least 800 32-byte and 500 64-byte
 * secrets fit, and then allocation fails with MG_ELOCK, not anything worse;
 * the same for 32-byte secrets in secret memory, which the kernel charges
 * to the limit itself, where the system has it.
 */
static void test_memlock(void)
{
	pid_t pid;
	int status = 0;

	fflush(stdout);
	pid = fork();

	if (pid == 0) {
		struct rlimit rl = {64 * 1024, 64 * 1024};
		size_t sizes[] = {32, 64, 32}, need[] = {800, 500, 800}, i, n;
		unsigned flags[] = {MG_MAP_LOCK, MG_MAP_LOCK, MG_MAP_SECRET};
		int st = MG_OK, code = 0;

		if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0 ||
		    (geteuid() == 0 && setuid(65534) != 0))
			_exit(2);
		for (i = 0; i < 3; i++) {
			mg_arena *a = NULL;
			mg_slot s;

			if (mg_arena_new(flags[i], &a) != MG_OK)
				_exit(3);
			for (n = 0; n < 100000; n++) {
				st = mg_arena_alloc(a, sizes[i], &s);
				if (st != MG_OK)
					break;
			}
			printf("64 KiB memlock: %zu live %zu-byte secrets%s, then status %d\n",
			       n, sizes[i], flags[i] & MG_MAP_SECRET ? " in secret memory" : "", st);
			if (st == MG_EUNSUPPORTED && n == 0)
				printf("secret memory unavailable here: skipped\n");
			else if (n < need[i] || st != MG_ELOCK)
				code = 4;
			if (mg_arena_destroy(a) != MG_OK)
				code = 5;
		}
		fflush(stdout);
		_exit(code); /* LeakSanitizer cannot trace a process that dropped root */
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

#if defined(__linux__)
/*
 * An arena backed by secret memory: its slots behave as any others; its
 * chunks read as secretmem in /proc/self/maps, locked and kept out of dumps
 * and children by the kernel, and cannot be read through /proc/self/mem;
 * mlock is never called on them; and nothing is left mapped or open.
 */
static void test_secret(void)
{
	size_t sizes[] = {1, 32, 200}, i;
	int fds = open_fds(), mem, st, status;
	unsigned char buf[MG_CANARY_LEN], *d;
	mg_arena *a = must_arena(MG_MAP_SECRET | MG_MAP_LOCK), *plain;
	mg_arena_stats as;
	mg_slot s[3], ctl;
	char line[512];
	pid_t pid;

	st = mg_arena_alloc(a, sizes[0], &s[0]);
	if (st == MG_EUNSUPPORTED) {
		printf("secret memory unavailable here (%s): skipped\n",
		       strerror(errno));
		CHECK(mg_arena_destroy(a) == MG_OK);
		return;
	}
	CHECK(st == MG_OK);
	/* locking secret pages would fail: it must not be tried */
	mg_fault_set(MG_F_MLOCK2, 0, ENOMEM);
	mg_fault_set(MG_F_MLOCK, 0, ENOMEM);
	for (i = 1; i < 3; i++)
		CHECK(mg_arena_alloc(a, sizes[i], &s[i]) == MG_OK);
	mg_fault_clear();
	for (i = 0; i < 3; i++) {
		CHECK(s[i].secret == 1 && s[i].locked == 1);
		CHECK(mg_slot_check(&s[i]) == MG_OK);
		memset(s[i].data, 0x5C, s[i].size);
		CHECK(mg_slot_check(&s[i]) == MG_OK);
	}
	CHECK(mg_arena_verify(a) == MG_OK);
	live(a, &as);
	CHECK(as.chunks == 2 && as.locked == 2 * page); /* classes 32 and 256 */
	CHECK(secret_maps() == 2 && open_fds() == fds);
	CHECK(smaps_line(s[0].data, NULL, line, sizeof line) &&
	      strstr(line, "secretmem") != NULL && strstr(line, "rw-s") != NULL);
	CHECK(has_vmflag(s[0].data, "lo") && has_vmflag(s[0].data, "dd"));
	CHECK(has_vmflag(s[0].data, "dc") && !has_vmflag(s[0].data, "wf"));

	/* /proc/self/mem reads an ordinary arena's slot (the control), not
	 * this one */
	plain = must_arena(MG_MAP_LOCK);
	CHECK(mg_arena_alloc(plain, 32, &ctl) == MG_OK);
	memset(ctl.data, 0x5C, ctl.size);
	mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	CHECK(mem >= 0);
	CHECK(pread(mem, buf, sizeof buf, (off_t)(uintptr_t)ctl.data) ==
		      (ssize_t)sizeof buf &&
	      memcmp(buf, ctl.data, sizeof buf) == 0);
	CHECK(pread(mem, buf, sizeof buf, (off_t)(uintptr_t)s[1].data) < 0);
	CHECK(close(mem) == 0);
	CHECK(mg_arena_destroy(plain) == MG_OK);

	/* a child has no secret pages */
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(!mapped(s[0].data) && !mapped(s[2].data) ? 0 : 1);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid &&
	      WIFEXITED(status) && WEXITSTATUS(status) == 0);

	d = s[1].data;
	CHECK(mg_arena_free(&s[1]) == MG_OK && d[0] == 0 && d[31] == 0);
	CHECK(mg_arena_free(&s[0]) == MG_OK && mg_arena_free(&s[2]) == MG_OK);
	CHECK(live(a, NULL) == 0);
	CHECK(mg_arena_destroy(a) == MG_OK);
	CHECK(secret_maps() == 0 && open_fds() == fds);

	/* no secret memory: reported as such, at once, with nothing mapped,
	 * and no smaller retry */
	a = must_arena(MG_MAP_SECRET);
	mg_fault_set(MG_F_MEMFD_SECRET, 0, ENOSYS);
	errno = 0;
	memset(&s[0], 0x55, sizeof s[0]);
	CHECK(mg_arena_alloc(a, 32, &s[0]) == MG_EUNSUPPORTED);
	CHECK(errno == ENOSYS && s[0].data == NULL);
	mg_fault_clear();
	live(a, &as);
	CHECK(as.chunks == 0 && as.mapped == 0 && as.locked == 0);
	CHECK(secret_maps() == 0 && open_fds() == fds);
	CHECK(mg_arena_alloc(a, 32, &s[0]) == MG_OK && s[0].secret == 1);
	CHECK(mg_arena_free(&s[0]) == MG_OK);
	CHECK(mg_arena_destroy(a) == MG_OK);
}
#endif

int main(void)
{
	sys_page = page = (size_t)sysconf(_SC_PAGESIZE);
	test_steal(); /* first: needs this thread and the next on two shards */
	test_layout();
	test_invalid();
	test_overlaps();
	test_overflow();
	test_wipe_on_free();
	test_growth_and_release();
	test_faults();
	test_memlock();
#if defined(__linux__)
	test_secret();
#endif
	test_threads();
	test_million();
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
