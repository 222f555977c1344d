package measure

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func measureGGCR(t *testing.T, img v1.Image) *Image {
	t.Helper()
	files := layoutFiles(t, writeLayout(t, img))
	got, err := FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func overwriteImage(t *testing.T) v1.Image {
	l0 := tarBytes(t,
		tfile{name: "a", size: 100},
		tfile{name: "b", size: 50},
		tfile{name: "d/", dir: true},
		tfile{name: "d/x", size: 10},
	)
	l1 := tarBytes(t,
		tfile{name: "a", size: 30}, // a second copy of /a
		tfile{name: ".wh.d"},       // removes a directory: counts its 10 bytes
	)
	return ggcrImage(t, ggcrLayer(t, l0), ggcrLayer(t, l1))
}

func missingWhiteoutImage(t *testing.T) v1.Image {
	l0 := tarBytes(t, tfile{name: "a", size: 100}, tfile{name: "k", size: 40})
	l1 := tarBytes(t,
		tfile{name: ".wh.a"},       // first in name order: counted, 0 (a file)
		tfile{name: ".wh.missing"}, // second: dive stops here
		tfile{name: "k", size: 7},  // never counted by dive
	)
	return ggcrImage(t, ggcrLayer(t, l0), ggcrLayer(t, l1))
}

// dive's figures on images small enough to work out by hand.
func TestDiveFiguresByHand(t *testing.T) {
	t.Run("overwrite and directory whiteout", func(t *testing.T) {
		got := measureGGCR(t, overwriteImage(t))
		// Paths: /a copies 100 and 30; /b 50; /d/x 10; /d (the whiteout)
		// 10. Only /a has two copies: dive wastes both.
		if got.DiveWastedBytes != 130 {
			t.Errorf("dive wasted %d, want 130", got.DiveWastedBytes)
		}
		if want := float64(30+50+10+10) / float64(130+50+10+10); got.DiveEfficiency != want {
			t.Errorf("dive efficiency %v, want %v", got.DiveEfficiency, want)
		}
		if want := 130.0 / 30.0; got.DiveUserWastedRatio != want {
			t.Errorf("dive user wasted ratio %v, want %v", got.DiveUserWastedRatio, want)
		}
		// minikit counts the hidden copies only: the old /a, and /d/x.
		if got.WastedBytes != 110 {
			t.Errorf("wasted %d, want 110", got.WastedBytes)
		}
	})
	t.Run("whiteout of a missing path ends the layer's walk", func(t *testing.T) {
		got := measureGGCR(t, missingWhiteoutImage(t))
		// /a: copies 100 and 0; /k: 40 only; /missing: in dive's table
		// with no copy and a smallest size of -1.
		if got.DiveWastedBytes != 100 {
			t.Errorf("dive wasted %d, want 100", got.DiveWastedBytes)
		}
		if want := float64(0+40-1) / float64(100+40); got.DiveEfficiency != want {
			t.Errorf("dive efficiency %v, want %v", got.DiveEfficiency, want)
		}
		if got.WastedBytes != 140 {
			t.Errorf("wasted %d, want 140 (the removed /a and the overwritten /k)", got.WastedBytes)
		}
	})
	t.Run("one layer", func(t *testing.T) {
		got := measureGGCR(t, ggcrImage(t, ggcrLayer(t, tarBytes(t, tfile{name: "a", size: 5}))))
		if got.DiveWastedBytes != 0 || got.DiveEfficiency != 1 || got.DiveUserWastedRatio != 0 {
			t.Errorf("dive figures %d %v %v, want 0 1 0", got.DiveWastedBytes, got.DiveEfficiency, got.DiveUserWastedRatio)
		}
	})
}

// diveBinary finds dive: $DIVE, else on PATH. Outside CI a missing dive
// skips the test; in CI (CI=true) it fails it, since scripts/setup
// installs dive there.
func diveBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DIVE"); p != "" {
		return p
	}
	p, err := exec.LookPath("dive")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("dive is not installed (scripts/setup installs it): %v", err)
	}
	t.Skip("dive is not installed (go install github.com/wagoodman/dive@v0.13.1, or set DIVE): skipping the comparison with dive's own figures")
	return ""
}

// DiveReport is the part of `dive --json FILE` that this package
// reproduces.
type diveReport struct {
	Image struct {
		SizeBytes        uint64  `json:"sizeBytes"`
		InefficientBytes uint64  `json:"inefficientBytes"`
		EfficiencyScore  float64 `json:"efficiencyScore"`
	} `json:"image"`
}

