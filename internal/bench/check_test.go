package bench

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/internal/standin"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/report"
)

func recipes(t *testing.T, names ...string) []llbdefs.Recipe {
	t.Helper()
	rs, err := llbdefs.Select(llbdefs.Catalog(), names...)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// reportOf is a minikit JSON report of measured images.
func reportOf(t *testing.T, imgs map[string]*measure.Image) []byte {
	t.Helper()
	rep := &report.Report{}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range imgs {
			if !yield(k) {
				return
			}
		}
	}) {
		rep.Recipes = append(rep.Recipes, report.Recipe{Name: name, Status: report.StatusOK, Image: imgs[name]})
	}
	var b strings.Builder
	if err := report.WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

// image is a measured image of two layers: a base one, and one of files
// files of bytes bytes in all, whose diff ID is id.
func image(files int, bytes int64, id string) *measure.Image {
	return &measure.Image{Files: files + 1, FileBytes: bytes + 1,
		Layers: []measure.Layer{{Index: 0, DiffID: "sha256:base", Entries: 1, Files: 1, FileBytes: 1},
			{Index: 1, DiffID: id, Entries: files + 1, Files: files, FileBytes: bytes, CreatedBy: "RUN make"}},
		Largest: []measure.File{{Path: "/hello", Size: bytes, Layer: 1}}}
}

// The check: a multi-stage Go recipe (the compiler cache changes its
// LLB) must keep its digest; a single-stage one (no option changes its
// LLB) may not, if its files are the same.
func TestCheck(t *testing.T) {
	rs := recipes(t, "hello-go.golang.scratch", "hello-go.golang", "hello-c.gcc")
	dir := t.TempDir()
	built := map[Mode]output{
		Solve: {mode: Solve, digests: map[string]string{"hello-go.golang.scratch": "sha256:a", "hello-go.golang": "sha256:b1", "hello-c.gcc": "sha256:c1"},
			report: reportOf(t, map[string]*measure.Image{"hello-go.golang": image(10, 1000, "sha256:1"), "hello-c.gcc": image(5, 50, "sha256:1")})},
		SolveLocked: {mode: SolveLocked, digests: map[string]string{"hello-go.golang.scratch": "sha256:a", "hello-go.golang": "sha256:b2", "hello-c.gcc": "sha256:c2"},
			report: reportOf(t, map[string]*measure.Image{"hello-go.golang": image(10, 1000, "sha256:2"), "hello-c.gcc": image(5, 51, "sha256:2")})},
		Minikit: {mode: Minikit, digests: map[string]string{"hello-go.golang.scratch": "sha256:a", "hello-go.golang": "sha256:b3", "hello-c.gcc": "sha256:c3"},
			report: reportOf(t, map[string]*measure.Image{"hello-go.golang": image(10, 1000, "sha256:3"), "hello-c.gcc": image(5, 50, "sha256:3")})},
		Bake: {mode: Bake, digests: map[string]string{"hello-go.golang.scratch": "sha256:other"}},
	}
	c := check(rs, built, dir)
	if c == nil {
		t.Fatal("no check")
	}
	if !slices.Equal(c.Modes, []Mode{Solve, SolveLocked, Minikit}) {
		t.Errorf("modes %v: bake is not compared", c.Modes)
	}
	got := map[string]RecipeCheck{}
	for _, rc := range c.Recipes {
		got[rc.Name] = rc
	}
	if v := got["hello-go.golang.scratch"].Verdict; v != SameDigest {
		t.Errorf("hello-go.golang.scratch: %s", v)
	}
	if rc := got["hello-go.golang"]; rc.Verdict != SameFiles || rc.Why != "layers whose bytes differ between builds, holding the same files: RUN make (no option changes its LLB)" {
		t.Errorf("hello-go.golang: %+v", rc)
	}
	if rc := got["hello-c.gcc"]; rc.Verdict != Differs || !strings.Contains(rc.Why, "solve and solve-locked: layer 1: 6 entries, 5 files, 50 bytes against 6, 5, 51") {
		t.Errorf("hello-c.gcc: %+v", rc)
	}
	if c.OK {
		t.Error("a recipe differs, yet the check passed")
	}

	// A multi-stage Go recipe whose digest moves with the compiler cache
	// fails the check; one mode without a digest too.
	built[Minikit].digests["hello-go.golang.scratch"] = "sha256:z"
	delete(built[SolveLocked].digests, "hello-c.gcc")
	c = check(rs, built, dir)
	for _, rc := range c.Recipes {
		switch rc.Name {
		case "hello-go.golang.scratch":
			if rc.Verdict != Differs || !strings.Contains(rc.Why, "compile(s) it differently") {
				t.Errorf("%s: %+v", rc.Name, rc)
			}
		case "hello-c.gcc":
			if rc.Verdict != Differs || !strings.Contains(rc.Why, "no image digest from solve-locked") {
				t.Errorf("%s: %+v", rc.Name, rc)
			}
		}
	}
	// Without measurements, an unchanged LLB is the same build.
	c = check(rs[1:2], map[Mode]output{
		MinikitCache: {mode: MinikitCache, digests: map[string]string{"hello-go.golang": "sha256:1"}},
		Minikit:      {mode: Minikit, digests: map[string]string{"hello-go.golang": "sha256:2"}},
	}, dir)
	if !c.OK || c.Recipes[0].Verdict != SameBuild {
		t.Errorf("unmeasured: %+v", c)
	}
	if check(rs, map[Mode]output{Solve: built[Solve], Bake: built[Bake]}, dir) != nil {
		t.Error("a check with one minikit mode")
	}
}

