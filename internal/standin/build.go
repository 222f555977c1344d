package standin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/minikit/minikit/internal/paths"
	"github.com/minikit/minikit/internal/pyindex"
	"github.com/minikit/minikit/internal/tlsca"
)

// Option configures Build.
type Option func(*options)

type options struct {
	only      []string
	progress  io.Writer
	workDir   string
	testCA    *tlsca.CA
	indexURL  string
	platforms []Platform
}

// Platforms sets the platforms Build builds the stand-ins for (default
// DefaultPlatform, linux/amd64): each stand-in is built for those of them
// its Spec.Platforms lists. Under one name, the images of several
// platforms form an OCI image index; a stand-in built for linux/amd64
// alone stays a plain image manifest, as it always was. The images of the
// platforms not asked for are left in the layout as they are. Building
// for a platform this machine does not run needs its emulator registered
// in binfmt_misc (scripts/binfmt); without one, Build fails with an error
// wrapping ErrNoEmulation.
func Platforms(ps ...Platform) Option {
	return func(o *options) { o.platforms = append(o.platforms, ps...) }
}

// IndexAddr sets the loopback host:port of the stand-in registry that
// serves minikit's package index (the registry serves it under
// pyindex.Prefix): the python stand-ins' /etc/pip.conf names it, so they
// are built for one registry address and rebuilt when it changes.
func IndexAddr(hostport string) Option {
	return func(o *options) { o.indexURL = "http://" + hostport + pyindex.Prefix }
}

// TestCA sets the test CA whose certificate is appended to the CA bundle
// of every stand-in that has one (see tlsca). It defaults to the CA kept
// in the "testca" directory beside layoutDir (minikit's home), created if
// missing.
func TestCA(ca *tlsca.CA) Option {
	return func(o *options) { o.testCA = ca }
}

// Only restricts Build to the named stand-ins (and the parents they need).
// Names may omit "library/" and "docker.io/", or be gcr.io references.
func Only(names ...string) Option {
	return func(o *options) { o.only = append(o.only, names...) }
}

// Progress sets where Build prints one line per step (nil: nowhere).
func Progress(w io.Writer) Option {
	return func(o *options) { o.progress = w }
}

// WorkDir sets Build's work and cache directory: the debootstrap and apt
// .deb caches, the unpacked parent rootfs, logs and scratch space. It
// defaults to layoutDir + ".work".
func WorkDir(dir string) Option {
	return func(o *options) { o.workDir = dir }
}

// Built reports one stand-in, for one platform, after Build.
type Built struct {
	Name     string
	Platform Platform
	Digest   v1.Hash       // manifest digest in the layout
	Size     int64         // compressed bytes: config plus all layers
	Layers   int           // number of layers
	Rebuilt  bool          // false: it was already in the layout and up to date
	Elapsed  time.Duration // time spent building it (0 when up to date)
	// Repaired says what was wrong with the image's blobs in the layout
	// when that is why it was rebuilt ("" otherwise).
	Repaired string
}

// builder holds the state of one Build call.
type builder struct {
	lp       layout.Path
	work     string
	tmp      string
	prog     *progress
	run      *runner
	specs    map[string]Spec
	images   map[key]v1.Image    // stand-ins done so far, read back from the layout
	rootfs   map[key]string      // unpacked rootfs directory
	goLayers map[string]v1.Layer // goLayerKey(version, arch) -> toolchain layer
	testCA   *tlsca.CA           // appended to the CA bundles
	indexURL string              // the package index pip stand-ins use
	runs     map[Platform]error  // checkEmulation's answer, once per platform
}

