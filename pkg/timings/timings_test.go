package timings

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// at is t0 plus s seconds.
func at(s float64) *time.Time {
	t := t0.Add(time.Duration(s * float64(time.Second)))
	return &t
}

func vx(name string, start, end float64, inputs ...string) *client.Vertex {
	v := &client.Vertex{Digest: digest.FromString(name), Name: name}
	for _, in := range inputs {
		v.Inputs = append(v.Inputs, digest.FromString(in))
	}
	if start >= 0 {
		v.Started = at(start)
	}
	if end >= 0 {
		v.Completed = at(end)
	}
	return v
}

func id(name string) string { return digest.FromString(name).String() }

// build feeds a recorder the stream of a small build: an image pulled
// (its layers extracted), the sources, a COPY and a RUN on them, a COPY
// --from onto a second image, the export; a measurement afterwards.
func build(t *testing.T) (*Recorder, map[digest.Digest]Category) {
	t.Helper()
	r := NewRecorder()
	// Every step is reported when it starts, then when it ends.
	r.Add(&client.SolveStatus{Vertexes: []*client.Vertex{
		vx("[internal] load metadata for docker.io/library/golang:1", 0.1, -1),
		vx("[internal] load metadata for docker.io/library/alpine:3", 0.1, -1),
	}})
	r.Add(&client.SolveStatus{Vertexes: []*client.Vertex{
		vx("[internal] load metadata for docker.io/library/golang:1", 0.1, 0.5),
		vx("[internal] load metadata for docker.io/library/alpine:3", 0.1, 0.3),
		vx("docker-image://golang", 0.5, -1), vx("docker-image://alpine", 0.5, -1), vx("samples", 0.5, -1),
	}})
	r.Add(&client.SolveStatus{
		Vertexes: []*client.Vertex{vx("samples", 0.5, 0.6), vx("docker-image://alpine", 0.5, 0.9)},
		Statuses: []*client.VertexStatus{
			{ID: "extracting sha256:aaa", Vertex: digest.FromString("docker-image://golang"), Started: at(2), Completed: at(4)},
			{ID: "extracting sha256:bbb", Vertex: digest.FromString("docker-image://golang"), Started: at(3), Completed: at(5)},
			{ID: "sha256:aaa", Vertex: digest.FromString("docker-image://golang"), Started: at(0.5), Completed: at(2)}, // a download
		},
	})
	r.Add(&client.SolveStatus{Vertexes: []*client.Vertex{vx("docker-image://golang", 0.5, 5)}})
	r.Add(&client.SolveStatus{Vertexes: []*client.Vertex{vx("COPY a.go .", 5, 5.1, "docker-image://golang", "samples")}})
	r.Add(&client.SolveStatus{Vertexes: []*client.Vertex{vx("RUN go build", 5.2, -1, "COPY a.go .")}})
	r.Add(&client.SolveStatus{Vertexes: []*client.Vertex{vx("RUN go build", 5.2, 15.2, "COPY a.go .")}})
	// The COPY --from, and a step found in the cache.
	r.Add(&client.SolveStatus{Vertexes: []*client.Vertex{
		vx("COPY --from=build /go/a /", 15.3, 15.4, "docker-image://alpine", "RUN go build"),
		func() *client.Vertex {
			v := vx("WORKDIR /w", 0.6, 0.6, "docker-image://alpine")
			v.Cached = true
			return v
		}(),
	}})
	r.Add(&client.SolveStatus{Vertexes: []*client.Vertex{vx("exporting to image", 15.5, 17)}})
	// A vertex announced but never started, and one that never completed.
	r.Add(&client.SolveStatus{Vertexes: []*client.Vertex{vx("never started", -1, -1), vx("cut short", 16, -1)}})
	r.AddStep("measure:x", "measure the image", Measure, *at(17), *at(19))
	kinds := map[digest.Digest]Category{
		digest.FromString("docker-image://golang"):     Pull,
		digest.FromString("docker-image://alpine"):     Pull,
		digest.FromString("samples"):                   Context,
		digest.FromString("COPY a.go ."):               Copy,
		digest.FromString("RUN go build"):              Compile,
		digest.FromString("COPY --from=build /go/a /"): Copy,
		digest.FromString("WORKDIR /w"):                Copy,
	}
	return r, kinds
}

