//go:build ignore
// (Built and run by `make test-c`, not by the Go tool.)

/*
 * Tests for the C core on its own. Built by `make test` with
 * -fsanitize=address,undefined and -DMG_FAULT_INJECTION.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
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

/* What the Go layer does to change a region's protection. */
static int protect(mg_region *r, int prot)
{
	static const int flags[] = {
		[MG_PROT_RW] = PROT_READ | PROT_WRITE,
		[MG_PROT_RO] = PROT_READ,
		[MG_PROT_NONE] = PROT_NONE,
	};

	if (mprotect(r->pages, r->pages_len, flags[prot]) != 0)
		return -1;
	r->prot = prot;
	return 0;
}

static mg_region *must_new(size_t size)
{
	mg_region *r = NULL;

	CHECK(mg_region_new(size, MG_MAP_LOCK, &r) == MG_OK);
	return r;
}

static void test_layout(void)
{
	size_t sizes[] = {1, 15, 16, 17, 32, 100, page - 17, page - 16,
			  page - 15, page - 1, page, page + 1, 2 * page,
			  3 * 1024 * 1024 + 5};
	size_t i, j;

	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		size_t n = sizes[i];
		mg_region *r = must_new(n);
		if (r == NULL)
			return;
		CHECK(((uintptr_t)r->data % MG_ALIGN) == 0);
		CHECK(r->size == n);
		CHECK(r->tail_len < MG_ALIGN);
		CHECK((n + r->tail_len) % MG_ALIGN == 0);
		/* the tail canary ends exactly at the trailing guard page */
		CHECK(r->data + n + r->tail_len == r->pages + r->pages_len);
		CHECK(r->data - MG_CANARY_LEN >= r->pages);
		CHECK(r->pages == r->base + page);
		CHECK(r->map_len == r->pages_len + 2 * page);
		CHECK(r->pages_len % page == 0);
		CHECK(r->locked == 1 && r->prot == MG_PROT_RW);
		CHECK(memcmp(r->data - MG_CANARY_LEN, r->canary,
			     MG_CANARY_LEN) == 0);
		for (j = 0; j < n; j++)
			if (r->data[j] != 0)
				break;
		CHECK(j == n);
		memset(r->data, 0xA5, n);
		CHECK(mg_region_verify(r) == MG_OK);
		CHECK(mg_region_free(r) == MG_OK);
	}
}

static void test_invalid_sizes(void)
{
	mg_region *r = (mg_region *)1;

	CHECK(mg_pages_for(0) == 0);
	CHECK(mg_pages_for(SIZE_MAX) == 0);
	CHECK(mg_pages_for(SIZE_MAX - page) == 0);
	CHECK(mg_region_new(0, MG_MAP_LOCK, &r) == MG_EINVAL && r == NULL);
	CHECK(mg_region_new(SIZE_MAX, MG_MAP_LOCK, &r) == MG_EINVAL);
	CHECK(mg_region_new(SIZE_MAX - 3 * page, MG_MAP_LOCK, &r) != MG_OK);

	r = must_new(32);
	CHECK(mg_region_place(r, 0) == MG_EINVAL);
	CHECK(mg_region_place(r, r->pages_len) == MG_EINVAL);
	CHECK(mg_region_place(r, r->pages_len - MG_CANARY_LEN) == MG_OK);
	CHECK(mg_region_place(r, r->pages_len - MG_CANARY_LEN + 1) ==
	      MG_EINVAL);
	CHECK(mg_region_free(r) == MG_OK);
}

