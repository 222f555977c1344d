package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/internal/tlsca"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/report"
)

// Programs minikit has never seen, written by the tests into a
// temporary directory: `minikit explore DIR` finds what they are, builds
// every candidate, runs each with the check given, and names the
// smallest that works.

// calcC uses libm (cbrt, lgamma: calls, not folded at compile time): the
// dynamic build needs the loader and libm.so.6.
const calcC = `#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
	double x = argc > 1 ? atof(argv[1]) : 2.0;
	printf("%.4f %.4f\n", cbrt(x), lgamma(x + 3.0));
	return 0;
}
`

// calcOutput is what calcC prints with no argument: cbrt(2), lgamma(5).
const calcOutput = `^1\.2599 3\.1781\n$`

const uuidGoMod = "module example.com/uuidgen\n\ngo 1.22\n\nrequire github.com/google/uuid v1.6.0\n"

const uuidGoSum = `github.com/google/uuid v1.6.0 h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=
github.com/google/uuid v1.6.0/go.mod h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo=
`

const uuidMain = `package main

import (
	"fmt"

	"github.com/google/uuid"
)

func main() {
	fmt.Println(uuid.NewString())
}
`

const httpsClientMain = `package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	resp, err := http.Get(os.Getenv("URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))
}
`

const httpServerMain = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	if err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

// localGoProxy downloads modules (path@version) on the host, with the
// host's Go and network settings, and serves the host's module download
// cache as a GOPROXY on loopback, which the builds reach (buildkitd's
// RUN steps share the host's network): the build containers then need no
// route to, and no trust in whatever TLS stands between them and,
// proxy.golang.org. It returns GOPROXY's value.
func localGoProxy(t testing.TB, modules ...string) string {
	t.Helper()
	for _, m := range modules {
		cmd := exec.Command("go", "mod", "download", "-json", m)
		cmd.Dir = os.TempDir()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go mod download %s: %v\n%s", m, err, out)
		}
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(filepath.Join(strings.TrimSpace(string(out)), "cache", "download"))), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// writeProgram writes files into a new directory and returns it.
func writeProgram(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// exploreJSON runs `minikit explore --format json` and reads the report.
func exploreJSON(t *testing.T, ctx context.Context, dir string, args ...string) *report.Report {
	t.Helper()
	return exploreJSONEnv(t, ctx, nil, dir, args...)
}

// exploreJSONEnv is exploreJSON with extra environment variables.
func exploreJSONEnv(t *testing.T, ctx context.Context, env []string, dir string, args ...string) *report.Report {
	t.Helper()
	args = append([]string{"explore", "--format", "json", "--progress", "quiet"}, append(args, dir)...)
	code, stdout, stderr := minikitEnv(t, ctx, env, args...)
	if code != 0 {
		t.Fatalf("minikit %s exited %d\n%s\n%s", strings.Join(args, " "), code, tail(stdout, 3000), tail(stderr, 4000))
	}
	rep, err := report.ReadJSON(bytes.NewReader(stdout))
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(stdout, 3000))
	}
	t.Logf("explore: %d candidates; stderr:\n%s", len(rep.Recipes), tail(stderr, 1500))
	return rep
}

func row(t *testing.T, rep *report.Report, name string) report.Recipe {
	t.Helper()
	for _, r := range rep.Recipes {
		if r.Name == name {
			return r
		}
	}
	var names []string
	for _, r := range rep.Recipes {
		names = append(names, r.Name)
	}
	t.Fatalf("no candidate %s among %v", name, names)
	return report.Recipe{}
}

// smallest is the report's winner, failing the test without one.
func smallest(t *testing.T, rep *report.Report) report.Recipe {
	t.Helper()
	if len(rep.Ranking) != 1 || rep.Ranking[0].Smallest == "" {
		t.Fatalf("no ranking: %+v", rep.Ranking)
	}
	w := row(t, rep, rep.Ranking[0].Smallest)
	if w.Run == nil || !w.Run.Expected || w.Image == nil {
		t.Fatalf("the winner %s did not run as checked: %+v", w.Name, w.Run)
	}
	for _, r := range rep.Recipes {
		if r.Run != nil && r.Run.Expected && r.Image != nil && r.Image.Uncompressed < w.Image.Uncompressed {
			t.Errorf("%s works and is smaller (%d B) than the winner %s (%d B)", r.Name, r.Image.Uncompressed, w.Name, w.Image.Uncompressed)
		}
	}
	return w
}

