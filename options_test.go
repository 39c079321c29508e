package memguard

import (
	"bytes"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withDefaults runs the test with the default options set, then restores
// ordinary Buffers.
func withDefaults(t *testing.T, opts ...Option) {
	t.Helper()
	require.NoError(t, SetDefaultOptions(opts...))
	t.Cleanup(func() { require.NoError(t, SetDefaultOptions()) })
}

// constructors calls every constructor and Open with opts, each returning
// a Buffer or an error.
func constructors(t *testing.T) map[string]func(opts ...Option) (*Buffer, error) {
	e, err := NewEnclave(pattern(32))
	require.NoError(t, err)
	return map[string]func(opts ...Option) (*Buffer, error){
		"NewBuffer":          func(opts ...Option) (*Buffer, error) { return NewBuffer(32, opts...) },
		"NewBufferFromBytes": func(opts ...Option) (*Buffer, error) { return NewBufferFromBytes(pattern(32), opts...) },
		"NewBufferRandom":    func(opts ...Option) (*Buffer, error) { return NewBufferRandom(32, opts...) },
		"NewBufferFromReader": func(opts ...Option) (*Buffer, error) {
			return NewBufferFromReader(bytes.NewReader(pattern(32)), 32, opts...)
		},
		"NewBufferFromEntireReader": func(opts ...Option) (*Buffer, error) {
			return NewBufferFromEntireReader(bytes.NewReader(pattern(5000)), opts...)
		},
		"Open": func(opts ...Option) (*Buffer, error) { return e.Open(opts...) },
	}
}

func TestRefusedOptionsAllocateNothing(t *testing.T) {
	cases := []struct {
		opts []Option
		want error
	}{
		{[]Option{Compact(), NoAccessWhenIdle()}, ErrInvalidArgument},
		{[]Option{NoAccessWhenIdle(), nil, Compact(), SecretMemory()}, ErrInvalidArgument},
	}
	ctors := constructors(t)
	for _, c := range cases {
		live, mapped, cached := Stats().LiveBuffers, mappedRegions.Load(), Stats().CachedRegions
		for name, ctor := range ctors {
			b, err := ctor(c.opts...)
			assert.ErrorIs(t, err, c.want, name)
			assert.Nil(t, b, name)
		}
		assert.ErrorIs(t, SetDefaultOptions(c.opts...), c.want)
		assert.Equal(t, live, Stats().LiveBuffers, "nothing allocated")
		assert.Equal(t, mapped, mappedRegions.Load(), "nothing mapped")
		assert.Equal(t, cached, Stats().CachedRegions, "nothing taken from the cache")
	}
	assert.Zero(t, defaultOptions.Load(), "a refused SetDefaultOptions leaves the defaults")
}

func TestNilOptionsAreIgnored(t *testing.T) {
	withDefaults(t, nil, NoAccessWhenIdle(), nil)
	b, err := NewBuffer(32, nil, nil)
	require.NoError(t, err)
	defer b.Destroy()
	assert.True(t, b.secluded, "only nil options: the defaults apply")
	assert.Equal(t, protNone, b.region.protection())
}

func TestCallOptionsReplaceDefaults(t *testing.T) {
	withDefaults(t, NoAccessWhenIdle())
	for name, ctor := range constructors(t) {
		b, err := ctor()
		require.NoError(t, err, name)
		assert.True(t, b.secluded, "%s: the default applies", name)
		assert.Equal(t, protNone, b.region.protection(), name)
		require.NoError(t, b.Destroy())

		b, err = ctor(AllowFallback()) // changes nothing alone, but replaces
		require.NoError(t, err, name)
		assert.False(t, b.secluded, "%s: the call's options replace the defaults", name)
		require.NoError(t, b.Destroy())
	}
}

// The pages of a NoAccessWhenIdle Buffer are PROT_NONE after every call,
// mutable or frozen, and the calls see and change the data.
func TestNoAccessWhenIdleBetweenCalls(t *testing.T) {
	b, err := NewBuffer(20, NoAccessWhenIdle())
	require.NoError(t, err)
	defer b.Destroy()
	idle := func(what string) {
		t.Helper()
		assert.Equal(t, protNone, b.region.protection(), "after %s", what)
	}
	idle("NewBuffer")
	require.NoError(t, b.WithDataMut(func(d []byte) error {
		assert.Equal(t, protRW, b.region.protection())
		copy(d, pattern(20))
		return nil
	}))
	idle("WithDataMut")
	assert.Equal(t, pattern(20), read(t, b))
	idle("WithData")
	ok, err := b.EqualTo(pattern(20))
	assert.True(t, ok)
	assert.NoError(t, err)
	idle("EqualTo")
	require.NoError(t, b.Verify())
	idle("Verify")
	require.NoError(t, b.Freeze())
	idle("Freeze")
	assert.ErrorIs(t, b.Wipe(), ErrImmutable)
	idle("a refused Wipe")
	require.NoError(t, b.Melt())
	idle("Melt")
	require.NoError(t, b.Scramble())
	idle("Scramble")
	require.NoError(t, b.Wipe())
	idle("Wipe")
	assert.Equal(t, make([]byte, 20), read(t, b))

	require.NoError(t, b.region.protect(protRW))
	corruptions["tail canary"](b.region)
	require.NoError(t, b.region.protect(protNone))
	assert.ErrorIs(t, b.WithDataMut(func([]byte) error { return nil }), ErrCanaryCorrupt)
	idle("a canary failure in WithDataMut")
	assert.ErrorIs(t, b.WithData(func([]byte) error { return nil }), ErrCanaryCorrupt)
	idle("a canary failure in WithData")
	_, err = b.Seal()
	assert.ErrorIs(t, err, ErrCanaryCorrupt)
	idle("a failed Seal")
	assert.True(t, b.Alive(), "a failed Seal leaves the Buffer")
	assert.ErrorIs(t, b.Destroy(), ErrCanaryCorrupt)
}

func TestNoAccessWhenIdleSealAndOpen(t *testing.T) {
	b, err := NewBufferFromBytes(pattern(48), NoAccessWhenIdle())
	require.NoError(t, err)
	assert.Equal(t, protNone, b.region.protection())
	e, err := b.Seal()
	require.NoError(t, err)
	assert.False(t, b.Alive())
	o, err := e.Open(NoAccessWhenIdle())
	require.NoError(t, err)
	defer o.Destroy()
	assert.Equal(t, protNone, o.region.protection())
	assert.Equal(t, pattern(48), read(t, o))
}

// Many readers share one window: the pages are readable while any is
// inside and hidden once the last has left.
func TestNoAccessWhenIdleConcurrentReaders(t *testing.T) {
	b, err := NewBufferRandom(64, NoAccessWhenIdle())
	require.NoError(t, err)
	defer b.Destroy()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				assert.NoError(t, b.WithData(func(d []byte) error {
					_ = d[0] // faults unless the window is open
					return nil
				}))
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, protNone, b.region.protection())
	assert.Zero(t, b.viewers)
}

