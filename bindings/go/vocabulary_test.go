// The vocabulary against include/coordkv.h: every group of codes in the header (statuses,
// event kinds, cancel reasons, operations) is exactly the binding's constants, and each is
// named as the library names it. A constant added to the header without its Go constant
// (or the other way round) fails here.

package coordkv_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	coordkv "github.com/coordkv/coordkv/bindings/go"
)

// headerConstants reads every `#define CKV_* <number>` of the committed header.
func headerConstants(t *testing.T) map[string]int32 {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("..", "..", "include", "coordkv.h"))
	if err != nil {
		t.Fatal(err)
	}
	constants := map[string]int32{}
	for _, m := range regexp.MustCompile(`(?m)^#define (CKV_\w+) (-?\d+)$`).FindAllStringSubmatch(string(text), -1) {
		value, err := strconv.ParseInt(m[2], 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		constants[m[1]] = int32(value)
	}
	if constants["CKV_OK"] != 0 || len(constants) < 20 {
		t.Fatalf("the header's constants did not parse: %v", constants)
	}
	return constants
}

var groupPrefixes = []string{"CKV_EVENT_", "CKV_CANCEL_", "CKV_OP_"}

// headerGroup is name (without prefix) -> code for one group; "CKV_" is the statuses.
func headerGroup(t *testing.T, prefix string) map[string]int32 {
	group := map[string]int32{}
	for name, value := range headerConstants(t) {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		if prefix == "CKV_" && hasGroupPrefix(name) {
			continue
		}
		group[strings.TrimPrefix(name, prefix)] = value
	}
	return group
}

func hasGroupPrefix(name string) bool {
	for _, p := range groupPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// checkGroup compares the header's group with the binding's codes and their names.
func checkGroup(t *testing.T, prefix string, codes []int32, name func(int32) string) {
	t.Helper()
	want := headerGroup(t, prefix)
	got := map[string]int32{}
	for _, code := range codes {
		got[name(code)] = code
	}
	if len(got) != len(want) {
		t.Errorf("%s: the header has %v, the binding %v", prefix, want, got)
	}
	for n, code := range want {
		if got[n] != code {
			t.Errorf("%s%s = %d in the header; the binding names %d %q", prefix, n, code, code, name(code))
		}
	}
}

func TestStatusesAreTheHeaders(t *testing.T) {
	codes := []int32{int32(coordkv.StatusOK)}
	for _, s := range allStatuses {
		codes = append(codes, int32(s.status))
	}
	checkGroup(t, "CKV_", codes, func(c int32) string { return coordkv.Status(c).String() })
}

func TestEventKindsAreTheHeaders(t *testing.T) {
	kinds := []coordkv.EventKind{coordkv.EventPut, coordkv.EventDelete, coordkv.EventPurge,
		coordkv.EventExpired, coordkv.EventSynced, coordkv.EventProgress, coordkv.EventCanceled}
	var codes []int32
	for _, k := range kinds {
		codes = append(codes, int32(k))
	}
	checkGroup(t, "CKV_EVENT_", codes, func(c int32) string { return coordkv.EventKind(c).String() })
	if got := coordkv.EventKind(0).String(); got != "UNKNOWN" {
		t.Errorf("EventKind(0) = %q", got)
	}
}

func TestCancelReasonsAreTheHeaders(t *testing.T) {
	reasons := []coordkv.CancelReason{coordkv.CancelClosed, coordkv.CancelOverflow,
		coordkv.CancelWatcherLimit, coordkv.CancelHistoryLost, coordkv.CancelStoreClosed}
	var codes []int32
	for _, r := range reasons {
		codes = append(codes, int32(r))
	}
	// String() is the library's name in lower case with spaces ("store closed").
	checkGroup(t, "CKV_CANCEL_", codes, func(c int32) string {
		return strings.ToUpper(strings.ReplaceAll(coordkv.CancelReason(c).String(), " ", "_"))
	})
	if got := coordkv.CancelReason(0).String(); got != "none" {
		t.Errorf("CancelReason(0) = %q", got)
	}
}

func TestOperationsAreTheHeaders(t *testing.T) {
	ops := []coordkv.Operation{coordkv.OpPut, coordkv.OpDelete, coordkv.OpPurge, coordkv.OpExpired}
	var codes []int32
	for _, o := range ops {
		codes = append(codes, int32(o))
	}
	checkGroup(t, "CKV_OP_", codes, func(c int32) string { return coordkv.Operation(c).String() })
}
