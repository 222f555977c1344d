package runner

import (
	"time"

	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/measure"
)

// Status is how a recipe's build ended.
type Status string

const (
	StatusOK                Status = "ok"                 // built, as expected
	StatusFailed            Status = "failed"             // the build failed, unexpectedly
	StatusExpectedFailure   Status = "expected-failure"   // the build failed, as the recipe expects
	StatusUnexpectedSuccess Status = "unexpected-success" // built, though the recipe expects a build failure
	StatusCanceled          Status = "canceled"           // interrupted, or never started
)

// StandInLabel marks a stand-in base image (value "true") in its config.
const StandInLabel = "org.minikit.stand-in"

// A Result is what solving one recipe produced. Its JSON names are stable.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Error is BuildKit's message for a failed or canceled build, and Err
	// the error itself (Error is its message), for errors.Is and
	// errors.As: ErrBuilderLost, ErrHostNetworkRefused, a gRPC status.
	Error string `json:"error,omitempty"`
	Err   error  `json:"-"`
	// FailedVertex names the step that failed, as in the progress display
	// ("[scratch] COPY --from=scratch /nope /"), and FailedLog holds the
	// last lines it printed.
	FailedVertex string   `json:"failed_vertex,omitempty"`
	FailedLog    []string `json:"failed_log,omitempty"`

	// ImageName is the name the image was exported under (see ImageName),
	// ImageDigest its manifest digest and ConfigDigest its config's.
	ImageName    string `json:"image_name,omitempty"`
	ImageDigest  string `json:"image_digest,omitempty"`
	ConfigDigest string `json:"config_digest,omitempty"`

	// StandIn is set when a base image the recipe used is a stand-in
	// (labelled StandInLabel=true); StandInImages lists those images.
	StandIn       bool     `json:"stand_in"`
	StandInImages []string `json:"stand_in_images,omitempty"`

	// Image holds the image's sizes, with the Measure option.
	Image *measure.Image `json:"image,omitempty"`

	// Outputs are the tarballs written, one per file export.
	Outputs []string `json:"outputs,omitempty"`

	Duration time.Duration `json:"duration_ns"`
	// Vertices counts the recipe's build steps seen in BuildKit's status
	// stream (copies, runs, WORKDIRs; not image pulls, the samples'
	// transfer or the export), Cached those found in BuildKit's cache: a
	// recipe rebuilt with nothing changed has Cached == Vertices.
	Vertices int `json:"vertices"`
	Cached   int `json:"cached_vertices"`

	// Run is the outcome of running the image, with the Test option.
	Run *RunOutcome `json:"run,omitempty"`

	// Builder names the buildkitd that gave this outcome (SolveOn; empty
	// with Solve). RetriedFrom lists, in order, the builders the recipe
	// was taken away from because they became unreachable before it was
	// done there.
	Builder     string   `json:"builder,omitempty"`
	RetriedFrom []string `json:"retried_from,omitempty"`
}

// classify turns a build's outcome into a Status: err is the build's
// error, canceled whether the run was interrupted.
func classify(r llbdefs.Recipe, err error, canceled bool) Status {
	switch {
	case err == nil && r.ExpectBuildFailure():
		return StatusUnexpectedSuccess
	case err == nil:
		return StatusOK
	case canceled:
		return StatusCanceled
	case r.ExpectBuildFailure():
		return StatusExpectedFailure
	default:
		return StatusFailed
	}
}

// Unexpected reports whether the result calls for attention: a build that
// failed or succeeded against expectations, or that did not finish.
func (r Result) Unexpected() bool {
	if r.Run != nil && !r.Run.Matches {
		return true // it ran differently from what the recipe expects
	}
	switch r.Status {
	case StatusOK, StatusExpectedFailure:
		return false
	}
	return true
}

// Unexpected returns the results that call for attention (see
// Result.Unexpected), in order: a run is clean when it returns none.
func Unexpected(results []Result) []Result {
	var out []Result
	for _, r := range results {
		if r.Unexpected() {
			out = append(out, r)
		}
	}
	return out
}