// A hide the kernel refuses is reported, leaves the pages recorded as
// readable, and the next call out hides them.
func TestNoAccessWhenIdleFailedHide(t *testing.T) {
	b, err := NewBufferFromBytes(pattern(32), NoAccessWhenIdle())
	require.NoError(t, err)
	defer b.Destroy()
	saved := protectPages
	defer func() { protectPages = saved }()
	protectPages = func(p unsafe.Pointer, n uintptr, prot int) error {
		if prot == protFlags[protNone] {
			return syscall.ENOMEM
		}
		return saved(p, n, prot)
	}
	err = b.WithData(func([]byte) error { return nil })
	assert.ErrorIs(t, err, ErrProtection)
	assert.ErrorIs(t, err, syscall.ENOMEM)
	assert.Equal(t, protRO, b.region.protection(), "recorded as the kernel left it")
	assert.Zero(t, b.viewers)

	protectPages = saved
	assert.Equal(t, pattern(32), read(t, b), "still readable inside")
	assert.Equal(t, protNone, b.region.protection(), "hidden by the next call out")
}

func TestSecretMemoryBuffers(t *testing.T) {
	drainCache()
	before := Stats()
	for name, ctor := range constructors(t) {
		b, err := ctor(SecretMemory())
		require.NoError(t, err, name)
		assert.Equal(t, classSecret, b.region.class(), name)
		assert.True(t, b.Locked(), name)
		assert.Equal(t, before.SecretMemoryBuffers+1, Stats().SecretMemoryBuffers, name)
		require.NoError(t, b.Verify(), name)
		require.NoError(t, b.Destroy(), name)
		assert.Equal(t, before.SecretMemoryBuffers, Stats().SecretMemoryBuffers, name)
	}
	assert.Equal(t, before.SecretMemoryFallbacks, Stats().SecretMemoryFallbacks, "memfd_secret works here")
	drainCache()
}

