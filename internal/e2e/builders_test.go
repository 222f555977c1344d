package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minikit/minikit/internal/buildkitimage"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/runner"
	"github.com/minikit/minikit/pkg/schedule"
)

// builderRow is the part of `minikit solve --format json` the builders
// test reads.
type builderRow struct {
	Name        string   `json:"name"`
	Status      string   `json:"status"`
	Error       string   `json:"error"`
	StandIn     bool     `json:"stand_in"`
	Builder     string   `json:"builder"`
	RetriedFrom []string `json:"retried_from"`
}

// builderRecipes are the offline rows the builders test solves: six
// build stages (gcc, gcc -static, Go on Alpine, rustc, Python, Go on
// Alpine again for whatsmyip), three of them shared. All 27 offline rows
// take 3m43s cold on two builders on 2 cores, and the run with a builder
// killed 5m18s more: too long for every CI run.
var builderRecipes = []string{
	"hello-c.gcc", "hello-c.gcc.alpine", "hello-c.gcc.scratch", "hello-c.gcc.ubuntu",
	"hello-c.gcc-static.alpine", "hello-c.gcc-static.scratch",
	"hello-go.golang-alpine.alpine", "hello-go.golang-alpine.scratch",
	"hello-py.python",
	"hello-rust.rust", "hello-rust.rust.scratch",
	"whatsmyip.golang-alpine.alpine",
}

