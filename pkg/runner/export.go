package runner

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	"github.com/distribution/reference"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// ExportKind is where an image goes: BuildKit's exporter of that name.
type ExportKind string

const (
	ExportImage  ExportKind = "image"  // buildkitd's image store, under the image's name; with Push, the registry too
	ExportOCI    ExportKind = "oci"    // an OCI image layout tarball
	ExportDocker ExportKind = "docker" // a `docker load` tarball, or (Load) straight into the local Docker engine
	ExportLocal  ExportKind = "local"  // the image's root filesystem, as files in a directory
	ExportTar    ExportKind = "tar"    // the image's root filesystem, as a tarball
)

// exportKinds are the kinds ParseOutput and Exports accept.
var exportKinds = []ExportKind{ExportImage, ExportOCI, ExportDocker, ExportLocal, ExportTar}

// An Export is one destination for every target's image: each target of
// the run gets its own (its own file, directory or name).
type Export struct {
	Kind ExportKind
	// Dest is where an oci, docker, tar or local export writes each
	// target's image:
	//   - a path with {name} or {program} (see ImageNames): each
	//     target's own file (or, for local, directory);
	//   - else, for a tarball, a path ending in ".tar": that one file,
	//     for a run of a single target;
	//   - else a directory: DEST/NAME.oci.tar, DEST/NAME.docker.tar,
	//     DEST/NAME.tar, or for local the directory DEST/NAME.
	// Tarballs are written to a temporary file and renamed into place
	// once the build succeeded; a local export writes its files into the
	// directory as BuildKit sends them, keeping files already there.
	Dest string
	// Name, if set, is this export's image name template (as
	// NameTemplate, with {name} and {program}) instead of the run's: the
	// name an image export stores and pushes, and an oci or docker
	// tarball carries.
	Name string
	// Push has an image export push the image to its name's registry
	// too, with the Docker config's credentials.
	Push bool
	// Load has a docker export (without Dest) load the image into the
	// local Docker engine, with `docker load`, instead of writing a file:
	// Result.Loaded says which tag it got.
	Load bool
	// Attrs are further attributes for BuildKit's exporter, as given:
	// compression=zstd, oci-mediatypes=true, registry.insecure=true, ...
	// (keys in lower case; type, dest, name, push and output are
	// fields, not attributes).
	Attrs map[string]string
}

// reservedAttrs are the keys an Export holds in fields of its own, or
// refuses.
var reservedAttrs = []string{"type", "dest", "name", "push", "output"}

