package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/internal/daemon"
	"github.com/minikit/minikit/pkg/bake"
	"github.com/minikit/minikit/pkg/llbdefs"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// bakeRepoRoot is where docker-bake.hcl and bin/ are, seen from this package.
const bakeRepoRoot = "../.."

// buildx runs bin/docker-buildx standalone (`docker-buildx bake ...` is
// `docker buildx bake ...` without the docker CLI), with its own config
// directories so nothing global is read or touched.
type buildx struct {
	bin string
	env []string
}

// requireBuildx skips (or, in CI, fails) without bin/docker-buildx.
func requireBuildx(t *testing.T) buildx {
	t.Helper()
	bin, err := filepath.Abs(filepath.Join(bakeRepoRoot, "bin", "docker-buildx"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("end-to-end bake test needs %s (run scripts/buildx)", bin)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cfg := t.TempDir()
	env := append(os.Environ(),
		"BUILDX_CONFIG="+filepath.Join(cfg, "buildx"),
		"DOCKER_CONFIG="+filepath.Join(cfg, "docker"),
		"BUILDX_NO_DEFAULT_LOAD=1",
	)
	return buildx{bin: bin, env: env}
}

// run runs docker-buildx in the repository root.
func (b buildx) run(t *testing.T, ctx context.Context, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Dir = bakeRepoRoot
	cmd.Env = b.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err = cmd.Run()
	t.Logf("docker-buildx %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return out.Bytes(), errb.Bytes(), err
}

// privateBuilder starts minikit's private daemon (with the stand-in
// mirror) and registers it as a buildx builder with the remote driver.
func privateBuilder(t *testing.T, ctx context.Context, bx buildx) string {
	t.Helper()
	home := requireBuildEnv(t)
	if code, stdout, stderr := minikit(t, ctx, "daemon", "start"); code != 0 {
		t.Fatalf("minikit daemon start exited %d\n%s%s", code, stdout, stderr)
	}
	st, err := daemon.Status(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Answering {
		t.Fatalf("the private buildkitd does not answer at %s", st.Addr)
	}
	const name = "minikit-e2e"
	if out, errb, err := bx.run(t, ctx, "create", "--name", name, "--driver", "remote", st.Addr); err != nil {
		t.Fatalf("buildx create: %v\n%s%s", err, out, errb)
	}
	if out, errb, err := bx.run(t, ctx, "inspect", "--bootstrap", "--builder", name); err != nil {
		t.Fatalf("buildx inspect: %v\n%s%s", err, out, errb)
	}
	return name
}

// bakePrintDoc is the part of `bake --print` this test reads.
type bakePrintDoc struct {
	Group  map[string]struct{ Targets []string } `json:"group"`
	Target map[string]struct {
		Context    string   `json:"context"`
		Dockerfile string   `json:"dockerfile"`
		Tags       []string `json:"tags"`
	} `json:"target"`
}

// TestBakeStandInsMatchLLB builds the checked-in docker-bake.hcl's
// `standins` group with real buildx against minikit's private buildkitd,
// and checks that every image is the one `minikit solve` builds from the
// LLB: the same layers (file paths, types, modes, owners, sizes, link
// targets and content hashes; mtimes aside) and the same Cmd, Env and
// WorkingDir. Then the expected failure fails the way the recipe says.
func TestBakeStandInsMatchLLB(t *testing.T) {
	bx := requireBuildx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	builder := privateBuilder(t, ctx, bx)

	// The file parses, and has every recipe and the groups minikit bake
	// promises.
	stdout, stderr, err := bx.run(t, ctx, "bake", "--builder", builder, "--print", bake.GroupDefault, bake.GroupExpectedFailures)
	if err != nil {
		t.Fatalf("bake --print: %v\n%s", err, stderr)
	}
	var printed bakePrintDoc
	if err := json.Unmarshal(stdout, &printed); err != nil {
		t.Fatalf("bake --print: %v\n%s", err, stdout)
	}
	cat := llbdefs.Catalog()
	var standins []llbdefs.Recipe
	for _, r := range cat {
		tg, ok := printed.Target[bake.TargetName(r.Name)]
		if !ok {
			t.Errorf("bake --print: no target for %s", r.Name)
			continue
		}
		if tg.Context != bake.DefaultContext || filepath.Base(tg.Dockerfile) != r.Name+bake.DockerfileSuffix ||
			!slices.Equal(tg.Tags, []string{"minikit:" + r.Name}) {
			t.Errorf("target %s: %+v", r.Name, tg)
		}
		if r.BuildsOffline() && !r.ExpectBuildFailure() {
			standins = append(standins, r)
		}
	}
	if len(printed.Target) != len(cat) {
		t.Errorf("bake --print: %d targets, want %d", len(printed.Target), len(cat))
	}
	if t.Failed() {
		t.FailNow()
	}

	// bake the stand-in group, one OCI tarball per target.
	out := t.TempDir()
	bakeDir, llbDir := filepath.Join(out, "bake"), filepath.Join(out, "llb")
	args := []string{"bake", "--builder", builder, "--progress", "plain", "--allow", "fs.write=" + out}
	for _, r := range standins {
		args = append(args, "--set", fmt.Sprintf("%s.output=type=oci,dest=%s", bake.TargetName(r.Name), filepath.Join(bakeDir, r.Name+".oci.tar")))
	}
	args = append(args, bake.GroupStandIns)
	start := time.Now()
	_, stderr, err = bx.run(t, ctx, args...)
	if err != nil {
		t.Fatalf("bake standins: %v\n%s", err, tail(stderr, 4000))
	}
	t.Logf("bake standins: %d targets in %s, %d steps cached", len(standins), time.Since(start).Round(time.Millisecond), bytes.Count(stderr, []byte(" CACHED")))

	// The same recipes from the LLB.
	solveArgs := []string{"solve", "--progress", "quiet", "--output", "oci=" + llbDir}
	for _, r := range standins {
		solveArgs = append(solveArgs, r.Name)
	}
	if code, stdout, stderr := minikit(t, ctx, solveArgs...); code != 0 {
		t.Fatalf("minikit solve exited %d\n%s%s", code, stdout, tail(stderr, 3000))
	}

	layers := layerEntriesByDigest{}
	for _, r := range standins {
		fromBake, err := readOCIImage(filepath.Join(bakeDir, r.Name+".oci.tar"), layers)
		if err != nil {
			t.Errorf("%s (bake): %v", r.Name, err)
			continue
		}
		fromLLB, err := readOCIImage(filepath.Join(llbDir, r.Name+".oci.tar"), layers)
		if err != nil {
			t.Errorf("%s (llb): %v", r.Name, err)
			continue
		}
		for _, d := range compareImages(r, fromBake, fromLLB, layers) {
			t.Errorf("%s: %s", r.Name, d)
		}
	}

	// The expected failure fails at its COPY --from, alone.
	failing := bake.TargetName("hello-go.golang.ubuntu-noworkdir.err")
	_, stderr, err = bx.run(t, ctx, "bake", "--builder", builder, "--progress", "plain", bake.GroupExpectedFailures)
	if err == nil {
		t.Errorf("bake %s succeeded; it should fail", failing)
	} else if !bytes.Contains(stderr, []byte("not found")) || !bytes.Contains(stderr, []byte("COPY --from=build hello .")) {
		t.Errorf("bake %s: want a failed COPY --from (not found):\n%s", failing, tail(stderr, 3000))
	}
}

// An bakeImage is what the comparison needs of an image.
type bakeImage struct {
	layers []string // layer digests, base first
	config ocispecs.ImageConfig
}

// layerEntry is one layer entry, mtimes left out.
type layerEntry struct {
	Path     string
	Type     byte
	Mode     int64
	UID, GID int
	Size     int64
	SHA256   string
	Link     string
	Masked   bool // the content hash leaves out what goToolVolatile masks
}

func (f layerEntry) String() string {
	return fmt.Sprintf("%s type=%c mode=%o uid=%d gid=%d size=%d sha256=%.12s link=%q", f.Path, f.Type, f.Mode, f.UID, f.GID, f.Size, f.SHA256, f.Link)
}

// layerEntriesByDigest holds the entries of layers already read, by digest.
type layerEntriesByDigest map[string][]layerEntry

// readOCIImage reads an OCI layout tarball: the image manifest (the
// linux/amd64 one when the index also holds attestations), its config
// and, into cache, the entries of every layer. The tarball is read twice,
// never held in memory.
func readOCIImage(path string, cache layerEntriesByDigest) (bakeImage, error) {
	small := map[string][]byte{}
	err := walkOCITar(path, func(name string, size int64, r io.Reader) error {
		if name == "index.json" || strings.HasPrefix(name, "blobs/") && size <= 1<<20 {
			dt, err := io.ReadAll(r)
			small[name] = dt
			return err
		}
		return nil
	})
	if err != nil {
		return bakeImage{}, err
	}
	blob := func(d string) ([]byte, error) {
		dt, ok := small["blobs/"+strings.Replace(d, ":", "/", 1)]
		if !ok {
			return nil, fmt.Errorf("blob %s missing (or large)", d)
		}
		return dt, nil
	}
	var idx ocispecs.Index
	if err := json.Unmarshal(small["index.json"], &idx); err != nil {
		return bakeImage{}, fmt.Errorf("index.json: %w", err)
	}
	var mf ocispecs.Manifest
	descs := idx.Manifests
	for depth := 0; ; depth++ {
		d, ok := pickImageManifest(descs)
		if !ok || depth > 3 {
			return bakeImage{}, errors.New("no linux/amd64 image manifest")
		}
		dt, err := blob(string(d.Digest))
		if err != nil {
			return bakeImage{}, err
		}
		if d.MediaType == ocispecs.MediaTypeImageIndex || d.MediaType == "application/vnd.docker.distribution.manifest.list.v2+json" {
			var sub ocispecs.Index
			if err := json.Unmarshal(dt, &sub); err != nil {
				return bakeImage{}, err
			}
			descs = sub.Manifests
			continue
		}
		if err := json.Unmarshal(dt, &mf); err != nil {
			return bakeImage{}, err
		}
		break
	}
	cdt, err := blob(string(mf.Config.Digest))
	if err != nil {
		return bakeImage{}, err
	}
	var img ocispecs.Image
	if err := json.Unmarshal(cdt, &img); err != nil {
		return bakeImage{}, err
	}
	out := bakeImage{config: img.Config}
	want := map[string]ocispecs.Descriptor{}
	for _, l := range mf.Layers {
		out.layers = append(out.layers, string(l.Digest))
		if _, ok := cache[string(l.Digest)]; !ok {
			want["blobs/"+strings.Replace(string(l.Digest), ":", "/", 1)] = l
		}
	}
	if len(want) == 0 {
		return out, nil
	}
	err = walkOCITar(path, func(name string, size int64, r io.Reader) error {
		l, ok := want[name]
		if !ok {
			return nil
		}
		recs, err := layerEntries(l.MediaType, r)
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		cache[string(l.Digest)] = recs
		delete(want, name)
		return nil
	})
	if err != nil {
		return bakeImage{}, err
	}
	if len(want) > 0 {
		return bakeImage{}, fmt.Errorf("%d layer blob(s) missing", len(want))
	}
	return out, nil
}

// pickImageManifest chooses the image manifest (or nested index) for
// linux/amd64, skipping attestation manifests (platform unknown/unknown).
func pickImageManifest(descs []ocispecs.Descriptor) (ocispecs.Descriptor, bool) {
	for _, d := range descs {
		if d.Platform == nil || d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
			if d.Annotations["vnd.docker.reference.type"] == "" {
				return d, true
			}
		}
	}
	return ocispecs.Descriptor{}, false
}

func walkOCITar(path string, fn func(name string, size int64, r io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := fn(strings.TrimPrefix(h.Name, "./"), h.Size, tr); err != nil {
			return fmt.Errorf("%s: %s: %w", path, h.Name, err)
		}
	}
}

// layerEntries lists a layer's entries, sorted by path.
func layerEntries(mediaType string, r io.Reader) ([]layerEntry, error) {
	switch {
	case strings.HasSuffix(mediaType, "+gzip") || strings.HasSuffix(mediaType, ".gzip"):
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	case strings.HasSuffix(mediaType, ".tar") || strings.HasSuffix(mediaType, "layer.v1.tar"):
	default:
		return nil, fmt.Errorf("layer media type %s not supported by this test", mediaType)
	}
	var recs []layerEntry
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		rec := layerEntry{Path: "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"), Type: h.Typeflag,
			Mode: h.Mode, UID: h.Uid, GID: h.Gid, Size: h.Size, Link: h.Linkname}
		if h.Typeflag == tar.TypeReg {
			sum := sha256.New()
			if timed := goToolVolatile(rec.Path, h.Size); timed != nil {
				dt, err := io.ReadAll(tr)
				if err != nil {
					return nil, err
				}
				sum.Write(timed(dt))
				rec.Masked = true
			} else if _, err := io.Copy(sum, tr); err != nil {
				return nil, err
			}
			rec.SHA256 = hex.EncodeToString(sum.Sum(nil))
		}
		recs = append(recs, rec)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Path < recs[j].Path })
	return recs, nil
}

