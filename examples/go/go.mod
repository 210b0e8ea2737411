module coordkv.local/examples

go 1.22

require github.com/coordkv/coordkv/bindings/go v0.0.0

replace github.com/coordkv/coordkv/bindings/go => ../../bindings/go
