//go:build cgo

package memguard

import "github.com/securememory/memguard/internal/hooks"

func init() {
	hooks.Seclude = func(v any) error {
		b, ok := v.(*Buffer)
		if !ok {
			return ErrInvalidArgument
		}
		return b.seclude()
	}
}
