package runner

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseOutput(t *testing.T) {
	good := map[string]Export{
		"image":           {Kind: ExportImage},
		"oci=out":         {Kind: ExportOCI, Dir: "out"},
		"docker=/tmp/x":   {Kind: ExportDocker, Dir: "/tmp/x"},
		" oci=a=b ":       {Kind: ExportOCI, Dir: "a=b"},
		"docker=./images": {Kind: ExportDocker, Dir: "./images"},
	}
	for in, want := range good {
		got, err := ParseOutput(in)
		if err != nil || got != want {
			t.Errorf("ParseOutput(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":             "want image, oci=DIR or docker=DIR",
		"=dir":         "want image, oci=DIR or docker=DIR",
		"oci":          "a directory is required",
		"oci=":         "a directory is required",
		"docker":       "a directory is required",
		"image=dir":    "takes no directory",
		"tar=dir":      `unknown kind "tar"`,
		"type=oci,d=x": `unknown kind "type"`,
		"IMAGE":        `unknown kind "IMAGE"`,
	}
	for in, want := range bad {
		_, err := ParseOutput(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseOutput(%q) error = %v; want one containing %q", in, err, want)
		}
	}
}

func TestExportEntries(t *testing.T) {
	entries, files := exportEntries([]Export{{Kind: ExportImage}, {Kind: ExportOCI, Dir: "o"}, {Kind: ExportDocker, Dir: "d"}}, "hello-c.gcc")
	if len(entries) != 3 || len(files) != 2 {
		t.Fatalf("got %d entries, %d files; want 3, 2", len(entries), len(files))
	}
	for i, typ := range []string{"image", "oci", "docker"} {
		e := entries[i]
		if e.Type != typ || e.Attrs["name"] != "docker.io/library/minikit:hello-c.gcc" {
			t.Errorf("entry %d = %s %v", i, e.Type, e.Attrs)
		}
		if (e.Output == nil) != (typ == "image") || e.Attrs["push"] != "" {
			t.Errorf("entry %d (%s): output set = %v, push = %q", i, typ, e.Output != nil, e.Attrs["push"])
		}
	}
	if files[0].path != filepath.Join("o", "hello-c.gcc.oci.tar") || files[1].path != filepath.Join("d", "hello-c.gcc.docker.tar") {
		t.Errorf("paths %s, %s", files[0].path, files[1].path)
	}
}

// dirNames lists a directory's entries.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func write(t *testing.T, a *atomicFile, data string) io.WriteCloser {
	t.Helper()
	w, err := a.open(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, data); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestAtomicFileCommit(t *testing.T) {
	dir := t.TempDir()
	a := &atomicFile{path: filepath.Join(dir, "r.oci.tar")}
	w := write(t, a, "image")
	if names := dirNames(t, dir); len(names) != 1 || !strings.HasPrefix(names[0], ".r.oci.tar.") || !strings.HasSuffix(names[0], ".tmp") {
		t.Fatalf("while writing, dir holds %v; want one temporary dot file", names)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil { // a second close is harmless
		t.Fatal(err)
	}
	if err := a.commit(); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "r.oci.tar" {
		t.Fatalf("after commit, dir holds %v", names)
	}
	dt, err := os.ReadFile(a.path)
	if err != nil || string(dt) != "image" {
		t.Fatalf("content %q, %v", dt, err)
	}
	fi, _ := os.Stat(a.path)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
}

func TestAtomicFileCommitUnclosed(t *testing.T) {
	// The exporter's writer may still be open when the build returns.
	dir := t.TempDir()
	a := &atomicFile{path: filepath.Join(dir, "r.docker.tar")}
	write(t, a, "data")
	if err := a.commit(); err != nil {
		t.Fatal(err)
	}
	if dt, _ := os.ReadFile(a.path); string(dt) != "data" {
		t.Fatalf("content %q", dt)
	}
}

func TestAtomicFileReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.oci.tar")
	os.WriteFile(path, []byte("old"), 0o644)
	a := &atomicFile{path: path}
	write(t, a, "new").Close()
	if err := a.commit(); err != nil {
		t.Fatal(err)
	}
	if dt, _ := os.ReadFile(path); string(dt) != "new" {
		t.Fatalf("content %q, want new", dt)
	}
}

func TestAtomicFileDiscard(t *testing.T) {
	for _, closed := range []bool{true, false} { // failure after the export, or cancel mid-write
		dir := t.TempDir()
		old := filepath.Join(dir, "old.oci.tar")
		os.WriteFile(old, []byte("previous run"), 0o644)
		a := &atomicFile{path: old}
		w := write(t, a, "partial")
		if closed {
			w.Close()
		}
		a.discard()
		if names := dirNames(t, dir); len(names) != 1 || names[0] != "old.oci.tar" {
			t.Fatalf("closed=%v: after discard, dir holds %v; want only the previous file", closed, names)
		}
		if dt, _ := os.ReadFile(old); string(dt) != "previous run" {
			t.Fatalf("closed=%v: previous file changed to %q", closed, dt)
		}
		if _, err := w.Write([]byte("late")); err == nil {
			t.Errorf("closed=%v: a write after discard succeeded", closed)
		}
	}
}

func TestAtomicFileNothingWritten(t *testing.T) {
	dir := t.TempDir()
	a := &atomicFile{path: filepath.Join(dir, "r.oci.tar")}
	a.discard() // a build that failed before exporting
	if err := a.commit(); err == nil || !strings.Contains(err.Error(), "wrote nothing") {
		t.Fatalf("commit with nothing written: %v", err)
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("dir holds %v", names)
	}
	if _, err := a.open(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.open(nil); err == nil {
		t.Fatal("a second open succeeded")
	}
	a.discard()
}

func TestAtomicFileMissingDir(t *testing.T) {
	a := &atomicFile{path: filepath.Join(t.TempDir(), "gone", "r.oci.tar")}
	if _, err := a.open(nil); err == nil {
		t.Fatal("open in a missing directory succeeded")
	}
	a.discard()
}
