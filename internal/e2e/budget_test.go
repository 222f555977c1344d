package e2e

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestBudget: --max-size fails a run whose image is over its budget (exit
// 1, naming the recipe and the glob), passes one under it, and a budget
// whose name or glob matches none of the recipes selected is a usage
// error (exit 2) before anything is built.
func TestBudget(t *testing.T) {
	requireBuildEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const name = "hello-c.gcc-static.scratch"
	solve := func(budget string) (int, string) {
		t.Helper()
		code, _, stderr := minikit(t, ctx, "solve", "--progress", "quiet", "--max-size", budget, name)
		return code, string(stderr)
	}
	if code, stderr := solve("hello-c.*=1kB"); code != 1 || !strings.Contains(stderr, "over budget: "+name) || !strings.Contains(stderr, "(hello-c.*)") {
		t.Errorf("a budget of 1 kB: exit %d, want 1 naming the recipe and the glob\n%s", code, tail([]byte(stderr), 2000))
	}
	if code, stderr := solve(name + "=100MB"); code != 0 || strings.Contains(stderr, "over budget") {
		t.Errorf("a budget of 100 MB: exit %d, want 0\n%s", code, tail([]byte(stderr), 2000))
	}
	code, stderr := solve("nosuch=5kB")
	if code != 2 || !strings.Contains(stderr, `"nosuch" matches none`) {
		t.Errorf("a budget for no recipe selected: exit %d, want 2 naming it\n%s", code, stderr)
	}
	if strings.Contains(stderr, "solving") {
		t.Errorf("a budget for no recipe selected: a build was started\n%s", stderr)
	}
}
