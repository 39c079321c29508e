module github.com/securememory/memguard/benchmarks

go 1.26.0

require (
	github.com/awnumar/memguard v0.23.0
	github.com/securememory/memguard v0.0.0
	github.com/stretchr/testify v1.12.1
	golang.org/x/crypto v0.59.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/awnumar/memcall v0.4.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)

replace github.com/securememory/memguard => ../