// runDive runs dive on a docker tarball and returns its report.
func runDive(t *testing.T, dive, archive string) diveReport {
	t.Helper()
	out := filepath.Join(t.TempDir(), "dive.json")
	cmd := exec.Command(dive, "--json", out, "docker-archive://"+archive)
	cmd.Dir = t.TempDir() // no .dive-ci of ours
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dive: %v\n%s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("DIVE_DEBUG") != "" {
		var v map[string]any
		_ = json.Unmarshal(data, &v)
		b, _ := json.MarshalIndent(v["image"], "", " ")
		t.Logf("%s", b)
	}
	var rep diveReport
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("dive's JSON: %v\n%s", err, data)
	}
	return rep
}

// The figures match dive's own on images with every quirk dive has.
func TestDiveFiguresMatchDive(t *testing.T) {
	dive := diveBinary(t)
	images := map[string]v1.Image{
		"whiteouts, opaque directory, replaced kinds": func() v1.Image {
			l0 := tarBytes(t,
				tfile{name: "a", size: 100},
				tfile{name: "d/", dir: true},
				tfile{name: "d/x", size: 200},
				tfile{name: "d/y", size: 300},
				tfile{name: "keep", size: 50},
				tfile{name: "e/", dir: true},
				tfile{name: "e/f", size: 7},
				tfile{name: "big", size: 5000},
			)
			l1 := tarBytes(t,
				tfile{name: ".wh.a"},
				tfile{name: "keep", size: 70},
				tfile{name: "d/.wh..wh..opq"},
				tfile{name: "d/z", size: 10},
				tfile{name: "e", size: 3},
				tfile{name: ".wh.missing"},
				tfile{name: "big/inner", size: 1},
			)
			l2 := tarBytes(t, tfile{name: ".wh.keep"})
			return ggcrImage(t, ggcrLayer(t, l0), ggcrLayer(t, l1), ggcrLayer(t, l2))
		}(),
		"directory whiteouts, links, duplicates in a layer": func() v1.Image {
			l0 := tarBytes(t,
				tfile{name: "usr/", dir: true},
				tfile{name: "usr/lib/", dir: true},
				tfile{name: "usr/lib/one", size: 1000},
				tfile{name: "usr/lib/two", size: 2000},
				tfile{name: "usr/lib/sub/three", size: 3000},
				tfile{name: "etc/", dir: true},
				tfile{name: "etc/conf", size: 10},
				tfile{name: "link", symlink: "usr/lib/one"},
				tfile{name: "empty/", dir: true},
			)
			l1 := rawTar(t,
				rawEntry{name: "usr/.wh.lib", typ: tar.TypeReg},
				rawEntry{name: "etc/conf", typ: tar.TypeReg, size: 20},
				rawEntry{name: "etc/conf", typ: tar.TypeReg, size: 25}, // twice in one layer
				rawEntry{name: "hard", typ: tar.TypeLink, link: "etc/conf"},
				rawEntry{name: "empty/", typ: tar.TypeDir},
			)
			l2 := rawTar(t,
				rawEntry{name: "usr/lib/one", typ: tar.TypeReg, size: 5},
				rawEntry{name: ".wh.etc", typ: tar.TypeReg},
				rawEntry{name: "link", typ: tar.TypeReg, size: 9},
			)
			return ggcrImage(t, ggcrLayer(t, l0), ggcrLayer(t, l1), ggcrLayer(t, l2))
		}(),
		"random layers and the cache test's image": cacheImage(t),
		"overwrite and directory whiteout":         overwriteImage(t),
		"whiteout of a missing path":               missingWhiteoutImage(t),
	}
	for label, img := range images {
		t.Run(label, func(t *testing.T) {
			archive := filepath.Join(t.TempDir(), "image.docker.tar")
			ref, err := name.ParseReference("minikit.test/dive:latest")
			if err != nil {
				t.Fatal(err)
			}
			if err := tarball.WriteToFile(archive, ref, img); err != nil {
				t.Fatal(err)
			}
			got := measureGGCR(t, img)
			rep := runDive(t, dive, archive)
			if uint64(got.DiveWastedBytes) != rep.Image.InefficientBytes {
				t.Errorf("dive_wasted_bytes %d, dive says %d", got.DiveWastedBytes, rep.Image.InefficientBytes)
			}
			if got.DiveEfficiency != rep.Image.EfficiencyScore {
				t.Errorf("dive_efficiency %v, dive says %v", got.DiveEfficiency, rep.Image.EfficiencyScore)
			}
		})
	}
}
