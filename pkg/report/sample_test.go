package report

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/minikit/minikit/pkg/measure"
	"github.com/minikit/minikit/pkg/timings"
)

// sampleImage is a plausible measured image: base layers of base bytes
// and one added layer, every field filled.
func sampleImage(name string, base, added int64) *measure.Image {
	img := &measure.Image{
		ManifestDigest: fakeDigest("manifest " + name),
		ConfigDigest:   fakeDigest("config " + name),
		MediaType:      "application/vnd.oci.image.manifest.v1+json",
		Platform:       "linux/amd64",
		BaseKnown:      true,
	}
	add := func(size int64, fromBase bool, createdBy string) {
		l := measure.Layer{
			Index: len(img.Layers), Digest: fakeDigest(fmt.Sprint(name, len(img.Layers))), DiffID: fakeDigest(fmt.Sprint("diff", name, len(img.Layers))),
			MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Compressed: size * 4 / 10, Uncompressed: size,
			Entries: 12, Files: 9, FileBytes: size - 6000, DockerSize: size - 5000, FromBase: fromBase, CreatedBy: createdBy,
		}
		img.Layers = append(img.Layers, l)
		img.Compressed += l.Compressed
		img.Uncompressed += l.Uncompressed
		img.DockerSize += l.DockerSize
		if fromBase {
			img.BaseLayers++
			img.BaseCompressed += l.Compressed
			img.BaseUncompressed += l.Uncompressed
		} else {
			img.AddedCompressed += l.Compressed
			img.AddedUncompressed += l.Uncompressed
		}
		img.Files += l.Files
		img.FileBytes += l.FileBytes
	}
	if base > 0 {
		add(base*2/3, true, "debootstrap --variant=minbase bookworm")
		add(base-base*2/3, true, "apt-get install -y --no-install-recommends ca-certificates")
	}
	add(added, false, "COPY --from=build /out/hello /hello")
	img.Largest = []measure.File{
		{Path: "/hello", Size: added * 9 / 10, Layer: len(img.Layers) - 1},
		{Path: "/usr/lib/x86_64-linux-gnu/libc.so.6", Size: 1_922_136, Layer: 0},
	}
	img.WastedBytes, img.WastedFiles = 753157, 2
	img.Wasted = []measure.File{
		{Path: "/var/cache/debconf/templates.dat", Size: 700000, Layer: 0, ShadowedBy: 1},
		{Path: "/var/lib/dpkg/status-old", Size: 53157, Layer: 0, ShadowedBy: 1, Removed: true},
	}
	return img
}

