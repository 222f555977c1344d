package runner

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestSourceDateEpoch(t *testing.T) {
	c := &config{}
	entries := []client.ExportEntry{{Type: client.ExporterOCI, Attrs: map[string]string{"name": "x"}}, {Type: client.ExporterImage}}
	c.stampEpoch(entries)
	if len(entries[0].Attrs) != 1 || entries[1].Attrs != nil {
		t.Errorf("no epoch: attrs changed: %v", entries)
	}
	if err := SourceDateEpoch(time.Unix(1700000000, 500))(c); err != nil {
		t.Fatal(err)
	}
	c.stampEpoch(entries)
	for _, e := range entries {
		if e.Attrs["source-date-epoch"] != "1700000000" {
			t.Errorf("%s: attrs %v", e.Type, e.Attrs)
		}
		if _, ok := e.Attrs["rewrite-timestamp"]; ok {
			t.Errorf("%s: rewrite-timestamp without RewriteTimestamp: %v", e.Type, e.Attrs)
		}
	}
	if err := RewriteTimestamp(true)(c); err != nil {
		t.Fatal(err)
	}
	c.stampEpoch(entries)
	for _, e := range entries {
		if e.Attrs["rewrite-timestamp"] != "true" {
			t.Errorf("%s: RewriteTimestamp: attrs %v", e.Type, e.Attrs)
		}
	}
	if entries[0].Attrs["name"] != "x" {
		t.Error("other attrs lost")
	}
	if err := SourceDateEpoch(time.Time{})(c); err == nil {
		t.Error("zero time accepted")
	}
	if err := SourceDateEpoch(time.Unix(-1, 0))(c); err == nil {
		t.Error("time before 1970 accepted")
	}
	if err := SourceDateEpoch(time.Unix(0, 0))(c); err != nil || c.epoch.Unix() != 0 {
		t.Errorf("unix 0: %v", err)
	}
}

func TestMarkBaseLayers(t *testing.T) {
	out := gateway.NewResult()
	if err := markBaseLayers(out, ocispecs.Image{}, ""); err != nil || len(out.Metadata) != 0 {
		t.Fatalf("scratch: %v, metadata %v", err, out.Metadata)
	}
	base := ocispecs.Image{RootFS: ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString("a"), digest.FromString("b")}},
		History: []ocispecs.History{{CreatedBy: "base"}}}
	if err := markBaseLayers(out, base, ""); err != nil {
		t.Fatal(err)
	}
	// What the exporter reads (writer.go): the base's diff IDs and history.
	var got dockerspec.DockerOCIImage
	if err := json.Unmarshal(out.Metadata[exptypes.ExporterImageBaseConfigKey], &got); err != nil {
		t.Fatalf("%s: %v", exptypes.ExporterImageBaseConfigKey, err)
	}
	if !slices.Equal(got.RootFS.DiffIDs, base.RootFS.DiffIDs) || len(got.History) != 1 || got.History[0].CreatedBy != "base" {
		t.Errorf("base config read back: %+v", got)
	}
}

// The build function marks the run image's layers (markBaseLayers), so
// that the default epoch rewrites only the layers a target adds; a scratch
// target has none to mark.
func TestBuildMarksBaseLayers(t *testing.T) {
	const build, run = "docker.io/library/golang:x", "docker.io/library/debian:x"
	runImg := ocispecs.Image{RootFS: ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString("debian")}}}
	gw := &fakeGateway{configs: map[string]ocispecs.Image{build: {}, run: runImg}, resolved: map[string]int{}}
	stage := from(build).copy("hello.go", ".").run("go build hello.go")
	for _, c := range []struct {
		final tstage
		want  []digest.Digest
	}{
		{from(run).copyFrom(stage, "/hello", "."), runImg.RootFS.DiffIDs},
		{scratch().copyFrom(stage, "/hello", "/"), nil},
	} {
		tg := target("b", Source{Name: testSourceName}, c.final, ImageConfig{Cmd: argv("/hello")}, build)
		res, err := (&solver{cfg: &config{}, configs: newConfigStore()}).build(context.Background(), gw, tg, one(amd64), newBuilt(1), true)
		if err != nil {
			t.Fatal(err)
		}
		dt, ok := res.Metadata[exptypes.ExporterImageBaseConfigKey]
		if c.want == nil {
			if ok {
				t.Errorf("scratch: base config %s", dt)
			}
			continue
		}
		var got ocispecs.Image
		if err := json.Unmarshal(dt, &got); err != nil || !slices.Equal(got.RootFS.DiffIDs, c.want) {
			t.Errorf("run image %s: base config %q (%v): want its diff IDs %v (solve.go's build must call markBaseLayers)", run, dt, err, c.want)
		}
	}
}
