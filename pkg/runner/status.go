package runner

import (
	"bytes"
	"context"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"

	"github.com/minikit/minikit/pkg/timings"
)

// logTail is how many lines of a failed step's output a Result keeps.
const logTail = 20

// A tracker reads one build's status stream: which steps ran, which came
// from the cache, which failed and what they printed, and when each ran
// (timings.go). It is fed from one goroutine and read once the stream is
// closed.
type tracker struct {
	vertices map[digest.Digest]*vertexState
	order    []digest.Digest // first-seen order
	failed   digest.Digest   // the first step that failed other than by cancellation
	rec      *timings.Recorder
}

type vertexState struct {
	name   string
	cached bool
	lines  []string // the last logTail complete lines
	part   []byte   // an unterminated last line
}

func newTracker() *tracker {
	return &tracker{vertices: map[digest.Digest]*vertexState{}, rec: timings.NewRecorder()}
}

func (t *tracker) vertex(d digest.Digest) *vertexState {
	v, ok := t.vertices[d]
	if !ok {
		v = &vertexState{}
		t.vertices[d] = v
		t.order = append(t.order, d)
	}
	return v
}

func (t *tracker) add(ss *client.SolveStatus) {
	t.rec.Add(ss)
	for _, cv := range ss.Vertexes {
		v := t.vertex(cv.Digest)
		if cv.Name != "" {
			v.name = cv.Name
		}
		v.cached = v.cached || cv.Cached
		if t.failed == "" && cv.Error != "" && !isCancellation(cv.Error) {
			t.failed = cv.Digest
		}
	}
	for _, l := range ss.Logs {
		t.vertex(l.Vertex).addLog(l.Data)
	}
}

func (v *vertexState) addLog(data []byte) {
	data = append(v.part, data...)
	for {
		line, rest, ok := bytes.Cut(data, []byte("\n"))
		if !ok {
			break
		}
		v.lines = append(v.lines, strings.TrimRight(string(line), "\r"))
		data = rest
	}
	v.part = append([]byte(nil), data...)
	if n := len(v.lines); n > logTail {
		v.lines = append([]string(nil), v.lines[n-logTail:]...)
	}
}

// isCancellation reports whether a vertex error only says the step was
// interrupted, as happens to every running step of a canceled build.
func isCancellation(msg string) bool {
	return strings.HasSuffix(msg, context.Canceled.Error()) || msg == "canceled"
}

// counts returns how many steps were seen and how many were cached,
// counting only the build steps of steps (all of them when steps is nil).
func (t *tracker) counts(steps stepKinds) (total, cached int) {
	for d, v := range t.vertices {
		if steps != nil && !steps.isStep(d) {
			continue
		}
		total++
		if v.cached {
			cached++
		}
	}
	return total, cached
}

// failure returns the failed step's name and the last lines it printed,
// or "" when no step failed.
func (t *tracker) failure() (string, []string) {
	if t.failed == "" {
		return "", nil
	}
	v := t.vertices[t.failed]
	lines := append([]string(nil), v.lines...)
	if len(v.part) > 0 {
		lines = append(lines, string(v.part))
		if len(lines) > logTail {
			lines = lines[len(lines)-logTail:]
		}
	}
	return v.name, lines
}

// stepKinds are the operations of a build's definition, by the digest
// their vertices carry in the status stream: each one's category, and
// whether it is a build step (not a source).
type stepKinds map[digest.Digest]stepKind

type stepKind struct {
	cat    timings.Category
	source bool
}

// isStep reports whether d is one of the definition's build steps.
func (s stepKinds) isStep(d digest.Digest) bool {
	k, ok := s[d]
	return ok && !k.source
}

// categories returns every operation's category.
func (s stepKinds) categories() map[digest.Digest]timings.Category {
	m := make(map[digest.Digest]timings.Category, len(s))
	for d, k := range s {
		m[d] = k.cat
	}
	return m
}

// definitionSteps returns the operations of a definition: its build
// steps (copies, runs, directories made) and its sources, each with the
// digest it carries in the status stream. Only build steps are counted
// (counts): BuildKit transfers the local sources and re-resolves each
// image's tag in every build and never reports either as cached, so with
// them a target found entirely in the cache could not show Cached ==
// Vertices.
func definitionSteps(def [][]byte) stepKinds {
	m := make(stepKinds, len(def))
	for _, dt := range def {
		var op pb.Op
		if err := op.Unmarshal(dt); err != nil || op.Op == nil {
			continue // the definition's terminal entry
		}
		m[digest.FromBytes(dt)] = stepKind{cat: timings.OpCategory(&op), source: op.GetSource() != nil}
	}
	return m
}
