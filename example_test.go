package memguard_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/securememory/memguard"
)

func ExampleBuffer() {
	key, err := memguard.NewBufferRandom(32)
	if err != nil {
		panic(err)
	}
	defer key.Destroy()

	err = key.WithData(func(k []byte) error {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte("message"))
		fmt.Println("tag length:", len(mac.Sum(nil)))
		return nil
	})
	fmt.Println("error:", err)
	fmt.Println(key)
	// Output:
	// tag length: 32
	// error: <nil>
	// memguard.Buffer(32 bytes, frozen)
}

func ExampleBuffer_WithDataMut() {
	b, err := memguard.NewBufferFromBytes([]byte("hunter2"))
	if err != nil {
		panic(err)
	}
	defer b.Destroy()

	err = b.WithDataMut(func([]byte) error { return nil })
	fmt.Println(errors.Is(err, memguard.ErrImmutable))

	b.Melt()
	err = b.WithDataMut(func(p []byte) error {
		copy(p, "HUNTER2")
		return nil
	})
	fmt.Println(err)
	ok, _ := b.EqualTo([]byte("HUNTER2"))
	fmt.Println(ok)
	// Output:
	// true
	// <nil>
	// true
}

func ExampleEnclave() {
	enclave, err := memguard.NewEnclave([]byte("database password"))
	if err != nil {
		panic(err)
	}
	fmt.Println(enclave)

	b, err := enclave.Open()
	if err != nil {
		panic(err)
	}
	defer b.Destroy()
	ok, _ := b.EqualTo([]byte("database password"))
	fmt.Println(b, ok)
	// Output:
	// memguard.Enclave(17 bytes)
	// memguard.Buffer(17 bytes, frozen) true
}

func ExampleCoffer() {
	coffer, err := memguard.NewCoffer()
	if err != nil {
		panic(err)
	}
	defer coffer.Destroy()

	view, err := coffer.View()
	if err != nil {
		panic(err)
	}
	defer view.Destroy()
	coffer.Rekey() // the stored shares change; the key does not
	coffer.WithKey(func(k []byte) error {
		same, _ := view.EqualTo(k)
		fmt.Println(len(k), same)
		return nil
	})
	// Output:
	// 32 true
}

func ExampleStream() {
	s := memguard.NewStream(memguard.WithChunkSize(8))
	msg := []byte("a secret longer than one chunk")
	s.Write(msg) // sealed in chunks; msg is wiped
	fmt.Printf("%d bytes in the stream, source wiped: %v\n", s.Size(), msg[0] == 0)

	first, _ := s.Next()
	fmt.Println("first chunk:", first.Size(), "bytes")
	first.Destroy()

	rest, _ := io.ReadAll(s)
	fmt.Printf("rest: %q\n", rest)
	// Output:
	// 30 bytes in the stream, source wiped: true
	// first chunk: 8 bytes
	// rest: " longer than one chunk"
}

func ExamplePurge() {
	b, _ := memguard.NewBufferFromEntireReader(strings.NewReader("token"))
	e, _ := memguard.NewEnclave([]byte("sealed before the purge"))

	memguard.Purge()

	fmt.Println("buffer alive:", b.Alive())
	_, err := e.Open()
	fmt.Println(errors.Is(err, memguard.ErrDecryption))
	fresh, err := memguard.NewEnclave([]byte("sealed after"))
	fmt.Println(fresh.Size(), err)
	// Output:
	// buffer alive: false
	// true
	// 12 <nil>
}

func ExampleNoAccessWhenIdle() {
	key, err := memguard.NewBufferRandom(32, memguard.NoAccessWhenIdle())
	if err != nil {
		panic(err)
	}
	defer key.Destroy()

	// The pages are readable only while the callback runs: a slice kept
	// past it faults when read, instead of leaking the key.
	err = key.WithData(func(k []byte) error {
		fmt.Println("length:", len(k))
		return nil
	})
	fmt.Println("error:", err)
	// Output:
	// length: 32
	// error: <nil>
}

func ExampleSecretMemory() {
	// Out of the kernel's direct map: not readable through /proc/PID/mem,
	// process_vm_readv or ptrace, even by root.
	key, err := memguard.NewBufferRandom(32, memguard.SecretMemory())
	if errors.Is(err, errors.ErrUnsupported) {
		fmt.Println("no memfd_secret here:", err)
		return
	}
	if err != nil {
		panic(err) // e.g. ErrMemoryLock: secret memory is always locked
	}
	defer key.Destroy()
	fmt.Println("in secret memory:", memguard.Stats().SecretMemoryBuffers > 0)
	fmt.Println("locked:", key.Locked())
	// Output:
	// in secret memory: true
	// locked: true
}

func ExampleAllowFallback() {
	// Secret memory where the kernel has it, ordinary locked pages where
	// it does not (counted in Stats().SecretMemoryFallbacks).
	key, err := memguard.NewBufferRandom(32, memguard.SecretMemory(), memguard.AllowFallback())
	if err != nil {
		panic(err)
	}
	defer key.Destroy()
	fmt.Println(key)
	// Output:
	// memguard.Buffer(32 bytes, frozen)
}

func ExampleCompact() {
	// A small secret in a slot of a shared locked chunk: 48 bytes of
	// locked memory instead of a page.
	token, err := memguard.NewBufferFromBytes([]byte("api-token-0123456789"), memguard.Compact())
	if err != nil {
		panic(err)
	}
	defer token.Destroy()
	fmt.Println(token, memguard.Stats().CompactBuffers > 0)
	// Freeze is enforced by the API: the page stays writable.
	fmt.Println(errors.Is(token.Wipe(), memguard.ErrImmutable))
	// Slots hold at most 256 bytes, and share pages, which cannot be
	// hidden one secret at a time.
	_, err = memguard.NewBuffer(257, memguard.Compact())
	fmt.Println(errors.Is(err, memguard.ErrInvalidSize))
	_, err = memguard.NewBuffer(32, memguard.Compact(), memguard.NoAccessWhenIdle())
	fmt.Println(errors.Is(err, memguard.ErrInvalidArgument))
	// Output:
	// memguard.Buffer(20 bytes, frozen) true
	// true
	// true
	// true
}

func ExampleSetDefaultOptions() {
	// At start-up, before anything is sealed: the process key that seals
	// enclaves is made at the first seal, under the defaults of the time.
	if err := memguard.SetDefaultOptions(memguard.SecretMemory(), memguard.AllowFallback()); err != nil {
		panic(err)
	}
	defer memguard.SetDefaultOptions() // back to ordinary Buffers

	enclave, err := memguard.NewEnclave([]byte("database password"))
	if err != nil {
		panic(err)
	}
	// Options given to a call replace the defaults for that call.
	b, err := enclave.Open(memguard.NoAccessWhenIdle())
	if err != nil {
		panic(err)
	}
	defer b.Destroy()
	ok, err := b.EqualTo([]byte("database password"))
	fmt.Println(ok, err)
	// Output:
	// true <nil>
}
