package memguard

import (
	"encoding/json"
	"expvar"
	"fmt"
	"sync/atomic"
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

var expvarRuns atomic.Int32

func TestPublishExpvar(t *testing.T) {
	// expvar names are process-wide and permanent: a new one per run, so
	// the test also passes with -count=N.
	name := fmt.Sprintf("memguard_test_%d", expvarRuns.Add(1))
	require.NoError(t, PublishExpvar(name))
	b, err := NewBuffer(32)
	require.NoError(t, err)
	defer b.Destroy()
	var got Statistics
	require.NoError(t, json.Unmarshal([]byte(expvar.Get(name).String()), &got))
	assert.Equal(t, Stats().LiveBuffers, got.LiveBuffers, "live figures, not a copy taken at publication")
	assert.Equal(t, Stats().MemlockLimit, got.MemlockLimit)

	assert.ErrorIs(t, PublishExpvar(name), ErrInvalidArgument, "taken: an error, not expvar's panic")
	assert.ErrorIs(t, PublishExpvar(""), ErrInvalidArgument)
}
