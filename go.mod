module github.com/securememory/memguard

go 1.26
