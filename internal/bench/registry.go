package bench

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minikit/minikit/internal/standin"
)

// pipIndexes returns, by image name, the package index each stand-in of
// the OCI layout at dir names in its labels (standin.LabelPipIndex): the
// python stand-ins' pip looks there. An image given as an index (one
// manifest per platform) is read through its manifests. Unreadable parts
// are skipped: the answer only decides a port and a warning.
func pipIndexes(dir string) map[string]string {
	out := map[string]string{}
	var idx ocispecs.Index
	if !readJSON(filepath.Join(dir, "index.json"), &idx) {
		return out
	}
	for _, d := range idx.Manifests {
		name := d.Annotations[ocispecs.AnnotationRefName]
		if name == "" {
			continue
		}
		if u := pipIndex(dir, d, 0); u != "" {
			out[name] = u
		}
	}
	return out
}

// pipIndex is the package index label of the image d describes (a
// manifest, or an index of them, at most a few levels deep), "" for none.
func pipIndex(dir string, d ocispecs.Descriptor, depth int) string {
	// Manifests and indexes both fit in this (OCI's fields, no overlap).
	var m struct {
		Config    ocispecs.Descriptor   `json:"config"`
		Manifests []ocispecs.Descriptor `json:"manifests"`
	}
	if depth > 3 || !readJSON(blobPath(dir, d), &m) {
		return ""
	}
	for _, sub := range m.Manifests {
		if u := pipIndex(dir, sub, depth+1); u != "" {
			return u
		}
	}
	var cfg ocispecs.Image
	if m.Config.Digest == "" || !readJSON(blobPath(dir, m.Config), &cfg) {
		return ""
	}
	return cfg.Config.Labels[standin.LabelPipIndex]
}

// blobPath is where the layout at dir keeps d's blob; "" for a descriptor
// without a valid digest.
func blobPath(dir string, d ocispecs.Descriptor) string {
	if d.Digest.Validate() != nil {
		return ""
	}
	return filepath.Join(dir, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded())
}

// readJSON decodes the JSON file at path into v, reporting success.
func readJSON(path string, v any) bool {
	if path == "" {
		return false
	}
	dt, err := os.ReadFile(path)
	return err == nil && json.Unmarshal(dt, v) == nil
}

// indexHost is the host:port of a package index URL, "" if it has none.
func indexHost(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Port() == "" {
		return ""
	}
	return p.Host
}

// registryAddr picks the bench's registry address: the loopback address
// of the stand-ins' package index when nothing listens there (the bench's
// registry then serves it to pip), else a free port.
func registryAddr(standIns string) (string, error) {
	var hosts []string
	for _, u := range pipIndexes(standIns) {
		if h := indexHost(u); h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	slices.Sort(hosts)
	for _, h := range hosts {
		if host, _, _ := strings.Cut(h, ":"); host != "127.0.0.1" && host != "localhost" {
			continue
		}
		if l, err := net.Listen("tcp", h); err == nil {
			l.Close()
			return h, nil
		}
	}
	return freePort()
}
