package runner

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTailWriterKeepsLastLines(t *testing.T) {
	w := &tailWriter{max: 3}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); fmt.Fprintf(w, "x%d\n", i) }()
	}
	wg.Wait()
	fmt.Fprint(w, "a\r\nb\nc\npartial")
	got := w.lines()
	if strings.Join(got, "|") != "b|c|partial" {
		t.Fatalf("lines %q", got)
	}
	w2 := &tailWriter{max: 2}
	fmt.Fprint(w2, strings.Repeat("y", 10000))
	if l := w2.lines(); len(l) != 1 || len(l[0]) != 4096 {
		t.Fatalf("an endless line is kept to its last 4096 bytes, got %d lines", len(l))
	}
}

func TestTestOption(t *testing.T) {
	c := &config{}
	if err := Test(TestOptions{})(c); err != nil {
		t.Fatal(err)
	}
	if c.test.Timeout != DefaultRunTimeout || len(c.entitlements) != 1 || c.entitlements[0] != "network.host" {
		t.Fatalf("defaults: %+v %v", c.test, c.entitlements)
	}
	if err := Test(TestOptions{Timeout: time.Second})(c); err != nil || len(c.entitlements) != 1 {
		t.Fatalf("twice: %v %v", err, c.entitlements)
	}
	for _, bad := range []TestOptions{{Timeout: -time.Second}, {NetworkEnv: []string{"NOEQUALS"}}, {NetworkEnv: []string{"=x"}}} {
		if err := Test(bad)(&config{}); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
}

func TestUnexpectedRun(t *testing.T) {
	r := Result{Status: StatusOK, Run: &RunOutcome{ExitCode: 127, Expected: "127", Matches: true}}
	if r.Unexpected() {
		t.Error("an image failing as expected is not unexpected")
	}
	r.Run.Matches = false
	if !r.Unexpected() || len(Unexpected([]Result{r})) != 1 {
		t.Error("a run that differs from the expected outcome is unexpected")
	}
}