// String is the export as ParseOutput reads it back: a short form
// (image, oci=DIR, ...) when the export has one, else buildx's CSV
// syntax (type=KIND,dest=...).
func (e Export) String() string {
	switch {
	case e.Kind == ExportImage && e.Dest == "" && e.Name == "" && !e.Push && !e.Load && len(e.Attrs) == 0:
		return string(ExportImage)
	case e.Kind != ExportImage && e.Dest != "" && e.Dest == strings.TrimSpace(e.Dest) && e.Name == "" && !e.Push && !e.Load && len(e.Attrs) == 0:
		return string(e.Kind) + "=" + e.Dest
	}
	fields := []string{"type=" + string(e.Kind)}
	if e.Dest != "" {
		fields = append(fields, "dest="+e.Dest)
	}
	if e.Name != "" {
		fields = append(fields, "name="+e.Name)
	}
	if e.Push {
		fields = append(fields, "push=true")
	}
	for _, k := range slices.Sorted(maps.Keys(e.Attrs)) {
		fields = append(fields, k+"="+e.Attrs[k])
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(fields) // a bytes.Buffer does not fail
	w.Flush()
	return strings.TrimSuffix(b.String(), "\n")
}

// Equal reports whether e and o are the same export.
func (e Export) Equal(o Export) bool {
	return e.Kind == o.Kind && e.Dest == o.Dest && e.Name == o.Name && e.Push == o.Push && e.Load == o.Load &&
		maps.Equal(e.Attrs, o.Attrs)
}

// file reports whether the export writes a tarball per target.
func (e Export) file() bool {
	switch e.Kind {
	case ExportOCI, ExportTar:
		return true
	case ExportDocker:
		return !e.Load
	}
	return false
}

// named reports whether the export's images carry a name.
func (e Export) named() bool {
	return e.Kind == ExportImage || e.Kind == ExportOCI || e.Kind == ExportDocker
}

func (e Export) validate() error {
	if !slices.Contains(exportKinds, e.Kind) {
		return fmt.Errorf("export %q: unknown type; want image, oci, docker, local or tar", string(e.Kind))
	}
	for _, s := range []string{e.Dest, e.Name} {
		if err := checkText(s); err != nil {
			return fmt.Errorf("export %s: %w", e, err)
		}
	}
	for k, v := range e.Attrs {
		switch {
		case k == "" || k != strings.ToLower(strings.TrimSpace(k)):
			return fmt.Errorf("export %s: attribute key %q: want a lower-case key", e, k)
		case slices.Contains(reservedAttrs, k):
			return fmt.Errorf("export %s: %s is not an attribute (set the field)", e, k)
		case k == "tar" && (e.Kind == ExportOCI || e.Kind == ExportDocker) && v != "true":
			return fmt.Errorf("export %s: tar=%s: only tarballs are written (tar=true)", e, v)
		}
		if err := checkText(k); err != nil {
			return fmt.Errorf("export %s: %w", e, err)
		}
		if err := checkText(v); err != nil {
			return fmt.Errorf("export %s: %w", e, err)
		}
	}
	if e.Push && e.Kind != ExportImage {
		return fmt.Errorf("export %s: push applies to type=image only", e)
	}
	if e.Load && e.Kind != ExportDocker {
		return fmt.Errorf("export %s: only a docker export loads into Docker", e)
	}
	if e.Name != "" {
		if !e.named() {
			return fmt.Errorf("export %s: a %s export has no image name", e, e.Kind)
		}
		if err := ImageNames(e.Name).validate(); err != nil {
			return fmt.Errorf("export %s: %w", e, err)
		}
	}
	switch {
	case e.Kind == ExportImage && e.Dest != "":
		return fmt.Errorf("export %s: the image store takes no destination", e)
	case e.Load && e.Dest != "":
		return fmt.Errorf("export %s: a docker export either loads into Docker (no dest) or writes dest, not both", e)
	case e.Kind != ExportImage && !e.Load && e.Dest == "":
		return fmt.Errorf("export %s: a destination is required (dest=DIR, a path with {name}, or FILE.tar)", e)
	case e.Dest == "-":
		return fmt.Errorf("export %s: dest=- (standard output) is not supported: one export is written per target", e)
	}
	if e.Dest != "" {
		if err := validateTemplate(e.Dest); err != nil {
			return fmt.Errorf("export %s: dest: %w", e, err)
		}
	}
	return nil
}

// checkText refuses what no file name, image name or exporter attribute
// should hold: a NUL byte or another control character (a line break
// would not survive the CSV syntax), invalid UTF-8.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", s)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		if s[i] == 0 {
			return fmt.Errorf("%q holds a NUL byte", s)
		}
		return fmt.Errorf("%q holds a control character", s)
	}
	return nil
}

// outputHelp is the syntax ParseOutput reads, for its errors.
const outputHelp = "want image, KIND=DIR (oci, docker, tar, local) or type=KIND,..., as in buildx: " +
	"type=image[,name=N][,push=true], type=registry[,name=N], type=oci|docker|tar,dest=DIR|FILE.tar|PATH-{name}, type=docker (load into Docker), type=local,dest=DIR"