static void test_canaries(void)
{
	mg_region *r;
	int i;

	/* leading canary */
	r = must_new(20);
	r->data[-1] ^= 1;
	CHECK(mg_region_verify(r) == MG_ECANARY);
	r->data[-1] ^= 1;
	CHECK(mg_region_verify(r) == MG_OK);
	/* tail canary: one byte past the end */
	r->data[20] ^= 0xFF;
	CHECK(mg_region_verify(r) == MG_ECANARY);
	/* free still frees, and reports nothing else */
	CHECK(mg_region_free(r) == MG_OK);

	/* recycle: clears an intact writable region, leaves a read-only or
	 * corrupted one as it is */
	r = must_new(20);
	r->data[0] = 9;
	CHECK(protect(r, MG_PROT_RO) == 0);
	CHECK(mg_region_recycle(r) == MG_EPROTECT && r->data[0] == 9);
	CHECK(protect(r, MG_PROT_RW) == 0);
	CHECK(mg_region_recycle(r) == MG_OK);
	CHECK(r->data[0] == 0 && r->data[-1] == 0);
	CHECK(mg_region_place(r, 20) == MG_OK);
	r->data[0] = 9;
	r->data[20] ^= 1;
	CHECK(mg_region_recycle(r) == MG_ECANARY && r->data[0] == 9);
	CHECK(protect(r, MG_PROT_NONE) == 0);
	CHECK(mg_region_recycle(r) == MG_EPROTECT);
	CHECK(protect(r, MG_PROT_RW) == 0);
	CHECK(mg_region_free(r) == MG_OK);

	/* padding before the leading canary: its last and first bytes, in
	 * one-page and multi-page regions */
	for (i = 0; i < 2; i++) {
		size_t size = i == 0 ? 20 : 3 * page + 5;

		r = must_new(size);
		r->data[-MG_CANARY_LEN - 1] = 7;
		CHECK(mg_region_verify(r) == MG_ECANARY);
		r->data[-MG_CANARY_LEN - 1] = 0;
		CHECK(mg_region_verify(r) == MG_OK);
		r->pages[0] = 7;
		CHECK(mg_region_verify(r) == MG_ECANARY);
		CHECK(mg_region_free(r) == MG_OK);
	}

	/* a 16-multiple has no tail: its overflow lands on the guard page */
	r = must_new(32);
	CHECK(r->tail_len == 0);
	CHECK(mg_region_free(r) == MG_OK);
}

static void test_protect_clear_place(void)
{
	mg_region *r = must_new(100);
	unsigned char old[MG_CANARY_LEN];

	CHECK(r->prot == MG_PROT_RW); /* a new region is writable */
	CHECK(protect(r, MG_PROT_RO) == 0);
	CHECK(mg_region_verify(r) == MG_OK); /* readable */
	/* no access: nothing is read or written, and nothing faults */
	CHECK(protect(r, MG_PROT_RW) == 0);
	r->data[0] = 0x77;
	CHECK(protect(r, MG_PROT_NONE) == 0);
	CHECK(mg_region_verify(r) == MG_EPROTECT);
	CHECK(mg_region_wipe(r) == MG_EPROTECT);
	CHECK(mg_region_clear(r) == MG_EPROTECT);
	CHECK(protect(r, MG_PROT_RO) == 0 && r->data[0] == 0x77);
	/* read-only: nothing is written */
	CHECK(mg_region_wipe(r) == MG_EPROTECT && r->data[0] == 0x77);
	CHECK(mg_region_clear(r) == MG_EPROTECT && r->data[-1] != 0);
	CHECK(protect(r, MG_PROT_RW) == 0);
	/* wipe zeroes the data and keeps the canaries */
	CHECK(mg_region_wipe(r) == MG_OK && r->data[0] == 0 && r->data[99] == 0);
	CHECK(mg_region_verify(r) == MG_OK);
	memset(r->data, 0x5A, r->size);
	/* clear wipes data and canaries */
	CHECK(mg_region_clear(r) == MG_OK);
	CHECK(r->data[0] == 0 && r->data[99] == 0 && r->data[-1] == 0);
	memcpy(old, r->canary, sizeof old);
	CHECK(mg_region_place(r, 7) == MG_OK);
	CHECK(r->size == 7 && r->tail_len == 9);
	CHECK(memcmp(old, r->canary, sizeof old) != 0);
	CHECK(mg_region_verify(r) == MG_OK);
	CHECK(mg_region_free(r) == MG_OK);

	/* a frozen region is unmapped, but its pages cannot be wiped */
	r = must_new(10);
	CHECK(protect(r, MG_PROT_RO) == 0);
	CHECK(mg_region_free(r) == MG_EPROTECT);
}

