package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// Recipes that ended because their daemon was lost are marked with that
// cause, naming the daemon, and the run fails with one error saying so
// (exit 3, not 1), even with other recipes failed.
func TestMarkLost(t *testing.T) {
	lostErr := fmt.Errorf("%w: unix:///x.sock does not answer: EOF", runner.ErrBuilderLost)
	results := []runner.Result{
		{Name: "a", Status: runner.StatusOK},
		{Name: "b", Status: runner.StatusFailed, Err: lostErr, Error: "Unavailable: EOF"},
		{Name: "c", Status: runner.StatusCanceled, Err: lostErr, Error: "not started"},
		{Name: "d", Status: runner.StatusFailed, Err: errors.New("exit code 1"), Error: "exit code 1"},
	}
	conns := []*connect.Conn{{Addr: "unix:///x.sock", Private: true, PID: 4242}}
	err := markLost(results, conns)
	want := "minikit's private buildkitd (pid 4242, unix:///x.sock) stopped answering"
	if !errors.Is(err, runner.ErrBuilderLost) || err.Error() != want+" during the run: 2 recipe(s) not finished" {
		t.Fatalf("markLost: %v", err)
	}
	for _, r := range results {
		marked := r.Error == "not finished: "+want
		if marked != (r.Name == "b" || r.Name == "c") {
			t.Errorf("%s: error %q", r.Name, r.Error)
		}
	}

	// Several builders: each result names its own; others by address.
	results = []runner.Result{
		{Name: "a", Builder: "tcp://h1:1", Err: lostErr},
		{Name: "b", Builder: "tcp://h2:1", Err: lostErr},
		{Name: "c", Builder: "tcp://h1:1", Err: lostErr},
	}
	err = markLost(results, []*connect.Conn{{Addr: "tcp://h1:1"}, {Addr: "tcp://h2:1"}})
	if err == nil || err.Error() != "buildkitd at tcp://h1:1 stopped answering; buildkitd at tcp://h2:1 stopped answering during the run: 3 recipe(s) not finished" {
		t.Errorf("two builders lost: %v", err)
	}
	if results[1].Error != "not finished: buildkitd at tcp://h2:1 stopped answering" {
		t.Errorf("b: %q", results[1].Error)
	}

	if err := markLost([]runner.Result{{Name: "a", Err: errors.New("x")}}, conns); err != nil {
		t.Errorf("nothing lost: %v", err)
	}

	// The run's outcome: the lost daemon, not "did not end as expected".
	rep := &report.Report{Recipes: []report.Recipe{{Name: "b", Status: report.StatusFailed}}}
	a := app{stdout: io.Discard, stderr: io.Discard}
	lost := lostError{daemons: []string{want}, n: 1}
	got := a.finish(context.Background(), rep, nil, "table", "", 0, lost)
	var unexp unexpectedError
	if !errors.Is(got, runner.ErrBuilderLost) || errors.As(got, &unexp) || !strings.Contains(got.Error(), "pid 4242") {
		t.Errorf("finish: %v, want the lost daemon's error", got)
	}
}