// TestSeveralBuilders runs two buildkitd containers as two hosts on a
// private Docker network, each reached over tcp:// with mutual TLS through
// a port published on loopback, with a stand-in registry container on
// the same network as their docker.io mirror. Offline recipes are solved
// across both: recipes sharing a build stage land on one builder. Then,
// caches emptied, the run is repeated and one builder is killed once it
// has exported a recipe: its unfinished recipes are retried on the builder
// left and everything still builds.
func TestSeveralBuilders(t *testing.T) {
	home := requireBuildEnv(t)
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	ref, err := buildkitimage.Ensure(ctx, buildkitimage.Options{Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	priv := privilegeArgs(t, ctx, ref)
	id := randomHex(t)
	network := "minikit-e2e-" + id
	docker(t, ctx, "network", "create", network)
	t.Cleanup(func() { dockerCleanup(t, "network", "rm", network) })

	// The stand-in registry, in a container on the network.
	regImage := registryImage(t, ctx, id)
	registry := "minikit-e2e-registry-" + id
	runContainer(t, ctx, registry, "run", "-d", "--name", registry, "--network", network, "--network-alias", "registry",
		"-e", "MINIKIT_HOME=/minikit", "-v", home.StandIns()+":/minikit/standins:ro",
		regImage, "/usr/bin/minikit", "standins", "serve", "--public", "--listen", "0.0.0.0:5000", "--dir", "/minikit/standins")
	waitLog(t, ctx, registry, "serving ", 60*time.Second)

	dir := t.TempDir()
	certs := writeMTLS(t, dir, "buildkitd")
	config := filepath.Join(dir, "buildkitd.toml")
	mirror := "registry:5000"
	if err := os.WriteFile(config, []byte(buildkitimage.DefaultConfig+fmt.Sprintf(
		"\n[registry.\"docker.io\"]\n  mirrors = [%q]\n\n[registry.%q]\n  http = true\n", mirror, mirror)), 0o644); err != nil {
		t.Fatal(err)
	}
	var names, addrs []string
	for i := range 2 {
		name := fmt.Sprintf("minikit-e2e-builder%d-%s", i, id)
		port := freePort(t)
		args := append([]string{"run", "-d", "--name", name, "--network", network,
			"-p", fmt.Sprintf("127.0.0.1:%d:1234", port)}, priv...)
		args = append(args,
			"-v", config+":"+buildkitimage.ConfigPath+":ro",
			"-v", dir+":/certs:ro",
			ref,
			"--addr", "unix:///run/buildkit/buildkitd.sock",
			"--addr", "tcp://0.0.0.0:1234",
			"--tlscacert", "/certs/ca.pem", "--tlscert", "/certs/server.pem", "--tlskey", "/certs/server-key.pem",
		)
		runContainer(t, ctx, name, args...)
		names = append(names, name)
		addrs = append(addrs, fmt.Sprintf("tcp://127.0.0.1:%d", port))
	}
	for _, n := range names {
		waitContainerDaemon(t, ctx, n)
	}

	recipes, err := llbdefs.Select(llbdefs.Catalog(), builderRecipes...)
	if err != nil {
		t.Fatal(err)
	}
	solveArgs := []string{"solve", "--format", "json", "--progress", "plain", "--source-date-epoch", "off",
		"--tlscacert", certs.ca, "--tlscert", certs.clientCert, "--tlskey", certs.clientKey, "--tlsservername", "buildkitd"}
	for _, a := range addrs {
		solveArgs = append(solveArgs, "--addr", a)
	}
	for _, r := range recipes {
		solveArgs = append(solveArgs, r.Name)
	}

	// Which recipes share a build stage: they must share a builder
	// (solve's targets: compiler cache on, no epoch as given above).
	targets, err := llbdefs.Targets(recipes, llbdefs.ContextDir(t.TempDir()), llbdefs.CompilerCache(true))
	if err != nil {
		t.Fatal(err)
	}
	items, err := runner.ScheduleItems(ctx, targets)
	if err != nil {
		t.Fatal(err)
	}
	groups := schedule.Groups(items)

	var firstRun map[string]builderRow
	t.Run("spread", func(t *testing.T) {
		start := time.Now()
		code, stdout, stderr := minikit(t, ctx, solveArgs...)
		t.Logf("%d recipes on two builders, cold: %s", len(recipes), time.Since(start).Round(time.Second))
		if code != 0 {
			t.Fatalf("minikit solve exited %d\n%s\n%s", code, stdout, tail(stderr, 4000))
		}
		firstRun = builderRows(t, stdout, recipes)
		perBuilder := map[string]int{}
		for _, r := range firstRun {
			if !slices.Contains(addrs, r.Builder) {
				t.Errorf("%s: builder %q is not one of %v", r.Name, r.Builder, addrs)
			}
			if len(r.RetriedFrom) > 0 {
				t.Errorf("%s retried from %v, with no builder lost", r.Name, r.RetriedFrom)
			}
			perBuilder[r.Builder]++
		}
		if len(perBuilder) != 2 {
			t.Errorf("recipes per builder: %v, want both used", perBuilder)
		}
		t.Logf("recipes per builder: %v", perBuilder)
		for _, g := range groups {
			on := map[string][]string{}
			for _, i := range g.Items {
				r := firstRun[recipes[i].Name]
				on[r.Builder] = append(on[r.Builder], r.Name)
			}
			if len(on) != 1 {
				t.Errorf("recipes sharing a build stage on several builders: %v", on)
			}
		}
	})
	if t.Failed() {
		return
	}

	t.Run("builder-lost", func(t *testing.T) {
		// Cold again: empty both builders' caches.
		for _, n := range names {
			docker(t, ctx, "exec", n, "buildctl", "prune", "--all")
		}
		// Kill the builder with more recipes once one of them is exported.
		victim := addrs[0]
		counts := map[string]int{}
		for _, r := range firstRun {
			counts[r.Builder]++
		}
		if counts[addrs[1]] > counts[addrs[0]] {
			victim = addrs[1]
		}
		victimName := names[slices.Index(addrs, victim)]
		var victims []string
		for _, r := range firstRun {
			if r.Builder == victim {
				victims = append(victims, r.Name)
			}
		}

		cmd := exec.CommandContext(ctx, minikitBin, solveArgs...)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		pr, pw := io.Pipe()
		cmd.Stderr = pw
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		exported := make(chan string, 1)
		var wg sync.WaitGroup
		wg.Go(func() { watchExports(io.TeeReader(pr, &stderr), victims, exported) })
		var killedAfter time.Duration
		select {
		case name := <-exported:
			// At once: the victim's other recipes are still running
			// (this one may not have reached minikit yet, and be
			// retried too).
			killedAfter = time.Since(start)
			t.Logf("%s exported by %s after %s: docker kill %s", name, victim, killedAfter.Round(100*time.Millisecond), victimName)
		case <-time.After(90 * time.Second):
			killedAfter = time.Since(start)
			t.Logf("no recipe of %s exported after %s: docker kill %s anyway", victim, killedAfter.Round(time.Second), victimName)
		}
		docker(t, ctx, "kill", victimName)
		err := cmd.Wait()
		pw.Close()
		wg.Wait()
		t.Logf("%d recipes, %s killed after %s: %s in all", len(recipes), victim, killedAfter.Round(time.Second), time.Since(start).Round(time.Second))
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatalf("minikit solve exited %d\n%s\n%s", ee.ExitCode(), stdout.String(), tail(stderr.Bytes(), 6000))
		}
		rows := builderRows(t, stdout.Bytes(), recipes)
		survivor := addrs[0]
		if victim == survivor {
			survivor = addrs[1]
		}
		var retried, onVictim int
		for _, r := range rows {
			switch {
			case len(r.RetriedFrom) > 0:
				retried++
				if !slices.Equal(r.RetriedFrom, []string{victim}) || r.Builder != survivor {
					t.Errorf("%s: retried from %v on %s, want from %s on %s", r.Name, r.RetriedFrom, r.Builder, victim, survivor)
				}
			case r.Builder == victim:
				onVictim++
			}
		}
		if retried == 0 {
			t.Errorf("no recipe retried after %s was killed\n%s", victim, stdout.String())
		}
		if !strings.Contains(stderr.String(), "builder "+victim+" was lost") {
			t.Errorf("stderr does not say %s was lost:\n%s", victim, tail(stderr.Bytes(), 2000))
		}
		t.Logf("%d recipe(s) done on %s before the kill, %d retried on %s", onVictim, victim, retried, survivor)
	})
}

// builderRows parses solve's JSON and checks that every recipe ended as
// expected, on stand-ins.
func builderRows(t *testing.T, stdout []byte, recipes []llbdefs.Recipe) map[string]builderRow {
	t.Helper()
	var doc struct {
		Recipes []builderRow `json:"recipes"`
	}
	if err := json.Unmarshal(stdout, &doc); err != nil {
		t.Fatalf("solve --format json: %v\n%s", err, stdout)
	}
	rows := map[string]builderRow{}
	for _, r := range doc.Recipes {
		rows[r.Name] = r
	}
	for _, r := range recipes {
		row, ok := rows[r.Name]
		want := "ok"
		if r.ExpectBuildFailure() {
			want = "expected-failure"
		}
		if !ok || row.Status != want || !row.StandIn {
			t.Errorf("%s: want %s on stand-ins, got %+v", r.Name, want, row)
		}
	}
	return rows
}

// exportStep matches plain progress lines of a recipe's export step
// ("#41 [hello-c.gcc] exporting to image") and their end ("#41 DONE 0.2s").
var (
	exportStep = regexp.MustCompile(`^#(\d+) \[([^\]]+)\] exporting `)
	stepDone   = regexp.MustCompile(`^#(\d+) DONE`)
)

// watchExports reads plain progress and sends the first recipe of names
// whose export step is done, then drains r.
func watchExports(r io.Reader, names []string, done chan<- string) {
	steps := map[string]string{} // step number -> recipe
	sent := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if sent {
			continue
		}
		line := sc.Text()
		if m := exportStep.FindStringSubmatch(line); m != nil && slices.Contains(names, m[2]) {
			steps[m[1]] = m[2]
		} else if m := stepDone.FindStringSubmatch(line); m != nil && steps[m[1]] != "" {
			done <- steps[m[1]]
			sent = true
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// registryImage imports an image holding a static minikit binary
// (/usr/bin/minikit), to run the stand-in registry in a container.
func registryImage(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "minikit")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/minikit/minikit/cmd/minikit")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build (static) minikit: %v\n%s", err, out)
	}
	var rootfs bytes.Buffer
	if err := buildkitimage.WriteRootfs(&rootfs, []buildkitimage.File{{Path: "usr/bin/minikit", Source: bin, Mode: 0o755}}); err != nil {
		t.Fatal(err)
	}
	ref := "minikit/e2e-registry:" + id
	cmd := exec.CommandContext(ctx, "docker", "import", "-", ref)
	cmd.Stdin = &rootfs
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker import %s: %v\n%s", ref, err, out)
	}
	t.Cleanup(func() { dockerCleanup(t, "rmi", ref) })
	return ref
}

// runContainer runs `docker args...` to start container name, removed
// (logs shown on failure) when the test ends.
func runContainer(t *testing.T, ctx context.Context, name string, args ...string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "30", name).CombinedOutput()
			t.Logf("docker logs %s:\n%s", name, out)
		}
		dockerCleanup(t, "rm", "-f", "-v", name)
	})
	docker(t, ctx, args...)
}

// docker runs a docker command, failing the test on error.
func docker(t *testing.T, ctx context.Context, args ...string) {
	t.Helper()
	if out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// dockerCleanup runs a docker command at cleanup, reporting a failure.
func dockerCleanup(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		t.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// waitLog waits until container name's logs hold want.
func waitLog(t *testing.T, ctx context.Context, name, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		out, _ := exec.CommandContext(ctx, "docker", "logs", name).CombinedOutput()
		if bytes.Contains(out, []byte(want)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never logged %q:\n%s", name, want, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