/* Canaries from the pool differ, across refills too. */
static void test_canary_pool(void)
{
	enum { N = 200 }; /* more than three pool refills */
	static unsigned char seen[N][MG_CANARY_LEN];
	mg_region *r = must_new(32);
	int i, j, dup = 0;

	for (i = 0; i < N; i++) {
		CHECK(mg_region_clear(r) == MG_OK);
		CHECK(mg_region_place(r, 32) == MG_OK);
		memcpy(seen[i], r->canary, MG_CANARY_LEN);
		for (j = 0; j < i; j++)
			dup |= memcmp(seen[i], seen[j], MG_CANARY_LEN) == 0;
	}
	CHECK(!dup);
	CHECK(mg_region_free(r) == MG_OK);
}

/* Batch free: adjacent or not, in any order, every region is unmapped. */
static void test_regions_free(void)
{
	enum { N = 40 };
	mg_region *rs[N], *keep[N / 4];
	unsigned char *bases[N];
	size_t i, k = 0;

	for (i = 0; i < N; i++) {
		rs[i] = must_new(1 + i * 300); /* one to three data pages */
		bases[i] = rs[i]->base;
		memset(rs[i]->data, 0x3C, rs[i]->size);
	}
	/* free three quarters, keeping every fourth, so runs are broken up */
	for (i = 0; i < N; i++)
		if (i % 4 == 0)
			keep[k++] = rs[i];
	for (i = 0, k = 0; i < N; i++)
		if (i % 4 != 0)
			rs[k++] = rs[i];
	CHECK(mg_regions_free(rs, k) == MG_OK);
	for (i = 0; i < N; i++)
		CHECK(mapped(bases[i]) == (i % 4 == 0));
	for (i = 0; i < N / 4; i++) {
		CHECK(keep[i]->data[0] == 0x3C); /* the others are untouched */
		CHECK(mg_region_verify(keep[i]) == MG_OK);
	}
	CHECK(mg_regions_free(keep, N / 4) == MG_OK);
	for (i = 0; i < N; i += 4)
		CHECK(!mapped(bases[i]));
	CHECK(mg_regions_free(NULL, 0) == MG_OK);
}

/* The page arithmetic, at any page size: the secret and its tail canary
 * rounded up to MG_ALIGN, plus the leading canary, in whole pages. */
static void test_pages_for(void)
{
	CHECK(mg_pages_for_page(1, 0) == 0);
	CHECK(mg_pages_for_page(0, page) == 0);
	CHECK(mg_pages_for_page(1, page) == page);
	CHECK(mg_pages_for_page(page - MG_CANARY_LEN, page) == page);
	CHECK(mg_pages_for_page(page - MG_CANARY_LEN + 1, page) == 2 * page);
	CHECK(mg_pages_for_page(page, page) == 2 * page);
	CHECK(mg_pages_for_page(SIZE_MAX - MG_CANARY_LEN - page, page) == 0);
	CHECK(mg_pages_for(100) == mg_pages_for_page(100, page));
	CHECK(mg_pages_for(5 * page) == mg_pages_for_page(5 * page, page));
}

static sigjmp_buf fault_jmp;

static void on_fault(int sig)
{
	(void)sig;
	siglongjmp(fault_jmp, 1);
}

/* Whether reading the byte at p faults. macOS raises SIGBUS for a
 * protection fault where Linux raises SIGSEGV. */
static int faults(const unsigned char *p)
{
	struct sigaction sa, old_segv, old_bus;
	volatile int hit = 0;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_fault;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &old_segv) != 0 ||
	    sigaction(SIGBUS, &sa, &old_bus) != 0)
		return -1;
	if (sigsetjmp(fault_jmp, 1) == 0)
		(void)*(const volatile unsigned char *)p;
	else
		hit = 1;
	if (sigaction(SIGSEGV, &old_segv, NULL) != 0 ||
	    sigaction(SIGBUS, &old_bus, NULL) != 0)
		return -1;
	return hit;
}

/* A guard page of the layout's page size on each side: every byte of it
 * faults, and the data pages between do not. */