func TestSecretMemoryWithEveryOtherOption(t *testing.T) {
	b, err := NewBuffer(32, SecretMemory(), AllowFallback(), NoAccessWhenIdle())
	require.NoError(t, err)
	defer b.Destroy()
	assert.Equal(t, classSecret, b.region.class())
	assert.Equal(t, protNone, b.region.protection())
	require.NoError(t, b.WithDataMut(func(d []byte) error { copy(d, pattern(32)); return nil }))
	assert.Equal(t, pattern(32), read(t, b))
	require.NoError(t, b.Freeze())
	require.NoError(t, b.Melt())
	assert.Equal(t, protNone, b.region.protection())
}

// A cached secret region serves only SecretMemory, and an ordinary one
// only ordinary Buffers.
func TestCacheKeepsClassesApart(t *testing.T) {
	drainCache()
	s, err := NewBuffer(32, SecretMemory())
	require.NoError(t, err)
	secretRegion := s.region
	require.NoError(t, s.Destroy())
	o, err := NewBuffer(32)
	require.NoError(t, err)
	ordinaryRegion := o.region
	require.NoError(t, o.Destroy())
	require.Equal(t, 2, Stats().CachedRegions)

	o, err = NewBuffer(32)
	require.NoError(t, err)
	defer o.Destroy()
	assert.Same(t, ordinaryRegion, o.region)
	s, err = NewBuffer(20, SecretMemory())
	require.NoError(t, err)
	defer s.Destroy()
	assert.Same(t, secretRegion, s.region)
	assert.Equal(t, make([]byte, 20), read(t, s), "wiped before reuse")
	assert.Zero(t, Stats().CachedRegions)
}

// Under LockDisabled secret memory is still locked (by the kernel), and a
// cached secret region serves it.
func TestSecretMemoryUnderLockDisabled(t *testing.T) {
	drainCache()
	SetLockPolicy(LockDisabled)
	defer SetLockPolicy(LockRequired)
	b, err := NewBuffer(32, SecretMemory())
	require.NoError(t, err)
	assert.True(t, b.Locked())
	r := b.region
	require.NoError(t, b.Destroy())
	b, err = NewBuffer(32, SecretMemory())
	require.NoError(t, err)
	defer b.Destroy()
	assert.Same(t, r, b.region)
	plain, err := NewBuffer(32)
	require.NoError(t, err)
	defer plain.Destroy()
	assert.False(t, plain.Locked())
}

func TestDefaultSecretMemoryCoversCoffers(t *testing.T) {
	withDefaults(t, SecretMemory(), NoAccessWhenIdle())
	c, err := NewCoffer(WithRekeyInterval(0))
	require.NoError(t, err)
	defer c.Destroy()
	assert.Equal(t, classSecret, c.store.region.class())
	assert.False(t, c.store.secluded, "a Coffer's page is never hidden")

	Purge() // the process key is made again, under the defaults
	e, err := NewEnclave(pattern(16))
	require.NoError(t, err)
	assert.Equal(t, classSecret, e.key.store.region.class())
	b, err := e.Open()
	require.NoError(t, err)
	defer b.Destroy()
	assert.Equal(t, classSecret, b.region.class())
	assert.True(t, b.secluded)
	assert.Equal(t, pattern(16), read(t, b))
	Purge() // no secret-memory process key for later tests
}

// Purge takes secret buffers and cached secret regions like any other.
func TestPurgeTakesSecretMemory(t *testing.T) {
	a, err := NewBuffer(32, SecretMemory())
	require.NoError(t, err)
	c, err := NewBuffer(32, SecretMemory())
	require.NoError(t, err)
	require.NoError(t, c.Destroy())
	Purge()
	assert.False(t, a.Alive())
	assert.Zero(t, Stats().SecretMemoryBuffers)
	assert.Zero(t, Stats().CachedRegions)
}
