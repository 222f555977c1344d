// Package timings says where a build's time went. For each target built,
// a Profile lists its steps as BuildKit reported them in the build's
// status stream: when each started after the build did (queued), how long
// it ran or whether it came from the cache, what kind of work it was
// (pulling an image, compiling, copying, exporting, measuring), how much
// of its time was spent extracting base image layers, and which steps
// form the chain that bounded the target's wall time (its critical path).
// Summarize then reads a whole run: the steps that took longest (a step
// shared by several targets counted once), the run's critical path and
// the time per kind of work.
//
// A Recorder builds a Profile from the status stream; it knows BuildKit's
// status types, nothing of how the build was started.
package timings

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

// A Category is the kind of work a step does.
type Category string

const (
	// Pull resolves an image and pulls its layers (an image source, and
	// the "load metadata" step that resolves its config). Extracting the
	// layers is done by the first step that needs them: it is counted in
	// that step's ExtractMS, and with Pull in a Summary.
	Pull Category = "pull"
	// Context is a local source: files the client sends.
	Context Category = "context"
	// Compile is a RUN step (an exec operation).
	Compile Category = "compile"
	// Copy is a file operation: COPY, COPY --from, WORKDIR's mkdir; merge
	// and diff operations too.
	Copy Category = "copy"
	// Export is an exporter: the image store, a tarball, a cache export.
	Export Category = "export"
	// Measure is measuring the exported image (added by the caller,
	// AddStep: BuildKit does not report it).
	Measure Category = "measure"
	// Other is any other step.
	Other Category = "other"
)

// Categories lists every category, in the order tables show them.
func Categories() []Category {
	return []Category{Pull, Context, Compile, Copy, Export, Measure, Other}
}

// A Profile is one target's build, step by step. Its JSON names are
// stable (pkg/report/FIELDS.md).
type Profile struct {
	// Started is when the target's build began (the client's clock).
	Started time.Time `json:"started"`
	// WallMS is the build's wall time, milliseconds: from Started to the
	// end of its last step (its measurement included).
	WallMS int64 `json:"wall_ms"`
	// Steps are the steps that started, in the order they started.
	Steps []Step `json:"steps"`
}

// A Step is one step of a build.
type Step struct {
	// ID is BuildKit's vertex digest: a step shared by several targets
	// has the same ID in each of their profiles.
	ID string `json:"id"`
	// Name is the step as the progress display names it.
	Name     string   `json:"name"`
	Category Category `json:"category"`
	// Cached is set for a step found in BuildKit's cache.
	Cached bool `json:"cached,omitempty"`
	// StartMS is when the step started, milliseconds after the target's
	// build did: how long it was queued (waiting for its inputs, for the
	// daemon, for a lock). Negative for a step shared with another
	// target whose build had started it before.
	StartMS int64 `json:"start_ms"`
	// RunningMS is how long it ran, milliseconds; about 0 when cached.
	RunningMS int64 `json:"running_ms"`
	// ExtractMS is the part of RunningMS spent extracting image layers
	// the step needed (BuildKit's "extracting" statuses).
	ExtractMS int64 `json:"extract_ms,omitempty"`
	// Critical marks the steps of the target's critical path: from its
	// last step back, each step's latest-finishing input; for a step that
	// is not an operation of the build (an exporter, the measurement),
	// the step that finished last before it started.
	Critical bool `json:"critical,omitempty"`
	// Incomplete is set for a step never reported completed (the build
	// failed or was canceled): it counts as running until the build's end.
	Incomplete bool `json:"incomplete,omitempty"`
}

// Start is when the step started, on the client's clock.
func (s Step) Start(p *Profile) time.Time {
	return p.Started.Add(time.Duration(s.StartMS) * time.Millisecond)
}

// Running is RunningMS as a duration.
func (s Step) Running() time.Duration { return time.Duration(s.RunningMS) * time.Millisecond }

// Wall is WallMS as a duration.
func (p *Profile) Wall() time.Duration { return time.Duration(p.WallMS) * time.Millisecond }