static void test_guard_pages(void)
{
	mg_region *r = must_new(page + 1); /* two data pages */

	if (r == NULL)
		return;
	CHECK(r->pages_len == 2 * page);
	CHECK(faults(r->base) == 1);
	CHECK(faults(r->pages - 1) == 1);
	CHECK(faults(r->pages) == 0);
	CHECK(faults(r->pages + r->pages_len - 1) == 0);
	CHECK(faults(r->pages + r->pages_len) == 1);
	CHECK(faults(r->base + r->map_len - 1) == 1);
	CHECK(mg_region_free(r) == MG_OK);
}

static void test_util(void)
{
	unsigned char a[64], b[64], z[64] = {0};
	unsigned long long limit = 0;

	CHECK(mg_random(a, sizeof a) == MG_OK);
	CHECK(mg_random(b, sizeof b) == MG_OK);
	CHECK(memcmp(a, b, sizeof a) != 0);
	CHECK(mg_random(a, 0) == MG_OK);
	CHECK(mg_equal(a, a, sizeof a) == 1);
	CHECK(mg_equal(a, b, sizeof a) == 0);
	CHECK(mg_equal(a, b, 0) == 1);
	memcpy(b, a, sizeof a);
	b[63] ^= 0x80;
	CHECK(mg_equal(a, b, sizeof a) == 0);
	mg_wipe(a, sizeof a);
	CHECK(memcmp(a, z, sizeof a) == 0);
	mg_wipe(NULL, 0);
	CHECK(mg_memlock_limit(&limit) == MG_OK && limit > 0);
}

/* The lock call tried first. */
#ifdef MLOCK_ONFAULT
#define FIRST_LOCK MG_F_MLOCK2
#else
#define FIRST_LOCK MG_F_MLOCK
#endif

struct fault_case {
	enum mg_fault which;
	int after, err, want;
};

/* Each case's fault makes mg_region_new(64, flags) return its status, with
 * its errno, and no region. */
static void check_faults(const struct fault_case *cases, size_t n,
			 unsigned flags)
{
	size_t i;
	mg_region *r;

	for (i = 0; i < n; i++) {
		r = (mg_region *)1;
		errno = 0;
		mg_canary_pool_empty();
		mg_fault_set(cases[i].which, cases[i].after, cases[i].err);
		CHECK(mg_region_new(64, flags, &r) == cases[i].want);
		CHECK(errno == cases[i].err);
		CHECK(r == NULL);
		mg_fault_clear();
	}
}

/* Each OS failure maps to its status, with errno, and leaks nothing (ASan's
 * leak checker runs at exit). */
static void test_faults(void)
{
	static const struct fault_case cases[] = {
		{MG_F_MALLOC, 0, ENOMEM, MG_ENOMEM},
		{MG_F_MMAP, 0, ENOMEM, MG_ENOMEM},
		{MG_F_MPROTECT, 0, EACCES, MG_EPROTECT},
		{MG_F_MPROTECT, 0, ENOMEM, MG_ENOMEM}, /* vm.max_map_count */
		{MG_F_MADVISE, 1, ENOMEM, MG_ENOMEM},
		{MG_F_MADVISE, 0, EINVAL, MG_EPROTECT},
		{MG_F_MADVISE, 1, EINVAL, MG_EPROTECT},
		{FIRST_LOCK, 0, ENOMEM, MG_ELOCK},
		{MG_F_RANDOM, 0, EIO, MG_ERANDOM},
	};
	mg_region *r;

	check_faults(cases, sizeof cases / sizeof cases[0], MG_MAP_LOCK);

	/* without locking, mlock is never called */
	mg_fault_set(MG_F_MLOCK2, 0, EPERM);
	mg_fault_set(MG_F_MLOCK, 0, EPERM);
	CHECK(mg_region_new(64, 0, &r) == MG_OK && r->locked == 0);
	mg_fault_clear();

	mg_canary_pool_empty();
	mg_fault_set(MG_F_RANDOM, 0, EIO);
	CHECK(mg_region_clear(r) == MG_OK);
	CHECK(mg_region_place(r, 8) == MG_ERANDOM && errno == EIO);
	mg_fault_clear();
	CHECK(mg_region_place(r, 8) == MG_OK);

	/* free reports a failed unmap and still frees the metadata; the
	 * mapping itself is then unmapped here so ASan sees no leak */
	{
		unsigned char *base = r->base;
		size_t len = r->map_len;
		mg_fault_set(MG_F_MUNMAP, 0, EINVAL);
		CHECK(mg_region_free(r) == MG_EUNMAP && errno == EINVAL);
		mg_fault_clear();
		CHECK(munmap(base, len) == 0);
	}

	{
		unsigned char buf[8];
		mg_fault_set(MG_F_RANDOM, 0, EIO);
		CHECK(mg_random(buf, sizeof buf) == MG_ERANDOM);
		CHECK(errno == EIO);
		mg_fault_clear();
	}
}

