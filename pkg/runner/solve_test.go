package runner

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// samplesDir makes a samples directory holding hello.c.
func samplesDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.c"), []byte("int main(void) { return 0; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tarNames lists the entries of a tarball, failing if it is not a valid
// tar file read to its end.
func tarNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			t.Fatalf("%s: %s: %v", path, h.Name, err)
		}
		names = append(names, h.Name)
	}
}

func noTempFiles(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		for _, n := range dirNames(t, d) {
			if strings.HasSuffix(n, ".tmp") {
				t.Errorf("temporary file left: %s", filepath.Join(d, n))
			}
		}
	}
}

func byName(results []Result) map[string]Result {
	m := map[string]Result{}
	for _, r := range results {
		m[r.Name] = r
	}
	return m
}

// TestSolveDaemon solves targets that need no base image on a real
// buildkitd: successes, an expected and two unexpected failures, a stage
// shared by two targets, every export at once, and the AfterSolve hook.
func TestSolveDaemon(t *testing.T) {
	c := startBuildkitd(t)
	out := t.TempDir()
	ociDir, dockerDir := filepath.Join(out, "oci"), filepath.Join(out, "docker")

	src := testSource(t)
	shared := scratch().copy("hello.c", "/src/")
	tg := func(name string, final tstage, cfg ImageConfig, buildFails bool) Target {
		t := target(name, src, final, cfg)
		t.ExpectBuildFailure = buildFails
		return t
	}
	recipes := []Target{
		tg("t.ok", scratch().copy("hello.c", "/"), ImageConfig{Cmd: argv("/hello")}, false),
		tg("t.shared-a", scratch().copyFrom(shared, "/src/hello.c", "/a.c"), ImageConfig{Env: []string{"A=1"}, Cmd: argv("/a")}, false),
		tg("t.shared-b", scratch().workdir("/w").copyFrom(shared, "/src/hello.c", "b.c"), ImageConfig{WorkingDir: "/w", Cmd: shell("./b")}, false),
		tg("t.err", scratch().copyFrom(scratch(), "/nope", "/"), ImageConfig{Cmd: argv("/nope")}, true),
		tg("t.copy-fails", scratch().copy("missing.c", "/"), ImageConfig{Cmd: argv("/x")}, false),
		tg("t.run-fails", scratch().copy("hello.c", "/").run("true"), ImageConfig{Cmd: argv("/x")}, false),
		tg("t.builds.err", scratch().copy("hello.c", "/"), ImageConfig{Cmd: argv("/x")}, true),
		// Expected not to build; it builds, and then the hook fails.
		tg("t.builds-hook-fails.err", scratch().copy("hello.c", "/h"), ImageConfig{Cmd: argv("/x")}, true),
		// Nothing listens on port 1: the base image cannot be resolved.
		tg("t.no-base", from("127.0.0.1:1/minikit/missing:1").copy("hello.c", "/"), ImageConfig{Cmd: argv("/x")}, false),
	}

	var mu sync.Mutex
	hooked := map[string]ocispecs.Image{}
	hook := func(ctx context.Context, gw gateway.Client, ref gateway.Reference, r Target, img ocispecs.Image) error {
		if r.Name == "t.builds-hook-fails.err" {
			return errors.New("hook failed")
		}
		if r.Name == "t.ok" {
			dt, err := ref.ReadFile(ctx, gateway.ReadRequest{Filename: "/hello.c"})
			if err != nil {
				return err
			}
			if !bytes.Contains(dt, []byte("main")) {
				return errors.New("hello.c is not in the image")
			}
		}
		mu.Lock()
		hooked[r.Name] = img
		mu.Unlock()
		return nil
	}

	var progress bytes.Buffer
	start := time.Now()
	results, err := Solve(context.Background(), c, recipes,
		Parallel(len(recipes)), Image(), OCI(ociDir), Docker(dockerDir),
		Progress(&progress, "plain"), AfterSolve(hook), NameTemplate("docker.io/library/minikit:{name}"), Product("runner-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d recipes in %s", len(recipes), time.Since(start).Round(time.Millisecond))
	if len(results) != len(recipes) {
		t.Fatalf("%d results for %d recipes", len(results), len(recipes))
	}
	for i, r := range results {
		if r.Name != recipes[i].Name {
			t.Errorf("result %d is %s; want %s", i, r.Name, recipes[i].Name)
		}
		t.Logf("%-14s %-18s %d/%d cached %6s %q %q", r.Name, r.Status, r.Cached, r.Vertices, r.Duration.Round(time.Millisecond), r.FailedVertex, r.Error)
	}
	res := byName(results)

	want := map[string]Status{
		"t.ok": StatusOK, "t.shared-a": StatusOK, "t.shared-b": StatusOK,
		"t.err": StatusExpectedFailure, "t.copy-fails": StatusFailed, "t.run-fails": StatusFailed,
		"t.builds.err": StatusUnexpectedSuccess, "t.no-base": StatusFailed, "t.builds-hook-fails.err": StatusFailed,
	}
	for name, st := range want {
		if res[name].Status != st {
			t.Errorf("%s: status %s (%s); want %s", name, res[name].Status, res[name].Error, st)
		}
	}
	var unexpected []string
	for _, r := range Unexpected(results) {
		unexpected = append(unexpected, r.Name)
	}
	if w := []string{"t.copy-fails", "t.run-fails", "t.builds.err", "t.builds-hook-fails.err", "t.no-base"}; !slices.Equal(unexpected, w) {
		t.Errorf("Unexpected = %v; want %v", unexpected, w)
	}

	// Failures: the step that failed, BuildKit's message, no output.
	for name, step := range map[string]string{
		"t.err":        "[scratch] COPY --from=scratch /nope /",
		"t.copy-fails": "[scratch] COPY missing.c /",
		"t.run-fails":  "[scratch] RUN true",
		"t.no-base":    "[internal] load metadata for 127.0.0.1:1/minikit/missing:1",
	} {
		r := res[name]
		if r.FailedVertex != step {
			t.Errorf("%s: failed step %q; want %q", name, r.FailedVertex, step)
		}
		if r.Error == "" || r.ImageDigest != "" || len(r.Outputs) != 0 {
			t.Errorf("%s: error %q, digest %q, outputs %v", name, r.Error, r.ImageDigest, r.Outputs)
		}
		for _, p := range []string{filepath.Join(ociDir, name+".oci.tar"), filepath.Join(dockerDir, name+".docker.tar")} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: %s exists after a failed build (%v)", name, p, err)
			}
		}
	}

	// Successes: digests, both tarballs, valid, and the hook saw the config.
	for _, name := range []string{"t.ok", "t.shared-a", "t.shared-b", "t.builds.err"} {
		r := res[name]
		if !strings.HasPrefix(r.ImageDigest, "sha256:") || !strings.HasPrefix(r.ConfigDigest, "sha256:") {
			t.Errorf("%s: image digest %q, config digest %q", name, r.ImageDigest, r.ConfigDigest)
		}
		if r.ImageName != "docker.io/library/minikit:"+name {
			t.Errorf("%s: image name %q", name, r.ImageName)
		}
		ociTar, dockerTar := filepath.Join(ociDir, name+".oci.tar"), filepath.Join(dockerDir, name+".docker.tar")
		if !slices.Equal(r.Outputs, []string{ociTar, dockerTar}) {
			t.Errorf("%s: outputs %v", name, r.Outputs)
		}
		if names := tarNames(t, ociTar); !slices.Contains(names, "index.json") || !slices.Contains(names, "oci-layout") {
			t.Errorf("%s: OCI tarball holds %v", name, names)
		}
		if names := tarNames(t, dockerTar); !slices.Contains(names, "manifest.json") {
			t.Errorf("%s: docker tarball holds %v", name, names)
		}
		if r.Vertices == 0 || r.Duration <= 0 || len(r.Bases) != 0 {
			t.Errorf("%s: %d steps, duration %s, bases %v", name, r.Vertices, r.Duration, r.Bases)
		}
		if _, ok := hooked[name]; !ok {
			t.Errorf("%s: AfterSolve not called", name)
		}
	}
	if r := res["t.builds-hook-fails.err"]; r.Error != "after solving t.builds-hook-fails.err: hook failed" || len(r.Outputs) != 0 {
		t.Errorf("t.builds-hook-fails.err: error %q, outputs %v", r.Error, r.Outputs)
	}
	if e := res["t.no-base"].Error; !strings.Contains(e, "127.0.0.1:1/minikit/missing:1") {
		t.Errorf("t.no-base: error %q does not name the image", e)
	}
	for _, name := range []string{"t.err", "t.copy-fails", "t.run-fails", "t.no-base"} {
		if _, ok := hooked[name]; ok {
			t.Errorf("%s: AfterSolve called for a failed build", name)
		}
	}
	if img := hooked["t.shared-b"]; img.Config.WorkingDir != "/w" || !slices.Equal(img.Config.Cmd, []string{"/bin/sh", "-c", "./b"}) || img.Architecture != "amd64" {
		t.Errorf("t.shared-b config: %+v", img)
	}
	if img := hooked["t.shared-a"]; !slices.Contains(img.Config.Env, "A=1") {
		t.Errorf("t.shared-a env: %v", img.Config.Env)
	}
	noTempFiles(t, ociDir, dockerDir)

	// The image store holds the successes.
	if !strings.Contains(progress.String(), "[t.ok] exporting to image") {
		t.Errorf("progress lacks the labelled export step:\n%s", progress.String())
	}

	// Again: everything comes from the cache, same digests.
	again, err := Solve(context.Background(), c, recipes[:1], OCI(ociDir))
	if err != nil {
		t.Fatal(err)
	}
	r := again[0]
	if r.Status != StatusOK || r.Cached != r.Vertices || r.Vertices == 0 {
		t.Errorf("second solve of t.ok: %s, %d/%d cached", r.Status, r.Cached, r.Vertices)
	}
	if r.ImageName != "docker.io/library/t.ok:latest" { // the default template
		t.Errorf("second solve of t.ok: image name %q", r.ImageName)
	}
	if r.ConfigDigest != res["t.ok"].ConfigDigest {
		t.Errorf("second solve: config digest %s, first %s", r.ConfigDigest, res["t.ok"].ConfigDigest)
	}
	noTempFiles(t, ociDir)
}

