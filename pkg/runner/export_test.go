package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/client"
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
	// The session outlives the build: an export arriving after the
	// build ended writes nothing.
	if _, err := a.open(nil); err == nil {
		t.Fatal("open after discard succeeded")
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("dir holds %v", names)
	}

	b := &atomicFile{path: filepath.Join(dir, "r.oci.tar")}
	if _, err := b.open(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.open(nil); err == nil {
		t.Fatal("a second open succeeded")
	}
	b.discard()
}

// TestTempNames: a temporary tarball's name tells its writer's pid.
func TestTempNames(t *testing.T) {
	dir := t.TempDir()
	a := &atomicFile{path: filepath.Join(dir, "hello-c.gcc.alpine.docker.tar")}
	write(t, a, "x")
	defer a.discard()
	names := dirNames(t, dir)
	if len(names) != 1 {
		t.Fatalf("dir holds %v", names)
	}
	if pid, ok := tempWriter(names[0]); !ok || pid != os.Getpid() {
		t.Errorf("tempWriter(%q) = %d, %v; want this process, %d", names[0], pid, ok, os.Getpid())
	}
	for _, n := range []string{
		"r.oci.tar", ".r.oci.tar.tmp", ".r.oci.tar.123.tmp", // no pid (an older minikit's)
		".r.oci.tar.x.123.tmp", ".r.oci.tar.1.x.tmp", ".r.tar.1.2.tmp", ".r.oci.tar.0.2.tmp",
		".r.oci.tar.1.2", "r.oci.tar.1.2.tmp", ".measure-1.tmp", "..1.2.tmp",
	} {
		if pid, ok := tempWriter(n); ok {
			t.Errorf("tempWriter(%q) = %d: not an export's temporary file", n, pid)
		}
	}
}

// TestRemoveStaleTemps: a run removes the temporary tarballs of writers
// that are gone, and only those.
func TestRemoveStaleTemps(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skipf("no process to outlive: %v", err)
	}
	gone := dead.Process.Pid
	if alive(gone) {
		t.Skipf("pid %d was taken again", gone)
	}
	dir := t.TempDir()
	files := map[string]bool{ // name -> kept
		fmt.Sprintf(".a.oci.tar.%d.1.tmp", gone):         false, // a SIGKILLed export's
		fmt.Sprintf(".b.docker.tar.%d.2.tmp", gone):      false,
		fmt.Sprintf(".c.oci.tar.%d.3.tmp", os.Getppid()): true, // a live run's
		fmt.Sprintf(".d.oci.tar.%d.4.tmp", os.Getpid()):  true, // this process's (another Solve's)
		".e.oci.tar.5.tmp":                               true, // not minikit's naming
		fmt.Sprintf(".f.txt.%d.6.tmp", gone):             true,
		"g.oci.tar":                                      true,
	}
	for n := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, fmt.Sprintf(".h.oci.tar.%d.7.tmp", gone)), 0o755); err != nil {
		t.Fatal(err)
	}
	files[fmt.Sprintf(".h.oci.tar.%d.7.tmp", gone)] = true // a directory: not ours
	if err := removeStaleTemps(dir); err != nil {
		t.Fatal(err)
	}
	for n, kept := range files {
		_, err := os.Lstat(filepath.Join(dir, n))
		if got := err == nil; got != kept {
			t.Errorf("%s: kept %v, want %v", n, got, kept)
		}
	}
	if err := removeStaleTemps(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing directory gave no error")
	}
}

func TestAtomicFileMissingDir(t *testing.T) {
	a := &atomicFile{path: filepath.Join(t.TempDir(), "gone", "r.oci.tar")}
	if _, err := a.open(nil); err == nil {
		t.Fatal("open in a missing directory succeeded")
	}
	a.discard()
}

// TestSolveRemovesStaleTemps: a run into an output directory removes the
// temporary tarballs killed exports left there, not a live run's.
func TestSolveRemovesStaleTemps(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil || alive(dead.Process.Pid) {
		t.Skipf("no pid known to be free (%v)", err)
	}
	c, err := client.New(context.Background(), "unix:///nonexistent/bk.sock") // never dialled
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := t.TempDir()
	stale := filepath.Join(out, fmt.Sprintf(".r.oci.tar.%d.1.tmp", dead.Process.Pid))
	live := filepath.Join(out, fmt.Sprintf(".r.docker.tar.%d.2.tmp", os.Getppid()))
	for _, p := range []string{stale, live} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Solve(context.Background(), c, nil, SamplesDir(t.TempDir()), OCI(out), Docker(out)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file %s: %v; want it removed", stale, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live run's temporary file: %v", err)
	}
}
