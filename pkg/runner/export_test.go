package runner

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseOutput(t *testing.T) {
	good := map[string]Export{
		// The short forms.
		"image":           {Kind: ExportImage},
		"oci=out":         {Kind: ExportOCI, Dest: "out"},
		"docker=/tmp/x":   {Kind: ExportDocker, Dest: "/tmp/x"},
		" oci=a=b ":       {Kind: ExportOCI, Dest: "a=b"},
		"docker=./images": {Kind: ExportDocker, Dest: "./images"},
		"oci=a,b":         {Kind: ExportOCI, Dest: "a,b"},
		"tar=fs":          {Kind: ExportTar, Dest: "fs"},
		"local=rootfs":    {Kind: ExportLocal, Dest: "rootfs"},
		// buildx's CSV syntax.
		"type=image": {Kind: ExportImage},
		"type=image,name=registry.example/min/{program}:{name},push=true": {Kind: ExportImage, Name: "registry.example/min/{program}:{name}", Push: true},
		"type=image,push=false":                      {Kind: ExportImage},
		"type=registry,name=r.example/x:{name}":      {Kind: ExportImage, Name: "r.example/x:{name}", Push: true},
		"type=registry,push=true":                    {Kind: ExportImage, Push: true},
		"type=oci,dest=out.tar":                      {Kind: ExportOCI, Dest: "out.tar"},
		"type=oci,dest=out/{name}.tar,name=x:{name}": {Kind: ExportOCI, Dest: "out/{name}.tar", Name: "x:{name}"},
		"type=docker":                                {Kind: ExportDocker, Load: true},
		"type=docker,name=mine/{program}:{name}":     {Kind: ExportDocker, Load: true, Name: "mine/{program}:{name}"},
		"type=docker,dest=d":                         {Kind: ExportDocker, Dest: "d"},
		"type=local,dest=rootfs":                     {Kind: ExportLocal, Dest: "rootfs"},
		"type=tar,dest=fs.tar":                       {Kind: ExportTar, Dest: "fs.tar"},
		"TYPE=oci, DEST=o":                           {Kind: ExportOCI, Dest: "o"},
		`type=oci,"dest=a,b"`:                        {Kind: ExportOCI, Dest: "a,b"},
		"type=image,compression=zstd,Oci-Mediatypes=true,push=1": {Kind: ExportImage, Push: true,
			Attrs: map[string]string{"compression": "zstd", "oci-mediatypes": "true"}},
		"type=image,registry.insecure=true,push=true": {Kind: ExportImage, Push: true, Attrs: map[string]string{"registry.insecure": "true"}},
	}
	for in, want := range good {
		got, err := ParseOutput(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseOutput(%q) = %+v, %v; want %+v", in, got, err, want)
			continue
		}
		back, err := ParseOutput(got.String())
		if err != nil || !back.Equal(got) {
			t.Errorf("ParseOutput(%q).String() = %q, which parses as %+v, %v", in, got.String(), back, err)
		}
	}
	bad := map[string]string{
		"":                               "empty",
		"=dir":                           `unknown kind ""`,
		"oci":                            "a destination directory is required",
		"oci=":                           "a destination directory is required",
		"docker":                         "a destination directory is required",
		"image=dir":                      "takes no directory",
		"IMAGE":                          `unknown kind "IMAGE"`,
		"foo=bar":                        `unknown kind "foo"`,
		"oci=a\x00b":                     "NUL byte",
		"oci=a\nb":                       "control character",
		"type=oci":                       "a destination is required",
		"type=oci,d=x":                   "a destination is required",
		"type=image,dest=x":              "takes no destination",
		"type=tar,dest=x,name=n":         "has no image name",
		"type=oci,dest=x,push=true":      "push applies to type=image only",
		"type=registry,push=false":       "contradicts",
		"type=image,push=maybe":          "want true or false",
		"type=bogus":                     `unknown type "bogus"`,
		"type=oci,dest=a,dest=b":         "dest given twice",
		"type=oci,output=x":              "did you mean dest=x",
		"type=image,name=minikit:{tag}":  "only {name} and {program}",
		"type=oci,dest=out/{tag}.tar":    "only {name} and {program}",
		"type=docker,dest=-":             "standard output",
		"type=oci,dest=x,tar=false":      "only tarballs",
		`type=oci,dest="x`:               "not a comma-separated list",
		"type=oci,dest=x\ntype=image":    "more than one line",
		"type=image,novalue":             `"novalue" is not key=value`,
		"type=image,name=":               "name is empty",
		"type=oci,dest=":                 "dest is empty",
		"type=image,x=\xff":              "not valid UTF-8",
		`type=oci,"dest=a` + "\n" + `b"`: "control character",
	}
	for in, want := range bad {
		e, err := ParseOutput(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseOutput(%q) error = %v; want one containing %q", in, err, want)
		}
		if !e.Equal(Export{}) {
			t.Errorf("ParseOutput(%q) = %+v with its error", in, e)
		}
	}
}

