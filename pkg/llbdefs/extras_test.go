package llbdefs

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestExtrasApartFromTheSeed(t *testing.T) {
	seed := map[string]bool{}
	for _, r := range Catalog() {
		seed[r.Name] = true
		if r.Extra {
			t.Errorf("seed row %s is marked extra", r.Name)
		}
	}
	extras := Extras()
	if len(extras) == 0 {
		t.Fatal("no extras")
	}
	seen := map[string]bool{}
	for i, r := range extras {
		if seed[r.Name] || seen[r.Name] {
			t.Errorf("%s: name taken", r.Name)
		}
		seen[r.Name] = true
		if i > 0 && extras[i-1].Name >= r.Name {
			t.Errorf("extras not sorted at %s", r.Name)
		}
		if !r.Extra || r.StandIn == Online || r.Expect == "" || r.Why == "" || (r.StandIn == Partial) != (r.Offline != "") {
			t.Errorf("%s: extra=%v stand-in=%s expect=%q why=%q", r.Name, r.Extra, r.StandIn, r.Expect, r.Why)
		}
		if parts := strings.Split(r.Name, "."); len(parts) != 3 && (len(parts) != 2 || !r.SingleStage()) {
			t.Errorf("%s: want PROGRAM.BUILD.RUN (PROGRAM.IMAGE for a single stage)", r.Name)
		}
		for _, img := range r.Images() {
			// Distroless publishes no versioned tags: its names pin the
			// Debian release (static-debian12), and latest is the one
			// that runs as root, like the stand-ins.
			repo, tag, ok := strings.Cut(img, ":")
			distroless := strings.HasPrefix(repo, "gcr.io/distroless/") && strings.HasSuffix(repo, "-debian12")
			if !ok || tag == "" || (tag == "latest" && !distroless) {
				t.Errorf("%s: image %s is not pinned", r.Name, img)
			}
		}
	}
	if all := All(); len(all) != len(Catalog())+len(extras) || all[0].Name != Catalog()[0].Name || !all[len(all)-1].Extra {
		t.Errorf("All: %d recipes", len(all))
	}
	if len(Catalog()) != 51 {
		t.Errorf("the seed catalog changed: %d rows", len(Catalog()))
	}
}

func TestExtrasMarshal(t *testing.T) {
	ctx := context.Background()
	for _, r := range Extras() {
		d1, err := r.Definition(ctx, DefaultSources())
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		d2, _ := r.Definition(ctx, DefaultSources())
		if defDigest(d1) != defDigest(d2) {
			t.Errorf("%s: two marshals differ", r.Name)
		}
	}
}

// Every floor is an extra onto scratch whose one file (plus the CA bundle
// for whatsmyip) is a stripped static executable.
func TestFloors(t *testing.T) {
	extras := Extras()
	for prog, name := range Floors() {
		r, ok := Lookup(extras, name)
		if !ok {
			t.Errorf("%s: floor %s is not an extra", prog, name)
			continue
		}
		if r.Program() != prog || r.RunImage() != "" || r.Expect != Works {
			t.Errorf("%s: floor %s: program %s, run image %q, expect %s", prog, name, r.Program(), r.RunImage(), r.Expect)
		}
		build := r.BuildImage()
		cmds := ""
		for _, s := range r.Stages() {
			for _, st := range s.steps {
				if run, ok := st.(runStep); ok {
					cmds += run.cmd + "\n"
				}
			}
		}
		for _, want := range map[string][]string{
			GCC:       {"-static", "-s"},
			Golang:    {"-ldflags=\"-s -w\"", "-trimpath"},
			Golang127: {"-ldflags=\"-s -w\"", "-trimpath"},
			Rust:      {"+crt-static", "strip=symbols"},
		}[build] {
			if !strings.Contains(cmds, want) {
				t.Errorf("%s: floor build lacks %s:\n%s", name, want, cmds)
			}
		}
	}
	if _, ok := FloorRecipe("hello-py"); ok {
		t.Error("hello-py has no static executable")
	}
	if n, ok := FloorRecipe("hello-c"); !ok || n != "hello-c.musl-static.scratch" {
		t.Errorf("hello-c floor: %s", n)
	}
	// Measured on the stand-ins: Go 1.27 makes hello smaller than 1.26,
	// whatsmyip larger.
	if n, _ := FloorRecipe("hello-go"); n != "hello-go.golang127-static.scratch" {
		t.Errorf("hello-go floor: %s", n)
	}
	if n, _ := FloorRecipe("whatsmyip"); n != "whatsmyip.golang-static.scratch" {
		t.Errorf("whatsmyip floor: %s", n)
	}
	// whatsmyip's floor carries only the CA bundle file, not /etc/ssl.
	r, _ := Lookup(extras, "whatsmyip.golang-static.scratch")
	if !r.Network || !strings.Contains(r.Final.key(), "/etc/ssl/certs/ca-certificates.crt") || strings.Contains(r.Final.key(), "\x00/etc/ssl\x00") {
		t.Errorf("whatsmyip floor copies %q", r.Final.key())
	}
}

