package memguard

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// model is what the fuzzer expects a buffer to hold.
type model struct {
	buf    *Buffer
	data   []byte
	frozen bool
}

// fuzzOptions are the option sets FuzzOperations makes buffers with.
var fuzzOptions = [][]Option{
	nil,
	{NoAccessWhenIdle()},
	{SecretMemory()},
	{SecretMemory(), NoAccessWhenIdle()},
	{Compact()},
	{Compact(), SecretMemory()},
}

// fuzzCompact reports whether fuzzOptions[i] has Compact, which makes a
// size above slotMax ErrInvalidSize.
func fuzzCompact(i int) bool { return i >= 4 }

// FuzzOperations runs a sequence of operations, decoded from the input, on
// a few buffers, enclaves and a coffer, and checks each result against a
// model. Purge is one of the operations.
func FuzzOperations(f *testing.F) {
	f.Add([]byte{0, 10, 4, 0, 3, 0, 5, 0, 4, 0, 12, 0, 13, 0, 3, 0})
	f.Add([]byte{1, 5, 2, 7, 14, 0, 3, 0, 13, 0, 12, 1, 15, 0, 16, 0, 14, 0, 17, 0})
	f.Add([]byte{0, 0, 0, 255, 11, 0, 11, 0, 9, 0, 10, 0, 7, 0, 8, 0, 6, 0})
	f.Add([]byte{1, 242, 3, 2, 12, 2, 13, 0, 3, 0, 14, 0, 0, 245, 12, 2, 13, 1, 3, 1, 13, 0})
	f.Add([]byte{18, 10, 4, 0, 3, 0, 5, 0, 4, 0, 37, 20, 13, 0, 3, 1, 12, 1, 56, 3, 14, 0, 3, 0})
	f.Add([]byte{72, 10, 73, 11, 90, 240, 4, 0, 3, 1, 13, 0, 12, 1, 3, 0, 14, 0, 91, 2, 3, 2, 13, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var (
			slots    [3]model
			enclaves []struct {
				e    *Enclave
				data []byte
			}
			coffer      *Coffer
			purged      int // enclaves sealed before this index lost their key
			liveAtStart = Stats().LiveBuffers
		)
		defer func() {
			for _, s := range slots {
				s.buf.Destroy()
			}
			coffer.Destroy()
			if n := Stats().LiveBuffers; n > liveAtStart && processKey.coffer.Destroyed() {
				t.Errorf("%d buffers leaked", n-liveAtStart)
			}
		}()
		expect := func(err error, allowed ...error) {
			t.Helper()
			if err == nil {
				return
			}
			for _, a := range allowed {
				if errors.Is(err, a) {
					return
				}
			}
			t.Fatalf("unexpected error %v", err)
		}
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%18, int(ops[i+1])
			s := &slots[arg%len(slots)]
			switch op {
			case 0, 1, 2: // construct
				s.buf.Destroy()
				size := arg % 80
				if arg >= 240 { // large enough to be sealed with XAES-256-GCM
					size += xaesMinSize
				}
				var b *Buffer
				var err error
				want := make([]byte, size)
				// The options come from the byte's high part, which
				// changes nothing a Buffer's methods promise.
				optIndex := int(ops[i]/18) % len(fuzzOptions)
				opts := fuzzOptions[optIndex]
				switch op {
				case 0:
					b, err = NewBuffer(size, opts...)
				case 1:
					src := bytes.Repeat([]byte{byte(arg)}, size)
					copy(want, src)
					b, err = NewBufferFromBytes(src, opts...)
				case 2:
					b, err = NewBufferFromReader(bytes.NewReader(bytes.Repeat([]byte{byte(arg)}, size)), size, opts...)
					copy(want, bytes.Repeat([]byte{byte(arg)}, size))
				}
				if size == 0 || size > slotMax && fuzzCompact(optIndex) {
					if !errors.Is(err, ErrInvalidSize) || b != nil {
						t.Fatalf("size %d: %v %v", size, b, err)
					}
					*s = model{}
					continue
				}
				expect(err)
				*s = model{buf: b, data: want, frozen: op != 0}
			case 3, 9: // read, compare
				var err error
				if op == 3 {
					err = s.buf.WithData(func(d []byte) error {
						if !bytes.Equal(d, s.data) {
							t.Fatalf("read %x, want %x", d, s.data)
						}
						return nil
					})
				} else {
					var ok bool
					ok, err = s.buf.EqualTo(s.data)
					if err == nil && !ok {
						t.Fatal("EqualTo disagrees with the model")
					}
				}
				checkAlive(t, s, err)
			case 4, 7, 8: // write, scramble, wipe
				var err error
				switch op {
				case 4:
					err = s.buf.WithDataMut(func(d []byte) error {
						for j := range d {
							d[j] = byte(arg + j)
						}
						return nil
					})
				case 7:
					err = s.buf.Scramble()
				case 8:
					err = s.buf.Wipe()
				}
				if s.buf.Alive() && s.frozen {
					if !errors.Is(err, ErrImmutable) {
						t.Fatalf("write to frozen: %v", err)
					}
					continue
				}
				checkAlive(t, s, err)
				if err == nil {
					s.buf.WithData(func(d []byte) error { s.data = append(s.data[:0], d...); return nil })
				}
			case 5:
				checkAlive(t, s, s.buf.Freeze())
				s.frozen = true
			case 6:
				checkAlive(t, s, s.buf.Melt())
				s.frozen = false
			case 10:
				checkAlive(t, s, s.buf.Verify())
			case 11:
				expect(s.buf.Destroy())
				s.buf = nil
			case 12: // seal
				wasAlive := s.buf.Alive()
				e, err := s.buf.Seal()
				if wasAlive != (err == nil) || (err != nil && !errors.Is(err, ErrDestroyed)) {
					t.Fatalf("seal (alive %v): %v", wasAlive, err)
				}
				if s.buf.Alive() {
					t.Fatal("Seal left the buffer alive")
				}
				if err == nil {
					enclaves = append(enclaves, struct {
						e    *Enclave
						data []byte
					}{e, bytes.Clone(s.data)})
					s.buf = nil
				}
			case 13: // open
				if len(enclaves) == 0 {
					continue
				}
				j := arg % len(enclaves)
				b, err := enclaves[j].e.Open()
				if j < purged {
					if !errors.Is(err, ErrDecryption) {
						t.Fatalf("open after purge: %v", err)
					}
					continue
				}
				expect(err)
				s.buf.Destroy()
				*s = model{buf: b, data: bytes.Clone(enclaves[j].data), frozen: true}
			case 14:
				Purge()
				purged = len(enclaves)
				coffer = nil
				for k := range slots {
					slots[k].buf = nil
				}
			case 15: // coffer: create or re-key
				if coffer.Destroyed() {
					c, err := NewCoffer(WithRekeyInterval(0))
					expect(err)
					coffer = c
				} else {
					expect(coffer.Rekey())
				}
			case 16: // coffer view equals its key
				view, err := coffer.View()
				if coffer.Destroyed() {
					expect(err, ErrCofferDestroyed)
					continue
				}
				expect(err)
				err = coffer.WithKey(func(k []byte) error {
					ok, err := view.EqualTo(k)
					if !ok {
						t.Fatal("view differs from key")
					}
					return err
				})
				expect(err)
				view.Destroy()
			case 17:
				expect(coffer.Destroy())
			}
		}
	})
}

