package securememory_test

import (
	"fmt"

	"github.com/securememory/memguard/securememory"
)

func ExampleFactory() {
	var factory securememory.SecretFactory = new(securememory.Factory)
	key := []byte("a 32-byte data key from the KMS!")
	secret, err := factory.New(key) // key is wiped
	if err != nil {
		panic(err)
	}
	fmt.Println("source wiped:", key[0] == 0)

	secret.WithBytes(func(b []byte) error {
		fmt.Println("length:", len(b))
		return nil
	})
	secret.Close()
	fmt.Println(secret.WithBytes(func([]byte) error { return nil }))
	// Output:
	// source wiped: true
	// length: 32
	// secret has already been destroyed
}