func fakeDigest(s string) string {
	var h uint64 = 1469598103934665603
	for _, c := range s {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return fmt.Sprintf("sha256:%016x%016x%016x%016x", h, h*3, h*5, h*7)
}

// sampleReport has twenty built recipes from about 20 kB to about 1 GB,
// over four programs, two failing builds and one skipped recipe.
func sampleReport() *Report {
	rep := &Report{
		Generated: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC),
		Machine:   "test machine, 8 CPUs, BuildKit v0.34.2",
		StandIns:  true,
	}
	epoch := int64(1795783356)
	rep.SourceDateEpoch, rep.EpochSource, rep.RewriteTimestamp = &epoch, "git log -- samples", true
	rep.TestServer = "https://127.0.0.1:43211/"
	programs := []string{"hello-c", "hello-go", "hello-rust", "hello-python"}
	runs := []struct{ image, suffix string }{
		{"", "scratch"}, {"alpine:3.22", "alpine"}, {"busybox:1.37-glibc", "busybox-glibc"},
		{"debian:bookworm", "debian"}, {"python:3.11-bookworm", "python"},
	}
	for i := 0; i < 20; i++ {
		prog := programs[i%len(programs)]
		run := runs[i/len(programs)]
		// Sizes from 20 kB to 1 GB, evenly on the log scale.
		total := int64(20_000 * math.Pow(50_000, float64(i)/19))
		added := total
		var base int64
		if run.image != "" {
			added = total / 5
			base = total - added
		}
		r := Recipe{
			Name: prog + ".build." + run.suffix, Program: prog,
			BuildImage: "gcc:12-bookworm", RunImage: run.image, Status: StatusOK, Expect: "0",
			StandIn: i%3 == 0, Image: sampleImage(prog+run.suffix, base, added),
			ImageName:  "docker.io/library/minikit:" + prog + ".build." + run.suffix,
			Run:        &RunOutcome{ExitCode: 0, Expected: true},
			DurationMS: int64(400 + 100*i), Vertices: 3, CachedVertices: i % 4,
		}
		if r.RunImage == "" {
			r.RunImage = "scratch"
		}
		if r.StandIn {
			r.StandInImages = []string{"docker.io/library/" + r.BuildImage}
		}
		switch i {
		case 5:
			r.Run = &RunOutcome{ExitCode: 127, Expected: true, Reason: "exec /hello: no such file or directory (no dynamic loader)"}
			r.Expect = "127"
		case 9:
			r.Run = &RunOutcome{ExitCode: 1, Expected: false, Reason: "ModuleNotFoundError: No module named 'yaml'",
				Kind: "exit", Want: "0", Network: "none", TimedOut: false, DurationMS: 41,
				StdoutTail: []string{"starting"}, StderrTail: []string{"Traceback (most recent call last):", "ModuleNotFoundError: No module named 'yaml'"}}
		case 11:
			r.Run = &RunOutcome{ExitCode: -1, Expected: false, Reason: "timeout: still running after 30s, killed",
				Kind: "timeout", Want: "0", Network: "host", TimedOut: true, DurationMS: 30012}
		case 10:
			r.StandIn, r.StandInDiffers = true, "a glibc build stands in for the musl one"
		case 12:
			r.Budget = total / 2
		case 13:
			r.Budget = total * 2
			r.Builder, r.RetriedFrom = "tcp://10.0.0.2:1234", []string{"tcp://10.0.0.3:1234"}
		case 14:
			r.Timings = &timings.Profile{Started: time.Date(2026, 3, 14, 15, 9, 20, 0, time.UTC), WallMS: 5210, Steps: []timings.Step{
				{ID: "sha256:" + strings.Repeat("1", 64), Name: "docker-image://docker.io/library/gcc:12-bookworm", Category: timings.Pull,
					StartMS: 12, RunningMS: 2100, ExtractMS: 1800, Critical: true},
				{ID: "sha256:" + strings.Repeat("2", 64), Name: "[gcc:12-bookworm] WORKDIR /src", Category: timings.Copy, Cached: true, StartMS: 15},
				{ID: "sha256:" + strings.Repeat("3", 64), Name: "[gcc:12-bookworm] RUN gcc -o hello hello.c", Category: timings.Compile,
					StartMS: 2120, RunningMS: 2500, Critical: true},
				{ID: "sha256:" + strings.Repeat("4", 64), Name: "exporting to image", Category: timings.Export, StartMS: 4630, RunningMS: 580,
					Critical: true, Incomplete: true},
			}}
		}
		rep.Recipes = append(rep.Recipes, r)
	}
	rep.Recipes = append(rep.Recipes,
		Recipe{Name: "hello-java.openjdk.scratch", Program: "hello-java", BuildImage: "openjdk:21", RunImage: "scratch",
			Status: StatusExpectedFailure, Expect: "build", Error: "process \"javac Hello.java\" did not complete successfully: exit code: 127\n/bin/sh: javac: not found"},
		Recipe{Name: "hello-go.golang.distroless", Program: "hello-go", BuildImage: "golang:1.26-bookworm", RunImage: "gcr.io/distroless/static",
			Status: StatusFailed, Expect: "0", FailedVertex: "[internal] load metadata for gcr.io/distroless/static", Error: "failed to resolve source metadata for gcr.io/distroless/static: " + strings.Repeat("dial tcp: lookup gcr.io: no such host ", 3)},
		Recipe{Name: "pyyaml.pip.alpine", Program: "pyyaml", BuildImage: "python:3.11-alpine", RunImage: "alpine:3.22",
			Status: StatusSkipped, Expect: "0", Error: "upstream only: pip on python:alpine wants a musl build of PyYAML"},
	)
	// The smallest hello-c image is an extra recipe, and the floor.
	rep.Recipes[0].Extra = true
	rep.Ranking = Rank(rep.Recipes, map[string]string{"hello-c": rep.Recipes[0].Name})
	return rep
}
