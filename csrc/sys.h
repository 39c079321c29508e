/*
 * The calls into the operating system that the core makes, behind wrappers
 * that a test build (MG_FAULT_INJECTION) can make fail on demand, so every
 * error path can be exercised.
 */
#ifndef MEMGUARD_SYS_H
#define MEMGUARD_SYS_H

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#if !defined(SYS_memfd_secret) && (defined(__x86_64__) || defined(__aarch64__))
#define SYS_memfd_secret 447
#endif
#ifdef SYS_memfd_secret
#define MG_HAVE_SECRETMEM 1
#endif
#endif

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
 * Locks on fault: each page is locked when it is first touched (a region's
 * first is touched at once, by its canary), so a page that ever holds a
 * secret byte is locked, and the whole range is charged to RLIMIT_MEMLOCK
 * now, as with mlock. The difference: making a locked read-only mapping
 * writable again makes the kernel pre-fault it, except under
 * MLOCK_ONFAULT, which so spares every Destroy of a frozen buffer a
 * pre-fault; and plain mlock faults in every page at once, however large.
 */
#ifdef MLOCK_ONFAULT
static inline int sys_mlock2_onfault(const void *addr, size_t len)
{
	MG_FAULT(MG_F_MLOCK2, -1);
	return mlock2(addr, len, MLOCK_ONFAULT);
}
#endif

/* On Linux through syscall(2): sanitizer runtimes (ASan, and so go build
 * -asan) replace mlock with a no-op that reports success. */
static inline int sys_mlock(const void *addr, size_t len)
{
	MG_FAULT(MG_F_MLOCK, -1);
#if defined(__linux__)
	return (int)syscall(SYS_mlock, addr, len);
#else
	return mlock(addr, len);
#endif
}

/* vec is void * because macOS declares it char * and Linux unsigned char *. */
static inline int sys_mincore(void *addr, size_t len, void *vec)
{
	MG_FAULT(MG_F_MINCORE, -1);
	return mincore(addr, len, vec);
}

#ifdef MG_HAVE_SECRETMEM
static inline int sys_memfd_secret(void)
{
	MG_FAULT(MG_F_MEMFD_SECRET, -1);
	return (int)syscall(SYS_memfd_secret, 0);
}

static inline int sys_ftruncate(int fd, size_t len)
{
	MG_FAULT(MG_F_FTRUNCATE, -1);
	return ftruncate(fd, (off_t)len);
}

static inline void *sys_mmap_shared_fixed(void *addr, size_t len, int fd)
{
	MG_FAULT(MG_F_MMAP_FD, MAP_FAILED);
	return mmap(addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		    fd, 0);
}

/* Linux releases the descriptor even when close reports an error, so an
 * injected failure releases it too. */
static inline int sys_close(int fd)
{
#ifdef MG_FAULT_INJECTION
	if (mg_fault_hit(MG_F_CLOSE)) {
		int saved = errno;
		(void)close(fd);
		errno = saved;
		return -1;
	}
#endif
	return close(fd);
}
#endif

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