#ifdef MLOCK_ONFAULT
/* Whether the kernel locked the mapping holding p. */
static int kernel_locked(const void *p)
{
	return has_vmflag(p, "lo");
}
#endif

/* Resident pages of the n bytes of pages at p, their flags in vec. */
static size_t resident(void *p, size_t n, unsigned char *vec)
{
	size_t i, count = 0;

	if (mincore(p, n, (void *)vec) != 0)
		return (size_t)-1;
	for (i = 0; i < n / page; i++)
		count += vec[i] & 1;
	return count;
}

#ifdef MLOCK_ONFAULT
/* mlock2 refused as unknown or forbidden: plain mlock locks instead, and
 * is then called directly. Any other refusal is reported as it is. */
static void test_lock_fallback(void)
{
	static const int errs[] = {ENOSYS, EINVAL, EPERM};
	mg_region *r, *r2, *r3;
	size_t i;

	for (i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		mg_lock_forget();
		mg_fault_set(MG_F_MLOCK2, 0, errs[i]);
		CHECK(mg_region_new(3 * page, MG_MAP_LOCK, &r) == MG_OK);
		CHECK(r->locked && kernel_locked(r->pages));
		/* mlock2 is not called again: its refusal goes unseen */
		mg_fault_set(MG_F_MLOCK2, 0, ENOMEM);
		CHECK(mg_region_new(64, MG_MAP_LOCK, &r2) == MG_OK && r2->locked);
		CHECK(kernel_locked(r2->pages));
		/* mlock is */
		mg_fault_set(MG_F_MLOCK, 0, ENOMEM);
		CHECK(mg_region_new(64, MG_MAP_LOCK, &r3) == MG_ELOCK);
		CHECK(errno == ENOMEM && r3 == NULL);
		mg_fault_clear();
		CHECK(mg_region_free(r) == MG_OK && mg_region_free(r2) == MG_OK);
	}

	/* both refused: mlock's error, and nothing remembered */
	mg_lock_forget();
	mg_fault_set(MG_F_MLOCK2, 0, ENOSYS);
	mg_fault_set(MG_F_MLOCK, 0, EPERM);
	CHECK(mg_region_new(64, MG_MAP_LOCK, &r) == MG_ELOCK);
	CHECK(errno == EPERM && r == NULL);
	mg_fault_set(MG_F_MLOCK2, 0, ENOMEM);
	CHECK(mg_region_new(64, MG_MAP_LOCK, &r) == MG_ELOCK && errno == ENOMEM);

	/* over the limit: not retried with mlock, which would say EPERM */
	mg_fault_set(MG_F_MLOCK2, 0, ENOMEM);
	mg_fault_set(MG_F_MLOCK, 0, EPERM);
	CHECK(mg_region_new(64, MG_MAP_LOCK, &r) == MG_ELOCK && errno == ENOMEM);
	mg_fault_clear();
	mg_lock_forget();
}
#endif

/* Destroying or clearing a large region touches only the pages that hold
 * data: the others stay out of memory. */
/* Clear and free wipe every byte written, whatever page the regions are
 * laid out with: residency is asked per kernel page. */
static void test_clear_wipes_written(void)
{
	size_t n = 20 * page > 64 * 1024 ? 20 * page : 64 * 1024, i;
	mg_region *r;
	unsigned char *p;

	CHECK(mg_region_new(n, MG_MAP_LOCK, &r) == MG_OK);
	if (r == NULL)
		return;
	for (i = 0; i < n; i += page + 7)
		r->data[i] = 0x5A;
	CHECK(mg_region_clear(r) == MG_OK);
	p = r->data;
	for (i = 0; i < n && p[i] == 0; i++)
		;
	CHECK(i == n);
	CHECK(mg_region_free(r) == MG_OK);
}