// ParseOutput parses one --output value.
//
// buildx's CSV syntax: type=KIND followed by key=value pairs (CSV-quoted
// when a value holds a comma), KIND one of image, registry (image with
// push=true), oci, docker, local, tar. dest= is where a file export
// writes (see Export.Dest), name= the image name template of this export
// ({name}, {program}), push=true pushes an image export; type=docker
// without dest loads the image into the local Docker engine; any other
// key is passed to BuildKit's exporter (compression=zstd,
// registry.insecure=true, ...).
//
// The short forms: "image" (buildkitd's image store) and KIND=DEST
// (oci=DIR, docker=DIR, tar=DIR, local=DIR), DEST taken as written.
func ParseOutput(s string) (Export, error) {
	t := strings.TrimSpace(s)
	key, rest, hasEq := strings.Cut(t, "=")
	if !hasEq && t == string(ExportImage) {
		return Export{Kind: ExportImage}, nil
	}
	if k := ExportKind(key); hasEq && k != ExportImage && slices.Contains(exportKinds, k) {
		e := Export{Kind: k, Dest: rest}
		if rest == "" {
			return Export{}, fmt.Errorf("output %q: a destination directory is required, as in %s=DIR", s, key)
		}
		if err := e.validate(); err != nil {
			return Export{}, fmt.Errorf("output %q: %w", s, err)
		}
		return e, nil
	}
	if !strings.EqualFold(strings.TrimSpace(key), "type") {
		switch {
		case t == "":
			return Export{}, fmt.Errorf("output %q: empty; %s", s, outputHelp)
		case key == string(ExportImage) && hasEq:
			return Export{}, fmt.Errorf("output %q: the image store takes no directory; write just \"image\", or type=image,name=NAME", s)
		case !hasEq && slices.Contains(exportKinds, ExportKind(t)):
			return Export{}, fmt.Errorf("output %q: a destination directory is required, as in %s=DIR (type=docker loads into Docker)", s, t)
		}
		return Export{}, fmt.Errorf("output %q: unknown kind %q; %s", s, key, outputHelp)
	}
	e, err := parseOutputCSV(t)
	if err != nil {
		return Export{}, fmt.Errorf("output %q: %w", s, err)
	}
	if err := e.validate(); err != nil {
		return Export{}, fmt.Errorf("output %q: %w", s, err)
	}
	return e, nil
}

// parseOutputCSV reads type=KIND,key=value,... into an Export.
func parseOutputCSV(s string) (Export, error) {
	r := csv.NewReader(strings.NewReader(s))
	r.TrimLeadingSpace = true
	fields, err := r.Read()
	if err != nil {
		return Export{}, fmt.Errorf("not a comma-separated list: %w", err)
	}
	if _, err := r.Read(); err != io.EOF {
		return Export{}, errors.New("more than one line: quote a value that holds a line break")
	}
	var e Export
	seen := map[string]bool{}
	var push string
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return Export{}, fmt.Errorf("%q is not key=value", f)
		}
		if seen[k] {
			return Export{}, fmt.Errorf("%s given twice", k)
		}
		seen[k] = true
		switch k {
		case "type":
			e.Kind = ExportKind(v)
		case "dest":
			if v == "" {
				return Export{}, errors.New("dest is empty")
			}
			e.Dest = v
		case "name":
			if v == "" {
				return Export{}, errors.New("name is empty")
			}
			e.Name = v
		case "push":
			push = v
		case "output":
			return Export{}, fmt.Errorf("output=%s is not an attribute; did you mean dest=%s?", v, v)
		default:
			if e.Attrs == nil {
				e.Attrs = map[string]string{}
			}
			e.Attrs[k] = v
		}
	}
	if e.Kind == "registry" { // buildx's: the image store, pushed
		if push != "" && push != "true" {
			return Export{}, fmt.Errorf("type=registry pushes: push=%s contradicts it (type=image keeps the image in buildkitd)", push)
		}
		e.Kind, push = ExportImage, "true"
	}
	if !slices.Contains(exportKinds, e.Kind) {
		return Export{}, fmt.Errorf("unknown type %q; want image, registry, oci, docker, local or tar", string(e.Kind))
	}
	if push != "" {
		b, err := strconv.ParseBool(push)
		if err != nil {
			return Export{}, fmt.Errorf("push=%s: want true or false", push)
		}
		e.Push = b
	}
	if e.Kind == ExportDocker && e.Dest == "" {
		e.Load = true
	}
	return e, nil
}

// ImageNames is a template of image names: {name} stands for the
// target's Name, {program} for its Program (its Name when it has none);
// no other {field} is allowed. The result must be an image reference
// ("minikit:{name}" is docker.io/library/minikit:NAME).
type ImageNames string

// DefaultImageNames names each image after its target alone: the target
// hello.scratch is docker.io/library/hello.scratch:latest.
const DefaultImageNames ImageNames = "{name}"

// Expand returns the image name of a target called name that builds
// program.
func (n ImageNames) Expand(name, program string) string {
	if program == "" {
		program = name
	}
	return strings.NewReplacer("{name}", name, "{program}", program).Replace(string(n))
}

