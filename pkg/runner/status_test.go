package runner

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"

	"github.com/minikit/minikit/pkg/llbdefs"
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
	steps := map[digest.Digest]bool{digest.FromString("pull"): true, digest.FromString("copy"): true, digest.FromString("run"): true, digest.FromString("never seen"): true}
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
	r := llbdefs.Recipe{Name: "s", Final: llbdefs.From("docker.io/library/x:1").Copy("a.c", ".").Run("cc a.c").Workdir("/w")}
	def, err := r.Definition(context.Background(), llbdefs.DefaultSources())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(definitionSteps(def.Def)); n != 3 { // COPY, RUN, WORKDIR's mkdir
		t.Errorf("%d steps in %d definition entries; want 3", n, len(def.Def))
	}
}
