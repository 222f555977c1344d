package explore

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"

	"github.com/minikit/minikit/pkg/llbdefs"
)

// ops marshals a stage or recipe state and returns its ops by digest.
func ops(t *testing.T, st llb.State) map[digest.Digest]*pb.Op {
	t.Helper()
	def, err := st.Marshal(context.Background(), llb.Platform(llbdefs.Platform()))
	if err != nil {
		t.Fatal(err)
	}
	out := map[digest.Digest]*pb.Op{}
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.Unmarshal(dt); err != nil {
			t.Fatal(err)
		}
		out[digest.FromBytes(dt)] = &op
	}
	return out
}

// head is the digest of the op a state ends with.
func head(t *testing.T, st llb.State) digest.Digest {
	t.Helper()
	def, err := st.Marshal(context.Background(), llb.Platform(llbdefs.Platform()))
	if err != nil {
		t.Fatal(err)
	}
	var term pb.Op
	if err := term.Unmarshal(def.Def[len(def.Def)-1]); err != nil {
		t.Fatal(err)
	}
	return digest.Digest(term.Inputs[0].Digest)
}

func testProgram(t *testing.T, kind Kind) Program {
	t.Helper()
	switch kind {
	case Go:
		return Program{Dir: t.TempDir(), Name: "app", Kind: Go, Module: "example.com/app", MainPkg: ".", Files: []string{"go.mod", "main.go"}}
	case C:
		return Program{Dir: t.TempDir(), Name: "calc", Kind: C, Source: "calc.c", Libs: []string{"-lm"}, Files: []string{"calc.c"}}
	case Rust:
		return Program{Dir: t.TempDir(), Name: "hello", Kind: Rust, Files: []string{"Cargo.toml", "src/main.rs"}}
	case Python:
		return Program{Dir: t.TempDir(), Name: "tool", Kind: Python, Source: "tool.py", Files: []string{"tool.py"}}
	case Java:
		return Program{Dir: t.TempDir(), Name: "hello", Kind: Java, Source: "Hello.java", Class: "Hello", Files: []string{"Hello.java"}}
	}
	t.Fatalf("kind %s", kind)
	return Program{}
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// TestOneBuildVertexPerVariant checks the promise that makes explore's
// cost grow with the build variants, not the run bases: every candidate
// of a variant copies from the very same build vertices, so the graphs of
// all the candidates hold one set of build steps per variant.
func TestOneBuildVertexPerVariant(t *testing.T) {
	for _, kind := range []Kind{Go, C, Rust, Java} {
		t.Run(string(kind), func(t *testing.T) {
			p := testProgram(t, kind)
			p.NeedsCA = true
			pl, err := NewPlan(p)
			if err != nil {
				t.Fatal(err)
			}
			src := llbdefs.Sources{Context: llbdefs.SamplesSource()}
			cands := pl.Candidates(KnownFacts(p))
			buildExecs := map[digest.Digest]bool{} // the exec ops of the variants' stages alone
			heads := map[string]digest.Digest{}
			for _, v := range pl.Variants {
				heads[v.Name] = head(t, v.Stage.State(src))
				for d, op := range ops(t, v.Stage.State(src)) {
					if op.GetExec() != nil {
						buildExecs[d] = true
					}
				}
			}
			allExecs := map[digest.Digest]bool{}
			perVariant := map[string]int{}
			for _, cd := range cands {
				perVariant[cd.Variant]++
				got := ops(t, cd.Recipe.State(src))
				if _, ok := got[heads[cd.Variant]]; !ok {
					t.Errorf("%s: its graph does not hold variant %s's build stage (%s)", cd.Name, cd.Variant, heads[cd.Variant])
				}
				for d, op := range got {
					if op.GetExec() != nil {
						allExecs[d] = true
					}
				}
			}
			for d := range allExecs {
				if !buildExecs[d] {
					t.Errorf("a RUN step %s that is not one of the variants' build steps", d)
				}
			}
			if len(allExecs) != len(buildExecs) {
				t.Errorf("%d RUN steps across %d candidates, want the variants' %d", len(allExecs), len(cands), len(buildExecs))
			}
			for _, v := range pl.Variants {
				if perVariant[v.Name] < 2 {
					t.Errorf("variant %s is on %d run base(s), want several", v.Name, perVariant[v.Name])
				}
			}
		})
	}
}

func TestCandidateNamesAndExtras(t *testing.T) {
	p := testProgram(t, Go)
	pl, err := NewPlan(p)
	if err != nil {
		t.Fatal(err)
	}
	f := KnownFacts(p)
	f.NeedsCA = true
	cands := pl.Candidates(f)
	names := map[string]Candidate{}
	for _, cd := range cands {
		if !validName.MatchString(cd.Name) {
			t.Errorf("name %q is not a valid target name", cd.Name)
		}
		if _, dup := names[cd.Name]; dup {
			t.Errorf("name %s twice", cd.Name)
		}
		names[cd.Name] = cd
		if !strings.HasPrefix(cd.Name, "app.") || cd.Recipe.Program() != "app" {
			t.Errorf("%s: program %q", cd.Name, cd.Recipe.Program())
		}
		if err := cd.Recipe.Validate(); err != nil {
			t.Errorf("%s: %v", cd.Name, err)
		}
	}
	// 4 variants x 9 bases, scratch twice (with and without the bundle)
	// for each, and one shell-form candidate.
	if want := 4*9 + 4 + 1; len(cands) != want {
		t.Errorf("%d candidates, want %d: %v", len(cands), want, slices.Collect(func(yield func(string) bool) {
			for n := range names {
				if !yield(n) {
					return
				}
			}
		}))
	}
	for name, want := range map[string]struct{ ca, shell bool }{
		"app.go-static.scratch":           {false, false},
		"app.go-static.scratch-ca":        {true, false},
		"app.go-static.busybox-ca":        {true, false},
		"app.go-static.debian-slim-ca":    {true, false},
		"app.go-static.alpine":            {false, false},
		"app.go-static.distroless-static": {false, false},
		"app.go-static":                   {false, false}, // the build image itself
		"app.go-static.scratch-ca-shell":  {true, true},
	} {
		cd, ok := names[name]
		if !ok {
			t.Errorf("no candidate %s", name)
			continue
		}
		if cd.AddsCA != want.ca || cd.ShellForm != want.shell {
			t.Errorf("%s: adds CA %v, shell form %v; want %v, %v", name, cd.AddsCA, cd.ShellForm, want.ca, want.shell)
		}
	}
	for _, gone := range []string{"app.go-static.busybox", "app.go-static.alpine-ca"} {
		if _, ok := names[gone]; ok {
			t.Errorf("candidate %s should not exist", gone)
		}
	}
	if cmd := names["app.go-static.scratch-ca-shell"].Recipe.Cmd; !cmd.Shell {
		t.Errorf("shell-form candidate has Cmd %v", cmd)
	}
	if cmd := names["app.go-static"].Recipe.Cmd.Config(); !slices.Equal(cmd, []string{"/out/app"}) {
		t.Errorf("build-image candidate runs %q", cmd)
	}
	if cmd := names["app.go-static.scratch"].Recipe.Cmd.Config(); !slices.Equal(cmd, []string{"/app"}) {
		t.Errorf("scratch candidate runs %q", cmd)
	}
}

func TestDockerfiles(t *testing.T) {
	for _, kind := range []Kind{Go, C, Rust, Python, Java} {
		p := testProgram(t, kind)
		pl, err := NewPlan(p)
		if err != nil {
			t.Fatal(err)
		}
		f := KnownFacts(p)
		f.NeedsCA, f.NeedsTZ = true, true
		for _, cd := range pl.Candidates(f) {
			df, err := Dockerfile(p, cd)
			if err != nil {
				t.Errorf("%s: %v", cd.Name, err)
				continue
			}
			if cd.AddsCA && !strings.Contains(df, "COPY --from=gcr.io/distroless/static-debian12:latest /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt") {
				t.Errorf("%s adds the CA bundle, its Dockerfile does not:\n%s", cd.Name, df)
			}
			if kind == Go && !strings.Contains(df, "RUN --mount=type=cache,target=/go/pkg/mod,id="+goModCacheID+" --mount=type=cache,target=/root/.cache/go-build,id="+goBuildID+",sharing=locked ") {
				t.Errorf("%s: the Go build's cache mounts are not in its Dockerfile:\n%s", cd.Name, df)
			}
		}
	}
	p := testProgram(t, C)
	pl, _ := NewPlan(p)
	for _, cd := range pl.Candidates(KnownFacts(p)) {
		if cd.Name != "calc.gcc-static-s.scratch" {
			continue
		}
		df, _ := Dockerfile(p, cd)
		for _, want := range []string{"# calc.gcc-static-s.scratch: generated by `minikit explore " + p.Dir + "`; the build context is that directory:\n",
			"FROM gcc:12-bookworm AS build\n", "WORKDIR /src\n", "COPY . .\n",
			"RUN mkdir -p /out && gcc -static -Os -s -o /out/calc calc.c -lm\n", "FROM scratch\n", "COPY --from=build /out/calc /calc\n", `CMD ["/calc"]`} {
			if !strings.Contains(df, want) {
				t.Errorf("Dockerfile of %s lacks %q:\n%s", cd.Name, want, df)
			}
		}
	}
}

func TestPlanBases(t *testing.T) {
	p := testProgram(t, Go)
	pl, err := NewPlan(p, WithBases(BaseScratch), WithoutShellForm())
	if err != nil {
		t.Fatal(err)
	}
	cands := pl.Candidates(KnownFacts(p))
	if len(cands) != 4 {
		t.Errorf("one base: %d candidates, want 4 (one per variant)", len(cands))
	}
	for _, cd := range cands {
		if cd.Base != BaseScratch || cd.ShellForm {
			t.Errorf("%s: base %s, shell %v", cd.Name, cd.Base, cd.ShellForm)
		}
	}
	if _, err := NewPlan(p, WithBases("nope")); err == nil || !strings.Contains(err.Error(), "scratch, distroless-static") {
		t.Errorf("unknown base: %v", err)
	}
	if _, err := NewPlan(p, WithGoEnv("GOPROXY")); err == nil {
		t.Error("a Go environment entry without = was accepted")
	}
	// Python runs where Python is.
	py := testProgram(t, Python)
	ppl, err := NewPlan(py)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, cd := range ppl.Candidates(KnownFacts(py)) {
		got = append(got, cd.Name)
	}
	if want := []string{"tool.python", "tool.python-slim", "tool.script.distroless-python3"}; !slices.Equal(got, want) {
		t.Errorf("python candidates %q, want %q", got, want)
	}
}

func TestGoEnvInBuildStages(t *testing.T) {
	p := testProgram(t, Go)
	pl, err := NewPlan(p, WithGoEnv("GOPROXY=http://proxy.example:3000", "GOFLAGS=-mod=mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range pl.Variants {
		df, err := llbdefs.Recipe{Name: "x", Final: v.Stage, Cmd: llbdefs.Exec("/x")}.RenderDockerfile()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(df, "ENV GOPROXY=http://proxy.example:3000\n") || !strings.Contains(df, "ENV GOFLAGS=-mod=mod\n") {
			t.Errorf("%s: no Go environment:\n%s", v.Name, df)
		}
	}
	if !strings.Contains(mustDockerfile(t, goListDeps(p, pl.GoEnv)), "go list -deps") {
		t.Error("no go list step")
	}
}

func mustDockerfile(t *testing.T, st llbdefs.Stage) string {
	t.Helper()
	df, err := llbdefs.Recipe{Name: "x", Final: st, Cmd: llbdefs.Exec("/x")}.RenderDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	return df
}

func TestMakeAndCollect(t *testing.T) {
	p := testProgram(t, C)
	p.Makefile, p.Source, p.Libs = "Makefile", "", nil
	pl, err := NewPlan(p)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range pl.Variants {
		names = append(names, v.Name)
	}
	if want := []string{"make", "make-static", "make-static-s", "musl-static"}; !slices.Equal(names, want) {
		t.Errorf("variants %q, want %q", names, want)
	}
	df := mustDockerfile(t, pl.Variants[3].Stage)
	if !strings.Contains(df, "make all CC=musl-gcc LDFLAGS=\"-static -s\" && mkdir -p /out") || !strings.Contains(df, "cp \"$1\" /out/calc") {
		t.Errorf("musl make variant:\n%s", df)
	}
	if !strings.Contains(df, muslToolsInstall) {
		t.Errorf("musl variant does not install musl-tools:\n%s", df)
	}
}
