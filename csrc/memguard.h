/*
 * memguard C core: guarded, locked regions outside any garbage-collected heap.
 *
 * A region is laid out as
 *
 *   [guard page][pad | canary | data (16-aligned) | tail canary][guard page]
 *
 * Guard pages are PROT_NONE and never written, so they cost address space but
 * no resident memory. Only the data pages are locked and advised
 * MADV_DONTDUMP | MADV_WIPEONFORK. The data ends where the tail canary pads it
 * to 16 bytes, and the tail canary ends at the trailing guard page, so an
 * overflow hits either the tail canary or the guard page. Metadata (this
 * struct) lives in the C heap, never inside the region.
 *
 * Every function returns an MG_* status. Where the operating system refused
 * something, errno says why, as a system call would leave it. Nothing here
 * aborts.
 */
#ifndef MEMGUARD_H
#define MEMGUARD_H

#include <stddef.h>

#define MG_CANARY_LEN 16
#define MG_ALIGN 16

enum mg_status {
	MG_OK = 0,
	MG_EINVAL,   /* size is zero, too large, or does not fit the region */
	MG_ENOMEM,   /* mmap or malloc refused */
	MG_ELOCK,    /* mlock refused */
	MG_EPROTECT, /* mprotect or madvise refused */
	MG_ERANDOM,  /* the kernel's random source failed */
	MG_ECANARY,  /* a canary or the padding before it was overwritten */
	MG_EUNMAP    /* munmap refused; the mapping is leaked */
};

/*
 * Protection of a region's data pages. A region starts MG_PROT_RW. Later
 * changes are made by the caller (the Go layer issues mprotect itself, for
 * the reason given in core.go), which records each one in prot. The core
 * reads prot to know what it may touch: it writes only MG_PROT_RW pages and
 * reads only pages that are not MG_PROT_NONE.
 */
enum mg_prot {
	MG_PROT_RW = 0,  /* read and write */
	MG_PROT_RO = 1,  /* read only: frozen */
	MG_PROT_NONE = 2 /* no access: idle */
};

typedef struct mg_region {
	unsigned char *base;  /* start of the mapping: the leading guard page */
	size_t map_len;       /* whole mapping, guard pages included */
	unsigned char *pages; /* first data page */
	size_t pages_len;     /* data pages, a multiple of the page size */
	unsigned char *data;  /* MG_ALIGN-aligned start of the secret */
	size_t size;          /* secret length in bytes */
	size_t tail_len;      /* tail canary bytes after the secret, < MG_ALIGN */
	int locked;           /* data pages are mlocked */
	int prot;             /* enum mg_prot of the data pages, as set by the caller */
	unsigned char canary[MG_CANARY_LEN];
} mg_region;

/* Bytes of data pages needed to hold size secret bytes; 0 if it overflows. */
size_t mg_pages_for(size_t size);
/* mg_pages_for with pages of page bytes; 0 if page is 0. */
size_t mg_pages_for_page(size_t size, size_t page);

int mg_region_new(size_t size, int lock, mg_region **out);
/* Re-lays a cleared, writable region for a new size with a fresh canary. */
int mg_region_place(mg_region *r, size_t size);
/* Full check: both canaries and the zero padding before the leading one.
 * MG_EPROTECT if the region is not readable (MG_PROT_NONE). */
int mg_region_verify(const mg_region *r);
/* Wipes the secret but not the canaries. MG_EPROTECT unless writable. */
int mg_region_wipe(mg_region *r);
/* Wipes data and canaries. MG_EPROTECT unless writable. */
int mg_region_clear(mg_region *r);
/* Verifies, then clears for reuse; if the check fails, clears nothing and
 * returns its status. MG_EPROTECT unless writable. */
int mg_region_recycle(mg_region *r);
/* Wipes and unmaps the region and frees r, whatever fails on the way. Only
 * writable pages can be wiped: for others it returns MG_EPROTECT, after
 * unmapping all the same. */
int mg_region_free(mg_region *r);
/* mg_region_free for n regions at once, reordering rs: adjacent mappings
 * are unmapped by one munmap, which flushes the TLB once per run instead of
 * once per region. */
int mg_regions_free(mg_region **rs, size_t n);

void mg_wipe(void *p, size_t n);
/* 1 if the n bytes at a and b are equal, else 0; time depends only on n. */
int mg_equal(const void *a, const void *b, size_t n);
int mg_random(void *buf, size_t n);
/* Soft RLIMIT_MEMLOCK in bytes; (unsigned long long)-1 when unlimited. */
int mg_memlock_limit(unsigned long long *cur);

#ifdef MG_FAULT_INJECTION
/* Test hook: the call after `after` more successful ones of `which` fails
 * with errno `err`. */
enum mg_fault { MG_F_MMAP, MG_F_MPROTECT, MG_F_MADVISE, MG_F_MLOCK,
		MG_F_MUNMAP, MG_F_RANDOM, MG_F_MALLOC, MG_F_COUNT };
void mg_fault_set(enum mg_fault which, int after, int err);
void mg_fault_clear(void);
/* Test hook: the next canary refills the pool from the random source. */
void mg_canary_pool_empty(void);
/* Test hook: regions made from now on use pages of page bytes, a multiple
 * of the real page size; 0 goes back to the system's. */
void mg_page_size_force(size_t page);
#endif

#endif
