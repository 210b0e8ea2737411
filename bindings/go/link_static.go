//go:build coordkv_static

// With -tags coordkv_static the archive libcoordkv.a is linked into the Go binary, which
// then needs no libcoordkv.so at run time. The trailing system libraries are the ones the
// Rust standard library and tokio pull in (`cargo rustc -- --print native-static-libs`).
// CGO_LDFLAGS="-L/dir" selects another archive, as for the dynamic build.

package coordkv

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: -L${SRCDIR}/../../target/debug -Wl,-Bstatic -lcoordkv -Wl,-Bdynamic -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
import "C"