// For returns t's image name, normalized (docker.io/library/NAME:TAG),
// or an error when the template does not make t a valid reference.
func (n ImageNames) For(t Target) (string, error) {
	s := n.Expand(t.Name, t.Program)
	ref, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return "", fmt.Errorf("image name %q of %s (template %q): %w", s, t.Name, string(n), err)
	}
	return reference.TagNameOnly(ref).String(), nil
}

// validate checks the template's fields.
func (n ImageNames) validate() error {
	if n == "" {
		return errors.New("image name template: empty")
	}
	if err := validateTemplate(string(n)); err != nil {
		return fmt.Errorf("image name template %q: %w", string(n), err)
	}
	return nil
}

// validateTemplate checks that a template's only fields are {name} and
// {program}.
func validateTemplate(s string) error {
	rest := strings.NewReplacer("{name}", "", "{program}", "").Replace(s)
	if strings.ContainsAny(rest, "{}") {
		return errors.New("only {name} and {program} can be replaced")
	}
	return nil
}

// templated reports whether a template has a field.
func templated(s string) bool {
	return strings.Contains(s, "{name}") || strings.Contains(s, "{program}")
}

// suffix is what a file export's name ends with in a directory.
func (e Export) suffix() string {
	switch e.Kind {
	case ExportOCI:
		return ".oci.tar"
	case ExportDocker:
		return ".docker.tar"
	case ExportTar:
		return ".tar"
	}
	return ""
}

// singleFile reports whether a file export's Dest is one file, for a
// run of one target.
func (e Export) singleFile() bool {
	return e.file() && !templated(e.Dest) && strings.HasSuffix(e.Dest, ".tar")
}

// path is the file (or, for local, the directory) e writes t's image to;
// "" for an export that writes none.
func (e Export) path(t Target) string {
	switch {
	case !e.file() && e.Kind != ExportLocal:
		return ""
	case templated(e.Dest):
		return filepath.Clean(ImageNames(e.Dest).Expand(t.Name, t.Program))
	case e.singleFile():
		return filepath.Clean(e.Dest)
	}
	return filepath.Join(e.Dest, t.Name+e.suffix())
}

// imageName is t's image name in export e (its own template or the
// run's), "" for an export without names.
func (e Export) imageName(t Target, run ImageNames) (string, error) {
	if !e.named() {
		return "", nil
	}
	if e.Name != "" {
		return ImageNames(e.Name).For(t)
	}
	return run.For(t)
}

// prepareExports checks the run's exports against its targets (every
// name a reference, no two targets or exports writing one path, a
// single-file destination for a single target, the docker CLI for a
// load), creates the directories they write into and removes the
// temporary files killed runs left there.
func prepareExports(exports []Export, targets []Target, run ImageNames) error {
	written := map[string]string{} // path -> "export for target"
	dirs := map[string]bool{}      // directory -> it holds tarballs
	dirOf := map[string]Export{}   // directory -> the export writing there
	addDir := func(dir string, e Export) {
		dirs[dir] = dirs[dir] || e.file()
		if _, ok := dirOf[dir]; !ok {
			dirOf[dir] = e
		}
	}
	for _, e := range exports {
		switch {
		case e.file() && e.singleFile():
			addDir(filepath.Dir(filepath.Clean(e.Dest)), e)
		case (e.file() || e.Kind == ExportLocal) && !templated(e.Dest):
			addDir(filepath.Clean(e.Dest), e) // even with no target: its stale files go
		}
		if e.singleFile() && len(targets) > 1 {
			return fmt.Errorf("export %s: %s is one file, and %d targets would be written to it: put {name} in the path, or give a directory", e, e.Dest, len(targets))
		}
		if e.Load {
			if _, err := lookDocker(); err != nil {
				return fmt.Errorf("export %s: %w", e, err)
			}
		}
		for _, t := range targets {
			if _, err := e.imageName(t, run); err != nil {
				return fmt.Errorf("export %s: %w", e, err)
			}
			p := e.path(t)
			if p == "" {
				continue
			}
			who := fmt.Sprintf("%s for %s", e, t.Name)
			if prev, ok := written[p]; ok {
				return fmt.Errorf("%s and %s both write %s: give each its own destination", prev, who, p)
			}
			written[p] = who
			dir := filepath.Dir(p)
			if e.Kind == ExportLocal {
				dir = p
			}
			addDir(dir, e)
		}
	}
	for _, dir := range slices.Sorted(maps.Keys(dirs)) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("export %s: %w", dirOf[dir], err)
		}
		if !dirs[dir] {
			continue
		}
		if err := removeStaleTemps(dir); err != nil {
			return fmt.Errorf("export %s: %w", dirOf[dir], err)
		}
	}
	return nil
}

