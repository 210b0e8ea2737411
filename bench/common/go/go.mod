module coordkv.local/bench/harness

go 1.22
