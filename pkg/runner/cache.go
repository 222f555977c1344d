package runner

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/distribution/reference"
	"github.com/gofrs/flock"
	"github.com/moby/buildkit/client"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// Cache export and import, as buildctl's --export-cache/--import-cache and
// buildx's --cache-to/--cache-from: "type=local,dest=DIR",
// "type=local,src=DIR", "type=registry,ref=REPO", "type=gha",
// "type=inline", "type=s3,...", "type=azblob,...".
//
// minikit solves every recipe in a build of its own, so one cache location
// given on the command line is shared by all of them, and each recipe gets
// its own entry in it, named after the recipe:
//
//   - local: DIR/minikit/NAME is the recipe's OCI layout (index.json,
//     tag "latest"), whose blobs directory is a link to DIR/blobs, shared
//     by every recipe (layers common to several recipes are stored once).
//     DIR/index.json lists every recipe's cache manifest, tagged NAME, so
//     DIR is also a layout buildctl can import from (tag=NAME). Why not
//     one index for all: BuildKit's client rewrites DIR/index.json at the
//     end of every build, under a lock it only tries once, with one tag
//     ("latest" by default): parallel builds into one DIR would overwrite
//     each other's entry, or fail with "could not lock index.json.lock".
//   - registry: ref=REPO[:TAG] becomes REPO:NAME (REPO:TAG-NAME).
//   - gha: scope=S becomes S-NAME (default scope "PRODUCT-NAME", PRODUCT
//     being the Product option, "runner" without it).
//   - s3, azblob: name=N becomes N-NAME (default "PRODUCT-NAME").
//   - inline: the cache travels in the image itself; nothing to name.

// cacheTypes are the cache backends BuildKit v0.34 knows.
var cacheTypes = []string{"local", "registry", "inline", "gha", "s3", "azblob"}

// localLayoutDir is the directory of a local cache holding the recipes'
// own layouts.
const localLayoutDir = "minikit"

// ParseCache parses one --cache-to (export true) or --cache-from (export
// false) value: comma-separated key=value pairs, CSV-quoted when a value
// holds a comma, with a type key. A value without any "=" is a type when
// it names one ("inline"), else a registry reference, as in buildx.
func ParseCache(s string, export bool) (client.CacheOptionsEntry, error) {
	what := "--cache-from"
	if export {
		what = "--cache-to"
	}
	e, err := parseCacheCSV(s)
	if err != nil {
		return client.CacheOptionsEntry{}, fmt.Errorf("%s %q: %w", what, s, err)
	}
	if err := validateCache(e, export); err != nil {
		return client.CacheOptionsEntry{}, fmt.Errorf("%s %q: %w", what, s, err)
	}
	return e, nil
}

func parseCacheCSV(s string) (client.CacheOptionsEntry, error) {
	e := client.CacheOptionsEntry{Attrs: map[string]string{}}
	if strings.TrimSpace(s) == "" {
		return e, errors.New("empty value")
	}
	r := csv.NewReader(strings.NewReader(s))
	r.TrimLeadingSpace = true
	fields, err := r.Read()
	if err != nil {
		return e, fmt.Errorf("not a comma-separated list: %w", err)
	}
	if _, err := r.Read(); err != io.EOF {
		return e, errors.New("more than one line: quote a value that holds a line break")
	}
	if len(fields) == 1 && !strings.Contains(fields[0], "=") {
		if slices.Contains(cacheTypes, fields[0]) {
			e.Type = fields[0]
		} else {
			e.Type, e.Attrs["ref"] = "registry", fields[0]
		}
		return e, nil
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		switch {
		case !ok || k == "":
			return e, fmt.Errorf("%q is not key=value", f)
		case k == "type":
			if e.Type != "" {
				return e, errors.New("type given twice")
			}
			e.Type = v
		default:
			if _, dup := e.Attrs[k]; dup {
				return e, fmt.Errorf("%s given twice", k)
			}
			e.Attrs[k] = v
		}
	}
	if e.Type == "" {
		return e, fmt.Errorf("no type (want type=%s)", strings.Join(cacheTypes, "|"))
	}
	return e, nil
}

