package llbdefs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// seedNames are the 51 combinations of the seed matrix.
var seedNames = []string{
	"hello-c.alpine", "hello-c.alpine-static.scratch", "hello-c.alpine.alpine",
	"hello-c.gcc", "hello-c.gcc-static.alpine", "hello-c.gcc-static.scratch",
	"hello-c.gcc.alpine", "hello-c.gcc.scratch", "hello-c.gcc.ubuntu",
	"hello-go.golang", "hello-go.golang-alpine.alpine", "hello-go.golang-alpine.scratch",
	"hello-go.golang.scratch", "hello-go.golang.scratch-string",
	"hello-go.golang.ubuntu-noworkdir.err", "hello-go.golang.ubuntu-workdir",
	"hello-java.amazoncorretto", "hello-java.eclipse-temurin.native-image.scratch",
	"hello-java.openjdk", "hello-java.openjdk-11.openjdk-11-jre",
	"hello-java.openjdk-15-alpine-jlink.alpine", "hello-java.openjdk-15-jlink.ubuntu",
	"hello-java.openjdk-8.openjdk-8-jre-alpine", "hello-java.openjdk-alpine",
	"hello-java.openjdk.openjdk-8-jre-alpine", "hello-java.openjdk.openjdk-jre",
	"hello-py.python", "hello-py.python-alpine",
	"hello-rust.rust", "hello-rust.rust-alpine", "hello-rust.rust-alpine.alpine",
	"hello-rust.rust.alpine", "hello-rust.rust.busybox-glibc", "hello-rust.rust.debian",
	"hello-rust.rust.scratch",
	"pyds.alpine", "pyds.alpine.alpine", "pyds.python", "pyds.python-slim",
	"pyyaml.python", "pyyaml.python-alpine", "pyyaml.python-alpine.python-alpine",
	"pyyaml.python-slim",
	"whatsmyip.golang", "whatsmyip.golang-alpine.alpine", "whatsmyip.golang-nocgo.scratch",
	"whatsmyip.golang.alpine", "whatsmyip.golang.busybox", "whatsmyip.golang.busybox-glibc",
	"whatsmyip.golang.scratch", "whatsmyip.golang.ubuntu",
}

func names(rs []Recipe) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func TestCatalogHasExactlyTheSeedNames(t *testing.T) {
	got := names(Catalog())
	want := slices.Clone(seedNames)
	slices.Sort(want)
	if len(got) != 51 {
		t.Fatalf("catalog has %d recipes, want 51", len(got))
	}
	if !slices.Equal(got, want) {
		for _, n := range want {
			if !slices.Contains(got, n) {
				t.Errorf("missing %s", n)
			}
		}
		for _, n := range got {
			if !slices.Contains(want, n) {
				t.Errorf("unexpected %s", n)
			}
		}
	}
}

// TestCatalogMatchesSeedFile cross-checks the expected outcomes and the
// stand-in column against ../shared/seed-matrix.md when it is there (it
// lies beside the repository on development and CI machines).
func TestCatalogMatchesSeedFile(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "seed-matrix.md")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("seed matrix not found at %s: outcome cross-check not run", path)
	}
	defer f.Close()
	seed, err := readSeedTable(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	rows := 0
	cat := Catalog()
	for _, row := range seed {
		name := row["name"]
		r, ok := Lookup(cat, name)
		if !ok {
			continue
		}
		rows++
		if want := row["outcome"]; string(r.Expect) != want {
			t.Errorf("%s: expect %q, seed says %q", name, r.Expect, want)
		}
		standIn := strings.Fields(row["stand-in"])
		if len(standIn) == 0 {
			t.Errorf("%s: seed row has an empty stand-in cell", name)
		} else if string(r.StandIn) != standIn[0] {
			t.Errorf("%s: stand-in %q, seed says %q", name, r.StandIn, standIn[0])
		}
		shell := strings.HasPrefix(row["CMD form"], "shell")
		if r.Cmd.Shell != shell {
			t.Errorf("%s: shell-form CMD %v, seed says %q", name, r.Cmd.Shell, row["CMD form"])
		}
	}
	if rows != 51 {
		t.Errorf("matched %d seed rows, want 51", rows)
	}
}

// seedWhy is the seed table's only optional column: some rows leave their
// "why" cell out rather than empty.
const seedWhy = "why"