// goToolVolatile recognizes the files the Go toolchain writes that change
// from one run of `go build` to the next, and returns what masks the
// changing part. They are left in the single-stage golang images, and two
// builds of the same recipe at different times differ there, whatever
// builds them (two LLB builds do too):
//   - the build cache (/root/.cache/go-build): each action entry ("-a"
//     file) is "v1 ACTION OUTPUT SIZE TIME\n", TIME in nanoseconds;
//     trim.txt holds the time of the last trim;
//   - local telemetry (/root/.config/go/telemetry/local): counter files
//     hold counts and times, "weekends" a day chosen at random.
//
// Their paths, modes and sizes are still compared, and every other byte.
func goToolVolatile(path string, size int64) func([]byte) []byte {
	switch {
	case strings.Contains(path, "/go-build/") && strings.HasSuffix(path, "-a") && size == 175:
		return func(dt []byte) []byte {
			if !bytes.HasPrefix(dt, []byte("v1 ")) {
				return dt
			}
			masked := bytes.Clone(dt)
			copy(masked[len(masked)-21:len(masked)-1], strings.Repeat("T", 20))
			return masked
		}
	case strings.HasSuffix(path, "/go-build/trim.txt"),
		strings.Contains(path, "/.config/go/telemetry/local/"):
		return func([]byte) []byte { return []byte("VOLATILE") }
	}
	return nil
}

