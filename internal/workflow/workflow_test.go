package workflow

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/minikit/minikit/pkg/compare"
)

const repoRoot = "../.."

// tool finds a command on PATH, else in the repository's bin/. Absent,
// the test skips, or fails in CI (CI=true), saying how to install it.
func tool(t *testing.T, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p, err := filepath.Abs(filepath.Join(repoRoot, "bin", name)); err == nil {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is needed to lint the workflows and is on neither PATH nor bin/: %s (scripts/setup does it)", name, install)
	}
	t.Skipf("skipped outside CI: %s is on neither PATH nor bin/ (%s)", name, install)
	return ""
}

func workflowFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, ".github", "workflows", pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no workflow in .github/workflows")
	}
	return files
}

// actionlint runs actionlint with shellcheck on files; it returns the
// output and whether actionlint found problems.
func actionlint(t *testing.T, actionlintPath, shellcheckPath string, files ...string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	args := append([]string{"-no-color", "-shellcheck", shellcheckPath}, files...)
	out, err := exec.CommandContext(ctx, actionlintPath, args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), false
	case errors.As(err, &exit) && exit.ExitCode() == 1: // problems found
		return string(out), true
	}
	t.Fatalf("actionlint %s: %v\n%s", strings.Join(args, " "), err, out)
	return "", false
}

// TestActionlint: every workflow passes actionlint, shellcheck included.
// A workflow with a shellcheck finding is refused, so the check is known
// to run shellcheck.
func TestActionlint(t *testing.T) {
	al := tool(t, "actionlint", "GOBIN=$PWD/bin go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12")
	sc := tool(t, "shellcheck", "apt-get install shellcheck")
	if out, bad := actionlint(t, al, sc, workflowFiles(t)...); bad {
		t.Errorf("actionlint finds problems in the workflows:\n%s", out)
	}

	bad := filepath.Join(t.TempDir(), "bad.yml")
	err := os.WriteFile(bad, []byte(`name: bad
on: push
jobs:
  x:
    runs-on: ubuntu-24.04
    steps:
      - run: |
          for i in $(seq 3); do echo hi; done
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	out, found := actionlint(t, al, sc, bad)
	if !found || !strings.Contains(out, "SC2034") {
		t.Errorf("actionlint did not report shellcheck's SC2034 (unused loop variable) in a bad workflow: %q", out)
	}
}

type step struct {
	Name string            `yaml:"name"`
	ID   string            `yaml:"id"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	If   string            `yaml:"if"`
	Env  map[string]string `yaml:"env"`
	With map[string]string `yaml:"with"`
}

type workflow struct {
	Permissions map[string]string `yaml:"permissions"`
	Env         map[string]string `yaml:"env"`
	Jobs        map[string]struct {
		Steps []step `yaml:"steps"`
	} `yaml:"jobs"`
}

// TestMinikitWorkflow: the minikit workflow runs `solve --test` on a
// buildkitd that allows network.host, frees disk before it, uploads the
// report, fetches the previous run's and compares, writing Markdown to the
// job summary.
func TestMinikitWorkflow(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", "minikit.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatalf("minikit.yml: %v", err)
	}
	job, ok := wf.Jobs["solve"]
	if !ok {
		t.Fatal("minikit.yml: no solve job")
	}
	at := func(pred func(step) bool) int {
		return slices.IndexFunc(job.Steps, pred)
	}
	runs := func(s string) func(step) bool {
		return func(st step) bool { return strings.Contains(st.Run, s) }
	}
	if !strings.Contains(" "+wf.Env["MINIKIT_SOLVE_FLAGS"]+" ", " --test ") {
		t.Errorf("MINIKIT_SOLVE_FLAGS %q: no --test", wf.Env["MINIKIT_SOLVE_FLAGS"])
	}
	daemon := at(runs("moby/buildkit:"))
	if daemon < 0 || !strings.Contains(job.Steps[daemon].Run, "--allow-insecure-entitlement network.host") {
		t.Errorf("no buildkitd step allowing network.host (solve --test needs it for the whatsmyip images)")
	}
	free := at(func(s step) bool { return strings.Contains(s.Run, "rm -rf") && strings.Contains(s.Run, "df ") })
	solve := at(runs("bin/minikit solve"))
	if free < 0 || solve < 0 || free > solve {
		t.Errorf("want a step freeing disk (rm -rf, df) before the solve: at %d, solve at %d", free, solve)
	}
	if solve >= 0 && !strings.Contains(job.Steps[solve].Run, "> results.json") {
		t.Errorf("the solve step does not write results.json: %q", job.Steps[solve].Run)
	}
	upload := at(func(s step) bool { return strings.HasPrefix(s.Uses, "actions/upload-artifact@") })
	if upload < 0 || job.Steps[upload].If != "always()" || job.Steps[upload].With["path"] != "results.json" {
		t.Errorf("no upload of results.json that runs always")
	}
	prev := at(runs("gh run download"))
	if prev < 0 || job.Steps[prev].ID == "" || job.Steps[prev].Env["GH_TOKEN"] == "" ||
		!strings.Contains(job.Steps[prev].Run, "--branch main") || !strings.Contains(job.Steps[prev].Run, "--status success") {
		t.Fatalf("no step downloading the last successful main run's report with gh (GH_TOKEN, an id)")
	}
	if upload >= 0 && !strings.Contains(job.Steps[prev].Run, "--name "+job.Steps[upload].With["name"]) {
		t.Errorf("the previous-results step does not download the artifact the upload names (%q)", job.Steps[upload].With["name"])
	}
	if wf.Permissions["actions"] != "read" {
		t.Errorf("permissions %v: gh run list/download need actions: read", wf.Permissions)
	}
	cmp := at(runs("bin/minikit compare"))
	switch {
	case cmp < 0:
		t.Fatal("no step runs bin/minikit compare")
	case cmp < prev:
		t.Errorf("compare (step %d) runs before the previous report is fetched (step %d)", cmp, prev)
	}
	c := job.Steps[cmp]
	for _, want := range []string{"--format markdown", "--max-growth", "$GITHUB_STEP_SUMMARY", `exit "$status"`} {
		if !strings.Contains(c.Run, want) {
			t.Errorf("the compare step lacks %q: %q", want, c.Run)
		}
	}
	if !strings.Contains(c.If, "steps."+job.Steps[prev].ID+".outputs.file != ''") {
		t.Errorf("the compare step's if %q: want it skipped when there is no previous report", c.If)
	}
	growth := strings.Fields(wf.Env["MINIKIT_MAX_GROWTH"])
	if len(growth) == 0 {
		t.Errorf("no MINIKIT_MAX_GROWTH")
	}
	for _, g := range growth {
		if _, err := compare.ParseLimit(g); err != nil {
			t.Errorf("MINIKIT_MAX_GROWTH: %v", err)
		}
	}
}