// TestExportPaths: where each kind of file export writes a target.
func TestExportPaths(t *testing.T) {
	tg := Target{Name: "hello.scratch", Program: "hello"}
	for _, c := range []struct {
		e    Export
		want string
	}{
		{Export{Kind: ExportOCI, Dest: "out"}, filepath.Join("out", "hello.scratch.oci.tar")},
		{Export{Kind: ExportDocker, Dest: "out/"}, filepath.Join("out", "hello.scratch.docker.tar")},
		{Export{Kind: ExportTar, Dest: "out"}, filepath.Join("out", "hello.scratch.tar")},
		{Export{Kind: ExportLocal, Dest: "fs"}, filepath.Join("fs", "hello.scratch")},
		{Export{Kind: ExportOCI, Dest: "one.tar"}, "one.tar"},
		{Export{Kind: ExportOCI, Dest: "out/{program}/{name}.img"}, filepath.Join("out", "hello", "hello.scratch.img")},
		{Export{Kind: ExportLocal, Dest: "fs/{program}"}, filepath.Join("fs", "hello")},
		{Export{Kind: ExportLocal, Dest: "fs.tar"}, filepath.Join("fs.tar", "hello.scratch")}, // a directory: local writes no tarball
		{Export{Kind: ExportImage}, ""},
		{Export{Kind: ExportDocker, Load: true}, ""},
	} {
		if got := c.e.path(tg); got != c.want {
			t.Errorf("%s: path %q; want %q", c.e, got, c.want)
		}
	}
}

func TestPrepareExports(t *testing.T) {
	dir := t.TempDir()
	one := []Target{{Name: "a", Program: "p"}}
	two := []Target{{Name: "a", Program: "p"}, {Name: "b", Program: "p"}}
	for _, c := range []struct {
		exports []Export
		targets []Target
		want    string // error
	}{
		{[]Export{{Kind: ExportOCI, Dest: filepath.Join(dir, "x.tar")}}, one, ""},
		{[]Export{{Kind: ExportOCI, Dest: filepath.Join(dir, "x.tar")}}, two, "put {name} in the path"},
		{[]Export{{Kind: ExportOCI, Dest: filepath.Join(dir, "{program}.tar")}}, two, "both write"},
		{[]Export{{Kind: ExportOCI, Dest: filepath.Join(dir, "s", "{name}.tar")}, {Kind: ExportTar, Dest: filepath.Join(dir, "s")}}, one, "both write"},
		{[]Export{{Kind: ExportImage, Name: "x/Upper:{name}"}}, one, `image name "x/Upper:a"`},
		{[]Export{{Kind: ExportImage, Name: "r.example/{program}:{name}", Push: true}, {Kind: ExportLocal, Dest: filepath.Join(dir, "fs")}}, two, ""},
	} {
		err := prepareExports(c.exports, c.targets, DefaultImageNames)
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v for %d target(s): error %v; want %q", c.exports, len(c.targets), err, c.want)
		}
	}
	for _, d := range []string{filepath.Join("fs", "a"), filepath.Join("fs", "b")} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s not made: %v", d, err)
		}
	}
	t.Setenv("PATH", t.TempDir()) // no docker CLI
	if err := prepareExports([]Export{{Kind: ExportDocker, Load: true}}, one, DefaultImageNames); err == nil || !strings.Contains(err.Error(), "docker CLI") {
		t.Errorf("load without a docker CLI: %v", err)
	}
}