// The Java and Python extras: no floor; Java's runtime is made by jdeps and
// jlink with every size option, in one build stage both run images share;
// every extra on a base with no shell has an exec-form CMD.
func TestExtrasJavaPython(t *testing.T) {
	extras := Extras()
	works := map[string]int{}
	for _, r := range extras {
		if r.Expect == Works {
			works[r.Program()]++
		}
		if base := r.RunImage(); (base == "" || strings.HasPrefix(base, "gcr.io/distroless/")) && r.Cmd.Shell {
			t.Errorf("%s: shell-form CMD on %q, which has no shell", r.Name, base)
		}
	}
	for _, prog := range []string{"hello-java", "hello-py"} {
		if works[prog] == 0 {
			t.Errorf("%s: no extra expected to work", prog)
		}
		if n, ok := FloorRecipe(prog); ok {
			t.Errorf("%s has a floor: %s", prog, n)
		}
	}

	var javaBuild []string
	for _, r := range extras {
		if r.Program() != "hello-java" {
			continue
		}
		stages := r.Stages()
		if len(stages) != 2 || stages[0].from != Debian {
			t.Fatalf("%s: want a debian build stage and a run stage, got %d stages", r.Name, len(stages))
		}
		javaBuild = append(javaBuild, stages[0].key())
		var cmds []string
		for _, st := range stages[0].steps {
			if run, ok := st.(runStep); ok {
				cmds = append(cmds, run.cmd)
			}
		}
		all := strings.Join(cmds, "\n")
		for _, want := range []string{"openjdk-17-jdk-headless", "binutils", "javac hello.java", "jdeps --print-module-deps hello.class", "jlink ", "--strip-debug", "--no-header-files", "--no-man-pages", "--compress=2", "--output /java"} {
			if !strings.Contains(all, want) {
				t.Errorf("%s: the build stage lacks %q:\n%s", r.Name, want, all)
			}
		}
		if !strings.Contains(r.Final.key(), "\x00/java\x00") || !strings.Contains(r.Final.key(), "\x00/hello.class\x00") || r.Cmd.Args[0] != "/java/bin/java" {
			t.Errorf("%s: the run stage does not run the jlinked runtime: %s, %v", r.Name, r.Final.key(), r.Cmd)
		}
	}
	if len(javaBuild) < 2 || javaBuild[0] != javaBuild[1] {
		t.Errorf("the Java run images do not share one build stage (%d)", len(javaBuild))
	}

	py, ok := Lookup(extras, "hello-py.distroless-python3-minimal")
	if !ok || !py.SingleStage() || py.RunImage() != DistrolessPython || py.Cmd.Shell || py.Cmd.Args[0] != "/usr/bin/python3" {
		t.Errorf("hello-py extra: %+v", py)
	}
}

// Each Go 1.27 extra is its Go 1.26 twin (the name with golang for golang127) built
// on golang:1.27: the same steps, only the build image differs, and its
// build stage shares the Go build cache like the 1.26 ones.
func TestExtrasGo127Twins(t *testing.T) {
	extras := Extras()
	cached := DefaultSources()
	cached.CompilerCache = true
	n := 0
	for _, r := range extras {
		if !strings.Contains(r.Name, ".golang127-") {
			if r.BuildImage() == Golang127 {
				t.Errorf("%s builds on Go 1.27 but is not named golang127", r.Name)
			}
			continue
		}
		n++
		twin, ok := Lookup(extras, strings.Replace(r.Name, ".golang127-", ".golang-", 1))
		if !ok {
			t.Errorf("%s: no Go 1.26 twin", r.Name)
			continue
		}
		if r.BuildImage() != Golang127 || twin.BuildImage() != Golang {
			t.Errorf("%s: built on %s, its twin on %s", r.Name, r.BuildImage(), twin.BuildImage())
		}
		same := strings.ReplaceAll(r.Final.key(), Golang127, Golang)
		if same != twin.Final.key() || r.RunImage() != twin.RunImage() || !slices.Equal(r.Cmd.Args, twin.Cmd.Args) || r.Network != twin.Network || r.Expect != twin.Expect {
			t.Errorf("%s differs from %s beyond the Go version", r.Name, twin.Name)
		}
		if !strings.Contains(r.Note, "Go 1.27.3") {
			t.Errorf("%s: Note does not say which Go: %q", r.Name, r.Note)
		}
		if m := cacheMounts(t, r, cached); len(m) != 1 {
			t.Errorf("%s: want the Go build cache on go build, got %v", r.Name, m)
		}
	}
	if n < 2 {
		t.Errorf("%d Go 1.27 extras, want hello-go's and whatsmyip's", n)
	}
}