// Only the compiler cache options change a recipe's LLB, and only the
// multi-stage Go ones.
func TestDefinitionsByMode(t *testing.T) {
	rs := recipes(t, "hello-go.golang.scratch", "hello-go.golang", "whatsmyip.golang", "whatsmyip.golang-alpine.alpine", "hello-c.gcc.scratch")
	defs := map[Mode]map[string]digest.Digest{}
	for _, m := range []Mode{Solve, SolveLocked, MinikitCache, Minikit} {
		d, err := definitions(rs, m, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defs[m] = d
	}
	for _, name := range []string{"hello-go.golang", "whatsmyip.golang", "hello-c.gcc.scratch"} {
		if defs[Solve][name] != defs[Minikit][name] || defs[SolveLocked][name] != defs[Minikit][name] {
			t.Errorf("%s: an option changed a recipe it should leave alone", name)
		}
	}
	for _, name := range []string{"hello-go.golang.scratch", "whatsmyip.golang-alpine.alpine"} {
		if defs[Solve][name] == defs[Minikit][name] || defs[Solve][name] == defs[SolveLocked][name] || defs[Solve][name] != defs[MinikitCache][name] {
			t.Errorf("%s: definitions %v %v %v %v", name, defs[Solve][name], defs[SolveLocked][name], defs[MinikitCache][name], defs[Minikit][name])
		}
	}
}

func TestCompareLayers(t *testing.T) {
	if diff, why := compareLayers(image(3, 30, "sha256:x"), image(3, 30, "sha256:x")); why != "" || len(diff) != 0 {
		t.Errorf("equal images: %q, %q", diff, why)
	}
	if diff, why := compareLayers(image(3, 30, "sha256:x"), image(3, 30, "sha256:y")); why != "" || !slices.Equal(diff, []string{"RUN make"}) {
		t.Errorf("a layer rebuilt: %q, %q", diff, why)
	}
	a, b := image(3, 30, "sha256:x"), image(3, 30, "sha256:x")
	b.Largest[0].Path = "/other"
	if _, why := compareLayers(a, b); why != "not the same largest files" {
		t.Errorf("other file: %q", why)
	}
	b = image(3, 30, "sha256:x")
	b.Layers = append(b.Layers, measure.Layer{Index: 2})
	if _, why := compareLayers(a, b); !strings.Contains(why, "layers") {
		t.Errorf("extra layer: %q", why)
	}
}

// writeLayout writes an OCI layout of one image carrying labels.
func writeLayout(t *testing.T, name string, labels map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	blob := func(v any) ocispecs.Descriptor {
		dt, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		d := digest.FromBytes(dt)
		p := filepath.Join(dir, "blobs", "sha256", d.Encoded())
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, dt, 0o644); err != nil {
			t.Fatal(err)
		}
		return ocispecs.Descriptor{Digest: d, Size: int64(len(dt))}
	}
	cfg := blob(ocispecs.Image{Config: ocispecs.ImageConfig{Labels: labels}})
	man := blob(ocispecs.Manifest{Config: cfg})
	man.Annotations = map[string]string{ocispecs.AnnotationRefName: name}
	idx, err := json.Marshal(ocispecs.Index{Manifests: []ocispecs.Descriptor{man}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRegistryAddr(t *testing.T) {
	// A free loopback port, named as the stand-ins' package index.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	dir := writeLayout(t, "library/python:3.11-bookworm", map[string]string{standin.LabelPipIndex: "http://" + addr + "/simple/"})
	if got := pipIndexes(dir); got["library/python:3.11-bookworm"] != "http://"+addr+"/simple/" {
		t.Errorf("pipIndexes = %v", got)
	}
	// Taken: another port.
	if got, err := registryAddr(dir); err != nil || got == addr {
		t.Errorf("registryAddr with %s taken = %q, %v", addr, got, err)
	}
	l.Close()
	if got, err := registryAddr(dir); err != nil || got != addr {
		t.Errorf("registryAddr with %s free = %q, %v", addr, got, err)
	}
	// Through an image index; a descriptor without a digest is skipped.
	idxDir := writeLayout(t, "library/python:3.11-bookworm", map[string]string{standin.LabelPipIndex: "http://" + addr + "/simple/"})
	var idx ocispecs.Index
	if !readJSON(filepath.Join(idxDir, "index.json"), &idx) {
		t.Fatal("no index")
	}
	inner := idx.Manifests[0]
	inner.Annotations = nil
	dt, err := json.Marshal(ocispecs.Index{Manifests: []ocispecs.Descriptor{{}, inner}})
	if err != nil {
		t.Fatal(err)
	}
	outer := digest.FromBytes(dt)
	if err := os.WriteFile(filepath.Join(idxDir, "blobs", "sha256", outer.Encoded()), dt, 0o644); err != nil {
		t.Fatal(err)
	}
	top, err := json.Marshal(ocispecs.Index{Manifests: []ocispecs.Descriptor{
		{Digest: outer, Size: int64(len(dt)), Annotations: map[string]string{ocispecs.AnnotationRefName: "library/python:3.11-bookworm"}},
		{Annotations: map[string]string{ocispecs.AnnotationRefName: "no digest"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(idxDir, "index.json"), top, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := pipIndexes(idxDir); len(got) != 1 || got["library/python:3.11-bookworm"] != "http://"+addr+"/simple/" {
		t.Errorf("pipIndexes through an index = %v", got)
	}
	// No index: a free port.
	if got, err := registryAddr(t.TempDir()); err != nil || indexHost("http://"+got+"/") != got {
		t.Errorf("registryAddr without stand-ins = %q, %v", got, err)
	}
	if h := indexHost("not a url"); h != "" {
		t.Errorf("indexHost of no URL = %q", h)
	}
}

func TestReadDigests(t *testing.T) {
	rs := recipes(t, "hello-c.gcc.scratch", "hello-go.golang")
	dir := t.TempDir()
	p := filepath.Join(dir, "meta.json")
	if err := os.WriteFile(p, []byte(`{"hello-c.gcc.scratch": {"containerimage.digest": "sha256:1"}, "hello-go_golang": {"containerimage.digest": "sha256:2"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readDigests(p, Solve, rs)
	if err != nil || len(got) != 1 || got["hello-c.gcc.scratch"] != "sha256:1" {
		t.Errorf("minikit's = %v, %v", got, err)
	}
	// bake keys by target name.
	if err := os.WriteFile(p, []byte(`{"hello-go_golang": {"containerimage.digest": "sha256:2"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := readDigests(p, Bake, rs); err != nil || got["hello-go.golang"] != "sha256:2" {
		t.Errorf("bake's = %v, %v (target %s)", got, err, "hello-go_golang")
	}
	if _, err := readDigests(filepath.Join(dir, "none"), Solve, rs); err == nil {
		t.Error("no error for a missing metadata file")
	}
}

// Every minikit mode runs solve with its flags and a metadata file;
// bake bakes the recipes' targets.
func TestArgs(t *testing.T) {
	b := &bench{cfg: Config{Minikit: "/bin/minikit", Buildx: "/bin/docker-buildx", Recipes: recipes(t, "hello-c.gcc.scratch")},
		addr: "unix:///x.sock", builder: "minikit-bench", bakeDir: "/bake", home: "/home"}
	for m, want := range map[Mode]string{
		Solve:        "solve --addr unix:///x.sock --progress quiet --format json --metadata-file M --timings hello-c.gcc.scratch",
		SolveLocked:  "solve --addr unix:///x.sock --progress quiet --format json --metadata-file M --timings --compiler-cache=locked hello-c.gcc.scratch",
		MinikitCache: "solve --addr unix:///x.sock --progress quiet --format json --metadata-file M --sizes=false hello-c.gcc.scratch",
		Minikit:      "solve --addr unix:///x.sock --progress quiet --format json --metadata-file M --sizes=false --compiler-cache=false hello-c.gcc.scratch",
		Sequential:   "solve --addr unix:///x.sock --progress quiet --format json --metadata-file M --sizes=false --compiler-cache=false --parallel 1 hello-c.gcc.scratch",
		Bake:         "bake --builder minikit-bench -f docker-bake.hcl --progress quiet --provenance=false --set *.output=type=image --metadata-file M hello-c_gcc_scratch",
	} {
		bin, args, dir := b.args(m, "M")
		if got := strings.Join(args, " "); got != want {
			t.Errorf("%s:\n got %s\nwant %s", m, got, want)
		}
		if (m == Bake) != (bin == "/bin/docker-buildx" && dir == "/bake") {
			t.Errorf("%s: %s in %s", m, bin, dir)
		}
	}
}