func validateCache(e client.CacheOptionsEntry, export bool) error {
	if !slices.Contains(cacheTypes, e.Type) {
		return fmt.Errorf("unknown cache type %q (want %s)", e.Type, strings.Join(cacheTypes, ", "))
	}
	need := func(k string) error {
		if e.Attrs[k] == "" {
			return fmt.Errorf("type=%s needs %s=...", e.Type, k)
		}
		return nil
	}
	if v, ok := e.Attrs["mode"]; ok {
		if !export {
			return errors.New("mode applies to --cache-to only")
		}
		if v != "min" && v != "max" {
			return fmt.Errorf("mode=%s: want min or max", v)
		}
	}
	for _, k := range []string{"ignore-error", "oci-mediatypes", "image-manifest", "force-compression"} {
		if v, ok := e.Attrs[k]; ok {
			if _, err := strconv.ParseBool(v); err != nil {
				return fmt.Errorf("%s=%s: want true or false", k, v)
			}
		}
	}
	switch e.Type {
	case "local":
		if export {
			if _, ok := e.Attrs["src"]; ok {
				return errors.New("type=local exports to dest=DIR, not src")
			}
			if err := need("dest"); err != nil {
				return err
			}
		} else {
			if _, ok := e.Attrs["dest"]; ok {
				return errors.New("type=local imports from src=DIR, not dest")
			}
			if err := need("src"); err != nil {
				return err
			}
		}
		for _, k := range []string{"tag", "digest"} {
			if _, ok := e.Attrs[k]; ok {
				return fmt.Errorf("%s: minikit names each recipe's cache entry after the recipe", k)
			}
		}
		if _, ok := e.Attrs["reset"]; ok {
			// Each recipe's layout would drop the blobs the others'
			// hold (one blobs directory for all of them).
			return errors.New("reset: the recipes share the cache's blobs; empty the directory to start afresh")
		}
	case "registry":
		if err := need("ref"); err != nil {
			return err
		}
		if strings.Contains(e.Attrs["ref"], "@") {
			return errors.New("ref: a digest cannot be given; every recipe has its own tag")
		}
		if _, err := reference.ParseNormalizedNamed(recipeRef(e.Attrs["ref"], "recipe")); err != nil {
			return fmt.Errorf("ref=%s: not an image repository (REPO or REPO:TAG): %w", e.Attrs["ref"], err)
		}
	case "inline":
		if !export {
			return errors.New(`type=inline is export only: import an inline cache with type=registry,ref=IMAGE`)
		}
	}
	return nil
}

// CacheExports exports each recipe's build cache to every entry (see
// ParseCache), under a name of the recipe's own.
func CacheExports(es ...client.CacheOptionsEntry) Option {
	return func(c *config) error {
		for _, e := range es {
			if err := validateCache(e, true); err != nil {
				return fmt.Errorf("cache export %s: %w", e.Type, err)
			}
			c.cacheExports = append(c.cacheExports, cloneEntry(e))
		}
		return nil
	}
}

// CacheImports imports each recipe's build cache from every entry (see
// ParseCache), where a CacheExports of the same location put it.
func CacheImports(es ...client.CacheOptionsEntry) Option {
	return func(c *config) error {
		for _, e := range es {
			if err := validateCache(e, false); err != nil {
				return fmt.Errorf("cache import %s: %w", e.Type, err)
			}
			c.cacheImports = append(c.cacheImports, cloneEntry(e))
		}
		return nil
	}
}

func cloneEntry(e client.CacheOptionsEntry) client.CacheOptionsEntry {
	return client.CacheOptionsEntry{Type: e.Type, Attrs: maps.Clone(e.Attrs)}
}