func logRanking(t *testing.T, rep *report.Report) {
	t.Helper()
	var b strings.Builder
	for _, r := range rep.Recipes {
		size, why := "-", r.Error
		if r.Image != nil {
			size = strconv.FormatInt(r.Image.Uncompressed, 10)
		}
		if r.Run != nil {
			why = fmt.Sprintf("works=%v %s", r.Run.Expected, r.Run.Reason)
		}
		fmt.Fprintf(&b, "%-45s %10s %s\n", r.Name, size, why)
	}
	t.Logf("candidates:\n%s", b.String())
}

// TestExploreBadInput: a directory holding no program, or several, is a
// usage error (exit 2) naming what explore looked for and found; nothing
// is built, so no daemon is needed.
func TestExploreBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"nothing", map[string]string{"README.md": "hello\n"}, []string{"no program found", "a Go module with a main package", "README.md"}},
		{"several", map[string]string{"go.mod": "module m\n", "main.go": uuidMain, "tool.py": "print(1)\n"}, []string{"several programs", "a Go module", "a Python script (tool.py)"}},
		{"two c files", map[string]string{"a.c": "int main(){}", "b.c": ""}, []string{"2 .c files (a.c, b.c) and no Makefile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeProgram(t, tc.files)
			code, stdout, stderr := minikit(t, ctx, "explore", dir)
			if code != 2 {
				t.Errorf("exit %d, want 2\n%s%s", code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !bytes.Contains(stderr, []byte(w)) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestExploreCLibm: a C program using libm. The smallest working image is
// a static build on scratch; the dynamic build on scratch fails with the
// loader reason.
func TestExploreCLibm(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir := writeProgram(t, map[string]string{"calc.c": calcC})
	rep := exploreJSON(t, ctx, dir, "--expect-output", calcOutput)
	logRanking(t, rep)
	w := smallest(t, rep)
	if !regexp.MustCompile(`^calc\.(gcc-static|gcc-static-s|musl-static)\.scratch$`).MatchString(w.Name) {
		t.Errorf("winner %s, want a static build on scratch", w.Name)
	}
	dyn := row(t, rep, "calc.gcc.scratch")
	if dyn.Run == nil || dyn.Run.Expected || dyn.Run.ExitCode != 127 || dyn.Run.Kind != "missing-loader" || !strings.Contains(dyn.Run.Reason, "ld-linux-x86-64.so.2") {
		t.Errorf("calc.gcc.scratch: want exit 127 for the missing loader, got %+v", dyn.Run)
	}
	// The dynamic build works where glibc and libm are.
	if r := row(t, rep, "calc.gcc.distroless-base"); r.Run == nil || !r.Run.Expected {
		t.Errorf("calc.gcc.distroless-base does not work: %+v", r.Run)
	}
}

// TestExploreGoModule: a Go module with one dependency from the module
// proxy, downloaded in the build (from the host's module cache served as
// GOPROXY: localGoProxy). Static on scratch wins.
func TestExploreGoModule(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir := writeProgram(t, map[string]string{"go.mod": uuidGoMod, "go.sum": uuidGoSum, "main.go": uuidMain})
	proxy := localGoProxy(t, "github.com/google/uuid@v1.6.0")
	rep := exploreJSONEnv(t, ctx, []string{"GOPROXY=" + proxy}, dir, "--expect-output", `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n$`)
	logRanking(t, rep)
	if w := smallest(t, rep); w.Name != "uuidgen.go-static.scratch" {
		t.Errorf("winner %s, want uuidgen.go-static.scratch", w.Name)
	}
	for _, r := range rep.Recipes {
		if strings.Contains(r.Name, "-ca") {
			t.Errorf("%s: a CA bundle for a program that does not link crypto/x509", r.Name)
		}
	}
}

// TestExploreHTTPSClient: a Go HTTPS client pointed at the loopback test
// server (its certificate from minikit's test CA, which the stand-ins'
// CA bundles hold). On scratch without a CA bundle it fails with the
// x509 reason; the winner carries the bundle.
func TestExploreHTTPSClient(t *testing.T) {
	home := requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	ca, err := tlsca.LoadOrCreate(filepath.Join(string(home), tlsca.DirName))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := tlsca.Serve(ca)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := writeProgram(t, map[string]string{"go.mod": "module example.com/fetch\n\ngo 1.22\n", "main.go": httpsClientMain})
	rep := exploreJSON(t, ctx, dir, "--network", "--env", "URL="+srv.URL, "--expect-output", "^"+regexp.QuoteMeta(tlsca.Answer)+"\n$",
		"--bases", "scratch,distroless-static,busybox")
	logRanking(t, rep)
	bare := row(t, rep, "fetch.go-static.scratch")
	if bare.Run == nil || bare.Run.Expected || bare.Run.Kind != "x509-unknown-authority" || !strings.Contains(bare.Run.Reason, "no CA bundle") {
		t.Errorf("fetch.go-static.scratch: want the x509 failure, no CA bundle; got %+v", bare.Run)
	}
	w := smallest(t, rep)
	if !strings.HasSuffix(w.Name, ".scratch-ca") && !strings.Contains(w.Name, "distroless") {
		t.Errorf("winner %s carries no CA bundle", w.Name)
	}
	found := false
	for _, f := range w.Image.Largest {
		found = found || f.Path == "/etc/ssl/certs/ca-certificates.crt"
	}
	if !found {
		t.Errorf("the winner %s has no /etc/ssl/certs/ca-certificates.crt among its largest files: %+v", w.Name, w.Image.Largest)
	}
	if srv.Hits() == 0 {
		t.Error("the test server was never asked")
	}
}

// TestExploreHTTPServerProbe: a Go HTTP server checked with --probe works
// on scratch; the variant whose Cmd is in shell form fails there for want
// of /bin/sh.
func TestExploreHTTPServerProbe(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	port := freePort(t)
	dir := writeProgram(t, map[string]string{"go.mod": "module example.com/srv\n\ngo 1.22\n", "main.go": httpServerMain})
	rep := exploreJSON(t, ctx, dir, "--env", "PORT="+strconv.Itoa(port), "--probe", fmt.Sprintf("http://:%d/healthz", port),
		"--bases", "scratch,alpine")
	logRanking(t, rep)
	if r := row(t, rep, "srv.go-static.scratch"); r.Run == nil || !r.Run.Expected || !strings.Contains(r.Run.Reason, "answers") {
		t.Errorf("srv.go-static.scratch does not answer: %+v", r.Run)
	}
	// The server links crypto/x509 (net/http does): the shell-form
	// candidate carries the CA bundle, scratch-ca-shell.
	sh := row(t, rep, "srv.go-static.scratch-ca-shell")
	if sh.Run == nil || sh.Run.Expected || sh.Run.Kind != "no-shell" || !strings.Contains(sh.Run.Reason, "/bin/sh") {
		t.Errorf("srv.go-static.scratch-shell: want the /bin/sh failure, got %+v", sh.Run)
	}
	if w := smallest(t, rep); !strings.HasSuffix(w.Name, ".scratch") {
		t.Errorf("winner %s, want one on scratch", w.Name)
	}
}

// TestExploreEmittedDockerfile: --emit writes the winner's Dockerfile;
// docker buildx builds it, with the program's directory as the context,
// into the same image as --output exports from the LLB: the same layers
// file for file (mtimes aside) and the same Cmd, Env and WorkingDir, as
// the bake Dockerfiles are checked.
func TestExploreEmittedDockerfile(t *testing.T) {
	bx := requireBuildx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	builder := privateBuilder(t, ctx, bx)
	dir := writeProgram(t, map[string]string{"calc.c": calcC})
	out := t.TempDir()
	df := filepath.Join(out, "Dockerfile")
	rep := exploreJSON(t, ctx, dir, "--expect-output", calcOutput, "--bases", "scratch,distroless-static",
		"--emit", df, "--output", "oci="+filepath.Join(out, "llb"))
	w := smallest(t, rep)
	dt, err := os.ReadFile(df)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s's Dockerfile:\n%s", w.Name, dt)
	bakeTar := filepath.Join(out, "buildx.oci.tar")
	if stdout, stderr, err := bx.run(t, ctx, "build", "--builder", builder, "--progress", "plain", "-f", df,
		"--output", "type=oci,dest="+bakeTar, dir); err != nil {
		t.Fatalf("buildx build: %v\n%s%s", err, stdout, tail(stderr, 4000))
	}
	layers := layerEntriesByDigest{}
	fromBuildx, err := readOCIImage(bakeTar, layers)
	if err != nil {
		t.Fatal(err)
	}
	fromLLB, err := readOCIImage(filepath.Join(out, "llb", w.Name+".oci.tar"), layers)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range compareImages(llbdefs.Recipe{Name: w.Name}, fromBuildx, fromLLB, layers) {
		t.Errorf("%s: %s", w.Name, d)
	}
}

// BenchmarkExploreRunBases measures what the issue asks of explore: its
// cost grows with the build variants, not the run bases. It explores the
// Go module (4 build variants) with 8 run bases and with 1, cold (a
// fresh private buildkitd: nothing cached, the dependency downloaded)
// then warm (the same again), and reports each wall time and the ratios
// 8 bases / 1 base. A benchmark, never a test: figures depend on the
// machine. Each cold run has a home of its own (the stand-ins linked
// from the test home), on the registry port MINIKIT_BENCH_REGISTRY
// (default 127.0.0.1:5113).
func BenchmarkExploreRunBases(b *testing.B) {
	hp, err := paths.Default()
	if err != nil {
		b.Fatal(err)
	}
	home := string(hp)
	if _, err := os.Stat(filepath.Join(hp.StandIns(), "index.json")); err != nil {
		b.Skipf("needs built stand-ins in %s: %v", home, err)
	}
	proxy := localGoProxy(b, "github.com/google/uuid@v1.6.0")
	reg := os.Getenv("MINIKIT_BENCH_REGISTRY")
	if reg == "" {
		reg = "127.0.0.1:5113"
	}
	ctx := context.Background()
	dir := b.TempDir()
	prog := filepath.Join(dir, "prog")
	for name, body := range map[string]string{"go.mod": uuidGoMod, "go.sum": uuidGoSum, "main.go": uuidMain} {
		if err := os.MkdirAll(prog, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(prog, name), []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	cases := []struct {
		name, bases string
	}{
		{"1base", "scratch"},
		{"8bases", "scratch,distroless-static,distroless-base,distroless-cc,alpine,busybox,busybox-glibc,debian-slim"},
	}
	run := func(h string, args ...string) time.Duration {
		cmd := exec.CommandContext(ctx, minikitBin, args...)
		cmd.Env = append(os.Environ(), "MINIKIT_HOME="+h, "MINIKIT_REGISTRY="+reg, "GOPROXY="+proxy)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("minikit %v: %v\n%s", args, err, tail(out.Bytes(), 3000))
		}
		return time.Since(start)
	}
	for i := 0; i < b.N; i++ {
		times := map[string]time.Duration{}
		order := cases
		if i%2 == 1 { // alternate, so that neither always runs on a machine the other warmed
			order = []struct{ name, bases string }{cases[1], cases[0]}
		}
		for _, c := range order {
			h := filepath.Join(dir, fmt.Sprintf("home-%s-%d", c.name, i))
			if err := os.MkdirAll(h, 0o700); err != nil {
				b.Fatal(err)
			}
			for _, link := range []string{"standins", tlsca.DirName} {
				if err := os.Symlink(filepath.Join(home, link), filepath.Join(h, link)); err != nil {
					b.Fatal(err)
				}
			}
			run(h, "daemon", "start")
			args := []string{"explore", "--progress", "quiet", "--format", "json", "--bases", c.bases, prog}
			times[c.name+"-cold"] = run(h, args...)
			times[c.name+"-warm"] = run(h, args...)
			run(h, "daemon", "stop")
			if err := os.RemoveAll(h); err != nil {
				b.Logf("remove %s: %v", h, err)
			}
		}
		b.Logf("run %d: 1 base cold %s warm %s; 8 bases cold %s warm %s", i,
			times["1base-cold"].Round(100*time.Millisecond), times["1base-warm"].Round(100*time.Millisecond),
			times["8bases-cold"].Round(100*time.Millisecond), times["8bases-warm"].Round(100*time.Millisecond))
		for k, d := range times {
			b.ReportMetric(d.Seconds(), k+"-s")
		}
		b.ReportMetric(times["8bases-cold"].Seconds()/times["1base-cold"].Seconds(), "cold-ratio")
		b.ReportMetric(times["8bases-warm"].Seconds()/times["1base-warm"].Seconds(), "warm-ratio")
	}
}
