package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/minikit/minikit/internal/atomicfile"
	"github.com/minikit/minikit/internal/connect"
	"github.com/minikit/minikit/pkg/report"
	"github.com/minikit/minikit/pkg/runner"
)

// lostError is the error of a run during which buildkitd was lost, so
// that recipes were left unfinished (exit 3): it says which daemon, in one
// line.
type lostError struct {
	daemons []string // described by lostDaemon
	n       int      // recipes left unfinished
	restart bool     // the private daemon died: the next run starts one
}

func (e lostError) Error() string {
	msg := fmt.Sprintf("%s during the run: %d recipe(s) not finished", strings.Join(e.daemons, "; "), e.n)
	if e.restart {
		msg += "; the next run starts a new private buildkitd"
	}
	return msg
}

func (e lostError) Unwrap() error { return runner.ErrBuilderLost }

// markLost gives every result that ended because its buildkitd was lost
// (runner.ErrBuilderLost) that cause, naming the daemon, and returns the
// lostError that reports them, nil when no daemon was lost. conns are the
// daemons the run used; a result names its own (Result.Builder) unless
// there is only one.
func markLost(results []runner.Result, conns []*connect.Conn) error {
	desc := map[string]string{} // address -> how it was lost
	var lost lostError
	for i := range results {
		r := &results[i]
		if !errors.Is(r.Err, runner.ErrBuilderLost) {
			continue
		}
		addr := r.Builder
		if addr == "" && len(conns) == 1 {
			addr = conns[0].Addr
		}
		d, ok := desc[addr]
		if !ok {
			if j := slices.IndexFunc(conns, func(c *connect.Conn) bool { return c.Addr == addr }); j >= 0 {
				died := conns[j].DaemonExited()
				d = lostDaemon(conns[j], died)
				lost.restart = lost.restart || died
			} else {
				d = "buildkitd at " + addr + " stopped answering"
			}
			desc[addr] = d
			lost.daemons = append(lost.daemons, d)
		}
		r.Error = "not finished: " + d
		lost.n++
	}
	if lost.n == 0 {
		return nil
	}
	return lost
}

// lostDaemon says which daemon was lost and how: the private one by its
// pid and address, whether its process died or is only silent; another by
// its address.
func lostDaemon(c *connect.Conn, died bool) string {
	switch {
	case c.Private && died:
		return fmt.Sprintf("minikit's private buildkitd (pid %d, %s) died", c.PID, c.Addr)
	case c.Private:
		return fmt.Sprintf("minikit's private buildkitd (pid %d, %s) stopped answering", c.PID, c.Addr)
	}
	return "buildkitd at " + c.Addr + " stopped answering"
}

// machine describes where the figures were obtained.
func machine(addr string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %s/%s, %d CPUs, buildkitd at %s", host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), addr)
}

// finish prints the report, writes the HTML file, checks budgets and
// turns what did not go as expected into the exit status; lost is
// markLost's error.
func (a app) finish(ctx context.Context, rep *report.Report, budgets []report.Budget, format, html string, took time.Duration, lost error) error {
	violations := report.CheckBudgets(rep, budgets)
	switch format {
	case "json":
		if err := report.WriteJSON(a.stdout, rep); err != nil {
			return err
		}
	default:
		if err := report.WriteTable(a.stdout, rep); err != nil {
			return err
		}
		if err := report.WriteRanking(a.stdout, rep); err != nil {
			return err
		}
	}
	if html != "" {
		if err := atomicfile.Write(html, 0o644, func(w io.Writer) error { return report.WriteHTML(w, rep) }); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		fmt.Fprintf(a.stderr, "report written to %s\n", html)
	}
	sum := report.Summarize(rep)
	unexpected := sum.Unexpected
	fmt.Fprintf(a.stderr, "%d ok, %d failed as expected, %d unexpected, %d skipped in %s\n",
		sum.OK, sum.Expected, unexpected, sum.Skipped, took.Round(100*time.Millisecond))
	for _, v := range violations {
		fmt.Fprintf(a.stderr, "over budget: %s\n", v)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	if lost != nil {
		return lost
	}
	if n := unexpected + len(violations); n > 0 {
		return unexpectedError{n}
	}
	return nil
}