// recipeCache returns the entries one target's build uses, each its own
// copy (BuildKit's client writes into the attributes); prefix starts the
// default gha scope and s3/azblob name.
func recipeCache(es []client.CacheOptionsEntry, name string, export bool, prefix string) []client.CacheOptionsEntry {
	var out []client.CacheOptionsEntry
	for _, e := range es {
		e = cloneEntry(e)
		if e.Attrs == nil {
			e.Attrs = map[string]string{}
		}
		switch e.Type {
		case "local":
			if export {
				e.Attrs["dest"] = localRecipeDir(e.Attrs["dest"], name)
			} else {
				dir := localRecipeDir(e.Attrs["src"], name)
				if _, err := os.Stat(filepath.Join(dir, ocispecs.ImageIndexFile)); err != nil {
					continue // nothing cached for this recipe yet
				}
				e.Attrs["src"] = dir
			}
		case "registry":
			e.Attrs["ref"] = recipeRef(e.Attrs["ref"], name)
		case "gha":
			e.Attrs["scope"] = suffixed(e.Attrs["scope"], name, prefix)
			fillGHA(e.Attrs)
		case "s3", "azblob":
			e.Attrs["name"] = suffixed(e.Attrs["name"], name, prefix)
		}
		out = append(out, e)
	}
	return out
}

func localRecipeDir(dir, name string) string { return filepath.Join(dir, localLayoutDir, name) }

func suffixed(v, name, prefix string) string {
	if v == "" {
		return prefix + "-" + name
	}
	return v + "-" + name
}

// recipeRef gives a registry reference the recipe's tag: REPO becomes
// REPO:NAME and REPO:TAG becomes REPO:TAG-NAME.
func recipeRef(ref, name string) string {
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[:colon] + ":" + truncateTag(ref[colon+1:]+"-"+name)
	}
	return ref + ":" + name
}

// truncateTag keeps a tag within the 128 characters a registry accepts,
// keeping its end (the recipe name).
func truncateTag(t string) string {
	if len(t) > 128 {
		return t[len(t)-128:]
	}
	return t
}

// fillGHA gives a gha entry the runner's cache service address and token
// when the value leaves them out, as buildx does. A workflow step sees
// them only when the job exposes them (crazy-max/ghaction-github-runtime).
func fillGHA(attrs map[string]string) {
	set := func(k, env string) {
		if attrs[k] == "" {
			if v := os.Getenv(env); v != "" {
				attrs[k] = v
			}
		}
	}
	set("token", "ACTIONS_RUNTIME_TOKEN")
	set("url", "ACTIONS_CACHE_URL")
	if os.Getenv("ACTIONS_CACHE_SERVICE_V2") != "" {
		set("url_v2", "ACTIONS_RESULTS_URL")
	}
}

// prepareLocalCaches makes the shared blobs directory of every local
// cache export, and each recipe's layout directory linking to it.
func prepareLocalCaches(es []client.CacheOptionsEntry, names []string) error {
	for _, e := range es {
		if e.Type != "local" {
			continue
		}
		dir := e.Attrs["dest"]
		if err := os.MkdirAll(filepath.Join(dir, "blobs"), 0o755); err != nil {
			return fmt.Errorf("cache export %s: %w", dir, err)
		}
		for _, n := range names {
			rd := localRecipeDir(dir, n)
			if err := os.MkdirAll(rd, 0o755); err != nil {
				return fmt.Errorf("cache export %s: %w", dir, err)
			}
			link := filepath.Join(rd, "blobs")
			target := filepath.Join("..", "..", "blobs")
			switch got, err := os.Readlink(link); {
			case err == nil && got == target:
			case errors.Is(err, os.ErrNotExist):
				if err := os.Symlink(target, link); err != nil {
					return fmt.Errorf("cache export %s: %w", dir, err)
				}
			default:
				return fmt.Errorf("cache export %s: %s should be a link to %s (a cache directory written by another tool?)", dir, link, target)
			}
		}
	}
	return nil
}

