package runner

import (
	"time"

	"github.com/minikit/minikit/pkg/timings"
)

// Build profiles (Result.Profile).
//
// Every build's status stream is recorded step by step (the tracker's
// timings.Recorder): when each step started after the target's build
// did, how long it ran or whether it was cached, and its kind of work,
// from the target's definition (stepKinds) or, for what is not an
// operation of it (exporters, image config resolution), from its name.
// Measuring the image in a second pass (Measure with MeasureCache) is a
// step of its own, which BuildKit does not report.

// measured records the second-pass measurement of target, from start to
// now.
func (t *tracker) measured(target string, start time.Time) {
	t.rec.AddStep("measure:"+target, "measure the image", timings.Measure, start, time.Now())
}

// profile is the build's profile, from start to now; steps are the
// target's operations (nil when its graph was never marshalled).
func (t *tracker) profile(start time.Time, steps stepKinds) *timings.Profile {
	return t.rec.Profile(start, time.Now(), steps.categories())
}