// compareImages lists the differences between the bake-built and the
// LLB-built image of r.
func compareImages(r llbdefs.Recipe, fromBake, fromLLB bakeImage, layers layerEntriesByDigest) []string {
	var diffs []string
	b, l := fromBake.config, fromLLB.config
	if !slices.Equal(b.Cmd, l.Cmd) {
		diffs = append(diffs, fmt.Sprintf("Cmd: bake %q, llb %q", b.Cmd, l.Cmd))
	}
	if !slices.Equal(b.Env, l.Env) {
		diffs = append(diffs, fmt.Sprintf("Env: bake %q, llb %q", b.Env, l.Env))
	}
	if b.WorkingDir != l.WorkingDir {
		diffs = append(diffs, fmt.Sprintf("WorkingDir: bake %q, llb %q", b.WorkingDir, l.WorkingDir))
	}
	if len(fromBake.layers) != len(fromLLB.layers) {
		return append(diffs, fmt.Sprintf("bake has %d layers, llb %d", len(fromBake.layers), len(fromLLB.layers)))
	}
	for i, bd := range fromBake.layers {
		ld := fromLLB.layers[i]
		if bd == ld {
			continue // the same blob
		}
		diffs = append(diffs, diffEntries(i, layers[bd], layers[ld])...)
	}
	return diffs
}

// diffEntries compares two layers' entries, reporting at most 10 lines.
func diffEntries(layer int, fromBake, fromLLB []layerEntry) []string {
	var out []string
	add := func(format string, a ...any) {
		if len(out) < 10 {
			out = append(out, fmt.Sprintf("layer %d: ", layer)+fmt.Sprintf(format, a...))
		}
	}
	byPath := map[string]layerEntry{}
	for _, f := range fromLLB {
		byPath[f.Path] = f
	}
	seen := map[string]bool{}
	for _, f := range fromBake {
		seen[f.Path] = true
		g, ok := byPath[f.Path]
		switch {
		case !ok:
			add("only in bake: %s", f)
		case f != g:
			add("bake %s; llb %s", f, g)
		}
	}
	for _, g := range fromLLB {
		if !seen[g.Path] {
			add("only in llb: %s", g)
		}
	}
	return out
}