// targetExports is one target's share of the run's exports: BuildKit's
// exporter entries, and what becomes of their outputs once the build is
// over (finish).
type targetExports struct {
	entries []client.ExportEntry
	files   []*atomicFile
	dirs    []string      // local exports' directories
	loads   []*dockerLoad // docker exports loaded into Docker
	names   []string      // the image's names, distinct, in the exports' order
	pushed  []string      // the names pushed
}

// exportsFor returns t's exports: the run's exports with t's image names
// (its own template's, else the run's) and files. A load into Docker
// runs under ctx.
func exportsFor(ctx context.Context, exports []Export, t Target, run ImageNames) (*targetExports, error) {
	x := &targetExports{}
	for _, e := range exports {
		name, err := e.imageName(t, run)
		if err != nil {
			return nil, err
		}
		attrs := maps.Clone(e.Attrs)
		if attrs == nil {
			attrs = map[string]string{}
		}
		entry := client.ExportEntry{Type: string(e.Kind), Attrs: attrs}
		if name != "" {
			attrs[string(exptypes.OptKeyName)] = name
			if !slices.Contains(x.names, name) {
				x.names = append(x.names, name)
			}
		}
		switch {
		case e.Kind == ExportImage && e.Push:
			attrs[string(exptypes.OptKeyPush)] = "true"
			if !slices.Contains(x.pushed, name) {
				x.pushed = append(x.pushed, name)
			}
		case e.Load:
			l := newDockerLoad(ctx, t.Name)
			entry.Output = l.open
			x.loads = append(x.loads, l)
		case e.file():
			f := &atomicFile{path: e.path(t)}
			entry.Output = f.open
			x.files = append(x.files, f)
		case e.Kind == ExportLocal:
			entry.OutputDir = e.path(t)
			x.dirs = append(x.dirs, entry.OutputDir)
		}
		x.entries = append(x.entries, entry)
	}
	return x, nil
}

// finish ends the exports once the build is over: buildErr nil, it waits
// for the loads into Docker and commits the tarballs, and returns the
// tarballs and directories written and the Docker tags loaded; else, or
// when a load or a commit fails, it discards every tarball not committed
// and returns the error (buildErr itself when set).
func (x *targetExports) finish(ctx context.Context, buildErr error) (outputs, loaded []string, err error) {
	err = buildErr
	for _, l := range x.loads {
		tags, lerr := l.finish(ctx, err)
		if err == nil && lerr != nil {
			err = lerr
		}
		loaded = append(loaded, tags...)
	}
	if err == nil {
		for _, f := range x.files {
			if cerr := f.commit(); cerr != nil {
				err = cerr
				break
			}
			outputs = append(outputs, f.path)
		}
	}
	if err != nil {
		for _, f := range x.files {
			f.discard()
		}
		return nil, nil, err
	}
	return append(outputs, x.dirs...), loaded, nil
}

// imageDescriptor reads the exporters' containerimage.descriptor (base64
// JSON): nil when there is none.
func imageDescriptor(resp map[string]string) (*ocispecs.Descriptor, error) {
	v, ok := resp[exptypes.ExporterImageDescriptorKey]
	if !ok || v == "" {
		return nil, nil
	}
	dt, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("the exporter's image descriptor: %w", err)
	}
	var d ocispecs.Descriptor
	if err := json.Unmarshal(dt, &d); err != nil {
		return nil, fmt.Errorf("the exporter's image descriptor: %w", err)
	}
	return &d, nil
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
// files (tempPattern, for a tarball: a name ending in .tar).
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
	if !ok || !allDigits(pidText) || !strings.HasSuffix(base, ".tar") {
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
