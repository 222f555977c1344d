package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBudget: --max-size fails a run whose image is beyond a budget (exit
// 1, naming the recipe, the metric and the glob), passes one within it
// (a figure equal to its limit included), and a budget whose name or glob
// matches none of the recipes selected is a usage error (exit 2) before
// anything is built. The limits are derived from the image's own figures,
// read from a first run's JSON.
func TestBudget(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	const name = "hello-c.gcc-static.scratch"
	solveOf := func(recipe string, extra []string, budgets ...string) (int, string, []byte) {
		t.Helper()
		args := append([]string{"solve", "--progress", "quiet", "--format", "json"}, extra...)
		for _, b := range budgets {
			args = append(args, "--max-size", b)
		}
		code, stdout, stderr := minikit(t, ctx, append(args, recipe)...)
		return code, string(stderr), stdout
	}
	solve := func(budgets ...string) (int, string, []byte) {
		t.Helper()
		return solveOf(name, nil, budgets...)
	}
	img := figures(t)(solveOf(name, nil))
	ratio := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

	if code, stderr, _ := solve("hello-c.*=1kB"); code != 1 || !strings.Contains(stderr, "over budget: "+name+": uncompressed") || !strings.Contains(stderr, "(hello-c.*)") {
		t.Errorf("a budget of 1 kB: exit %d, want 1 naming the recipe, the metric and the glob\n%s", code, tail([]byte(stderr), 2000))
	}
	over := fmt.Sprintf("hello-c.*=compressed=%d", img.Compressed-1)
	if code, stderr, _ := solve(name+"=100MB", over); code != 1 || !strings.Contains(stderr, "over budget: "+name+": compressed") ||
		strings.Contains(stderr, ": uncompressed") {
		t.Errorf("--max-size %s: exit %d, want 1 naming the compressed budget only\n%s", over, code, tail([]byte(stderr), 2000))
	}
	// Every metric at exactly the image's figure passes.
	exact := fmt.Sprintf("%s=%d,compressed=%d,wasted=%d,dive-wasted=%d,dive-efficiency=%s,dive-user-wasted=%s", name,
		img.Uncompressed, img.Compressed, img.WastedBytes, img.DiveWastedBytes, ratio(img.DiveEfficiency), ratio(img.DiveUserWastedRatio))
	if code, stderr, _ := solve(exact); code != 0 || strings.Contains(stderr, "over budget") {
		t.Errorf("--max-size %s: exit %d, want 0\n%s", exact, code, tail([]byte(stderr), 2000))
	}

	code, stderr, _ := solve("nosuch=5kB")
	if code != 2 || !strings.Contains(stderr, `"nosuch" matches none`) {
		t.Errorf("a budget for no recipe selected: exit %d, want 2 naming it\n%s", code, stderr)
	}
	if strings.Contains(stderr, "solving") {
		t.Errorf("a budget for no recipe selected: a build was started\n%s", stderr)
	}
	code, stderr, _ = solve(name + "=dive-efficiency=1.5")
	if code != 2 || !strings.Contains(stderr, "at most 1") {
		t.Errorf("an efficiency above 1: exit %d, want 2\n%s", code, stderr)
	}

	// dive's rules, on an image with wasted bytes (the gcc image, whose
	// package installs overwrite dpkg's files): an efficiency floor or a
	// wasted budget just beyond the image's figure fails it, its own
	// figures pass, and dive --ci with the same rules on the same tarball
	// agrees every time.
	t.Run("dive", func(t *testing.T) {
		const wasteful = "hello-c.gcc"
		out := t.TempDir()
		img := figures(t)(solveOf(wasteful, []string{"--output", "docker=" + out}))
		if img.DiveWastedBytes == 0 || img.WastedBytes == 0 || img.DiveEfficiency >= 1 {
			t.Fatalf("%s: no wasted bytes (%+v): pick another image for this test", wasteful, img)
		}
		dive := lookDive(t)
		tarball := filepath.Join(out, wasteful+".docker.tar")
		diveCI := func(eff float64, wasted int64, user float64) bool {
			t.Helper()
			cmd := exec.CommandContext(ctx, dive, "--ci", "--lowestEfficiency", ratio(eff), "--highestWastedBytes", strconv.FormatInt(wasted, 10),
				"--highestUserWastedPercent", ratio(user), "docker-archive://"+tarball)
			cmd.Dir = t.TempDir() // no .dive-ci
			b, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatalf("dive --ci: %v\n%s", err, tail(b, 2000))
			}
			return err == nil
		}
		for _, c := range []struct {
			eff    float64
			wasted int64
			user   float64
			pass   bool
			metric string
		}{
			{img.DiveEfficiency, img.DiveWastedBytes, img.DiveUserWastedRatio, true, ""},
			{(img.DiveEfficiency + 1) / 2, img.DiveWastedBytes, 1, false, "dive-efficiency"},
			{0, img.DiveWastedBytes - 1, 1, false, "dive-wasted"},
			{0, img.DiveWastedBytes, img.DiveUserWastedRatio / 2, false, "dive-user-wasted"},
		} {
			b := fmt.Sprintf("%s=dive-efficiency=%s,dive-wasted=%d,dive-user-wasted=%s", wasteful, ratio(c.eff), c.wasted, ratio(c.user))
			code, stderr, _ := solveOf(wasteful, nil, b)
			if ours := code == 0; ours != c.pass || (!c.pass && (code != 1 || !strings.Contains(stderr, wasteful+": "+c.metric+" "))) {
				t.Errorf("--max-size %s: exit %d, want it to pass: %v (%s)\n%s", b, code, c.pass, c.metric, tail([]byte(stderr), 2000))
			}
			if dives := diveCI(c.eff, c.wasted, c.user); dives != c.pass {
				t.Errorf("dive --ci with the rules of --max-size %s passes: %v, want %v", b, dives, c.pass)
			}
		}
		w := fmt.Sprintf("%s=wasted=%d", wasteful, img.WastedBytes-1)
		if code, stderr, _ := solveOf(wasteful, nil, w); code != 1 || !strings.Contains(stderr, wasteful+": wasted ") {
			t.Errorf("--max-size %s: exit %d, want 1\n%s", w, code, tail([]byte(stderr), 2000))
		}
	})
}

// imageFigures are the figures of an image that budgets limit, as solve
// --format json gives them.
type imageFigures struct {
	Uncompressed        int64   `json:"uncompressed"`
	Compressed          int64   `json:"compressed"`
	WastedBytes         int64   `json:"wasted_bytes"`
	DiveWastedBytes     int64   `json:"dive_wasted_bytes"`
	DiveEfficiency      float64 `json:"dive_efficiency"`
	DiveUserWastedRatio float64 `json:"dive_user_wasted_ratio"`
}

// figures returns the reader of the one recipe's figures from a
// successful solve's exit code, stderr and JSON.
func figures(t *testing.T) func(int, string, []byte) imageFigures {
	return func(code int, stderr string, stdout []byte) imageFigures {
		t.Helper()
		if code != 0 {
			t.Fatalf("no budget: exit %d\n%s", code, tail([]byte(stderr), 2000))
		}
		var doc struct {
			Recipes []struct {
				Image *imageFigures `json:"image"`
			} `json:"recipes"`
		}
		if err := json.Unmarshal(stdout, &doc); err != nil || len(doc.Recipes) != 1 || doc.Recipes[0].Image == nil || doc.Recipes[0].Image.Compressed <= 0 {
			t.Fatalf("no budget: JSON %v, %s", err, tail(stdout, 1000))
		}
		return *doc.Recipes[0].Image
	}
}
