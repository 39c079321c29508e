//go:build ignore
// (Built and run by `make test-c`, not by the Go tool.)

/*
 * Tests for the C core on its own. Built by `make test` with
 * -fsanitize=address,undefined and -DMG_FAULT_INJECTION.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memguard.h"

static int passed, failed;

#define CHECK(cond)                                                       \
	do {                                                              \
		if (cond) {                                               \
			passed++;                                         \
		} else {                                                  \
			failed++;                                         \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n",      \
				__FILE__, __LINE__, #cond);               \
		}                                                         \
	} while (0)

/* The page size regions are laid out with, forced or the system's, and
 * the system's, which the kernel's calls take. */
static size_t page, sys_page;

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

	CHECK(mg_region_new(size, 1, &r) == MG_OK);
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
	CHECK(mg_region_new(0, 1, &r) == MG_EINVAL && r == NULL);
	CHECK(mg_region_new(SIZE_MAX, 1, &r) == MG_EINVAL);
	CHECK(mg_region_new(SIZE_MAX - 3 * page, 1, &r) != MG_OK);

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

static int mapped(const void *p)
{
	/* mprotect fails with ENOMEM on an address that is not mapped */
	return mprotect((void *)((uintptr_t)p & ~(uintptr_t)(sys_page - 1)), sys_page, PROT_NONE) == 0 || errno != ENOMEM;
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

/* Each OS failure maps to its status, with errno, and leaks nothing (ASan's
 * leak checker runs at exit). */
static void test_faults(void)
{
	struct {
		enum mg_fault which;
		int after, err, want;
	} cases[] = {
		{MG_F_MALLOC, 0, ENOMEM, MG_ENOMEM},
		{MG_F_MMAP, 0, ENOMEM, MG_ENOMEM},
		{MG_F_MPROTECT, 0, EACCES, MG_EPROTECT},
		{MG_F_MPROTECT, 0, ENOMEM, MG_ENOMEM}, /* vm.max_map_count */
		{MG_F_MADVISE, 1, ENOMEM, MG_ENOMEM},
		{MG_F_MADVISE, 0, EINVAL, MG_EPROTECT},
		{MG_F_MADVISE, 1, EINVAL, MG_EPROTECT},
		{MG_F_MLOCK, 0, EPERM, MG_ELOCK},
		{MG_F_RANDOM, 0, EIO, MG_ERANDOM},
	};
	size_t i;
	mg_region *r;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		r = (mg_region *)1;
		errno = 0;
		mg_canary_pool_empty();
		mg_fault_set(cases[i].which, cases[i].after, cases[i].err);
		CHECK(mg_region_new(64, 1, &r) == cases[i].want);
		CHECK(errno == cases[i].err);
		CHECK(r == NULL);
		mg_fault_clear();
	}

	/* without locking, mlock is never called */
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
	}
	mg_page_size_force(0);
	page = sys_page;
	test_util();
	test_canary_pool();
	test_faults();
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
