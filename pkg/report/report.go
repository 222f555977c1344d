// Package report renders the results of a set of recipes, from one data
// model (Report), as a text table, a JSON document and a self-contained
// HTML page, so that the three never disagree. It also checks size
// budgets.
//
// The JSON names are stable; every one is documented in FIELDS.md.
package report

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/timings"
)

// Statuses a Recipe can have. Others are rendered as they are.
const (
	StatusOK                = "ok"                 // built as expected
	StatusFailed            = "failed"             // the build failed, unexpectedly
	StatusExpectedFailure   = "expected-failure"   // the build failed, as the recipe expects
	StatusUnexpectedSuccess = "unexpected-success" // built, though a build failure was expected
	StatusCanceled          = "canceled"           // interrupted, or never started
	StatusSkipped           = "skipped"            // not attempted (e.g. not reproducible on stand-ins)
)

// A Report is the results of one run over a set of recipes.
type Report struct {
	Generated time.Time `json:"generated"`
	// Machine describes where the figures were obtained (host, CPU,
	// BuildKit version...), free text.
	Machine string `json:"machine,omitempty"`
	// StandIns is set when base images were offline stand-ins: the
	// figures are not upstream ones.
	StandIns bool `json:"stand_ins"`
	// SourceDateEpoch is the epoch the images were dated with (unix
	// seconds), nil when off; EpochSource says where it came from.
	SourceDateEpoch *int64 `json:"source_date_epoch,omitempty"`
	EpochSource     string `json:"epoch_source,omitempty"`
	// RewriteTimestamp: the exporters also clamped the file times of the
	// layers the recipes add (--rewrite-timestamp).
	RewriteTimestamp bool `json:"rewrite_timestamp,omitempty"`
	// TestServer is the loopback HTTPS server the images that use the
	// network were pointed at, when they were run.
	TestServer string   `json:"test_server,omitempty"`
	Recipes    []Recipe `json:"recipes"`
	// Ranking orders each program's working images by size against its
	// floor (see Rank); absent unless computed.
	Ranking []Ranking `json:"ranking,omitempty"`
}

// A Recipe is the result of one build/run combination.
type Recipe struct {
	Name string `json:"name"`
	// Platform is the platform of this row's image (linux/arm64) when
	// the recipe was built for several, one row each; empty otherwise.
	Platform string `json:"platform,omitempty"`
	Program  string `json:"program"`
	// Extra is set for a recipe beyond the 51 seed rows (llbdefs.Extras).
	Extra      bool   `json:"extra,omitempty"`
	BuildImage string `json:"build_image"`
	RunImage   string `json:"run_image"`
	Status     string `json:"status"`
	// Expect is what the original experiment observed: an exit code
	// ("0", "127") or "build" for a build failure.
	Expect string `json:"expect,omitempty"`
	// Error is the build's error message, for a recipe that did not build.
	Error string `json:"error,omitempty"`
	// FailedVertex names the build step that failed.
	FailedVertex string `json:"failed_vertex,omitempty"`
	// ImageName is the name the image was exported under.
	ImageName string `json:"image_name,omitempty"`
	// StandIn is set when a base image of the recipe was a stand-in;
	// StandInImages lists those images.
	StandIn       bool     `json:"stand_in"`
	StandInImages []string `json:"stand_in_images,omitempty"`
	// StandInDiffers is, for a partial recipe built on the stand-ins, the
	// one respect in which its stand-in differs from the upstream image.
	StandInDiffers string `json:"stand_in_differs,omitempty"`
	// DurationMS is the recipe's wall time in BuildKit, milliseconds.
	DurationMS int64 `json:"duration_ms,omitempty"`
	// Vertices counts the recipe's build steps, CachedVertices those
	// that came from the cache.
	Vertices       int `json:"vertices,omitempty"`
	CachedVertices int `json:"cached_vertices,omitempty"`
	// Timings is where the recipe's build time went, step by step
	// (pkg/timings); solve --timings.
	Timings *timings.Profile `json:"timings,omitempty"`
	// Budget is the recipe's size budget in uncompressed bytes, 0 for none.
	Budget int64 `json:"budget,omitempty"`
	// Image is the measured image; nil when none was built.
	Image *measure.Image `json:"image,omitempty"`
	// Run is what running the image did; nil when it was not run.
	Run *RunOutcome `json:"run,omitempty"`
	// Builder is the buildkitd that built the recipe, when several were
	// used; RetriedFrom the builders it was taken from, lost mid-run.
	Builder     string   `json:"builder,omitempty"`
	RetriedFrom []string `json:"retried_from,omitempty"`
}

