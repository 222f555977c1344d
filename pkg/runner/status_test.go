package runner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"

	"github.com/minikit/minikit/pkg/timings"
)

func vtx(name string, mods ...func(*client.Vertex)) *client.Vertex {
	v := &client.Vertex{Digest: digest.FromString(name), Name: name}
	for _, m := range mods {
		m(v)
	}
	return v
}

func cached(v *client.Vertex)                { v.Cached = true }
func failed(msg string) func(*client.Vertex) { return func(v *client.Vertex) { v.Error = msg } }

func TestTrackerCounts(t *testing.T) {
	tr := newTracker()
	// A step is reported when it starts and again when it completes.
	tr.add(&client.SolveStatus{Vertexes: []*client.Vertex{vtx("pull"), vtx("copy"), vtx("run")}})
	tr.add(&client.SolveStatus{Vertexes: []*client.Vertex{vtx("pull", cached), vtx("copy", cached), vtx("run")}})
	tr.add(&client.SolveStatus{Vertexes: []*client.Vertex{vtx("exporting to image")}})
	if total, c := tr.counts(nil); total != 4 || c != 2 {
		t.Errorf("counts(all) = %d, %d; want 4, 2", total, c)
	}
	steps := stepKinds{digest.FromString("pull"): {}, digest.FromString("copy"): {}, digest.FromString("run"): {}, digest.FromString("never seen"): {},
		digest.FromString("a source"): {source: true}}
	if total, c := tr.counts(steps); total != 3 || c != 2 {
		t.Errorf("counts(steps) = %d, %d; want 3, 2", total, c)
	}
	if name, _ := tr.failure(); name != "" {
		t.Errorf("failure = %q with no failed step", name)
	}
}

func TestTrackerFailure(t *testing.T) {
	tr := newTracker()
	run := vtx("[gcc] RUN make")
	other := vtx("[alpine] RUN apk add")
	tr.add(&client.SolveStatus{Vertexes: []*client.Vertex{run, other}})
	for i := range 30 {
		tr.add(&client.SolveStatus{Logs: []*client.VertexLog{{Vertex: run.Digest, Data: fmt.Appendf(nil, "line %d\r\n", i)}}})
	}
	tr.add(&client.SolveStatus{Logs: []*client.VertexLog{{Vertex: run.Digest, Data: []byte("make: *** [all] Err")}}})
	tr.add(&client.SolveStatus{Logs: []*client.VertexLog{{Vertex: run.Digest, Data: []byte("or 2\nno newline")}}})
	// A cancellation of another step first, then the real failure, then
	// the steps canceled because of it.
	tr.add(&client.SolveStatus{Vertexes: []*client.Vertex{vtx("[alpine] RUN apk add", failed("context canceled"))}})
	tr.add(&client.SolveStatus{Vertexes: []*client.Vertex{vtx("[gcc] RUN make", failed(`process "/bin/sh -c make" did not complete successfully: exit code: 2`))}})
	tr.add(&client.SolveStatus{Vertexes: []*client.Vertex{vtx("late", failed("canceled"))}})
	name, log := tr.failure()
	if name != "[gcc] RUN make" {
		t.Fatalf("failed step %q", name)
	}
	if len(log) != logTail {
		t.Fatalf("%d log lines; want %d: %q", len(log), logTail, log)
	}
	want := []string{"line 29", "make: *** [all] Error 2", "no newline"}
	if got := log[len(log)-3:]; !slices.Equal(got, want) {
		t.Errorf("log ends %q; want %q", got, want)
	}
}

func TestTrackerOnlyCancellations(t *testing.T) {
	tr := newTracker()
	tr.add(&client.SolveStatus{Vertexes: []*client.Vertex{vtx("a", failed("context canceled")), vtx("b", failed("grpc: the client connection is closing: context canceled"))}})
	if name, _ := tr.failure(); name != "" {
		t.Errorf("failure = %q; cancellations are not failures", name)
	}
}

