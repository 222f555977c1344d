package measure

import (
	"archive/tar"
	"bytes"
	"testing"
)

// A raw tar entry, for the cases tfile does not cover (hard links, fifos,
// an entry repeated in one layer).
type rawEntry struct {
	name string
	typ  byte
	size int
	link string
}

func rawTar(t *testing.T, entries ...rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(e.size), Linkname: e.link, Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if e.typ == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(bytes.Repeat([]byte{'x'}, e.size)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Docker's size counts, per layer as unpacked on its own, regular files
// and symbolic links' targets, each inode once, whatever later layers
// shadow; never directories, whiteouts, fifos or tar headers.
func TestDockerSize(t *testing.T) {
	l0 := rawTar(t,
		rawEntry{name: "d/", typ: tar.TypeDir},
		rawEntry{name: "d/a", typ: tar.TypeReg, size: 100},
		rawEntry{name: "d/l", typ: tar.TypeSymlink, link: "a"},          // 1
		rawEntry{name: "d/h", typ: tar.TypeLink, link: "d/a"},           // the same inode: 0
		rawEntry{name: "big", typ: tar.TypeReg, size: 5000},             // removed by layer 1: still counted
		rawEntry{name: "abs", typ: tar.TypeSymlink, link: "/usr/lib/x"}, // 10
		rawEntry{name: "dup", typ: tar.TypeReg, size: 30},               // replaced in this layer: gone
		rawEntry{name: "dup", typ: tar.TypeReg, size: 40},               // 40
		rawEntry{name: "zero", typ: tar.TypeReg},                        // 0
		rawEntry{name: "fifo", typ: tar.TypeFifo},                       // 0
		rawEntry{name: "t", typ: tar.TypeReg, size: 20},                 // kept alive by u
		rawEntry{name: "u", typ: tar.TypeLink, link: "t"},               // 20, once
		rawEntry{name: "t", typ: tar.TypeReg, size: 25},                 // a new inode: 25
		rawEntry{name: "d/", typ: tar.TypeDir},                          // a directory over a directory: merged
	)
	const want0 = 100 + 1 + 5000 + 10 + 40 + 20 + 25
	l1 := rawTar(t,
		rawEntry{name: ".wh.big", typ: tar.TypeReg},            // a 0/0 device: 0
		rawEntry{name: "d/.wh..wh..opq", typ: tar.TypeReg},     // an xattr: 0
		rawEntry{name: "d/a", typ: tar.TypeReg, size: 7},       // 7
		rawEntry{name: "s", typ: tar.TypeSymlink, link: "big"}, // 3
		rawEntry{name: "e/", typ: tar.TypeDir},
		rawEntry{name: "e/x", typ: tar.TypeReg, size: 11}, // removed with its directory below
		rawEntry{name: "e", typ: tar.TypeReg, size: 2},    // 2
	)
	const want1 = 7 + 3 + 2
	img := ggcrImage(t, ggcrLayer(t, l0), ggcrLayer(t, l1))
	files := layoutFiles(t, writeLayout(t, img))
	got, err := FromOCITar(bytes.NewReader(tarOf(t, files, blobsFirst(files))))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Layers) != 2 || got.Layers[0].DockerSize != want0 || got.Layers[1].DockerSize != want1 {
		t.Fatalf("layers' docker sizes %+v, want %d and %d", got.Layers, want0, want1)
	}
	if got.DockerSize != want0+want1 {
		t.Errorf("docker size %d, want %d", got.DockerSize, want0+want1)
	}
	if got.DockerSize == got.Uncompressed || got.DockerSize == got.FileBytes {
		t.Errorf("docker size %d equals another figure (uncompressed %d, file bytes %d)", got.DockerSize, got.Uncompressed, got.FileBytes)
	}
}