// A Recorder collects one build's steps from its status stream. Feed it
// from one goroutine; read it (Profile) once the stream is closed.
type Recorder struct {
	steps map[string]*rec
	order []string // first-seen order
}

type rec struct {
	name      string
	inputs    []string
	cat       Category // set by AddStep; else from the definition or the name
	cached    bool
	started   time.Time
	completed time.Time
	// extract holds the "extracting" statuses' intervals, by status ID.
	extract map[string][2]time.Time
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{steps: map[string]*rec{}} }

func (r *Recorder) step(id string) *rec {
	s, ok := r.steps[id]
	if !ok {
		s = &rec{}
		r.steps[id] = s
		r.order = append(r.order, id)
	}
	return s
}

// Add reads one status update. A step is reported several times (queued,
// started, completed): the earliest start and the latest completion are
// kept.
func (r *Recorder) Add(ss *client.SolveStatus) {
	for _, v := range ss.Vertexes {
		s := r.step(v.Digest.String())
		if v.Name != "" {
			s.name = v.Name
		}
		if len(v.Inputs) > 0 {
			s.inputs = s.inputs[:0]
			for _, in := range v.Inputs {
				s.inputs = append(s.inputs, in.String())
			}
		}
		s.cached = s.cached || v.Cached
		if v.Started != nil && (s.started.IsZero() || v.Started.Before(s.started)) {
			s.started = *v.Started
		}
		if v.Completed != nil && v.Completed.After(s.completed) {
			s.completed = *v.Completed
		}
	}
	for _, st := range ss.Statuses {
		if !strings.HasPrefix(st.ID, "extracting ") || st.Started == nil {
			continue
		}
		s := r.step(st.Vertex.String())
		if s.extract == nil {
			s.extract = map[string][2]time.Time{}
		}
		iv := s.extract[st.ID]
		if iv[0].IsZero() || st.Started.Before(iv[0]) {
			iv[0] = *st.Started
		}
		if st.Completed != nil && st.Completed.After(iv[1]) {
			iv[1] = *st.Completed
		}
		s.extract[st.ID] = iv
	}
}

// AddStep records a step BuildKit does not report (measuring the image),
// from start to end, after the steps seen so far.
func (r *Recorder) AddStep(id, name string, cat Category, start, end time.Time) {
	s := r.step(id)
	s.name, s.cat, s.started, s.completed = name, cat, start, end
}

// Profile returns the build's profile: its start, and its end (the
// completion of a step still running then). kinds gives the category of
// the steps of the build's definition, by vertex digest (DefinitionKinds);
// the others are classified by name.
func (r *Recorder) Profile(started, end time.Time, kinds map[digest.Digest]Category) *Profile {
	p := &Profile{Started: started, Steps: []Step{}}
	last := started
	type item struct {
		Step
		start, end time.Time
		inputs     []string
		inDef      bool // an operation of the build's definition
	}
	var items []item
	for _, id := range r.order {
		s := r.steps[id]
		if s.started.IsZero() {
			continue // never started: the build ended before it could
		}
		it := item{Step: Step{ID: id, Name: s.name, Cached: s.cached}, start: s.started, end: s.completed, inputs: s.inputs}
		_, it.inDef = kinds[digest.Digest(id)]
		it.Category = s.cat
		if it.Category == "" {
			it.Category = classify(digest.Digest(id), s.name, kinds)
		}
		if it.end.IsZero() || it.end.Before(it.start) {
			it.end, it.Incomplete = end, true
			if it.end.Before(it.start) {
				it.end = it.start
			}
		}
		it.StartMS = it.start.Sub(started).Milliseconds()
		it.RunningMS = it.end.Sub(it.start).Milliseconds()
		it.ExtractMS = min(extracted(s.extract), it.end.Sub(it.start)).Milliseconds()
		last = later(last, it.end)
		items = append(items, it)
	}
	slices.SortStableFunc(items, func(a, b item) int { return a.start.Compare(b.start) })

	// The critical path: from the step that ended last, back through the
	// latest-finishing input of each step.
	index := map[string]int{}
	for i, it := range items {
		index[it.ID] = i
	}
	cur := -1 // the step that ended last; one that did end, if any
	for i, it := range items {
		if cur < 0 || (items[cur].Incomplete && !it.Incomplete) ||
			(it.Incomplete == items[cur].Incomplete && !it.end.Before(items[cur].end)) {
			cur = i
		}
	}
	// on[i] is step i's place on the path, counted from its end (1).
	on := map[int]int{}
	for cur >= 0 && on[cur] == 0 {
		on[cur] = len(on) + 1
		next := -1
		for _, in := range items[cur].inputs {
			if j, ok := index[in]; ok && on[j] == 0 && (next < 0 || items[j].end.After(items[next].end)) {
				next = j
			}
		}
		if next < 0 && !items[cur].inDef {
			// Not an operation of the build (an exporter, a measurement):
			// what it waited for is what finished last before it started.
			for j, it := range items {
				if on[j] == 0 && !it.end.After(items[cur].start) && (next < 0 || it.end.After(items[next].end)) {
					next = j
				}
			}
		}
		cur = next
	}
	// In start order; steps that started together (cached ones) in the
	// order of the path.
	order := make([]int, len(items))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := items[a].start.Compare(items[b].start); c != 0 {
			return c
		}
		return cmp.Compare(on[b], on[a])
	})
	for _, i := range order {
		it := items[i]
		it.Critical = on[i] > 0
		p.Steps = append(p.Steps, it.Step)
	}
	p.WallMS = later(last, end).Sub(started).Milliseconds()
	return p
}