// Build builds every missing or outdated stand-in (all of Catalog, or those
// chosen with Only), for each platform asked for (Platforms), into the OCI
// image layout at layoutDir, creating it if needed. An image in the layout
// whose version label matches its recipe, whose platform is the one asked
// for and whose parent's layers (of that platform) are its first layers
// is left alone. First it
// checks the layout's blobs as CheckLayout does: a bad blob is removed and
// every stand-in using it is rebuilt, even one Only did not name (its
// Built.Repaired says why); a damaged image that is no stand-in any more
// is removed. It needs root (chroot, mounts, dpkg-deb), apt-get and
// network access to Debian's archive and the Go module proxy for the
// images it actually builds.
func Build(ctx context.Context, layoutDir string, opts ...Option) ([]Built, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if layoutDir == "" {
		return nil, errors.New("build stand-ins: no layout directory")
	}
	platforms := o.platforms
	if len(platforms) == 0 {
		platforms = []Platform{DefaultPlatform}
	}
	for _, p := range platforms {
		if _, err := ParsePlatform(string(p)); err != nil {
			return nil, fmt.Errorf("build stand-ins: %w", err)
		}
	}
	catalog := Catalog()
	todo, err := closure(catalog, o.only)
	if err != nil {
		return nil, fmt.Errorf("build stand-ins: %w", err)
	}
	layoutDir, err = filepath.Abs(layoutDir)
	if err != nil {
		return nil, fmt.Errorf("build stand-ins: %w", err)
	}
	if o.workDir == "" {
		o.workDir = layoutDir + ".work"
	}
	if o.testCA == nil {
		if o.testCA, err = tlsca.LoadOrCreate(filepath.Join(filepath.Dir(layoutDir), tlsca.DirName)); err != nil {
			return nil, fmt.Errorf("build stand-ins: %w", err)
		}
	}
	work, err := filepath.Abs(o.workDir)
	if err != nil {
		return nil, fmt.Errorf("build stand-ins: %w", err)
	}
	if err := paths.MkdirPrivate(layoutDir, work, filepath.Join(work, "logs")); err != nil {
		return nil, fmt.Errorf("build stand-ins: %w", err)
	}
	unlock, err := lockDir(work)
	if err != nil {
		return nil, fmt.Errorf("build stand-ins: %w", err)
	}
	defer unlock()

	lp, err := openLayout(layoutDir)
	if err != nil {
		return nil, fmt.Errorf("build stand-ins: %w", err)
	}
	prog := newProgress(o.progress)
	damaged, removed, err := removeDamaged(lp, prog)
	if err != nil {
		return nil, fmt.Errorf("build stand-ins: %w", err)
	}
	if len(damaged) > 0 {
		specs := lookup(catalog)
		extra := append([]string(nil), o.only...)
		for _, n := range sortedKeys(damaged) {
			if _, ok := specs[n]; !ok {
				prog.printf("%s: removed from the layout, it is damaged (%s) and not a stand-in any more", n, damaged[n])
				continue
			}
			prog.printf("%s: damaged in the layout (%s): rebuilding it", n, damaged[n])
			extra = append(extra, n)
		}
		if len(o.only) > 0 {
			if todo, err = closure(catalog, extra); err != nil {
				return nil, fmt.Errorf("build stand-ins: %w", err)
			}
		}
	}
	existing, err := layoutImages(lp)
	if err != nil {
		return nil, fmt.Errorf("build stand-ins: %w", err)
	}
	tmp := filepath.Join(work, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("build stand-ins: clear scratch space: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("build stand-ins: %w", err)
	}
	defer os.RemoveAll(tmp)

	b := &builder{
		lp:       lp,
		work:     work,
		tmp:      tmp,
		prog:     prog,
		run:      &runner{logPath: filepath.Join(work, "logs", "build.log")},
		specs:    lookup(catalog),
		images:   map[key]v1.Image{},
		rootfs:   map[key]string{},
		goLayers: map[string]v1.Layer{},
		testCA:   o.testCA,
		indexURL: o.indexURL,
		runs:     map[Platform]error{},
	}
	var out []Built
	replaced := removed
	changed := false
	for _, spec := range todo {
		if err := ctx.Err(); err != nil {
			return out, fmt.Errorf("build stand-ins: %w", err)
		}
		have := existing[spec.Name]
		// The images of platforms not asked for stay as they are.
		final := make(map[Platform]v1.Image, len(have))
		for p, img := range have {
			final[p] = img
		}
		type done struct {
			p       Platform
			rebuilt bool
			elapsed time.Duration
		}
		var dones []done
		rebuilt := false
		for _, p := range platforms {
			if !spec.builds(p) {
				continue
			}
			k := key{spec.Name, p}
			var parent v1.Image
			if spec.Parent != "" {
				parent = b.images[key{spec.Parent, p}]
			}
			if img, ok := have[p]; ok && upToDate(img, spec, parent, p) && b.hasCurrentCA(img, spec) && b.hasCurrentIndex(img, spec) {
				b.images[k] = img
				b.prog.printf("%s: up to date (version %s)", k, spec.Version)
				dones = append(dones, done{p: p})
				continue
			}
			if err := b.canRun(p); err != nil {
				return out, fmt.Errorf("build stand-in %s: %w", k, err)
			}
			t0 := time.Now()
			var img v1.Image
			err := b.prog.step(ctx, "build "+k.String(), func(ctx context.Context) error {
				var err error
				img, err = b.build(ctx, spec, parent, p)
				if err != nil {
					return err
				}
				if spec.hasCABundle() {
					if img, err = setLabel(img, LabelTestCA, b.testCA.Fingerprint()); err != nil {
						return err
					}
				}
				if spec.pip {
					if img, err = setLabel(img, LabelPipIndex, b.indexURL); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return out, fmt.Errorf("build stand-in %s: %w", k, err)
			}
			final[p] = img
			rebuilt = true
			dones = append(dones, done{p: p, rebuilt: true, elapsed: time.Since(t0)})
		}
		if rebuilt {
			stored, err := b.store(ctx, spec, final)
			if err != nil {
				return out, fmt.Errorf("build stand-in %s: %w", spec.Name, err)
			}
			for p, img := range stored {
				b.images[key{spec.Name, p}] = img
			}
			if len(have) > 0 {
				replaced = true
			}
			changed = true
		}
		for _, d := range dones {
			r, err := report(spec.Name, b.images[key{spec.Name, d.p}], d.rebuilt, d.elapsed)
			if err != nil {
				return out, fmt.Errorf("build stand-in %s: %w", key{spec.Name, d.p}, err)
			}
			r.Platform = d.p
			if d.rebuilt {
				r.Repaired = damaged[spec.Name]
			}
			out = append(out, r)
		}
	}
	if replaced {
		n, err := collectGarbage(lp)
		if err != nil {
			return out, fmt.Errorf("build stand-ins: remove unused blobs: %w", err)
		}
		b.prog.printf("removed %d unused blobs from the layout", n)
	}
	if changed || replaced {
		// Verify what was written, which also records it as verified.
		if err := CheckLayout(layoutDir); err != nil {
			return out, fmt.Errorf("build stand-ins: %w", err)
		}
	}
	if err := b.buildIndex(ctx, layoutDir); err != nil {
		return out, fmt.Errorf("build stand-ins: %w", err)
	}
	b.pruneRootfs()
	b.prog.printf("stand-ins ready in %s", layoutDir)
	return out, nil
}

// lockDir takes an exclusive lock on dir/.lock so two builds never share a
// work directory and layout.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock work directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock work directory %s (another build running?): %w", dir, err)
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// openLayout opens the layout at dir, creating an empty one if needed.
func openLayout(dir string) (layout.Path, error) {
	if lp, err := layout.FromPath(dir); err == nil {
		return lp, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("open layout %s: %w", dir, err)
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("create layout %s: %w", dir, err)
	}
	return lp, nil
}

// removeDamaged checks the layout's blobs (as CheckLayout does), removes
// the bad ones and the index entries of the images that use them, and
// returns what was wrong, by image name; removed says whether anything
// was removed. An unreadable index.json is replaced by an empty one:
// every image is then missing.
func removeDamaged(lp layout.Path, prog *progress) (damaged map[string]string, removed bool, err error) {
	c, err := readContents(string(lp))
	if errors.Is(err, ErrCorrupt) {
		prog.printf("the layout index is unreadable (%v): starting a new one", err)
		if _, err := layout.Write(string(lp), empty.Index); err != nil {
			return nil, false, fmt.Errorf("replace the unreadable layout index: %w", err)
		}
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	bad := c.verify()
	if len(bad) == 0 {
		return nil, false, nil
	}
	damaged = map[string]string{}
	for _, b := range bad {
		if err := os.Remove(c.blobPath(b.use.desc.Digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("remove damaged blob: %w", err)
		}
		what := fmt.Sprintf("%s %s: %s", b.use.kind, shortDigest(b.use.desc.Digest), b.why)
		for _, img := range b.use.images {
			if damaged[img] != "" {
				damaged[img] += "; "
			}
			damaged[img] += what
		}
	}
	err = removeDescriptors(lp, func(d v1.Descriptor) bool {
		n := d.Annotations[AnnotationRefName]
		if n == "" {
			n = d.Digest.String()
		}
		return damaged[n] != ""
	})
	if err != nil {
		return nil, false, fmt.Errorf("remove damaged images from the layout index: %w", err)
	}
	return damaged, true, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// layoutImages returns the layout's images by their ref.name annotation
// and platform: a name is an image manifest (its config says its
// platform) or an image index of one manifest per platform. Images of
// platforms that have no stand-ins are left out.
func layoutImages(lp layout.Path) (map[string]map[Platform]v1.Image, error) {
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read layout index: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read layout index: %w", err)
	}
	out := map[string]map[Platform]v1.Image{}
	add := func(from v1.ImageIndex, n string, d v1.Descriptor) error {
		img, err := from.Image(d.Digest)
		if err != nil {
			return fmt.Errorf("read layout image %s: %w", n, err)
		}
		var p Platform
		if d.Platform != nil {
			p, err = ParsePlatform(d.Platform.OS + "/" + d.Platform.Architecture + "/" + d.Platform.Variant)
		} else {
			var cf *v1.ConfigFile
			if cf, err = img.ConfigFile(); err != nil {
				return fmt.Errorf("read layout image %s: %w", n, err)
			}
			p, err = platformOf(cf)
		}
		if err != nil {
			return nil // not a platform of ours: no stand-in to keep up to date
		}
		if out[n] == nil {
			out[n] = map[Platform]v1.Image{}
		}
		out[n][p] = img
		return nil
	}
	for _, d := range im.Manifests {
		n := d.Annotations[AnnotationRefName]
		switch {
		case n == "":
		case d.MediaType.IsImage():
			if err := add(idx, n, d); err != nil {
				return nil, err
			}
		case d.MediaType.IsIndex():
			ii, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("read layout index %s: %w", n, err)
			}
			cm, err := ii.IndexManifest()
			if err != nil {
				return nil, fmt.Errorf("read layout index %s: %w", n, err)
			}
			for _, c := range cm.Manifests {
				if !c.MediaType.IsImage() {
					continue
				}
				if err := add(ii, n, c); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// upToDate says whether img was built for p by spec's recipe version on
// top of parent's current layers.
func upToDate(img v1.Image, spec Spec, parent v1.Image, p Platform) bool {
	cf, err := img.ConfigFile()
	if err != nil || cf.Config.Labels[LabelVersion] != spec.Version || cf.Config.Labels[LabelStandIn] != "true" {
		return false
	}
	if got, err := platformOf(cf); err != nil || got != p {
		return false
	}
	if spec.Parent == "" {
		return true
	}
	if parent == nil {
		return false
	}
	pm, err := parent.Manifest()
	if err != nil {
		return false
	}
	m, err := img.Manifest()
	if err != nil || len(m.Layers) < len(pm.Layers) {
		return false
	}
	for i, l := range pm.Layers {
		if m.Layers[i].Digest != l.Digest {
			return false
		}
	}
	return true
}

func report(name string, img v1.Image, rebuilt bool, elapsed time.Duration) (Built, error) {
	d, err := img.Digest()
	if err != nil {
		return Built{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return Built{}, err
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return Built{Name: name, Digest: d, Size: size, Layers: len(m.Layers), Rebuilt: rebuilt, Elapsed: elapsed}, nil
}

// store writes imgs (one image per platform) into the layout under
// spec.Name, replacing what was there under that name, and returns the
// images as read back from the layout (so images derived from them share
// their blobs). A linux/amd64 image alone is stored as an image manifest,
// as it always was; anything else as an OCI image index whose manifests
// name their platforms, linux/amd64 first.
func (b *builder) store(_ context.Context, spec Spec, imgs map[Platform]v1.Image) (map[Platform]v1.Image, error) {
	if len(imgs) == 0 {
		return nil, errors.New("write to layout: no image")
	}
	// from is what the images are read back from, once written: the
	// layout's index, or the image index written under the name.
	var from v1.ImageIndex
	if img, ok := imgs[LinuxAMD64]; ok && len(imgs) == 1 {
		if err := putNamed(b.lp, spec.Name, img); err != nil {
			return nil, fmt.Errorf("write to layout: %w", err)
		}
		var err error
		if from, err = b.lp.ImageIndex(); err != nil {
			return nil, fmt.Errorf("read back from layout: %w", err)
		}
	} else {
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		for _, p := range sortedPlatforms(imgs) {
			mt, err := imgs[p].MediaType()
			if err != nil {
				return nil, fmt.Errorf("write to layout: %w", err)
			}
			plat := p.OCI()
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
				Add:        imgs[p],
				Descriptor: v1.Descriptor{MediaType: mt, Platform: &plat},
			})
		}
		if err := putNamedIndex(b.lp, spec.Name, idx); err != nil {
			return nil, fmt.Errorf("write to layout: %w", err)
		}
		d, err := idx.Digest()
		if err == nil {
			from, err = b.lp.ImageIndex()
		}
		if err == nil {
			from, err = from.ImageIndex(d)
		}
		if err != nil {
			return nil, fmt.Errorf("read back from layout: %w", err)
		}
	}
	out := make(map[Platform]v1.Image, len(imgs))
	for p, img := range imgs {
		d, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("write to layout: %w", err)
		}
		if out[p], err = from.Image(d); err != nil {
			return nil, fmt.Errorf("read back from layout: %w", err)
		}
	}
	return out, nil
}

// sortedPlatforms lists the platforms of imgs, linux/amd64 first.
func sortedPlatforms(imgs map[Platform]v1.Image) []Platform {
	ps := make([]Platform, 0, len(imgs))
	for p := range imgs {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		if (ps[i] == LinuxAMD64) != (ps[j] == LinuxAMD64) {
			return ps[i] == LinuxAMD64
		}
		return ps[i] < ps[j]
	})
	return ps
}

// canRun checks once per Build that this machine runs p's binaries,
// natively or emulated (the recipes run the stand-ins' own programs).
func (b *builder) canRun(p Platform) error {
	err, ok := b.runs[p]
	if !ok {
		err = checkEmulation(p)
		b.runs[p] = err
	}
	return err
}

// String names the image in progress lines and errors: the stand-in's
// name, with its platform unless linux/amd64.
func (k key) String() string {
	if k.platform == LinuxAMD64 || k.platform == "" {
		return k.name
	}
	return k.name + " (" + string(k.platform) + ")"
}

// build runs spec's recipe for p on top of parent (nil for base images).
func (b *builder) build(ctx context.Context, spec Spec, parent v1.Image, p Platform) (v1.Image, error) {
	if spec.Parent != "" && parent == nil {
		return nil, fmt.Errorf("parent %s not built", spec.Parent)
	}
	if err := checkSuite(spec, b.specs); err != nil {
		return nil, err
	}
	if !spec.builds(p) {
		return nil, fmt.Errorf("no recipe for %s", p)
	}
	switch spec.recipe {
	case recipeDebootstrap:
		return b.buildDebootstrap(ctx, spec, p)
	case recipeAlias:
		return configure(parent, nil, spec, p, "")
	case recipeApt:
		return b.buildApt(ctx, spec, parent, p)
	case recipeGo:
		return b.buildGo(ctx, spec, parent, p)
	case recipeDebs:
		return b.buildDebs(ctx, spec, p)
	case recipeDistroless:
		return b.buildDistroless(ctx, spec, p)
	default:
		return nil, fmt.Errorf("unknown recipe %d", spec.recipe)
	}
}

// checkSuite says whether spec's suite is one its recipe can use: a
// derived stand-in's is its parent's (apt-get reads the parent's
// sources), a dpkg-deb one's is bookworm (the host's apt fetches its
// .debs), and only these recipes make links.
func checkSuite(spec Spec, specs map[string]Spec) error {
	switch spec.recipe {
	case recipeApt, recipeAlias, recipeGo:
		if p := specs[spec.Parent]; p.suite() != spec.suite() {
			return fmt.Errorf("suite %s, but its parent %s is from %s", spec.suite(), spec.Parent, p.suite())
		}
	case recipeDebs, recipeDistroless:
		if spec.suite() != debianSuite {
			return fmt.Errorf("suite %s: dpkg-deb stand-ins unpack %s packages only", spec.suite(), debianSuite)
		}
	}
	if len(spec.links) > 0 && spec.recipe != recipeApt {
		return errors.New("only apt stand-ins make links")
	}
	for p, target := range spec.links {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p+target, " \n") {
			return fmt.Errorf("link %q -> %q: want an absolute path, no spaces", p, target)
		}
	}
	return nil
}

// newBase is the empty OCI image every base stand-in starts from.
func newBase() v1.Image {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

// configure appends layer (if any) to base and sets spec's config for
// platform p.
func configure(base v1.Image, layer v1.Layer, spec Spec, p Platform, createdBy string) (v1.Image, error) {
	if base == nil {
		base = newBase()
	}
	now := time.Now().UTC().Truncate(time.Second)
	img := base
	if layer != nil {
		var err error
		img, err = mutate.Append(base, mutate.Addendum{
			Layer: layer,
			History: v1.History{
				Created:   v1.Time{Time: now},
				CreatedBy: createdBy,
				Comment:   "minikit stand-in " + spec.Name,
			},
		})
		if err != nil {
			return nil, fmt.Errorf("append layer: %w", err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	plat := p.OCI()
	cf.Architecture = plat.Architecture
	cf.OS = plat.OS
	cf.Variant = plat.Variant
	cf.Created = v1.Time{Time: now}
	cf.Author = "minikit stand-in"
	cf.Config.Env = append([]string(nil), spec.Env...)
	cf.Config.Cmd = append([]string(nil), spec.Cmd...)
	cf.Config.Entrypoint = nil
	cf.Config.WorkingDir = spec.WorkingDir
	cf.Config.Labels = map[string]string{
		LabelStandIn: "true",
		LabelFrom:    spec.fromLabel(p),
		LabelVersion: spec.Version,
	}
	if layer == nil {
		cf.History = append(cf.History, v1.History{
			Created:    v1.Time{Time: now},
			CreatedBy:  fmt.Sprintf("CMD %q (minikit stand-in %s)", spec.Cmd, spec.Name),
			EmptyLayer: true,
		})
	}
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return out, nil
}

// layerFromTree turns dir into a gzipped layer file under the scratch
// space and returns it as an OCI layer.
func (b *builder) layerFromTree(ctx context.Context, what, dir string, o treeOptions) (v1.Layer, error) {
	var layer v1.Layer
	err := b.prog.step(ctx, what+": write layer", func(ctx context.Context) error {
		var err error
		layer, err = b.writeLayer("layer-*.tar.gz", func(w *layerWriter) error { return writeTree(w, dir, o) })
		return err
	})
	return layer, err
}

// writeLayer writes a gzipped layer file under the scratch space (its
// name from pattern, as os.CreateTemp takes it), filled by fill, and
// returns it as an OCI layer.
func (b *builder) writeLayer(pattern string, fill func(*layerWriter) error) (v1.Layer, error) {
	f, err := os.CreateTemp(b.tmp, pattern)
	if err != nil {
		return nil, fmt.Errorf("layer file: %w", err)
	}
	f.Close()
	w, err := newLayerWriter(f.Name())
	if err != nil {
		return nil, err
	}
	if err := fill(w); err != nil {
		w.abort()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return layerFile(f.Name())
}

func layerFile(file string) (v1.Layer, error) {
	l, err := tarball.LayerFromFile(file, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer from %s: %w", file, err)
	}
	// Compute the digests now, while the file is certainly there.
	if _, err := l.Digest(); err != nil {
		return nil, fmt.Errorf("layer digest: %w", err)
	}
	if _, err := l.DiffID(); err != nil {
		return nil, fmt.Errorf("layer diff id: %w", err)
	}
	return l, nil
}

// collectGarbage removes the layout's blobs no image refers to any more:
// those its index does not reach through its image manifests and image
// indexes. When a manifest or index it must read is unreadable, it
// removes nothing.
func collectGarbage(lp layout.Path) (int, error) {
	c, err := readContents(string(lp))
	if err != nil {
		return 0, err
	}
	keep := map[string]bool{}
	for h, u := range c.blobs {
		keep[h.Hex] = true
		if (u.kind == "manifest" || u.kind == "index") && !c.readable(u.desc) {
			return 0, nil
		}
	}
	dir := filepath.Join(string(lp), "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if keep[e.Name()] || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// pruneRootfs removes unpacked rootfs directories that no current image
// uses. It only runs when the debian stand-in (the one chroot parent) is
// known in this build, so it never removes one that is still current.
func (b *builder) pruneRootfs() {
	dir := filepath.Join(b.work, "rootfs")
	keep := map[string]bool{}
	for _, p := range b.rootfs {
		keep[filepath.Base(p)] = true
	}
	if len(keep) == 0 {
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := strings.TrimSuffix(e.Name(), ".ok")
		if !keep[name] {
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// hasCurrentCA says whether img, if spec gives it a CA bundle, carries
// the current test CA in it (LabelTestCA).
func (b *builder) hasCurrentCA(img v1.Image, spec Spec) bool {
	if !spec.hasCABundle() {
		return true
	}
	cf, err := img.ConfigFile()
	return err == nil && cf.Config.Labels[LabelTestCA] == b.testCA.Fingerprint()
}

// setLabel returns img with one more label in its config.
func setLabel(img v1.Image, key, value string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	cf.Config.Labels[key] = value
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return out, nil
}