// readSeedTable reads the seed matrix's table, each row a map from the
// header's column names to trimmed cells. A row one cell short lacks its
// "why" cell: the columns before it are read from the start of the row,
// the columns after it from the end. Any other cell count is an error.
func readSeedTable(r io.Reader) ([]map[string]string, error) {
	var header []string
	var rows []map[string]string
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(text, "|") {
			if header != nil && len(rows) > 0 {
				break // the table has ended
			}
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if header == nil {
			header = cells
			if !slices.Contains(header, seedWhy) {
				return nil, fmt.Errorf("line %d: header %q has no %q column", line, header, seedWhy)
			}
			continue
		}
		if strings.Trim(strings.Join(cells, ""), "-: ") == "" {
			continue // the separator row
		}
		why := slices.Index(header, seedWhy)
		row := map[string]string{}
		switch len(cells) {
		case len(header):
			for i, h := range header {
				row[h] = cells[i]
			}
		case len(header) - 1:
			for i, h := range header {
				switch {
				case i < why:
					row[h] = cells[i]
				case i > why:
					row[h] = cells[i-1]
				}
			}
		default:
			return nil, fmt.Errorf("line %d: %d cells, header has %d", line, len(cells), len(header))
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if header == nil {
		return nil, fmt.Errorf("no table")
	}
	return rows, nil
}

func TestReadSeedTableToleratesAMissingWhyCell(t *testing.T) {
	const text = `Intro | with a bar.

| name | build stage | final stage | CMD form | outcome | why | stand-in |
|---|---|---|---|---|---|---|
| a.full | gcc | same image | exec | 0 | a reason | yes |
| b.short | openjdk | same image | shell | 1 | partial (glibc JRE) |
| c.empty | gcc | scratch | exec | 127 | | no (apk) |

Counts: | not a row |
`
	rows, err := readSeedTable(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{
		{"name": "a.full", "build stage": "gcc", "final stage": "same image", "CMD form": "exec", "outcome": "0", "why": "a reason", "stand-in": "yes"},
		{"name": "b.short", "build stage": "openjdk", "final stage": "same image", "CMD form": "shell", "outcome": "1", "stand-in": "partial (glibc JRE)"},
		{"name": "c.empty", "build stage": "gcc", "final stage": "scratch", "CMD form": "exec", "outcome": "127", "why": "", "stand-in": "no (apk)"},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %v", len(rows), len(want), rows)
	}
	for i := range want {
		if !maps.Equal(rows[i], want[i]) {
			t.Errorf("row %d: got %v, want %v", i, rows[i], want[i])
		}
	}
	if _, err := readSeedTable(strings.NewReader("| name | why | stand-in |\n|---|---|---|\n| x |\n")); err == nil {
		t.Error("a row two cells short was accepted")
	}
}

func TestEveryRecipeMarshalsDeterministically(t *testing.T) {
	ctx := context.Background()
	for _, r := range Catalog() {
		d1, err := r.Definition(ctx, DefaultSources())
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		d2, err := r.Definition(ctx, DefaultSources())
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		if len(d1.Def) < 2 {
			t.Errorf("%s: definition has %d ops", r.Name, len(d1.Def))
		}
		if h1, h2 := defDigest(d1), defDigest(d2); h1 != h2 {
			t.Errorf("%s: two marshals differ: %s vs %s", r.Name, h1, h2)
		}
	}
}

func defDigest(d *llb.Definition) digest.Digest {
	var all []byte
	for _, dt := range d.Def {
		all = append(all, dt...)
	}
	return digest.FromBytes(all)
}

// vertices returns the digests of every op in a definition.
func vertices(t *testing.T, d *llb.Definition) map[digest.Digest]bool {
	t.Helper()
	out := map[digest.Digest]bool{}
	for _, dt := range d.Def {
		out[digest.FromBytes(dt)] = true
	}
	return out
}

// stageDigest is the digest of the vertex producing a stage's result.
func stageDigest(t *testing.T, s Stage) digest.Digest {
	t.Helper()
	d, err := s.State(DefaultSources()).Marshal(context.Background(), llb.Platform(Platform()))
	if err != nil {
		t.Fatal(err)
	}
	// The last op is the terminal one that selects the output; its only
	// input is the stage's result vertex.
	var term pb.Op
	if err := term.UnmarshalVT(d.Def[len(d.Def)-1]); err != nil {
		t.Fatal(err)
	}
	return digest.Digest(term.Inputs[0].Digest)
}

func TestSharedBuildStagesShareVertices(t *testing.T) {
	ctx := context.Background()
	byStage := map[string][]Recipe{}
	stages := map[string]Stage{}
	for _, r := range Catalog() {
		if r.SingleStage() {
			continue
		}
		build := r.buildStage()
		byStage[build.key()] = append(byStage[build.key()], r)
		stages[build.key()] = build
	}
	shared := 0
	for k, rs := range byStage {
		if len(rs) < 2 {
			continue
		}
		shared++
		want := stageDigest(t, stages[k])
		for _, r := range rs {
			d, err := r.Definition(ctx, DefaultSources())
			if err != nil {
				t.Fatal(err)
			}
			if !vertices(t, d)[want] {
				t.Errorf("%s does not contain its build stage's vertex %s", r.Name, want)
			}
		}
	}
	// The golang build of hello.go, written once, is in four recipes (its
	// own single-stage image and three run stages); the golang build of
	// whatsmyip.go in six.
	for name, want := range map[string]int{"hello-go.golang": 4, "whatsmyip.golang": 6} {
		r, _ := Lookup(Catalog(), name)
		build := stageDigest(t, r.Final)
		var users []string
		for _, o := range Catalog() {
			d, err := o.Definition(ctx, DefaultSources())
			if err != nil {
				t.Fatal(err)
			}
			if vertices(t, d)[build] {
				users = append(users, o.Name)
			}
		}
		if len(users) != want {
			t.Errorf("%s's build stage is in %d recipes, want %d: %v", name, len(users), want, users)
		}
	}
	if shared < 7 {
		t.Errorf("%d shared build stages, want at least 7", shared)
	}
}

func TestExpectedBuildFailure(t *testing.T) {
	for _, r := range Catalog() {
		if got, want := r.ExpectBuildFailure(), strings.HasSuffix(r.Name, ".err"); got != want {
			t.Errorf("%s: ExpectBuildFailure=%v", r.Name, got)
		}
	}
}

func TestBaseImagesArePinned(t *testing.T) {
	for _, r := range Catalog() {
		for _, img := range r.Images() {
			_, tag, ok := strings.Cut(strings.TrimPrefix(img, "ghcr.io"), ":")
			if !ok || tag == "" || tag == "latest" {
				t.Errorf("%s: image %s is not pinned to a tag", r.Name, img)
			}
		}
	}
}

func TestImageConfig(t *testing.T) {
	cat := Catalog()
	base := ocispecs.Image{}
	base.Config.Env = []string{"PATH=/bin", "GOPATH=/go"}
	base.Config.WorkingDir = "/go"
	base.Config.Labels = map[string]string{"org.minikit.stand-in": "true"}

	r, _ := Lookup(cat, "hello-go.golang.scratch-string")
	cfg := r.ImageConfig(ocispecs.Image{})
	if got := cfg.Config.Cmd; !slices.Equal(got, []string{"/bin/sh", "-c", "./hello"}) {
		t.Errorf("shell-form cmd: %q", got)
	}
	if !slices.Contains(cfg.Config.Env, defaultPath) || cfg.Architecture != "amd64" || cfg.OS != "linux" {
		t.Errorf("scratch config: %+v", cfg)
	}
	// FROM scratch with no WORKDIR: the Dockerfile frontend sets "/".
	if cfg.Config.WorkingDir != "/" {
		t.Errorf("scratch config: WorkingDir %q, want / as a Dockerfile gives it", cfg.Config.WorkingDir)
	}

	r, _ = Lookup(cat, "hello-go.golang")
	cfg = r.ImageConfig(base)
	if cfg.Config.WorkingDir != "/go" || !slices.Equal(cfg.Config.Cmd, []string{"./hello"}) {
		t.Errorf("single-stage config keeps the base's workdir: %+v", cfg.Config)
	}
	if cfg.Config.Labels["org.minikit.stand-in"] != "true" {
		t.Errorf("labels not inherited: %v", cfg.Config.Labels)
	}
	cfg.Config.Env[0] = "X=1"
	if base.Config.Env[0] != "PATH=/bin" {
		t.Error("ImageConfig aliases the base's Env")
	}

	st := From(Ubuntu).Env("A", "1").Workdir("/src").Env("PATH", "/x")
	cfg = Recipe{Final: st, Cmd: Exec("x")}.ImageConfig(base)
	if !slices.Equal(cfg.Config.Env, []string{"PATH=/x", "GOPATH=/go", "A=1"}) || cfg.Config.WorkingDir != "/src" {
		t.Errorf("env/workdir: %v %q", cfg.Config.Env, cfg.Config.WorkingDir)
	}
}

func TestStagesAreValues(t *testing.T) {
	base := From(Golang).Copy("a", ".")
	a := base.Run("one")
	b := base.Run("two")
	if len(base.steps) != 1 || a.steps[1].(runStep).cmd != "one" || b.steps[1].(runStep).cmd != "two" {
		t.Errorf("stages share state: base=%v a=%v b=%v", base.steps, a.steps, b.steps)
	}
}

func TestRecipeShape(t *testing.T) {
	cat := Catalog()
	r, _ := Lookup(cat, "whatsmyip.golang.busybox-glibc")
	// /etc/ssl is copied from alpine before the binary, as in the original.
	if got := r.Images(); !slices.Equal(got, []string{Alpine, Golang, BusyboxGlibc}) {
		t.Errorf("images: %v", got)
	}
	if r.BuildImage() != Golang || r.RunImage() != BusyboxGlibc || r.Program() != "whatsmyip" || !r.Network {
		t.Errorf("shape: build=%s run=%s program=%s", r.BuildImage(), r.RunImage(), r.Program())
	}
	r, _ = Lookup(cat, "hello-c.gcc")
	if !r.SingleStage() || r.RunImage() != GCC || r.BuildImage() != GCC {
		t.Errorf("hello-c.gcc: single=%v run=%s", r.SingleStage(), r.RunImage())
	}
	r, _ = Lookup(cat, "hello-java.eclipse-temurin.native-image.scratch")
	if n := len(r.Stages()); n != 3 || r.BuildImage() != JDK17 || r.RunImage() != "" {
		t.Errorf("native-image: %d stages, build %s, run %q", n, r.BuildImage(), r.RunImage())
	}
}

func TestSelect(t *testing.T) {
	cat := Catalog()
	got, err := Select(cat, "hello-go.*", "hello-c.gcc")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 || got[0].Name != "hello-c.gcc" {
		t.Errorf("select: %v", names(got))
	}
	got, err = Select(cat, "hello-go.golang", "hello-go.*")
	if err != nil || len(got) != 7 {
		t.Errorf("duplicates: %v %v", names(got), err)
	}
	_, err = Select(cat, "hello-go.golang.scrach")
	var ue *UnknownError
	if err == nil || !asUnknown(err, &ue) || len(ue.Suggestion) == 0 || ue.Suggestion[0] != "hello-go.golang.scratch" {
		t.Errorf("typo: %v", err)
	}
	if _, err = Select(cat, "nosuch"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("nosuch: %v", err)
	}
	if _, err = Select(cat, "hello-[go"); err == nil {
		t.Error("bad pattern accepted")
	}
}

func asUnknown(err error, target **UnknownError) bool {
	ue, ok := err.(*UnknownError)
	*target = ue
	return ok
}

// Every recipe that is not faithfully reproducible says why: an Online row
// names what is missing (a musl-native toolchain, the apk index or GraalVM)
// in a sentence of its own, a Partial row the one respect in which its
// stand-in differs; an Offline row has nothing to say.
func TestEveryRowNotOfflineSaysWhy(t *testing.T) {
	seen := map[string]string{} // reason -> recipe
	online := 0
	for _, r := range All() {
		switch r.StandIn {
		case Offline:
			if r.Offline != "" {
				t.Errorf("%s is reproducible offline but has an Offline reason %q", r.Name, r.Offline)
			}
			continue
		case Online:
			online++
			if !strings.Contains(r.Offline, "musl") && !strings.Contains(r.Offline, "apk") && !strings.Contains(r.Offline, "GraalVM") {
				t.Errorf("%s: Offline reason %q names no missing musl toolchain, apk index or GraalVM", r.Name, r.Offline)
			}
		case Partial:
			if r.Offline == "" {
				t.Errorf("%s is partial but does not say how its stand-in differs (Offline)", r.Name)
			}
		default:
			t.Errorf("%s: stand-in %q", r.Name, r.StandIn)
		}
		if r.Offline == "" {
			continue
		}
		if len(r.Offline) < 40 {
			t.Errorf("%s: Offline reason %q is too short to be specific", r.Name, r.Offline)
		}
		if other, dup := seen[r.Offline]; dup {
			t.Errorf("%s and %s share the Offline reason %q", other, r.Name, r.Offline)
		}
		seen[r.Offline] = r.Name
	}
	if online != 13 {
		t.Errorf("%d upstream-only rows, want the seed's 13", online)
	}
}
