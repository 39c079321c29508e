/*
 * Guarded mappings: data pages between two guard pages, the primitive that
 * regions and arenas are built on. See memguard.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "memguard.h"
#include "sys.h"

#ifdef MG_FAULT_INJECTION
static size_t forced_page;

void mg_page_size_force(size_t page)
{
	forced_page = page;
}
#endif

/* The kernel's page size, which mincore reports residency in; 0 if sysconf
 * fails, which POSIX rules out and which makes every size invalid rather
 * than guessing a page. */
static size_t kernel_page(void)
{
	static size_t cached;

	if (cached == 0) {
		long p = sysconf(_SC_PAGESIZE);
		cached = p > 0 ? (size_t)p : 0;
	}
	return cached;
}

/* The page size regions are laid out with: the kernel's, or in a test
 * build one forced larger. */
size_t mg_page_size(void)
{
#ifdef MG_FAULT_INJECTION
	if (forced_page != 0)
		return forced_page;
#endif
	return kernel_page();
}

/* ENOMEM from mprotect or madvise means splitting the mapping needed more
 * than vm.max_map_count allows: out of mappings, not refused. */
static int advice_status(void)
{
	return errno == ENOMEM ? MG_ENOMEM : MG_EPROTECT;
}

#ifdef MLOCK_ONFAULT
/* Set once mlock2 was refused as unknown or forbidden (old kernels, seccomp
 * filters, qemu-user) and plain mlock worked instead: it will be refused
 * again, so later locks skip it. */
static atomic_int plain_mlock;
#endif

static int lock_pages(void *p, size_t n)
{
#ifdef MLOCK_ONFAULT
	if (!atomic_load_explicit(&plain_mlock, memory_order_relaxed)) {
		if (sys_mlock2_onfault(p, n) == 0)
			return 0;
		if (errno != ENOSYS && errno != EINVAL && errno != EPERM)
			return -1;
		if (sys_mlock(p, n) != 0)
			return -1;
		atomic_store_explicit(&plain_mlock, 1, memory_order_relaxed);
		return 0;
	}
#endif
	return sys_mlock(p, n);
}

#ifdef MG_FAULT_INJECTION
void mg_lock_forget(void)
{
#ifdef MLOCK_ONFAULT
	atomic_store(&plain_mlock, 0);
#endif
}
#endif

static int map_anon(mg_map *m, unsigned flags)
{
	if (sys_mprotect(m->pages, m->pages_len, PROT_READ | PROT_WRITE) != 0)
		return advice_status();
#ifdef MADV_DONTDUMP
	if (sys_madvise(m->pages, m->pages_len, MADV_DONTDUMP) != 0)
		return advice_status();
#endif
#ifdef MADV_WIPEONFORK
	if (sys_madvise(m->pages, m->pages_len, MADV_WIPEONFORK) != 0)
		return advice_status();
#endif
	if (flags & MG_MAP_LOCK) {
		if (lock_pages(m->pages, m->pages_len) != 0)
			return MG_ELOCK;
		m->locked = 1;
	}
	return MG_OK;
}

#ifdef MG_HAVE_SECRETMEM
/*
 * The secret pages replace the data pages of the PROT_NONE reservation. The
 * kernel marks them VM_LOCKED and VM_DONTDUMP itself, and refuses the mmap
 * with EAGAIN when they would exceed RLIMIT_MEMLOCK. mlock must not be
 * called: it finds them locked already, then fails with ENOMEM trying to
 * fault them in, as secret pages cannot be pinned. MADV_WIPEONFORK applies
 * only to private mappings; MADV_DONTFORK leaves a child no mapping at all.
 */
static int map_secret(mg_map *m)
{
	int fd = sys_memfd_secret(), st = MG_OK, saved;

	/* Only a lack of memory is MG_ENOMEM, which the caller may cure by
	 * handing memory back, and only the lock limit MG_ELOCK; anything
	 * else (not built in, forbidden, out of descriptors) means secret
	 * memory cannot be had now: MG_EUNSUPPORTED, errno saying why. */
	if (fd < 0)
		return errno == ENOMEM ? MG_ENOMEM : MG_EUNSUPPORTED;
	if (sys_ftruncate(fd, m->pages_len) != 0)
		st = errno == ENOMEM ? MG_ENOMEM : MG_EUNSUPPORTED;
	else if (sys_mmap_shared_fixed(m->pages, m->pages_len, fd) == MAP_FAILED)
		st = errno == EAGAIN ? MG_ELOCK : errno == ENOMEM ? MG_ENOMEM : MG_EUNSUPPORTED;
	saved = errno;
	/* The mapping holds the memory; a descriptor left open would be one
	 * more way to reach it, so failing to close fails the mapping. */
	if (sys_close(fd) != 0 && st == MG_OK)
		return MG_ENOMEM;
	errno = saved;
	if (st != MG_OK)
		return st;
	m->locked = m->secret = 1;
	if (sys_madvise(m->pages, m->pages_len, MADV_DONTFORK) != 0)
		return advice_status();
	return MG_OK;
}
#endif

