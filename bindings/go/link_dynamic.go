//go:build !coordkv_static

// How the package finds libcoordkv by default: dynamically, from the repository's debug
// build, with an rpath so `go test` runs without LD_LIBRARY_PATH. Flags in CGO_LDFLAGS
// come before these on the link line, so `CGO_LDFLAGS="-L/dir -Wl,-rpath,/dir"` points a
// build at a release or installed library instead (see README.md).

package coordkv

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: -L${SRCDIR}/../../target/debug -Wl,-rpath,${SRCDIR}/../../target/debug -lcoordkv
import "C"
