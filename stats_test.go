package memguard

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemlockHeadroom(t *testing.T) {
	drainCache()
	before := Stats()
	b, err := NewBuffer(32)
	require.NoError(t, err)
	defer b.Destroy()
	s := Stats()
	assert.Equal(t, !canLockWithoutLimit(), s.MemlockEnforced)
	if s.MemlockLimit == MemlockUnlimited || !s.MemlockEnforced {
		assert.Equal(t, uint64(MemlockUnlimited), s.MemlockHeadroom)
	} else {
		assert.Equal(t, s.MemlockLimit-uint64(s.LockedBytes), s.MemlockHeadroom)
		assert.Equal(t, before.MemlockHeadroom-uint64(regionPagesFor(32)), s.MemlockHeadroom)
	}
}