func TestIsCancellation(t *testing.T) {
	for msg, want := range map[string]bool{
		"context canceled":            true,
		"canceled":                    true,
		"rpc error: context canceled": true,
		"exit code: 1":                false,
		"failed to compute cache key: \"/nope\": not found": false,
	} {
		if isCancellation(msg) != want {
			t.Errorf("isCancellation(%q) = %v", msg, !want)
		}
	}
}

func TestLabelExport(t *testing.T) {
	shared := vtx("[scratch] COPY hello.c /")
	export := vtx("exporting to image")
	ss := &client.SolveStatus{Vertexes: []*client.Vertex{shared, export}}
	labelExport(ss, "t.ok")
	if ss.Vertexes[0].Name != "[scratch] COPY hello.c /" || ss.Vertexes[1].Name != "[t.ok] exporting to image" {
		t.Errorf("names %q, %q", ss.Vertexes[0].Name, ss.Vertexes[1].Name)
	}
	if export.Name != "exporting to image" {
		t.Error("labelExport changed the vertex in place")
	}
}

func TestDefinitionSteps(t *testing.T) {
	st := from("docker.io/library/x:1").copy("a.c", ".").run("cc a.c").workdir("/w").state(BuildInput{Platform: amd64})
	def, err := st.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	kinds := definitionSteps(def.Def)
	var steps, sources []timings.Category
	for d, k := range kinds {
		if k.source {
			sources = append(sources, k.cat)
		} else if kinds.isStep(d) {
			steps = append(steps, k.cat)
		}
	}
	slices.Sort(steps)
	// COPY, RUN, WORKDIR's mkdir; the image and the local source.
	if want := []timings.Category{timings.Compile, timings.Copy, timings.Copy}; !slices.Equal(steps, want) {
		t.Errorf("steps %v in %d definition entries; want %v", steps, len(def.Def), want)
	}
	slices.Sort(sources)
	if want := []timings.Category{timings.Context, timings.Pull}; !slices.Equal(sources, want) {
		t.Errorf("sources %v; want %v", sources, want)
	}
}

// The tracker records each step's times for the target's profile, with
// the categories of the target's definition and the measurement.
func TestTrackerProfile(t *testing.T) {
	st := from("docker.io/library/x:1").copy("a.c", ".").run("cc a.c").state(BuildInput{Platform: amd64})
	def, err := st.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	kinds := definitionSteps(def.Def)
	start := time.Now()
	ts := func(d time.Duration) *time.Time { x := start.Add(d); return &x }
	tr := newTracker()
	var ss client.SolveStatus
	for d, k := range kinds {
		v := &client.Vertex{Digest: d, Name: string(k.cat), Started: ts(time.Second), Completed: ts(2 * time.Second)}
		ss.Vertexes = append(ss.Vertexes, v)
	}
	ss.Vertexes = append(ss.Vertexes, &client.Vertex{Digest: digest.FromString("export"), Name: "exporting to image",
		Started: ts(3 * time.Second), Completed: ts(4 * time.Second)})
	tr.add(&ss)
	tr.measured("t", start.Add(4*time.Second))
	p := tr.profile(start, kinds)
	got := map[timings.Category]int{}
	for _, s := range p.Steps {
		got[s.Category]++
		if s.Category == timings.Export && (s.StartMS != 3000 || s.RunningMS != 1000) {
			t.Errorf("export step %+v", s)
		}
	}
	want := map[timings.Category]int{timings.Pull: 1, timings.Context: 1, timings.Copy: 1, timings.Compile: 1, timings.Export: 1, timings.Measure: 1}
	if !maps.Equal(got, want) {
		t.Errorf("categories %v; want %v", got, want)
	}
	if p.WallMS < 4000 {
		t.Errorf("wall %d ms; the measurement ended 4 s after the start", p.WallMS)
	}
	// Without a definition (a build that failed before marshalling its
	// graph), steps are classified by name.
	if p := newTracker().profile(start, nil); p == nil || len(p.Steps) != 0 {
		t.Errorf("empty profile %+v", p)
	}
}
