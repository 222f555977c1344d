package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
)

// ExportKind is where an image goes.
type ExportKind string

const (
	ExportImage  ExportKind = "image"  // buildkitd's image store, as minikit:NAME
	ExportOCI    ExportKind = "oci"    // DIR/NAME.oci.tar, an OCI image layout
	ExportDocker ExportKind = "docker" // DIR/NAME.docker.tar, for docker load
)

// An Export is one destination for every recipe's image.
type Export struct {
	Kind ExportKind
	Dir  string // for ExportOCI and ExportDocker
}

func (e Export) String() string {
	if e.Dir == "" {
		return string(e.Kind)
	}
	return string(e.Kind) + "=" + e.Dir
}

func (e Export) validate() error {
	switch e.Kind {
	case ExportImage:
		if e.Dir != "" {
			return fmt.Errorf("export %s: the image store takes no directory", e)
		}
	case ExportOCI, ExportDocker:
		if e.Dir == "" {
			return fmt.Errorf("export %s: a directory is required (%s=DIR)", e.Kind, e.Kind)
		}
	default:
		return fmt.Errorf("export %q: unknown kind; want image, oci=DIR or docker=DIR", e.Kind)
	}
	return nil
}

// ParseOutput parses the command line's output syntax: "image" (buildkitd's
// image store), "oci=DIR" or "docker=DIR" (one tarball per recipe in DIR).
func ParseOutput(s string) (Export, error) {
	kind, dir, hasDir := strings.Cut(strings.TrimSpace(s), "=")
	e := Export{Kind: ExportKind(kind), Dir: dir}
	switch {
	case kind == "":
		return Export{}, fmt.Errorf("output %q: want image, oci=DIR or docker=DIR", s)
	case e.Kind == ExportImage && hasDir:
		return Export{}, fmt.Errorf("output %q: the image store takes no directory; write just \"image\"", s)
	case (e.Kind == ExportOCI || e.Kind == ExportDocker) && dir == "":
		return Export{}, fmt.Errorf("output %q: a directory is required, as in %s=DIR", s, kind)
	case strings.ContainsRune(dir, 0):
		return Export{}, fmt.Errorf("output %q: a directory name cannot hold a NUL byte", s)
	}
	if err := e.validate(); err != nil {
		return Export{}, fmt.Errorf("output %q: unknown kind %q; want image, oci=DIR or docker=DIR", s, kind)
	}
	return e, nil
}

// ImageName is the name a recipe's image gets in every export.
func ImageName(recipe string) string { return "docker.io/library/minikit:" + recipe }

// tarball is the file an export writes for a recipe, "" for the image store.
func (e Export) tarball(recipe string) string {
	switch e.Kind {
	case ExportOCI:
		return filepath.Join(e.Dir, recipe+".oci.tar")
	case ExportDocker:
		return filepath.Join(e.Dir, recipe+".docker.tar")
	}
	return ""
}

// entries returns the solve's exporters for one recipe and the files they
// write, which the caller commits or discards once the build is over.
func exportEntries(exports []Export, recipe string) ([]client.ExportEntry, []*atomicFile) {
	var entries []client.ExportEntry
	var files []*atomicFile
	for _, e := range exports {
		attrs := map[string]string{string(exptypes.OptKeyName): ImageName(recipe)}
		entry := client.ExportEntry{Attrs: attrs}
		switch e.Kind {
		case ExportImage:
			entry.Type = client.ExporterImage
		case ExportOCI, ExportDocker:
			entry.Type = string(e.Kind)
			f := &atomicFile{path: e.tarball(recipe)}
			entry.Output = f.open
			files = append(files, f)
		}
		entries = append(entries, entry)
	}
	return entries, files
}

// An atomicFile is an exporter's output: written to a temporary file beside
// its destination, renamed into place by commit, removed by discard. A
// reader never sees a partial file at the destination.
//
// The temporary file is named after the destination and the writer's
// pid (tempName), so that a run finding one left by a writer that is no
// longer alive (a SIGKILLed export) can tell it is stale and remove it
// (removeStaleTemps), and leaves the files of live runs alone.
type atomicFile struct {
	path string

	mu        sync.Mutex
	tmp       *os.File
	closed    bool
	discarded bool  // discard was called: nothing more may be written
	err       error // from closing tmp
}

