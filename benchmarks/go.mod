module github.com/securememory/memguard/benchmarks

go 1.26.0

require (
	github.com/awnumar/memguard v0.23.0
	github.com/securememory/memguard v0.0.0
	golang.org/x/crypto v0.59.0
	golang.org/x/sys v0.50.0
)

require github.com/awnumar/memcall v0.4.0 // indirect

replace github.com/securememory/memguard => ../
