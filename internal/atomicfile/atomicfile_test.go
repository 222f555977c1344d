package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplacesOnlyOnSuccess(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("one"), 0o640); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	if got, _ := os.ReadFile(p); string(got) != "one" {
		t.Errorf("destination changed by a failed write: %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
}

func TestWriteFileIfChanged(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if w, err := WriteFileIfChanged(p, []byte("x"), 0o644); err != nil || !w {
		t.Fatalf("first write: %v %v", w, err)
	}
	if w, err := WriteFileIfChanged(p, []byte("x"), 0o755); err != nil || w {
		t.Fatalf("same content rewritten: %v %v", w, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o755 {
		t.Errorf("mode not updated: %v", fi.Mode())
	}
	if w, _ := WriteFileIfChanged(p, []byte("y"), 0o755); !w {
		t.Error("changed content not written")
	}
}
