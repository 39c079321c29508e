package memguard

import (
	"errors"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// free wipes and unmaps a region made by newRegion, outside the accounts
// that allocRegion keeps; r must not be used afterwards.
func (r *region) free() error { return freeRegions([]*region{r}) }

// The Go layer makes the protection changes and records each one for the
// core, which writes only to pages recorded writable. (That the kernel
// agrees is tested by the faults in tests/fault_test.go.)
func TestProtectRecordsWhatItSets(t *testing.T) {
	r, err := newRegion(32, 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.free()) }()
	require.Equal(t, protRW, r.protection(), "a new region is writable")

	for _, p := range []protection{protRO, protRO, protNone, protRW, protRO} {
		require.NoError(t, r.protect(p))
		assert.Equal(t, p, r.protection())
	}
	// recycle makes a frozen region writable before it clears it.
	assert.Zero(t, r.bytes()[0], "readable")
	require.NoError(t, r.recycle())
	assert.Equal(t, protRW, r.protection())
	require.NoError(t, r.place(32))
	r.bytes()[0] = 1 // and writable, or this faults
}

// A refused mprotect is an ErrProtection carrying the kernel's errno, and
// leaves the recorded protection as it was, so nothing that needs writable
// pages goes ahead.
func TestProtectFailureIsReported(t *testing.T) {
	r, err := newRegion(32, 0)
	require.NoError(t, err)
	defer func() { require.NoError(t, r.free()) }()
	require.NoError(t, r.protect(protRO))

	// A copy of the frozen region whose data pages start one byte off a
	// page boundary, where mprotect fails with EINVAL and touches nothing.
	gone := *r
	misalign(&gone)
	require.NoError(t, gone.protect(protRO), "no change, no system call")

	for name, op := range map[string]func() error{
		"protect":  func() error { return gone.protect(protRW) },
		"wipeData": gone.wipeData,
		"recycle":  gone.recycle,
	} {
		err := op()
		assert.ErrorIs(t, err, ErrProtection, name)
		assert.True(t, errors.Is(err, syscall.EINVAL), "%s: %v", name, err)
		assert.Equal(t, protRO, gone.protection(), name)
	}
}

// A region whose pages cannot be made writable cannot be wiped, but free
// still unmaps it (the kernel zeroes the pages before reuse) and reports why.
func TestFreeReportsARefusedProtect(t *testing.T) {
	r, err := newRegion(32, 0)
	require.NoError(t, err)
	require.NoError(t, r.protect(protRO))
	misalign(r)

	// The error is the refused mprotect, not a failed unmap.
	err = r.free()
	assert.ErrorIs(t, err, ErrProtection)
	assert.True(t, errors.Is(err, syscall.EINVAL), "%v", err)
}

// misalign moves r's data pages one byte off their page boundary, where
// mprotect fails with EINVAL.
func misalign(r *region) {
	p := (*unsafe.Pointer)(unsafe.Pointer(&r.pages))
	*p = unsafe.Add(*p, 1)
}