// localIndexMu serializes this process's updates of a local cache's
// top-level index; the file lock serializes them across processes.
var localIndexMu sync.Mutex

// publishLocalCache adds a recipe's cache manifest (the "latest" entry of
// its own layout) to the top-level DIR/index.json, tagged with its name.
func publishLocalCache(dir, name string) error {
	localIndexMu.Lock()
	defer localIndexMu.Unlock()
	lock := flock.New(filepath.Join(dir, localLayoutDir+".lock"))
	if err := lock.Lock(); err != nil {
		return fmt.Errorf("lock cache index in %s: %w", dir, err)
	}
	defer lock.Unlock()

	var own ocispecs.Index
	if err := readCacheJSON(filepath.Join(localRecipeDir(dir, name), ocispecs.ImageIndexFile), &own); err != nil {
		return fmt.Errorf("cache of %s: %w", name, err)
	}
	var desc *ocispecs.Descriptor
	for i, m := range own.Manifests {
		if m.Annotations[ocispecs.AnnotationRefName] == "latest" {
			desc = &own.Manifests[i]
		}
	}
	if desc == nil {
		return fmt.Errorf("cache of %s: no manifest tagged latest in %s", name, localRecipeDir(dir, name))
	}

	path := filepath.Join(dir, ocispecs.ImageIndexFile)
	idx := ocispecs.Index{MediaType: ocispecs.MediaTypeImageIndex}
	idx.SchemaVersion = 2
	if err := readCacheJSON(path, &idx); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cache index: %w", err)
	}
	entry := *desc
	entry.Annotations = maps.Clone(desc.Annotations)
	if entry.Annotations == nil {
		entry.Annotations = map[string]string{}
	}
	entry.Annotations[ocispecs.AnnotationRefName] = name
	idx.Manifests = slices.DeleteFunc(idx.Manifests, func(m ocispecs.Descriptor) bool {
		return m.Annotations[ocispecs.AnnotationRefName] == name
	})
	idx.Manifests = append(idx.Manifests, entry)
	slices.SortFunc(idx.Manifests, func(a, b ocispecs.Descriptor) int {
		return strings.Compare(a.Annotations[ocispecs.AnnotationRefName], b.Annotations[ocispecs.AnnotationRefName])
	})
	layout, err := json.Marshal(ocispecs.ImageLayout{Version: ocispecs.ImageLayoutVersion})
	if err != nil {
		return err
	}
	if err := writeCacheFile(filepath.Join(dir, ocispecs.ImageLayoutFile), layout); err != nil {
		return fmt.Errorf("cache layout: %w", err)
	}
	data, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := writeCacheFile(path, data); err != nil {
		return fmt.Errorf("cache index: %w", err)
	}
	return nil
}

func readCacheJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeCacheFile writes through a temporary file and a rename, so a
// reader never sees half a file.
func writeCacheFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// gatewayCacheImports returns the cache imports of the Solve options, as
// BuildKit's client hands them to a build function: a build function's
// own solves import nothing unless it passes them on.
func gatewayCacheImports(gw gateway.Client) ([]gateway.CacheOptionsEntry, error) {
	v := gw.BuildOpts().Opts["cache-imports"]
	if v == "" {
		return nil, nil
	}
	var es []struct {
		Type  string            `json:"Type"`
		Attrs map[string]string `json:"Attrs"`
	}
	if err := json.Unmarshal([]byte(v), &es); err != nil {
		return nil, fmt.Errorf("cache imports: %w", err)
	}
	out := make([]gateway.CacheOptionsEntry, len(es))
	for i, e := range es {
		out[i] = gateway.CacheOptionsEntry{Type: e.Type, Attrs: e.Attrs}
	}
	return out, nil
}
