module github.com/coordkv/coordkv/bindings/go

go 1.22
