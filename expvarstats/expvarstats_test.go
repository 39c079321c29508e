package expvarstats_test

import (
	"encoding/json"
	"expvar"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/securememory/memguard"
	"github.com/securememory/memguard/expvarstats"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var runs atomic.Int32

// name is a new expvar name per call: names are process-wide and
// permanent, and the tests must pass with -count=N.
func name() string { return fmt.Sprintf("memguard_test_%d", runs.Add(1)) }

func TestPublish(t *testing.T) {
	n := name()
	require.NoError(t, expvarstats.Publish(n))
	b, err := memguard.NewBuffer(32)
	require.NoError(t, err)
	defer b.Destroy()
	var got memguard.Statistics
	require.NoError(t, json.Unmarshal([]byte(expvar.Get(n).String()), &got))
	assert.Equal(t, memguard.Stats().LiveBuffers, got.LiveBuffers, "live figures, not a copy taken at publication")
	assert.Equal(t, memguard.Stats().MemlockLimit, got.MemlockLimit)

	assert.ErrorIs(t, expvarstats.Publish(n), memguard.ErrInvalidArgument, "taken: an error, not expvar's panic")
	assert.ErrorIs(t, expvarstats.Publish(""), memguard.ErrInvalidArgument)
}

// The published figures are served at /debug/vars by the default mux,
// which is what importing this package, and only this one, sets up.
func TestServedAtDebugVars(t *testing.T) {
	n := name()
	require.NoError(t, expvarstats.Publish(n))
	rec := httptest.NewRecorder()
	http.DefaultServeMux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/vars", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var vars map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &vars))
	require.Contains(t, vars, n)
	var got memguard.Statistics
	require.NoError(t, json.Unmarshal(vars[n], &got))
	assert.Equal(t, memguard.Stats().MemlockLimit, got.MemlockLimit)
}
