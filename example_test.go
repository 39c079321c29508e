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