func TestRecorderProfile(t *testing.T) {
	r, kinds := build(t)
	p := r.Profile(t0, *at(19.5), kinds)
	if !p.Started.Equal(t0) || p.WallMS != 19500 {
		t.Errorf("started %v, wall %d ms; want %v, 19500", p.Started, p.WallMS, t0)
	}
	steps := map[string]Step{}
	var order []string
	for _, s := range p.Steps {
		steps[s.Name] = s
		order = append(order, s.Name)
	}
	if _, ok := steps["never started"]; ok {
		t.Error("a step that never started is in the profile")
	}
	if len(p.Steps) != 12 {
		t.Errorf("%d steps: %q", len(p.Steps), order)
	}
	for i := 1; i < len(p.Steps); i++ {
		if p.Steps[i].StartMS < p.Steps[i-1].StartMS {
			t.Errorf("steps not in start order: %q", order)
		}
	}
	for name, want := range map[string]Step{
		"[internal] load metadata for docker.io/library/golang:1": {Category: Pull, StartMS: 100, RunningMS: 400},
		"docker-image://golang":                                   {Category: Pull, StartMS: 500, RunningMS: 4500, ExtractMS: 3000, Critical: true},
		"docker-image://alpine":                                   {Category: Pull, StartMS: 500, RunningMS: 400},
		"samples":                                                 {Category: Context, StartMS: 500, RunningMS: 100},
		"COPY a.go .":                                             {Category: Copy, StartMS: 5000, RunningMS: 100, Critical: true},
		"RUN go build":                                            {Category: Compile, StartMS: 5200, RunningMS: 10000, Critical: true},
		"COPY --from=build /go/a /":                               {Category: Copy, StartMS: 15300, RunningMS: 100, Critical: true},
		"WORKDIR /w":                                              {Category: Copy, Cached: true, StartMS: 600},
		"exporting to image":                                      {Category: Export, StartMS: 15500, RunningMS: 1500, Critical: true},
		"cut short":                                               {Category: Other, StartMS: 16000, RunningMS: 3500, Incomplete: true},
		"measure the image":                                       {Category: Measure, StartMS: 17000, RunningMS: 2000, Critical: true},
	} {
		got, ok := steps[name]
		if !ok {
			t.Errorf("no step %q", name)
			continue
		}
		want.ID, want.Name = got.ID, name
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
	if steps["RUN go build"].ID != id("RUN go build") || steps["measure the image"].ID != "measure:x" {
		t.Errorf("IDs %q, %q", steps["RUN go build"].ID, steps["measure the image"].ID)
	}
}

// A step's inputs outrank what merely finished before it: the COPY
// --from waits for the RUN, not for the later-finishing side step.
func TestCriticalPathFollowsInputs(t *testing.T) {
	r := NewRecorder()
	r.Add(&client.SolveStatus{Vertexes: []*client.Vertex{
		vx("pull", 0, 1),
		vx("run", 1, 5, "pull"),
		vx("side", 1, 8, "pull"),
		vx("copy", 9, 10, "run"),
	}})
	ops := map[digest.Digest]Category{}
	for _, n := range []string{"pull", "run", "side", "copy"} {
		ops[digest.FromString(n)] = Copy
	}
	p := r.Profile(t0, *at(10), ops)
	var crit []string
	for _, s := range p.Steps {
		if s.Critical {
			crit = append(crit, s.Name)
		}
	}
	if got := strings.Join(crit, " "); got != "pull run copy" {
		t.Errorf("critical path %q; want pull run copy", got)
	}
}

func TestClassifyByName(t *testing.T) {
	for name, want := range map[string]Category{
		"[internal] load metadata for docker.io/library/x:1": Pull,
		"exporting to image":                  Export,
		"exporting to oci image format":       Export,
		"exporting cache to client directory": Export,
		"importing cache manifest from x":     Export,
		"[internal] load build context":       Context,
		"something else":                      Other,
	} {
		if got := classify(digest.FromString(name), name, nil); got != want {
			t.Errorf("classify(%q) = %s; want %s", name, got, want)
		}
	}
	// The definition wins over the name.
	if got := classify(digest.FromString("exporting x"), "exporting x", map[digest.Digest]Category{digest.FromString("exporting x"): Compile}); got != Compile {
		t.Errorf("definition kind ignored: %s", got)
	}
}

func TestUnion(t *testing.T) {
	iv := func(a, b float64) [2]time.Time { return [2]time.Time{*at(a), *at(b)} }
	for _, c := range []struct {
		list [][2]time.Time
		want time.Duration
	}{
		{nil, 0},
		{[][2]time.Time{iv(0, 1)}, time.Second},
		{[][2]time.Time{iv(2, 4), iv(0, 1), iv(3, 5)}, 4 * time.Second},
		{[][2]time.Time{iv(0, 10), iv(1, 2), iv(3, 4)}, 10 * time.Second},
	} {
		if got := union(c.list); got != c.want {
			t.Errorf("union(%v) = %v; want %v", c.list, got, c.want)
		}
	}
}

// Two targets sharing their pull and compile: Summarize counts the
// shared steps once, each target's export and measurement apart, and
// follows the critical path of the target that ended last.
func TestSummarize(t *testing.T) {
	r, kinds := build(t)
	a := r.Profile(t0, *at(19.5), kinds)
	// b starts 2 s later, shares the golang pull, the COPY and the RUN,
	// copies onto scratch and ends last; its export vertex has the same
	// digest as a's (one session), its measurement an ID of its own.
	rb := NewRecorder()
	rb.Add(&client.SolveStatus{Vertexes: []*client.Vertex{
		vx("docker-image://golang", 0.5, 5), vx("samples", 2.1, 2.2),
		vx("COPY a.go .", 5, 5.1, "docker-image://golang", "samples"),
		vx("RUN go build", 5.2, 15.2, "COPY a.go ."),
		vx("COPY --from=build /go/a / (scratch)", 15.3, 15.5, "RUN go build"),
		vx("exporting to image", 15.6, 16),
	}})
	rb.AddStep("measure:b", "measure the image", Measure, *at(16), *at(21))
	b := rb.Profile(*at(2), *at(21), kinds)
	s := Summarize([]Named{{"a", a}, {"b", b}, {"none", nil}})
	if !s.Started.Equal(t0) || s.Wall != 21*time.Second {
		t.Errorf("started %v, wall %v; want %v, 21s", s.Started, s.Wall, t0)
	}
	if len(s.Targets) != 2 || s.Targets[1].Queued != 2*time.Second || s.Targets[1].Wall != 19*time.Second {
		t.Fatalf("targets %+v", s.Targets)
	}
	if s.CriticalTarget != "b" {
		t.Errorf("critical target %q; want b", s.CriticalTarget)
	}
	var crit []string
	for _, c := range s.Critical {
		crit = append(crit, c.Name)
	}
	want := "docker-image://golang|COPY a.go .|RUN go build|COPY --from=build /go/a / (scratch)|exporting to image|measure the image"
	if got := strings.Join(crit, "|"); got != want {
		t.Errorf("critical path\n %s\nwant\n %s", got, want)
	}
	if c := s.Critical[0]; c.Start != 500*time.Millisecond || c.Waited != 500*time.Millisecond || c.Extract != 3*time.Second {
		t.Errorf("first link %+v", c)
	}
	if c := s.Critical[2]; c.Waited != 100*time.Millisecond || len(c.Targets) != 2 {
		t.Errorf("RUN link %+v", c)
	}
	// The longest: the shared RUN once; then the measurements, apart.
	if len(s.Steps) < 3 || s.Steps[0].Name != "RUN go build" || s.Steps[0].Running != 10*time.Second ||
		s.Steps[1].Name != "measure the image" || s.Steps[1].Running != 5*time.Second {
		t.Errorf("top steps %+v", s.Steps[:min(3, len(s.Steps))])
	}
	exports, golang := 0, 0
	for _, st := range s.Steps {
		switch st.Name {
		case "exporting to image":
			exports++
		case "docker-image://golang":
			golang++
		}
	}
	if exports != 2 || golang != 1 {
		t.Errorf("%d export steps, %d golang pulls; want 2 and 1", exports, golang)
	}
	cat := map[Category]CategoryTime{}
	for _, c := range s.Categories {
		cat[c.Category] = c
	}
	// Compile: one RUN of 10 s. Pull: the pulls (golang 4.5 s minus its
	// 3 s extraction, alpine 0.4 s, two metadata loads 0.6 s) plus the
	// extraction.
	if c := cat[Compile]; c.Steps != 1 || c.Running != 10*time.Second || c.Busy != 10*time.Second {
		t.Errorf("compile %+v", c)
	}
	if c := cat[Pull]; c.Steps != 4 || c.Running != 5500*time.Millisecond {
		t.Errorf("pull %+v", c)
	}
	if c := cat[Measure]; c.Steps != 2 || c.Running != 7*time.Second || c.Busy != 5*time.Second {
		t.Errorf("measure %+v", c)
	}
	if a := s.Targets[0].ByCategory; a[Compile] != 10*time.Second || a[Pull] != 5500*time.Millisecond {
		t.Errorf("target a by category %v", a)
	}

	var buf bytes.Buffer
	if err := s.WriteTable(&buf, 3); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"2 targets, 21.00s", "Top 3 steps", "RUN go build", "Critical path: b", "measure (cached)"} {
		if want == "measure (cached)" {
			if strings.Contains(out, want) {
				t.Errorf("a measurement shown as cached:\n%s", out)
			}
			continue
		}
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestSummarizeEmpty(t *testing.T) {
	s := Summarize(nil)
	if s.Wall != 0 || len(s.Steps) != 0 || s.CriticalTarget != "" {
		t.Errorf("%+v", s)
	}
	var buf bytes.Buffer
	if err := s.WriteTable(&buf, 10); err != nil {
		t.Fatal(err)
	}
}

// Cached steps all start and end together: the path still lists them in
// its own order, first link first.
func TestCriticalPathOrderOfCachedSteps(t *testing.T) {
	r := NewRecorder()
	cachedAt := func(name string, inputs ...string) *client.Vertex {
		v := vx(name, 1, 1, inputs...)
		v.Cached = true
		return v
	}
	// Reported last link first.
	r.Add(&client.SolveStatus{Vertexes: []*client.Vertex{
		cachedAt("c", "b"), cachedAt("b", "a"), cachedAt("a"), cachedAt("unrelated"),
	}})
	r.Add(&client.SolveStatus{Vertexes: []*client.Vertex{vx("export", 1, 2)}})
	ops := map[digest.Digest]Category{}
	for _, n := range []string{"a", "b", "c", "unrelated"} {
		ops[digest.FromString(n)] = Copy
	}
	p := r.Profile(t0, *at(2), ops)
	var names []string
	for _, s := range p.Steps {
		if s.Critical {
			names = append(names, s.Name)
		}
	}
	if got := strings.Join(names, " "); got != "a b c export" {
		t.Errorf("critical path %q; want a b c export", got)
	}
}