// open is the exporter's client.ExportEntry.Output.
func (a *atomicFile) open(map[string]string) (io.WriteCloser, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tmp != nil {
		return nil, fmt.Errorf("%s: opened twice", a.path)
	}
	if a.discarded {
		// The build is over (the session outlives it, session.go): an
		// export arriving now would leave its file behind.
		return nil, fmt.Errorf("%s: the build is over", a.path)
	}
	f, err := os.CreateTemp(filepath.Dir(a.path), tempPattern(filepath.Base(a.path), os.Getpid()))
	if err != nil {
		return nil, err
	}
	a.tmp = f
	return atomicWriter{a}, nil
}

// The temporary file of DIR/NAME written by process PID is
// DIR/.NAME.PID.RANDOM.tmp.
func tempPattern(base string, pid int) string {
	return "." + base + "." + strconv.Itoa(pid) + ".*" + tempSuffix
}

const tempSuffix = ".tmp"

// tempWriter returns the pid of the process that writes (or wrote) the
// temporary file name, false if name is not one of an export's temporary
// files (tempPattern, for a tarball of ExportOCI or ExportDocker).
func tempWriter(name string) (int, bool) {
	rest, ok := strings.CutSuffix(name, tempSuffix)
	if !ok || !strings.HasPrefix(rest, ".") {
		return 0, false
	}
	rest, random, ok := cutLast(rest[1:], ".")
	if !ok || !allDigits(random) {
		return 0, false
	}
	base, pidText, ok := cutLast(rest, ".")
	if !ok || !allDigits(pidText) || !(strings.HasSuffix(base, ".oci.tar") || strings.HasSuffix(base, ".docker.tar")) {
		return 0, false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// removeStaleTemps removes from dir the temporary tarballs whose writer
// is not alive: left by an export that was killed before it could clean
// up. Those of this process and of live processes are kept (a pid taken
// over by another process keeps its file until that one ends). A file
// that cannot be removed (another user's) is left: it is in no one's way.
func removeStaleTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("look for stale temporary files: %w", err)
	}
	for _, e := range entries {
		pid, ok := tempWriter(e.Name())
		if !ok || !e.Type().IsRegular() || pid == os.Getpid() || alive(pid) {
			continue
		}
		_ = os.Remove(filepath.Join(dir, e.Name()))
	}
	return nil
}

// alive reports whether a process pid exists (a zombie counts, and one
// this user may not signal).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

type atomicWriter struct{ a *atomicFile }

func (w atomicWriter) Write(p []byte) (int, error) { return w.a.tmp.Write(p) }
func (w atomicWriter) Close() error                { return w.a.close() }

// close flushes and closes the temporary file, once.
func (a *atomicFile) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tmp == nil || a.closed {
		return a.err
	}
	a.closed = true
	err := a.tmp.Sync()
	if cerr := a.tmp.Close(); err == nil {
		err = cerr
	}
	a.err = err
	return err
}

// commit moves the written file into place.
func (a *atomicFile) commit() error {
	a.mu.Lock()
	tmp := a.tmp
	a.mu.Unlock()
	if tmp == nil {
		return fmt.Errorf("write %s: the exporter wrote nothing", a.path)
	}
	if err := a.close(); err != nil {
		a.discard()
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		a.discard()
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	if err := os.Rename(tmp.Name(), a.path); err != nil {
		a.discard()
		return fmt.Errorf("write %s: %w", a.path, err)
	}
	return nil
}

// discard removes the temporary file, if any. The destination, if it
// exists from an earlier run, is left alone.
func (a *atomicFile) discard() {
	a.mu.Lock()
	tmp := a.tmp
	a.discarded = true
	a.mu.Unlock()
	if tmp == nil {
		return
	}
	_ = a.close()             // the file is going away: a failed flush doesn't matter
	_ = os.Remove(tmp.Name()) // best effort; a leftover is a dot file named *.tmp
}