// TestSolveDaemonCancel cancels a run from inside a build: the build
// being solved and the ones not started are canceled, nothing is written.
func TestSolveDaemonCancel(t *testing.T) {
	c := startBuildkitd(t)
	out := t.TempDir()
	src := testSource(t)
	var recipes []Target
	for _, n := range []string{"c.first", "c.second", "c.third"} {
		recipes = append(recipes, target(n, src, scratch().copy("hello.c", "/"+n), ImageConfig{Cmd: argv("/x")}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hook := func(hctx context.Context, _ gateway.Client, _ gateway.Reference, r Target, _ ocispecs.Image) error {
		cancel() // as Ctrl-C would, while the first recipe is being built
		<-hctx.Done()
		return hctx.Err()
	}
	results, err := Solve(ctx, c, recipes, Parallel(1), OCI(out), AfterSolve(hook))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Status != StatusCanceled || r.Error == "" {
			t.Errorf("%s: %s %q; want canceled", r.Name, r.Status, r.Error)
		}
	}
	if len(Unexpected(results)) != 3 {
		t.Errorf("canceled results are unexpected: %v", Unexpected(results))
	}
	if names := dirNames(t, out); len(names) != 0 {
		t.Errorf("output dir holds %v after a canceled run", names)
	}
}

func TestSolveSetupErrors(t *testing.T) {
	src := testSource(t)
	ok := []Target{target("a", src, scratch(), ImageConfig{})}
	if _, err := Solve(context.Background(), nil, ok); err == nil {
		t.Error("nil client accepted")
	}
	c, err := client.New(context.Background(), "unix:///nonexistent/bk.sock") // never dialled
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	other := testSource(t) // the same name, another filesystem
	noLLB := target("n", src, scratch(), ImageConfig{})
	noLLB.LLB = nil
	cases := map[string]struct {
		targets []Target
		opts    []Option
	}{
		"valid image tag":           {[]Target{target("a/b", src, scratch(), ImageConfig{})}, nil},
		"given twice":               {[]Target{ok[0], ok[0]}, nil},
		"two different filesystems": {[]Target{ok[0], target("b", other, scratch(), ImageConfig{})}, nil},
		"no LLB function":           {[]Target{noLLB}, nil},
		"has no filesystem":         {[]Target{target("a", Source{Name: "x"}, scratch(), ImageConfig{})}, nil},
		"env \"NOEQ\"":              {[]Target{target("a", src, scratch(), ImageConfig{Env: []string{"NOEQ"}})}, nil},
		"exposed port":              {[]Target{target("a", src, scratch(), ImageConfig{ExposedPorts: []string{"http"}})}, nil},
		"probe port 0":              {[]Target{func() Target { t := ok[0]; t.Check = &Check{Probe: &Probe{}}; return t }()}, nil},
		`image name "Up:latest"`:    {[]Target{target("Up", src, scratch(), ImageConfig{})}, []Option{NameTemplate("{name}:latest")}},
		"export oci=":               {ok, []Option{OCI(filepath.Join(file, "sub"))}},
		"progress display":          {ok, []Option{Progress(&bytes.Buffer{}, "tty")}},
	}
	for want, tc := range cases {
		_, err := Solve(context.Background(), c, tc.targets, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v; want one containing %q", err, want)
		}
	}
	// Two targets may share one Source value.
	shared := []Target{ok[0], target("b", src, scratch(), ImageConfig{})}
	if _, err := newSolver(shared, nil); err != nil {
		t.Errorf("a shared source: %v", err)
	}
}

// TestSolveDaemonCancelExport interrupts a run while a tarball is being
// written: no tarball, whole or partial, and no temporary file is left.
func TestSolveDaemonCancelExport(t *testing.T) {
	c := startBuildkitd(t)
	samples := samplesDir(t)
	big := make([]byte, 64<<20) // random, so the tarball is large
	if _, err := io.ReadFull(rand.Reader, big); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(samples, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := DirSource(testSourceName, samples)
	if err != nil {
		t.Fatal(err)
	}
	recipes := []Target{
		target("c.big", src, scratch().copy("big", "/"), ImageConfig{Cmd: argv("/x")}),
		target("c.big2", src, scratch().copy("big", "/2"), ImageConfig{Cmd: argv("/x")}),
	}
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Cancel as soon as a temporary tarball shows up.
	sawTemp := make(chan string, 1)
	var canceledAt time.Time
	go func() {
		for ctx.Err() == nil {
			es, _ := os.ReadDir(out)
			for _, e := range es {
				if strings.HasSuffix(e.Name(), ".tmp") {
					canceledAt = time.Now()
					sawTemp <- e.Name()
					cancel()
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	start := time.Now()
	results, err := Solve(ctx, c, recipes, OCI(out), Docker(out))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-sawTemp:
		t.Logf("canceled while writing %s; the run took %s, %s of it after the cancel",
			name, time.Since(start).Round(time.Millisecond), time.Since(canceledAt).Round(time.Millisecond))
	default:
		t.Fatalf("no temporary tarball was seen: the cancellation did not interrupt a write (results %+v)", results)
	}
	for _, r := range results {
		if r.Status != StatusCanceled || len(r.Outputs) != 0 {
			t.Errorf("%s: %s, outputs %v (%s)", r.Name, r.Status, r.Outputs, r.Error)
		}
		if r.FailedVertex != "" {
			t.Errorf("%s: a canceled step is reported as failed: %s (%q)", r.Name, r.FailedVertex, r.Error)
		}
	}
	if names := dirNames(t, out); len(names) != 0 {
		t.Errorf("output dir holds %v after a canceled export", names)
	}
}

// processesWith lists the pids of the processes whose command line holds
// s (arguments joined by spaces).
func processesWith(t *testing.T, s string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		dt, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // not a process, or gone
		}
		if strings.Contains(strings.ReplaceAll(string(dt), "\x00", " "), s) {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestSolveDaemonCancelReleasesContainers interrupts a run while the
// images' test runs are under way: when Solve returns, every container
// is gone (its processes with it) and nothing is written.
func TestSolveDaemonCancelReleasesContainers(t *testing.T) {
	c := startBuildkitd(t)
	base := pushBase(t)
	marker := fmt.Sprintf("sleep %d", 100000+os.Getpid()) // this test's runs only
	src := testSource(t)
	var recipes []Target
	for _, n := range []string{"k.one", "k.two"} {
		tg := target(n, src, from(base).copy("hello.c", n), ImageConfig{Cmd: shell(marker)})
		tg.Check = works()
		recipes = append(recipes, tg)
	}
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	running := make(chan []string, 1)
	go func() { // cancel once both runs are under way
		for ctx.Err() == nil {
			if pids := processesWith(t, marker); len(pids) >= len(recipes) {
				running <- pids
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	results, err := Solve(ctx, c, recipes, OCI(out), Test(TestOptions{Timeout: 10 * time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case pids := <-running:
		t.Logf("canceled with runs %v under way", pids)
	default:
		t.Fatalf("the runs were never seen: %+v", results)
	}
	if pids := processesWith(t, marker); len(pids) != 0 {
		t.Errorf("processes %v of the test runs are still there after Solve returned", pids)
	}
	for _, r := range results {
		if r.Status != StatusCanceled || len(r.Outputs) != 0 {
			t.Errorf("%s: %s, outputs %v: %s", r.Name, r.Status, r.Outputs, r.Error)
		}
	}
	if names := dirNames(t, out); len(names) != 0 {
		t.Errorf("output dir holds %v after a canceled run", names)
	}
}

// TestSolveDaemonKilled kills buildkitd while images' test runs are under
// way and another recipe waits for its turn: every recipe ends with an
// error wrapping ErrBuilderLost, and keeping the build's own error.
func TestSolveDaemonKilled(t *testing.T) {
	c, daemon := startBuildkitdProcess(t)
	base := pushBase(t)
	marker := fmt.Sprintf("sleep %d", 200000+os.Getpid())
	t.Cleanup(func() { // the runs outlive a killed daemon
		for _, p := range processesWith(t, marker) {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	src := testSource(t)
	var recipes []Target
	for _, n := range []string{"x.one", "x.two", "x.waits"} {
		tg := target(n, src, from(base).copy("hello.c", n), ImageConfig{Cmd: shell(marker)})
		tg.Check = works()
		recipes = append(recipes, tg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		for ctx.Err() == nil {
			if len(processesWith(t, marker)) >= 2 {
				_ = daemon.Kill()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	results, err := Solve(ctx, c, recipes, NoExport(), Parallel(2), Test(TestOptions{Timeout: 10 * time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	<-killed
	if ctx.Err() != nil {
		t.Fatalf("the run did not end with its daemon: %v", ctx.Err())
	}
	for _, r := range results {
		t.Logf("%s: %s: %s", r.Name, r.Status, r.Error)
		if r.Status == StatusOK || !errors.Is(r.Err, ErrBuilderLost) || r.Error != r.Err.Error() {
			t.Errorf("%s: %s, error %v; want it to wrap ErrBuilderLost", r.Name, r.Status, r.Err)
		}
	}
}