// A RunOutcome is what running a recipe's image did.
type RunOutcome struct {
	ExitCode int `json:"exit_code"`
	// Expected is set when the outcome is the one the recipe expects.
	Expected bool `json:"expected"`
	// Reason explains a failure ("no such file or directory: /lib/ld-musl-x86_64.so.1").
	Reason string `json:"reason,omitempty"`
	// Kind classifies the outcome (pkg/diagnose's kinds, and the
	// runner's: error, no-answer, output-mismatch).
	Kind string `json:"kind,omitempty"`
	// Want is what the check expected: an exit code ("0"), with the
	// output to match, or "answers :PORT/PATH" for a server.
	Want string `json:"want,omitempty"`
	// Network is "host" or "none".
	Network  string `json:"network,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
	// DurationMS is the run's wall time, milliseconds.
	DurationMS int64 `json:"duration_ms,omitempty"`
	// StdoutTail and StderrTail are the last lines the process printed.
	StdoutTail []string `json:"stdout_tail,omitempty"`
	StderrTail []string `json:"stderr_tail,omitempty"`
}

// Works reports whether the image did what a working program does: it
// exited 0 (or, a server, answered) and nothing else was amiss (its
// output matched, say).
func (o *RunOutcome) Works() bool {
	return o.ExitCode == 0 && (o.Kind == "" || o.Kind == "ok")
}

// Built reports whether the recipe produced a measured image.
func (r Recipe) Built() bool { return r.Image != nil }

// Failing reports whether the combination does not work: it did not build
// (for any reason but being skipped), or its image, run, did not work
// (RunOutcome.Works).
func (r Recipe) Failing() bool {
	if r.Run != nil && !r.Run.Works() {
		return true
	}
	switch r.Status {
	case StatusOK, StatusUnexpectedSuccess, StatusSkipped:
		return false
	}
	return !r.Built()
}

// Unexpected reports whether the result calls for attention: a build or
// a run that did not end as the recipe expects.
func (r Recipe) Unexpected() bool {
	switch r.Status {
	case StatusOK, StatusExpectedFailure, StatusSkipped:
	default:
		return true
	}
	return r.Run != nil && !r.Run.Expected
}

// Outcome is the recipe's outcome in a few words: the status, and the run's
// exit code when it ran ("ok, exit 127 (unexpected)").
func (r Recipe) Outcome() string {
	s := r.Status
	if s == "" {
		s = "unknown"
	}
	if r.Run != nil {
		s += fmt.Sprintf(", exit %d", r.Run.ExitCode)
		if !r.Run.Expected {
			s += " (unexpected)"
		}
	}
	return s
}

// OverBudget reports whether a built recipe exceeds its own Budget.
func (r Recipe) OverBudget() bool {
	return r.Budget > 0 && r.Image != nil && r.Image.Uncompressed > r.Budget
}

func checkReport(rep *Report) error {
	if rep == nil {
		return errors.New("no report")
	}
	return nil
}

// sortedBySize returns the recipes' indexes: the built ones by
// uncompressed size (then name), then the others by name.
func sortedBySize(rs []Recipe) []int {
	idx := make([]int, len(rs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ra, rb := rs[idx[a]], rs[idx[b]]
		if ra.Built() != rb.Built() {
			return ra.Built()
		}
		if ra.Built() && ra.Image.Uncompressed != rb.Image.Uncompressed {
			return ra.Image.Uncompressed < rb.Image.Uncompressed
		}
		return ra.Name < rb.Name
	})
	return idx
}

// FormatBytes writes a size in SI units with three significant digits:
// "812 B", "20.5 kB", "1.23 MB", "123 MB", "1.05 GB".
func FormatBytes(n int64) string {
	if n < 0 {
		return "-" + FormatBytes(-n)
	}
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"kB", "MB", "GB", "TB", "PB", "EB"}
	v := float64(n)
	u := -1
	for v >= 999.5 && u < len(units)-1 {
		v /= 1000
		u++
	}
	switch {
	case v >= 99.95:
		return fmt.Sprintf("%.0f %s", v, units[u])
	case v >= 9.995:
		return fmt.Sprintf("%.1f %s", v, units[u])
	}
	return fmt.Sprintf("%.2f %s", v, units[u])
}

// firstLine shortens a message to its first line, at most n runes.
func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// Label is how tables name the row: its recipe, followed by its platform
// in parentheses when the recipe was built for several
// ("hello-c.gcc-static.scratch (linux/arm64)").
func (r Recipe) Label() string {
	if r.Platform == "" {
		return r.Name
	}
	return r.Name + " (" + r.Platform + ")"
}