static void test_wipe_touched(void)
{
	const size_t npages = 3000; /* more than one mincore call covers */
	unsigned char *before = calloc(npages, 1), *after = calloc(npages, 1);
	size_t n;
	mg_region *r;
	mg_map m;

	if (before == NULL || after == NULL)
		goto out;
	mg_lock_forget(); /* lock on fault, so untouched pages stay out */
	CHECK(mg_region_new(npages * page - 64, MG_MAP_LOCK, &r) == MG_OK);
	n = resident(r->pages, r->pages_len, before);
	CHECK(n < npages / 2); /* the canaries' pages, perhaps huge ones */
	r->pages[npages / 2 * page + 5] = 0xAA; /* data in the middle */
	r->pages[2500 * page] = 0xAB;          /* past the first call */
	n = resident(r->pages, r->pages_len, before);
	CHECK(mg_region_clear(r) == MG_OK);
	CHECK(resident(r->pages, r->pages_len, after) == n);
	CHECK(memcmp(before, after, npages) == 0);
	CHECK(r->pages[npages / 2 * page + 5] == 0 && r->pages[2500 * page] == 0);
	CHECK(r->data[0] == 0 && r->data[r->size - 1] == 0 && r->data[-1] == 0);

	/* residency unknown: everything is wiped */
	CHECK(mg_region_place(r, r->size) == MG_OK);
	mg_fault_set(MG_F_MINCORE, 0, ENOMEM);
	CHECK(mg_region_clear(r) == MG_OK);
	mg_fault_clear();
	CHECK(resident(r->pages, r->pages_len, after) == npages);
	CHECK(mg_region_free(r) == MG_OK);

	/* an unlocked region's pages may be in swap, not in memory, and the
	 * cache reuses a cleared region: clear wipes every page */
	CHECK(mg_region_new(npages * page - 64, 0, &r) == MG_OK);
	CHECK(resident(r->pages, r->pages_len, before) < npages / 2);
	CHECK(mg_region_clear(r) == MG_OK);
	CHECK(resident(r->pages, r->pages_len, after) == npages);
	CHECK(mg_region_free(r) == MG_OK);

	/* a span that does not start or end on a page: only its bytes */
	CHECK(mg_map_new(npages * page, 0, &m) == MG_OK);
	m.pages[99] = m.pages[100] = 1;
	m.pages[2000 * page + 99] = m.pages[2000 * page + 100] = 1;
	m.pages[1500 * page] = 1;
	n = resident(m.pages, m.pages_len, before);
	CHECK(n == 3 || n >= 512); /* or huge pages */
	mg_wipe_touched(m.pages + 100, 2000 * page);
	CHECK(m.pages[99] == 1 && m.pages[100] == 0);
	CHECK(m.pages[2000 * page + 99] == 0 && m.pages[2000 * page + 100] == 1);
	CHECK(m.pages[1500 * page] == 0);
	CHECK(resident(m.pages, m.pages_len, after) == n);
	mg_wipe_touched(m.pages, m.pages_len);
	CHECK(m.pages[99] == 0 && m.pages[2000 * page + 100] == 0);
	CHECK(resident(m.pages, m.pages_len, after) == n);
	CHECK(memcmp(before, after, npages) == 0);
	/* spans under 64 KiB are wiped whole */
	n = page < 32 * 1024 ? 32 * 1024 / page : 1;
	mg_wipe_touched(m.pages + 4 * page, n * page);
	CHECK(resident(m.pages + 4 * page, n * page, after) == n);
	CHECK(mg_map_free(&m) == MG_OK && m.base == NULL);
out:
	free(before);
	free(after);
}

