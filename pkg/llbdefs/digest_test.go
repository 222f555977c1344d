package llbdefs

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateDigests = flag.Bool("update-digests", false, "rewrite testdata/definitions.golden from the current code")

// definitionDigests is one line per recipe of All() and way of compiling
// it: the digest of its marshalled definition (every op, in order).
func definitionDigests(t *testing.T) string {
	t.Helper()
	epoch := time.Unix(1700000000, 0)
	variants := []struct {
		name string
		src  func() Sources
	}{
		{"default", DefaultSources},
		{"resolver", func() Sources { s := DefaultSources(); s.Resolver = fakeImages{}; return s }}, // dockerfile_test.go
		{"compiler-cache", func() Sources { s := DefaultSources(); s.CompilerCache = true; return s }},
		{"epoch", func() Sources { s := DefaultSources(); s.Epoch = &epoch; return s }},
	}
	var b strings.Builder
	for _, r := range All() {
		for _, v := range variants {
			d, err := r.Definition(context.Background(), v.src())
			if err != nil {
				t.Fatalf("%s (%s): %v", r.Name, v.name, err)
			}
			fmt.Fprintf(&b, "%s %s %s\n", r.Name, v.name, defDigest(d))
		}
	}
	return b.String()
}

// TestDefinitionDigestsPinned: the LLB of every catalog and extra recipe,
// compiled four ways, is byte for byte what testdata/definitions.golden
// recorded. A change to the stage language must not move a recipe's
// graph (its cache keys and its image); a deliberate change, or a BuildKit
// upgrade that changes how LLB marshals, rewrites the file with
// -update-digests and shows in review.
func TestDefinitionDigestsPinned(t *testing.T) {
	golden := filepath.Join("testdata", "definitions.golden")
	got := definitionDigests(t)
	if *updateDigests {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (create it with -update-digests)", err)
	}
	if got == string(want) {
		return
	}
	wantLines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(want)), "\n") {
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			wantLines[l[:i]] = l[i+1:]
		}
	}
	gotLines := strings.Split(strings.TrimSpace(got), "\n")
	for _, l := range gotLines {
		i := strings.LastIndexByte(l, ' ')
		key, d := l[:i], l[i+1:]
		w, ok := wantLines[key]
		switch {
		case !ok:
			t.Errorf("%s: not in %s", key, golden)
		case w != d:
			t.Errorf("%s: definition %s, pinned %s", key, d, w)
		}
		delete(wantLines, key)
	}
	for key := range wantLines {
		t.Errorf("%s: pinned in %s but no longer compiled", key, golden)
	}
}