func TestExportsFor(t *testing.T) {
	dir := t.TempDir()
	exports := []Export{
		{Kind: ExportImage},
		{Kind: ExportImage, Name: "r.example/min/{program}:{name}", Push: true, Attrs: map[string]string{"registry.insecure": "true"}},
		{Kind: ExportOCI, Dest: filepath.Join(dir, "o")},
		{Kind: ExportDocker, Dest: filepath.Join(dir, "d")},
		{Kind: ExportDocker, Load: true, Name: "mine:{name}"},
		{Kind: ExportTar, Dest: filepath.Join(dir, "{name}.rootfs.tar")},
		{Kind: ExportLocal, Dest: filepath.Join(dir, "fs")},
	}
	tg := Target{Name: "hello-c.gcc", Program: "hello-c"}
	x, err := exportsFor(context.Background(), exports, tg, "docker.io/library/minikit:{name}")
	if err != nil {
		t.Fatal(err)
	}
	run, pushed, mine := "docker.io/library/minikit:hello-c.gcc", "r.example/min/hello-c:hello-c.gcc", "docker.io/library/mine:hello-c.gcc"
	want := []struct {
		typ, name string
		output    bool
		dir       string
	}{
		{"image", run, false, ""},
		{"image", pushed, false, ""},
		{"oci", run, true, ""},
		{"docker", run, true, ""},
		{"docker", mine, true, ""},
		{"tar", "", true, ""},
		{"local", "", false, filepath.Join(dir, "fs", "hello-c.gcc")},
	}
	if len(x.entries) != len(want) {
		t.Fatalf("%d entries; want %d", len(x.entries), len(want))
	}
	for i, w := range want {
		e := x.entries[i]
		if e.Type != w.typ || e.Attrs["name"] != w.name || (e.Output != nil) != w.output || e.OutputDir != w.dir {
			t.Errorf("entry %d = %s %v output %v dir %q; want %+v", i, e.Type, e.Attrs, e.Output != nil, e.OutputDir, w)
		}
		if (e.Attrs["push"] == "true") != (i == 1) || (e.Attrs["registry.insecure"] == "true") != (i == 1) {
			t.Errorf("entry %d attrs %v", i, e.Attrs)
		}
	}
	if exports[1].Attrs["name"] != "" {
		t.Error("exportsFor changed the export's own attributes")
	}
	if !slices.Equal(x.names, []string{run, pushed, mine}) || !slices.Equal(x.pushed, []string{pushed}) {
		t.Errorf("names %v, pushed %v", x.names, x.pushed)
	}
	if len(x.files) != 3 || len(x.loads) != 1 || !slices.Equal(x.dirs, []string{filepath.Join(dir, "fs", "hello-c.gcc")}) {
		t.Fatalf("%d files, %d loads, dirs %v", len(x.files), len(x.loads), x.dirs)
	}
	wantFiles := []string{filepath.Join(dir, "o", "hello-c.gcc.oci.tar"), filepath.Join(dir, "d", "hello-c.gcc.docker.tar"), filepath.Join(dir, "hello-c.gcc.rootfs.tar")}
	for i, f := range x.files {
		if f.path != wantFiles[i] {
			t.Errorf("file %d: %s; want %s", i, f.path, wantFiles[i])
		}
	}
}

// TestTargetExportsFinish: a build that failed leaves no tarball and no
// output; one that succeeded commits them all and lists the directories.
func TestTargetExportsFinish(t *testing.T) {
	dir := t.TempDir()
	exports := []Export{{Kind: ExportOCI, Dest: dir}, {Kind: ExportTar, Dest: dir}, {Kind: ExportLocal, Dest: dir}}
	for _, buildErr := range []error{errors.New("the build failed"), nil} {
		x, err := exportsFor(context.Background(), exports, Target{Name: "t"}, DefaultImageNames)
		if err != nil {
			t.Fatal(err)
		}
		for i := range x.files {
			w, err := x.entries[i].Output(nil)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(w, "tarball %d", i)
			w.Close()
		}
		outputs, loaded, err := x.finish(context.Background(), buildErr)
		if buildErr != nil {
			if !errors.Is(err, buildErr) || outputs != nil || loaded != nil {
				t.Errorf("after a failed build: %v, %v, %v", outputs, loaded, err)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("after a failed build, %s holds %v", dir, names)
			}
			continue
		}
		want := []string{filepath.Join(dir, "t.oci.tar"), filepath.Join(dir, "t.tar"), filepath.Join(dir, "t")}
		if err != nil || !slices.Equal(outputs, want) || loaded != nil {
			t.Errorf("finish: %v, %v, %v; want outputs %v", outputs, loaded, err, want)
		}
		if dt, _ := os.ReadFile(want[1]); string(dt) != "tarball 1" {
			t.Errorf("%s holds %q", want[1], dt)
		}
	}
}