/* Layout, flags and failures of plain guarded mappings. */
static void test_map(void)
{
	mg_map m;

	CHECK(mg_map_new(0, 0, &m) == MG_EINVAL && m.base == NULL);
	CHECK(mg_map_new(page + 1, 0, &m) == MG_EINVAL);
	CHECK(mg_map_new(SIZE_MAX - page + 1, 0, &m) == MG_EINVAL);
	CHECK(mg_map_new(2 * page, MG_MAP_LOCK, &m) == MG_OK);
	CHECK(m.pages == m.base + page && m.pages_len == 2 * page);
	CHECK(m.map_len == 4 * page && m.locked && !m.secret);
	CHECK(mapped(m.base) && mapped(m.pages + m.pages_len));
	m.pages[0] = m.pages[2 * page - 1] = 1; /* writable */
	CHECK(mg_map_free(&m) == MG_OK);

	mg_fault_set(MG_F_MUNMAP, 0, EINVAL);
	CHECK(mg_map_new(page, 0, &m) == MG_OK);
	{
		unsigned char *base = m.base;
		CHECK(mg_map_free(&m) == MG_EUNMAP && m.base == NULL);
		mg_fault_clear();
		CHECK(munmap(base, 3 * page) == 0);
	}
}

#if defined(__linux__)
/* Secret memory: unreadable through /proc/self/mem, locked and left out of
 * dumps by the kernel, absent from forked children, and every failure
 * cleaned up: no mapping, no descriptor, no metadata left. */