// checkAlive accepts ErrDestroyed exactly when the slot has no live buffer.
func checkAlive(t *testing.T, s *model, err error) {
	t.Helper()
	if s.buf.Alive() {
		if err != nil {
			t.Fatalf("live buffer: %v", err)
		}
	} else if !errors.Is(err, ErrDestroyed) {
		t.Fatalf("dead buffer: %v", err)
	}
}

// scriptedReader behaves as its script says: each step returns some bytes,
// none, a lie about the count, EOF or an error. Byte i it gives is byte(i).
type scriptedReader struct {
	script []byte
	given  int
}

var errScripted = errors.New("scripted failure")

func (r *scriptedReader) Read(p []byte) (int, error) {
	if len(r.script) < 2 {
		return 0, io.EOF
	}
	mode, n := r.script[0]%6, int(r.script[1])
	r.script = r.script[2:]
	fill := func(k int) int {
		k = min(k, len(p))
		for i := 0; i < k; i++ {
			p[i] = byte(r.given)
			r.given++
		}
		return k
	}
	switch mode {
	case 0, 1:
		return fill(n), nil
	case 2:
		return 0, nil
	case 3:
		return fill(n), io.EOF
	case 4:
		return fill(n), errScripted
	default:
		return len(p) + n + 1, nil // claims more than it was given
	}
}

// FuzzReaders feeds the reader constructors from adversarial readers: every
// outcome is a correct buffer or an error, and a failure leaves nothing.
// NewBufferFromReaderUntil's delimiter is size's low byte: the reader gives
// byte(i) as its byte i, so the line ends there, or earlier at EOF.
func FuzzReaders(f *testing.F) {
	f.Add(uint16(10), []byte{0, 4, 0, 6})
	f.Add(uint16(5000), []byte{0, 255, 1, 255, 2, 0, 0, 255, 3, 200})
	f.Add(uint16(8), []byte{4, 3})
	f.Add(uint16(8), []byte{5, 0})
	f.Fuzz(func(t *testing.T, size uint16, script []byte) {
		before := Stats().LiveBuffers
		for _, ctor := range []string{"exact", "entire", "until"} {
			r := &scriptedReader{script: append([]byte(nil), script...)}
			var b *Buffer
			var err error
			switch ctor {
			case "entire":
				b, err = NewBufferFromEntireReader(r)
			case "until":
				b, err = NewBufferFromReaderUntil(r, byte(size))
			default:
				b, err = NewBufferFromReader(r, int(size))
			}
			if err != nil {
				if b != nil {
					t.Fatal("buffer and error")
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errScripted) && !errors.Is(err, ErrInvalidArgument) &&
					!errors.Is(err, io.ErrNoProgress) && !errors.Is(err, ErrInvalidSize) {
					t.Fatalf("%s: unexpected error %v", ctor, err)
				}
				continue
			}
			want := int(size)
			switch ctor {
			case "entire":
				want = r.given
			case "until":
				want = min(r.given, int(byte(size)))
			}
			if b.Size() != want {
				t.Fatalf("%s: size %d, want %d", ctor, b.Size(), want)
			}
			b.WithData(func(d []byte) error {
				for i := range d {
					if d[i] != byte(i) {
						t.Fatalf("%s: byte %d is %d", ctor, i, d[i])
					}
				}
				return nil
			})
			b.Destroy()
		}
		if after := Stats().LiveBuffers; after != before {
			t.Fatalf("live buffers %d -> %d", before, after)
		}
	})
}
