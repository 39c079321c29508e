package memguard

import (
	"encoding/json"
	"expvar"
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
	if s.MemlockLimit == MemlockUnlimited {
		assert.Equal(t, uint64(MemlockUnlimited), s.MemlockHeadroom)
	} else {
		assert.Equal(t, s.MemlockLimit-uint64(s.LockedBytes), s.MemlockHeadroom)
		assert.Equal(t, before.MemlockHeadroom-uint64(regionPagesFor(32)), s.MemlockHeadroom)
	}
}

func TestPublishExpvar(t *testing.T) {
	require.NoError(t, PublishExpvar("memguard_test"))
	b, err := NewBuffer(32)
	require.NoError(t, err)
	defer b.Destroy()
	var got Statistics
	require.NoError(t, json.Unmarshal([]byte(expvar.Get("memguard_test").String()), &got))
	assert.Equal(t, Stats().LiveBuffers, got.LiveBuffers, "live figures, not a copy taken at publication")
	assert.Equal(t, Stats().MemlockLimit, got.MemlockLimit)

	assert.ErrorIs(t, PublishExpvar("memguard_test"), ErrInvalidArgument, "taken: an error, not expvar's panic")
	assert.ErrorIs(t, PublishExpvar(""), ErrInvalidArgument)
}
