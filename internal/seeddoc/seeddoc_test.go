package seeddoc

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minikit/minikit/internal/standin"
	"github.com/minikit/minikit/pkg/llbdefs"
)

var update = flag.Bool("update", false, "rewrite "+Path)

// TestCheckedInCopyIsCurrent fails when docs/seed-rows.md is not what the
// catalog and the stand-in table give.
func TestCheckedInCopyIsCurrent(t *testing.T) {
	path := filepath.Join("..", "..", Path)
	want := Render(llbdefs.Catalog(), standin.Catalog())
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/seeddoc -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run go test ./internal/seeddoc -update", Path)
	}
}

// TestEveryOfflineRowNamesItsStandIns: each seed row appears once, and a
// row built offline names what every base image was made from.
func TestEveryOfflineRowNamesItsStandIns(t *testing.T) {
	doc := string(Render(llbdefs.Catalog(), standin.Catalog()))
	rows := 0
	for _, r := range llbdefs.Catalog() {
		line := ""
		for _, l := range strings.Split(doc, "\n") {
			if strings.HasPrefix(l, "| `"+r.Name+"` |") {
				if line != "" {
					t.Errorf("%s listed twice", r.Name)
				}
				line = l
			}
		}
		if line == "" {
			t.Errorf("%s missing", r.Name)
			continue
		}
		rows++
		if r.BuildsOffline() && strings.Contains(line, "no stand-in") {
			t.Errorf("%s is built offline but a base has no stand-in: %s", r.Name, line)
		}
		if !r.BuildsOffline() && !strings.Contains(line, r.Offline) {
			t.Errorf("%s: upstream only, but its reason is not given: %s", r.Name, line)
		}
	}
	if rows != 51 {
		t.Errorf("%d rows, want the 51 seed rows", rows)
	}
}

func TestSpecName(t *testing.T) {
	for ref, want := range map[string]string{
		"docker.io/library/gcc:12-bookworm":        "library/gcc:12-bookworm",
		"gcr.io/distroless/static-debian12:latest": "distroless/static-debian12:latest",
		"alpine:3.22": "library/alpine:3.22",
	} {
		if got := specName(ref); got != want {
			t.Errorf("specName(%q) = %q, want %q", ref, got, want)
		}
	}
}
