// The shared KV scenarios of tests/vectors/ops.json (its "comment" is the format),
// through the Go binding on every backend: the same calls and answers the Rust, C and
// Python suites check. What only Go can get wrong stays in the other test files.

package coordkv_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	coordkv "github.com/coordkv/coordkv/bindings/go"
)

// clockSlack is how far the server's clock may be from ours when it stamps an entry.
const clockSlack = 5 * time.Second

type opsValue struct {
	Value    *string `json:"value"`
	ValueHex *string `json:"value_hex"`
}

// bytes is the `value` (text) or `value_hex` field; neither is the empty value.
func (v opsValue) bytes() []byte {
	switch {
	case v.ValueHex != nil:
		b, err := hex.DecodeString(*v.ValueHex)
		if err != nil {
			panic(err)
		}
		return b
	case v.Value != nil:
		return []byte(*v.Value)
	}
	return []byte{}
}

type opsStep struct {
	Op     string `json:"op"`
	Key    string `json:"key"`
	Prefix string `json:"prefix"`
	opsValue
	Rev        any    `json:"rev"`
	As         string `json:"as"`
	Status     string `json:"status"`
	Current    any    `json:"current"`
	MessageHas string `json:"message_has"`
	// Saw is nil when the step has none, and "null" for "no live value".
	Saw    json.RawMessage `json:"saw"`
	Expect json.RawMessage `json:"expect"`
}

type opsEntry struct {
	Key *string `json:"key"`
	opsValue
	Rev any    `json:"rev"`
	Op  string `json:"op"`
}

// entryView is an entry as the scenarios spell one, so results compare with ==.
type entryView struct {
	Key, Value string
	Rev        uint64
	Op         string
}

// seen is what read_modify_write's function was given.
type seen struct {
	exists bool
	value  string
}

var writeOps = map[string]bool{"put": true, "create": true, "update": true, "delete": true, "purge": true, "read_modify_write": true}

