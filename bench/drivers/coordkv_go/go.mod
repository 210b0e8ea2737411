module coordkv.local/bench/coordkvgo

go 1.22

require (
	coordkv.local/bench/harness v0.0.0
	github.com/coordkv/coordkv/bindings/go v0.0.0
)

replace (
	coordkv.local/bench/harness => ../../common/go
	github.com/coordkv/coordkv/bindings/go => ../../../bindings/go
)