// extracted is the time covered by the extraction intervals (their union:
// layers of one image are extracted in parallel).
func extracted(ivs map[string][2]time.Time) time.Duration {
	var list [][2]time.Time
	for _, iv := range ivs {
		if !iv[1].IsZero() && iv[1].After(iv[0]) {
			list = append(list, iv)
		}
	}
	return union(list)
}

// union is the length of the union of intervals.
func union(list [][2]time.Time) time.Duration {
	slices.SortFunc(list, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	var total time.Duration
	var cur [2]time.Time
	for i, iv := range list {
		switch {
		case i == 0:
			cur = iv
		case iv[0].After(cur[1]):
			total += cur[1].Sub(cur[0])
			cur = iv
		case iv[1].After(cur[1]):
			cur[1] = iv[1]
		}
	}
	if len(list) > 0 {
		total += cur[1].Sub(cur[0])
	}
	return total
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// classify gives a step's category: from the build's definition when the
// step is one of its operations, else from its name.
func classify(d digest.Digest, name string, kinds map[digest.Digest]Category) Category {
	if c, ok := kinds[d]; ok {
		return c
	}
	switch {
	case strings.HasPrefix(name, "[internal] load metadata for "), strings.HasPrefix(name, "docker-image://"):
		return Pull
	case strings.HasPrefix(name, "exporting "), strings.HasPrefix(name, "importing cache"):
		return Export
	case strings.HasPrefix(name, "local://"), strings.HasPrefix(name, "[internal] load build context"):
		return Context
	}
	return Other
}

// DefinitionKinds returns the category of every operation of a build's
// definition (marshalled LLB), by the digest its vertex carries in the
// status stream.
func DefinitionKinds(def [][]byte) map[digest.Digest]Category {
	m := make(map[digest.Digest]Category, len(def))
	for _, dt := range def {
		var op pb.Op
		if err := op.Unmarshal(dt); err != nil || op.Op == nil {
			continue // the definition's terminal entry
		}
		m[digest.FromBytes(dt)] = OpCategory(&op)
	}
	return m
}

// OpCategory is the category of an LLB operation.
func OpCategory(op *pb.Op) Category {
	switch {
	case op.GetExec() != nil:
		return Compile
	case op.GetFile() != nil, op.GetMerge() != nil, op.GetDiff() != nil:
		return Copy
	case op.GetSource() != nil:
		switch id := op.GetSource().GetIdentifier(); {
		case strings.HasPrefix(id, "docker-image://"), strings.HasPrefix(id, "oci-layout://"):
			return Pull
		case strings.HasPrefix(id, "local://"):
			return Context
		}
	}
	return Other
}
