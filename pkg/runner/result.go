package runner

import (
	"time"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/timings"
)

// Status is how a target's build ended.
type Status string

const (
	StatusOK                Status = "ok"                 // built, as expected
	StatusFailed            Status = "failed"             // the build failed, unexpectedly
	StatusExpectedFailure   Status = "expected-failure"   // the build failed, as the target expects
	StatusUnexpectedSuccess Status = "unexpected-success" // built, though the target expects a build failure
	StatusCanceled          Status = "canceled"           // interrupted, or never started
)

// A BaseImage is one of a target's Images as the run resolved it.
type BaseImage struct {
	Ref    string            `json:"ref"`              // as the target names it
	Digest string            `json:"digest,omitempty"` // the manifest (or index) digest it resolved to
	Labels map[string]string `json:"labels,omitempty"` // its config's labels
}

// A Result is what solving one target produced. Its JSON names are stable.
type Result struct {
	Name string `json:"name"`
	// Platform is the platform of this Result's image, os/arch[/variant]
	// (linux/arm64), when its target was built for several: each then has
	// one Result per platform, in the order given, which share the
	// build's outcome and the image index's ImageDigest. Empty for a
	// target built for one platform.
	Platform string `json:"platform,omitempty"`
	Status   Status `json:"status"`
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

	// ImageName is the name the image was exported under (NameTemplate,
	// or the first export's own name), ImageDigest its manifest digest
	// (its index's, for several platforms) and ConfigDigest its config's
	// (as BuildKit's exporter reports it: none for an index; Image has
	// each platform's). ImageNames lists every name the
	// exports gave it, ImageDescriptor is its manifest's descriptor.
	ImageName       string               `json:"image_name,omitempty"`
	ImageNames      []string             `json:"image_names,omitempty"`
	ImageDigest     string               `json:"image_digest,omitempty"`
	ConfigDigest    string               `json:"config_digest,omitempty"`
	ImageDescriptor *ocispecs.Descriptor `json:"image_descriptor,omitempty"`
	// Pushed lists the names the image was pushed under (Push, an image
	// export with push=true), Loaded the tags Docker loaded it as (Load).
	Pushed []string `json:"pushed,omitempty"`
	Loaded []string `json:"loaded,omitempty"`

	// Bases are the target's Images, in order, as resolved for its
	// build (those resolved before the build failed, if it did).
	Bases []BaseImage `json:"bases,omitempty"`

	// Image holds the image's sizes, with the Measure option.
	Image *measure.Image `json:"image,omitempty"`

	// Outputs are the tarballs written, one per file export, and the
	// directories of local exports.
	Outputs []string `json:"outputs,omitempty"`

	Duration time.Duration `json:"duration_ns"`
	// Vertices counts the target's build steps seen in BuildKit's status
	// stream (copies, runs, made directories; not image pulls, the
	// sources' transfer or the export), Cached those found in BuildKit's
	// cache: a target rebuilt with nothing changed has Cached == Vertices.
	Vertices int `json:"vertices"`
	Cached   int `json:"cached_vertices"`
	// Profile is where the build's time went, step by step (timings.go).
	Profile *timings.Profile `json:"profile,omitempty"`

	// Run is the outcome of running the image, with the Test option.
	Run *RunOutcome `json:"run,omitempty"`

	// Builder names the buildkitd that gave this outcome (SolveOn; empty
	// with Solve). RetriedFrom lists, in order, the builders the target
	// was taken away from because they became unreachable before it was
	// done there.
	Builder     string   `json:"builder,omitempty"`
	RetriedFrom []string `json:"retried_from,omitempty"`

	// platformResults are a build for several platforms' Image, Run and
	// Bases, one per platform (splitPlatforms).
	platformResults []Result
}

// classify turns a build's outcome into a Status: err is the build's
// error, canceled whether the run was interrupted.
func classify(t Target, err error, canceled bool) Status {
	switch {
	case err == nil && t.ExpectBuildFailure:
		return StatusUnexpectedSuccess
	case err == nil:
		return StatusOK
	case canceled:
		return StatusCanceled
	case t.ExpectBuildFailure:
		return StatusExpectedFailure
	default:
		return StatusFailed
	}
}

// Unexpected reports whether the result calls for attention: a build that
// failed or succeeded against expectations, or that did not finish, or
// an image that did not pass its Check.
func (r Result) Unexpected() bool {
	if r.Run != nil && !r.Run.Matches {
		return true // it ran differently from what the target expects
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