int mg_map_new(size_t pages_len, unsigned flags, mg_map *m)
{
	size_t page = mg_page_size();
	int st, saved;

	memset(m, 0, sizeof *m);
	if (page == 0 || pages_len == 0 || pages_len % page != 0 ||
	    pages_len > SIZE_MAX - 2 * page)
		return MG_EINVAL;
#ifndef MG_HAVE_SECRETMEM
	if (flags & MG_MAP_SECRET) {
		errno = ENOSYS;
		return MG_EUNSUPPORTED;
	}
#endif
	m->map_len = pages_len + 2 * page;
	m->base = sys_mmap_none(m->map_len);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		return MG_ENOMEM;
	}
	m->pages = m->base + page;
	m->pages_len = pages_len;
#ifdef MG_HAVE_SECRETMEM
	if (flags & MG_MAP_SECRET)
		st = map_secret(m);
	else
#endif
		st = map_anon(m, flags);
	if (st != MG_OK) {
		/* The failure being reported matters more than a failed
		 * cleanup, which can only leak address space; keep its errno. */
		saved = errno;
		(void)sys_munmap(m->base, m->map_len);
		memset(m, 0, sizeof *m);
		errno = saved;
	}
	return st;
}

int mg_map_free(mg_map *m)
{
	int st = MG_OK;

	mg_wipe_touched(m->pages, m->pages_len);
	if (sys_munmap(m->base, m->map_len) != 0)
		st = MG_EUNMAP;
	memset(m, 0, sizeof *m);
	return st;
}

/*
 * A page that is not resident needs no wipe. An anonymous or secret page
 * that was never touched has no frame: reading it would fault in zeros. A
 * locked page that was touched stays resident until unmapped. An unlocked
 * page (best effort) that was swapped out keeps its copy in swap whatever
 * is done here: writing zeros would only fault it back in and dirty a new
 * frame, leaving the swap slot's contents as they were. Checking is what
 * keeps the destruction of a large, barely used buffer from touching, and
 * so allocating, every one of its pages.
 *
 * A resident page that reads as zeros is left alone: a page only ever read
 * maps the kernel's shared zero page, and writing to it would allocate a
 * frame. Reading it allocates nothing.
 *
 * A span under 64 KiB, or within one page, is wiped whole. A one-page
 * region's page holds its canary, so it is resident anyway. Below 64 KiB
 * the check costs about what it can save: a mincore call takes about as
 * long as wiping 64 KiB, and what it can save is bounded by 64 KiB of
 * page faults.
 */
void mg_wipe_touched(void *p, size_t n)
{
	unsigned char vec[1024];
	unsigned char *start = p, *end = start + n, *a, *lo, *hi;
	size_t page = kernel_page(), npages, i;

	if (n <= page || n < 64 * 1024) {
		mg_wipe(p, n);
		return;
	}
	a = (unsigned char *)((uintptr_t)start & ~(uintptr_t)(page - 1));
	for (; a < end; a += npages * page) {
		npages = ((size_t)(end - a) + page - 1) / page;
		if (npages > sizeof vec)
			npages = sizeof vec;
		if (sys_mincore(a, npages * page, vec) != 0) {
			lo = a > start ? a : start;
			mg_wipe(lo, (size_t)(end - lo));
			return;
		}
		for (i = 0; i < npages; i++) {
			if ((vec[i] & 1) == 0)
				continue;
			lo = a + i * page > start ? a + i * page : start;
			hi = a + (i + 1) * page < end ? a + (i + 1) * page : end;
			if (!mg_is_zero(lo, (size_t)(hi - lo)))
				mg_wipe(lo, (size_t)(hi - lo));
		}
	}
}