static void test_secret(void)
{
	static const struct fault_case cases[] = {
		{MG_F_MEMFD_SECRET, 0, ENOSYS, MG_EUNSUPPORTED},
		{MG_F_MEMFD_SECRET, 0, EINVAL, MG_EUNSUPPORTED},
		{MG_F_MEMFD_SECRET, 0, EOPNOTSUPP, MG_EUNSUPPORTED},
		{MG_F_MEMFD_SECRET, 0, EPERM, MG_EUNSUPPORTED},
		{MG_F_MEMFD_SECRET, 0, EMFILE, MG_EUNSUPPORTED}, /* no descriptor */
		{MG_F_MEMFD_SECRET, 0, ENOMEM, MG_ENOMEM},
		{MG_F_MMAP, 0, ENOMEM, MG_ENOMEM},
		{MG_F_FTRUNCATE, 0, EIO, MG_EUNSUPPORTED},
		{MG_F_FTRUNCATE, 0, ENOMEM, MG_ENOMEM},
		{MG_F_MMAP_FD, 0, EAGAIN, MG_ELOCK}, /* over RLIMIT_MEMLOCK */
		{MG_F_MMAP_FD, 0, ENOMEM, MG_ENOMEM},
		{MG_F_CLOSE, 0, EIO, MG_ENOMEM},
		{MG_F_MADVISE, 0, EINVAL, MG_EPROTECT},
		{MG_F_MADVISE, 0, ENOMEM, MG_ENOMEM},
		{MG_F_RANDOM, 0, EIO, MG_ERANDOM}, /* the region's canary */
	};
	int fds = open_fds(), mem, status;
	unsigned char buf[16];
	mg_region *r, *plain;
	pid_t pid;
	mg_map m;
	char line[512];

	status = mg_map_new(4 * page, MG_MAP_SECRET, &m);
	if (status == MG_EUNSUPPORTED) {
		printf("secret memory unavailable here (%s): skipped\n",
		       strerror(errno));
		return;
	}
	CHECK(status == MG_OK);
	if (status != MG_OK)
		return;
	CHECK(m.secret && m.locked && m.pages == m.base + page);
	CHECK(m.map_len == 6 * page && m.pages_len == 4 * page);
	CHECK(open_fds() == fds && secret_maps() == 1);
	CHECK(smaps_line(m.pages, NULL, line, sizeof line) &&
	      strstr(line, "secretmem") != NULL && strstr(line, "rw-s") != NULL);
	CHECK(has_vmflag(m.pages, "lo") && has_vmflag(m.pages, "dd"));
	CHECK(has_vmflag(m.pages, "dc") && !has_vmflag(m.pages, "wf"));
	CHECK(smaps_line(m.base, NULL, line, sizeof line) &&
	      strstr(line, "---p") != NULL);
	CHECK(mapped(m.base) && mapped(m.pages + m.pages_len));
	memset(m.pages + page, 0x5C, sizeof buf);

	/* /proc/self/mem reads an ordinary region (the control), not this */
	CHECK(mg_region_new(sizeof buf, 0, &plain) == MG_OK);
	memset(plain->data, 0x5C, sizeof buf);
	mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	CHECK(mem >= 0);
	CHECK(pread(mem, buf, sizeof buf, (off_t)(uintptr_t)plain->data) ==
		      (ssize_t)sizeof buf &&
	      memcmp(buf, plain->data, sizeof buf) == 0);
	CHECK(pread(mem, buf, sizeof buf, (off_t)(uintptr_t)(m.pages + page)) < 0);
	CHECK(close(mem) == 0);
	CHECK(mg_region_free(plain) == MG_OK);

	/* a child has the guard pages but no data pages */
	pid = fork();
	if (pid == 0)
		_exit(mapped(m.base) && !mapped(m.pages) ? 0 : 1);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid &&
	      WIFEXITED(status) && WEXITSTATUS(status) == 0);

	CHECK(mg_map_free(&m) == MG_OK);
	CHECK(secret_maps() == 0);

	/* as a region, locked or not: never through mlock */
	mg_fault_set(MG_F_MLOCK2, 0, ENOMEM);
	mg_fault_set(MG_F_MLOCK, 0, ENOMEM);
	CHECK(mg_region_new(100, MG_MAP_SECRET | MG_MAP_LOCK, &r) == MG_OK);
	mg_fault_clear();
	CHECK(r->secret && r->locked && mg_region_verify(r) == MG_OK);
	CHECK(mg_region_new(3 * page, MG_MAP_SECRET, &plain) == MG_OK);
	CHECK(plain->secret && plain->locked);
	plain->data[0] = 1;
	CHECK(mg_region_recycle(plain) == MG_OK && plain->data[0] == 0);
	r->data[0] = 1;
	CHECK(mg_region_free(r) == MG_OK && mg_region_free(plain) == MG_OK);

	check_faults(cases, sizeof cases / sizeof cases[0], MG_MAP_SECRET);
	CHECK(open_fds() == fds && secret_maps() == 0);

	/* the kernel's own RLIMIT_MEMLOCK charge, for an unprivileged user */
	if (getuid() != 0)
		return;
	pid = fork();
	if (pid == 0) {
		struct rlimit lim = {4 * page, 4 * page};
		int ok = setrlimit(RLIMIT_MEMLOCK, &lim) == 0 && setuid(65534) == 0 &&
			 mg_map_new(8 * page, MG_MAP_SECRET, &m) == MG_ELOCK &&
			 errno == EAGAIN && m.base == NULL &&
			 mg_map_new(2 * page, MG_MAP_SECRET, &m) == MG_OK;
		_exit(ok ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid &&
	      WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
#else
static void test_secret(void)
{
	mg_map m;

	CHECK(mg_map_new(page, MG_MAP_SECRET, &m) == MG_EUNSUPPORTED);
	CHECK(errno == ENOSYS && m.base == NULL);
}
#endif

int main(void)
{
	/* The layout at the system's page size, then at 16 and 64 KiB, the
	 * pages of Apple silicon and of some arm64 Linux kernels. A forced
	 * page is a multiple of the real one, so every length and offset it
	 * gives is still one the kernel accepts. */
	const size_t forced[] = {0, 16 * 1024, 64 * 1024};
	size_t i;

	sys_page = (size_t)sysconf(_SC_PAGESIZE);
	for (i = 0; i < sizeof forced / sizeof forced[0]; i++) {
		if (forced[i] % sys_page != 0 || forced[i] == sys_page)
			continue;
		mg_page_size_force(forced[i]);
		page = forced[i] != 0 ? forced[i] : sys_page;
		test_pages_for();
		test_layout();
		test_invalid_sizes();
		test_canaries();
		test_protect_clear_place();
		test_guard_pages();
		test_regions_free();
		test_clear_wipes_written();
	}
	mg_page_size_force(0);
	page = sys_page;
	test_util();
	test_canary_pool();
	test_faults();
#ifdef MLOCK_ONFAULT
	test_lock_fallback();
#endif
	test_wipe_touched();
	test_map();
	test_secret();
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