// fakeDocker puts a docker CLI on PATH that runs script (sh) for `docker
// load`.
func fakeDocker(t *testing.T, script string) {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestDockerLoad(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skipf("no sh: %v", err)
	}
	got := filepath.Join(t.TempDir(), "got")
	fakeDocker(t, `[ "$1" = load ] || exit 9; cat > `+got+`; echo "Loaded image: minikit:hello"; echo "Loaded image ID: sha256:abc"`)
	l := newDockerLoad(context.Background(), "hello")
	w, err := l.open(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, "the tarball"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	tags, err := l.finish(context.Background(), nil)
	if err != nil || !slices.Equal(tags, []string{"minikit:hello", "sha256:abc"}) {
		t.Errorf("finish: %v, %v", tags, err)
	}
	if dt, _ := os.ReadFile(got); string(dt) != "the tarball" {
		t.Errorf("docker load read %q", dt)
	}
	if _, err := l.open(nil); err == nil {
		t.Error("open after finish succeeded")
	}

	// docker load fails: its message is the error's.
	fakeDocker(t, `cat >/dev/null; echo "Error response from daemon: no space left" >&2; exit 1`)
	l = newDockerLoad(context.Background(), "hello")
	w, _ = l.open(nil)
	io.WriteString(w, "x")
	w.Close()
	if _, err := l.finish(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Errorf("a failing docker load: %v", err)
	}

	// It names no image.
	fakeDocker(t, `cat >/dev/null`)
	l = newDockerLoad(context.Background(), "hello")
	w, _ = l.open(nil)
	w.Close()
	if _, err := l.finish(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "named no image") {
		t.Errorf("a silent docker load: %v", err)
	}

	// The build fails mid-export: the load is stopped, nothing reported.
	fakeDocker(t, `exec sleep 60`)
	l = newDockerLoad(context.Background(), "hello")
	if _, err := l.open(nil); err != nil {
		t.Fatal(err)
	}
	if tags, err := l.finish(context.Background(), errors.New("export failed")); tags != nil || err != nil {
		t.Errorf("after a failed build: %v, %v", tags, err)
	}

	// Nothing exported.
	l = newDockerLoad(context.Background(), "hello")
	if _, err := l.finish(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "sent nothing") {
		t.Errorf("no export: %v", err)
	}
}

func TestImageDescriptor(t *testing.T) {
	d := `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":481}`
	got, err := imageDescriptor(map[string]string{"containerimage.descriptor": base64.StdEncoding.EncodeToString([]byte(d))})
	if err != nil || got == nil || got.Size != 481 || got.MediaType != ocispecs.MediaTypeImageManifest || got.Digest.Encoded() != strings.Repeat("a", 64) {
		t.Errorf("descriptor %+v, %v", got, err)
	}
	if got, err := imageDescriptor(map[string]string{}); got != nil || err != nil {
		t.Errorf("none: %+v, %v", got, err)
	}
	for _, bad := range []string{"%%%", base64.StdEncoding.EncodeToString([]byte("[1]"))} {
		if _, err := imageDescriptor(map[string]string{"containerimage.descriptor": bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// Image names: the template's fields, the default, and what is refused.
func TestImageNames(t *testing.T) {
	for _, c := range []struct {
		tmpl          ImageNames
		name, program string
		want          string
	}{
		{DefaultImageNames, "hello.scratch", "", "docker.io/library/hello.scratch:latest"},
		{"docker.io/library/minikit:{name}", "hello-c.gcc", "hello-c", "docker.io/library/minikit:hello-c.gcc"},
		{"minikit:{name}", "hello-c.gcc", "", "docker.io/library/minikit:hello-c.gcc"},
		{"registry.example:5000/{program}:{name}", "a.b", "myapp", "registry.example:5000/myapp:a.b"},
		{"x/{program}", "a.b", "", "docker.io/x/a.b:latest"}, // no program: the name
	} {
		if err := c.tmpl.validate(); err != nil {
			t.Errorf("%q: %v", c.tmpl, err)
		}
		got, err := c.tmpl.For(Target{Name: c.name, Program: c.program})
		if err != nil || got != c.want {
			t.Errorf("%q for %s (%s): %q, %v; want %q", c.tmpl, c.name, c.program, got, err, c.want)
		}
	}
	// A name that is not a reference: uppercase in a repository.
	if _, err := DefaultImageNames.For(Target{Name: "Hello"}); err == nil || !strings.Contains(err.Error(), "Hello") {
		t.Errorf("uppercase repository: %v", err)
	}
	for _, bad := range []ImageNames{"", "minikit:{tag}", "{name", "a}"} {
		if err := bad.validate(); err == nil {
			t.Errorf("%q: no error", bad)
		}
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
		".r.oci.tar.x.123.tmp", ".r.oci.tar.1.x.tmp", ".r.img.1.2.tmp", ".r.oci.tar.0.2.tmp",
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
	if _, err := Solve(context.Background(), c, nil, OCI(out), Docker(out)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file %s: %v; want it removed", stale, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live run's temporary file: %v", err)
	}
}