func TestOpsVectors(t *testing.T) {
	raw, err := os.ReadFile("../../tests/vectors/ops.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors struct {
		Scenarios []struct {
			Name   string            `json:"name"`
			Config json.RawMessage   `json:"config"`
			Steps  []json.RawMessage `json:"steps"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(raw, &vectors); err != nil || len(vectors.Scenarios) == 0 {
		t.Fatalf("ops.json: %v", err)
	}
	eachBackendWith(t, func(t *testing.T, b backend) {
		for _, scenario := range vectors.Scenarios {
			t.Run(scenario.Name, func(t *testing.T) {
				var cfg coordkv.Config
				if scenario.Config != nil {
					decoder := json.NewDecoder(bytes.NewReader(scenario.Config))
					decoder.DisallowUnknownFields()
					if err := decoder.Decode(&cfg); err != nil {
						t.Fatalf("config %s: %v", scenario.Config, err)
					}
				}
				run := &opsRun{store: b.open(t, cfg), named: map[string]uint64{}, started: time.Now()}
				for i, text := range scenario.Steps {
					var step opsStep
					err := json.Unmarshal(text, &step)
					if err == nil {
						err = run.step(step)
					}
					if err != nil {
						t.Fatalf("step %d %s: %v", i, text, err)
					}
				}
			})
		}
	})
}

// opsRun is one run of one scenario: the revisions its writes named, and what it has seen.
type opsRun struct {
	store   *coordkv.Store
	named   map[string]uint64
	latest  uint64
	started time.Time
}

// revision is a number, or "$name" for the revision a write named.
func (r *opsRun) revision(reference any) (uint64, error) {
	switch ref := reference.(type) {
	case nil:
		return 0, nil
	case float64:
		return uint64(ref), nil
	case string:
		if revision, ok := r.named[strings.TrimPrefix(ref, "$")]; ok && strings.HasPrefix(ref, "$") {
			return revision, nil
		}
	}
	return 0, fmt.Errorf("no revision %v yet", reference)
}

// call makes the step's call; read_modify_write's function records what it saw.
func (r *opsRun) call(step opsStep, revision uint64, saw *[]seen) (any, error) {
	s := r.store
	switch step.Op {
	case "put":
		return s.Put(step.Key, step.bytes())
	case "create":
		return s.Create(step.Key, step.bytes())
	case "update":
		return s.Update(step.Key, step.bytes(), revision)
	case "delete":
		return s.Delete(step.Key, revision)
	case "purge":
		return s.Purge(step.Key)
	case "read_modify_write":
		return s.ReadModifyWrite(step.Key, func(current []byte, exists bool) ([]byte, error) {
			*saw = append(*saw, seen{exists, string(current)})
			return step.bytes(), nil
		})
	case "get":
		e, err := s.Get(step.Key)
		return []coordkv.Entry{e}, err
	case "list":
		return s.List(step.Prefix)
	case "history":
		return s.History(step.Key)
	case "keys":
		return s.Keys(step.Prefix)
	case "delete_prefix":
		return s.DeletePrefix(step.Prefix)
	case "last_revision":
		return s.LastRevision()
	case "close":
		return nil, s.Close()
	}
	panic("unknown op " + step.Op)
}

func (r *opsRun) step(step opsStep) error {
	var saw []seen
	revision, err := r.revision(step.Rev)
	if err != nil {
		return err
	}
	got, err := r.call(step, revision, &saw)
	if err := r.checkSaw(step, saw); err != nil {
		return err
	}
	wantStatus := step.Status
	if wantStatus == "" {
		wantStatus = "OK"
	}
	if err != nil {
		return r.checkError(step, wantStatus, err)
	}
	if wantStatus != "OK" {
		return fmt.Errorf("succeeded with %v, want %s", got, wantStatus)
	}
	if writeOps[step.Op] {
		rev := got.(uint64)
		if rev <= r.latest {
			return fmt.Errorf("revision %d after %d", rev, r.latest)
		}
		r.latest = rev
		if step.As != "" {
			r.named[step.As] = rev
		}
		return nil
	}
	return r.checkResult(step, got)
}

func (r *opsRun) checkSaw(step opsStep, saw []seen) error {
	var want []seen
	if step.Saw != nil {
		var value *string
		if err := json.Unmarshal(step.Saw, &value); err != nil {
			return err
		}
		if value == nil {
			want = []seen{{}}
		} else {
			want = []seen{{true, *value}}
		}
	}
	if !slices.Equal(saw, want) {
		return fmt.Errorf("the function saw %+v, want %+v", saw, want)
	}
	return nil
}

func (r *opsRun) checkError(step opsStep, wantStatus string, err error) error {
	var e *coordkv.Error
	if !errors.As(err, &e) {
		return fmt.Errorf("want an *Error, got %T: %v", err, err)
	}
	wantCurrent, rerr := r.revision(step.Current)
	if rerr != nil {
		return rerr
	}
	if e.Status.String() != wantStatus || !strings.HasPrefix(e.Message, wantStatus+": ") ||
		!strings.Contains(e.Message, step.MessageHas) || e.CurrentRevision != wantCurrent {
		return fmt.Errorf("failed with %q (current revision %d), want %s containing %q (current revision %d)",
			e.Message, e.CurrentRevision, wantStatus, step.MessageHas, wantCurrent)
	}
	return nil
}

func (r *opsRun) checkResult(step opsStep, got any) error {
	switch got := got.(type) {
	case []coordkv.Entry:
		views, err := r.entryViews(got)
		if err != nil {
			return err
		}
		want, err := r.expectedEntries(step)
		return compared(slices.Equal(views, want), views, want, err)
	case []string:
		var want []string
		err := json.Unmarshal(step.Expect, &want)
		return compared(slices.Equal(got, want), got, want, err)
	case uint64: // a count or a revision
		var expect any
		if err := json.Unmarshal(step.Expect, &expect); err != nil {
			return err
		}
		want, err := r.revision(expect)
		return compared(got == want, got, want, err)
	}
	return nil // close
}

func compared(same bool, got, want any, err error) error {
	if err == nil && !same {
		err = fmt.Errorf("got %+v, want %+v", got, want)
	}
	return err
}

// entryViews checks each entry's timestamp falls within the run.
func (r *opsRun) entryViews(entries []coordkv.Entry) ([]entryView, error) {
	var views []entryView
	for _, e := range entries {
		if e.Timestamp.Before(r.started.Add(-clockSlack)) || e.Timestamp.After(time.Now().Add(clockSlack)) {
			return nil, fmt.Errorf("%s has timestamp %v", e.Key, e.Timestamp)
		}
		views = append(views, entryView{e.Key, string(e.Value), e.Revision, e.Operation.String()})
	}
	return views, nil
}

// expectedEntries is the step's `expect` as entry views (get's one entry in a list).
func (r *opsRun) expectedEntries(step opsStep) ([]entryView, error) {
	var entries []opsEntry
	expect := step.Expect
	if step.Op == "get" {
		expect = append(append([]byte("["), expect...), ']')
	}
	if err := json.Unmarshal(expect, &entries); err != nil {
		return nil, err
	}
	var views []entryView
	for _, e := range entries {
		rev, err := r.revision(e.Rev)
		if err != nil {
			return nil, err
		}
		key := step.Key
		if e.Key != nil {
			key = *e.Key
		}
		views = append(views, entryView{key, string(e.bytes()), rev, e.Op})
	}
	return views, nil
}
