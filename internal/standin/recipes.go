package standin

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/minikit/minikit/internal/tlsca"
)

// rootfsSkip are directories whose contents never go into a layer.
var rootfsSkip = []string{"dev", "proc", "sys"}

// buildDebootstrap: debootstrap --variant=minbase in a private mount
// namespace (so its /proc and /sys mounts cannot outlive it), of p's
// architecture (a foreign one runs its second stage emulated).
func (b *builder) buildDebootstrap(ctx context.Context, spec Spec, p Platform) (v1.Image, error) {
	k := key{spec.Name, p}
	rootfs := filepath.Join(b.tmp, "debootstrap-rootfs-"+p.Arch())
	cache := filepath.Join(b.work, "debootstrap-cache")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	suite := spec.suite()
	args := []string{"--mount", "--propagation", "private", "--", "debootstrap", "--variant=minbase"}
	if !p.native() {
		args = append(args, "--arch="+p.Arch())
	}
	args = append(args, "--cache-dir="+cache, suite, rootfs, debianMirror)
	err := b.prog.step(ctx, k.String()+": debootstrap --variant=minbase "+suite, func(ctx context.Context) error {
		_, err := b.run.run(ctx, b.tmp, nil, false, "unshare", args...)
		return err
	})
	if err != nil {
		return nil, err
	}
	// What debootstrap leaves that a base image should not carry.
	for _, pattern := range []string{
		"var/cache/apt/archives/*.deb",
		"var/cache/apt/archives/partial/*",
		"var/cache/apt/*.bin",
		"var/lib/apt/lists/*",
		"var/log/bootstrap.log",
	} {
		if err := removeGlob(rootfs, pattern); err != nil {
			return nil, err
		}
	}
	if err := emptyFile(filepath.Join(rootfs, "etc", "resolv.conf")); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(rootfs, "etc", "hostname"), "localhost\n", 0o644); err != nil {
		return nil, err
	}
	if err := ensureSkeleton(rootfs, skeletonFiles{}); err != nil {
		return nil, err
	}
	layer, err := b.layerFromTree(ctx, k.String(), rootfs, treeOptions{skipContents: rootfsSkip})
	if err != nil {
		return nil, err
	}
	createdBy := "debootstrap --variant=minbase " + suite + " " + debianMirror
	if !p.native() {
		createdBy = "debootstrap --variant=minbase --arch=" + p.Arch() + " " + suite + " " + debianMirror
	}
	img, err := configure(nil, layer, spec, p, createdBy)
	if err != nil {
		return nil, err
	}
	// Keep the tree: it is the lower dir of the apt stand-ins.
	if err := b.adoptRootfs(k, img, rootfs); err != nil {
		return nil, err
	}
	return img, nil
}

// adoptRootfs keeps dir as the unpacked rootfs of img (k's image).
func (b *builder) adoptRootfs(k key, img v1.Image, dir string) error {
	d, err := img.Digest()
	if err != nil {
		return err
	}
	base := filepath.Join(b.work, "rootfs")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return err
	}
	dst := filepath.Join(base, d.Hex)
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.Rename(dir, dst); err != nil {
		return fmt.Errorf("keep rootfs: %w", err)
	}
	if err := os.WriteFile(dst+".ok", []byte(k.String()+"\n"), 0o644); err != nil {
		return err
	}
	b.rootfs[k] = dst
	return nil
}

// rootfsFor returns an unpacked copy of k's image's filesystem, reusing
// one kept in the work directory for the same image digest.
func (b *builder) rootfsFor(ctx context.Context, k key) (string, error) {
	if p, ok := b.rootfs[k]; ok {
		return p, nil
	}
	img := b.images[k]
	if img == nil {
		return "", fmt.Errorf("rootfs of %s: image not available", k)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(b.work, "rootfs", d.Hex)
	if _, err := os.Stat(dir + ".ok"); err == nil {
		b.rootfs[k] = dir
		return dir, nil
	}
	err = b.prog.step(ctx, "unpack "+k.String()+" from the layout", func(ctx context.Context) error {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			if err := ctx.Err(); err != nil {
				return err
			}
			rc, err := l.Uncompressed()
			if err != nil {
				return err
			}
			err = extractLayer(rc, dir)
			rc.Close()
			if err != nil {
				return err
			}
		}
		return os.WriteFile(dir+".ok", []byte(k.String()+"\n"), 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", k, err)
	}
	b.rootfs[k] = dir
	return dir, nil
}

// aptScript mounts an overlay of the parent rootfs, runs apt-get in a
// chroot on it and leaves the changes in the upper dir. It runs inside
// `unshare --mount --propagation private`, so every mount it makes dies
// with it, whatever happens.
const aptScript = `set -e
lower=$1 upper=$2 work=$3 merged=$4 archives=$5 lists=$6 links=$7
shift 7
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work,redirect_dir=off,metacopy=off,index=off" "$merged"
mount -t proc proc "$merged/proc"
mount --rbind /dev "$merged/dev"
mount --bind "$archives" "$merged/var/cache/apt/archives"
mount --bind "$lists" "$merged/var/lib/apt/lists"
rm -f "$merged/etc/resolv.conf"
cat /etc/resolv.conf > "$merged/etc/resolv.conf"
in_root() {
	chroot "$merged" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
# sid's Release carries a Valid-Until (a stable suite's carries none) and
# the archive may serve it past that date; its signature is still checked.
in_root apt-get -q -o Acquire::Retries=3 -o Acquire::Check-Valid-Until=false update
in_root apt-get -q -y -o Acquire::Retries=3 install --no-install-recommends "$@"
printf '%s\n' "$links" | while read -r link target; do
	[ -n "$link" ] || continue
	in_root mkdir -p "$(dirname "$link")"
	in_root ln -sfn "$target" "$link"
done
: > "$merged/etc/resolv.conf"
rm -f "$merged"/var/cache/apt/*.bin
`

// linkList is spec.links as aptScript reads them: "PATH TARGET" lines,
// sorted by path.
func (s Spec) linkList() string {
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(s.links)) {
		b.WriteString(p + " " + s.links[p] + "\n")
	}
	return b.String()
}

// buildApt installs spec.Packages with apt-get in a chroot on an overlay
// of the parent's rootfs (of platform p: a foreign one's apt runs
// emulated); the overlay's upper dir becomes the new layer. The .debs and
// apt lists live in the work directory (bind-mounted), so they never
// reach the image and rebuilds do not download them again.
func (b *builder) buildApt(ctx context.Context, spec Spec, parent v1.Image, p Platform) (v1.Image, error) {
	k := key{spec.Name, p}
	lower, err := b.rootfsFor(ctx, key{spec.Parent, p})
	if err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(b.tmp, "apt-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	upper := filepath.Join(scratch, "upper")
	ovWork := filepath.Join(scratch, "work")
	merged := filepath.Join(scratch, "merged")
	// One cache per suite and architecture: apt-get update drops the
	// lists of other suites.
	cacheName := spec.suite()
	if p != LinuxAMD64 {
		cacheName += "-" + p.Arch()
	}
	archives := filepath.Join(b.work, "apt-cache", cacheName, "archives")
	lists := filepath.Join(b.work, "apt-cache", cacheName, "lists")
	for _, d := range []string{upper, ovWork, merged, filepath.Join(archives, "partial"), filepath.Join(lists, "partial")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	what := k.String() + ": apt-get install " + strings.Join(spec.Packages, " ")
	err = b.prog.step(ctx, what, func(ctx context.Context) error {
		args := append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-ec", aptScript, "sh",
			lower, upper, ovWork, merged, archives, lists, spec.linkList()}, spec.Packages...)
		_, err := b.run.run(ctx, scratch, nil, false, "unshare", args...)
		return err
	})
	if err != nil {
		return nil, err
	}
	if spec.hasCABundle() {
		if err := appendCA(upper, b.testCA); err != nil {
			return nil, err
		}
	}
	if spec.pip {
		if err := b.pipFiles(upper, lower); err != nil {
			return nil, err
		}
	}
	skip := append([]string{"tmp", "var/tmp", "var/cache/apt/archives", "var/lib/apt/lists"}, rootfsSkip...)
	layer, err := b.layerFromTree(ctx, k.String(), upper, treeOptions{overlay: true, skipContents: skip, lower: lower})
	if err != nil {
		return nil, err
	}
	createdBy := "apt-get install -y --no-install-recommends " + strings.Join(spec.Packages, " ")
	for _, link := range slices.Sorted(maps.Keys(spec.links)) {
		createdBy += "; ln -s " + spec.links[link] + " " + link
	}
	return configure(parent, layer, spec, p, createdBy)
}

// goLayerKey names the toolchain layer of one Go version for one
// architecture in builder.goLayers.
func goLayerKey(goVersion, arch string) string { return goVersion + " " + arch }

// buildGo appends the layer of spec's Go toolchain for p's architecture,
// made once per Go version and architecture and shared by the golang
// stand-ins of that version.
func (b *builder) buildGo(ctx context.Context, spec Spec, parent v1.Image, p Platform) (v1.Image, error) {
	if spec.goVersion == "" {
		return nil, errors.New("golang stand-in without a Go version")
	}
	lk := goLayerKey(spec.goVersion, p.Arch())
	l, ok := b.goLayers[lk]
	if !ok {
		var err error
		if l, err = b.goToolchainLayer(ctx, spec.goVersion, p.Arch()); err != nil {
			return nil, err
		}
		b.goLayers[lk] = l
	}
	return configure(parent, l, spec, p, fmt.Sprintf("COPY %s@%s /usr/local/go; mkdir -m 1777 /go /go/src /go/bin", goToolchainMod, goToolchainVersion(spec.goVersion, p.Arch())))
}

// goToolchainLayer fetches Go goVersion's toolchain zip for linux on arch
// through the Go module proxy (go mod download) and turns it into a
// layer: /usr/local/go, plus /go, /go/src and /go/bin with mode 1777 as
// upstream has them. The layer is deterministic (fixed times, sorted), so
// the golang stand-ins of one Go version and architecture share it.
func (b *builder) goToolchainLayer(ctx context.Context, goVersion, arch string) (v1.Layer, error) {
	vers := goToolchainVersion(goVersion, arch)
	var zipPath string
	err := b.prog.step(ctx, "go mod download "+goToolchainMod+"@"+vers, func(ctx context.Context) error {
		var err error
		zipPath, err = b.goModDownload(ctx, goToolchainMod, vers)
		return err
	})
	if err != nil {
		return nil, err
	}
	var layer v1.Layer
	err = b.prog.step(ctx, "Go "+goVersion+" linux/"+arch+" toolchain: write layer", func(ctx context.Context) error {
		zr, err := zip.OpenReader(zipPath)
		if err != nil {
			return fmt.Errorf("open %s: %w", zipPath, err)
		}
		defer zr.Close()
		entries, err := toolchainEntries(&zr.Reader, goToolchainMod+"@"+vers+"/")
		if err != nil {
			return err
		}
		layer, err = b.writeLayer("go-layer-*.tar.gz", func(w *layerWriter) error { return writeEntries(w, entries) })
		return err
	})
	return layer, err
}

// toolchainEntries maps the module zip's files under prefix to
// usr/local/go, executable under bin/ and pkg/tool/ (module zips carry no
// modes), and adds the GOPATH directories.
func toolchainEntries(zr *zip.Reader, prefix string) ([]genEntry, error) {
	entries := []genEntry{
		dirEntry("go", 0o1777),
		dirEntry("go/src", 0o1777),
		dirEntry("go/bin", 0o1777),
		dirEntry("usr/local/go", 0o755),
	}
	n := 0
	for _, zf := range zr.File {
		rel, ok := strings.CutPrefix(zf.Name, prefix)
		if !ok || rel == "" {
			continue
		}
		if _, err := cleanRel(rel); err != nil {
			return nil, fmt.Errorf("toolchain zip: %w", err)
		}
		if strings.HasSuffix(rel, "/") {
			entries = append(entries, dirEntry("usr/local/go/"+rel, 0o755))
			continue
		}
		mode := int64(0o644)
		if strings.HasPrefix(rel, "bin/") || strings.HasPrefix(rel, "pkg/tool/") {
			mode = 0o755
		}
		entries = append(entries, genEntry{
			hdr:  tar.Header{Typeflag: tar.TypeReg, Name: "usr/local/go/" + rel, Mode: mode, Size: int64(zf.UncompressedSize64)},
			open: zf.Open,
		})
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("toolchain zip has no files under %s", prefix)
	}
	return entries, nil
}

// goModDownload runs `go mod download -json mod@vers` in a throwaway module
// (so no go.mod of ours is touched) and returns the zip's path.
func (b *builder) goModDownload(ctx context.Context, mod, vers string) (string, error) {
	dir, err := os.MkdirTemp(b.tmp, "gomod-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module minikit.invalid/standin\n\ngo 1.21\n"), 0o644); err != nil {
		return "", err
	}
	env := append(os.Environ(), "GO111MODULE=on", "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	out, err := b.run.run(ctx, dir, env, true, "go", "mod", "download", "-json", mod+"@"+vers)
	var res struct {
		Zip   string
		Error string
	}
	if jerr := json.Unmarshal(out, &res); jerr == nil && res.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", mod, vers, res.Error)
	}
	if err != nil {
		return "", err
	}
	if res.Zip == "" {
		return "", fmt.Errorf("go mod download %s@%s: no zip in output", mod, vers)
	}
	return res.Zip, nil
}

// unpackDebs unpacks spec.Packages of p's architecture with dpkg-deb -x
// (no maintainer scripts run) into a new directory, without
// documentation; the caller removes the directory.
func (b *builder) unpackDebs(ctx context.Context, spec Spec, p Platform) (string, error) {
	debs, err := b.fetchDebsFor(ctx, spec.Packages, p)
	if err != nil {
		return "", err
	}
	root, err := os.MkdirTemp(b.tmp, "debs-*")
	if err != nil {
		return "", err
	}
	err = b.prog.step(ctx, key{spec.Name, p}.String()+": unpack "+strings.Join(spec.Packages, " "), func(ctx context.Context) error {
		for _, deb := range debs {
			if _, err := b.run.run(ctx, root, nil, false, "dpkg-deb", "-x", deb, root); err != nil {
				return err
			}
		}
		for _, d := range []string{"usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/bug"} {
			if err := os.RemoveAll(filepath.Join(root, d)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		os.RemoveAll(root)
		return "", err
	}
	return root, nil
}

// buildDebs unpacks spec.Packages (of p's architecture) with dpkg-deb
// -x, adds busybox's applet links (busybox lists them, emulated for a
// foreign p), a CA bundle when ca-certificates is there, and a skeleton.
func (b *builder) buildDebs(ctx context.Context, spec Spec, p Platform) (v1.Image, error) {
	root, err := b.unpackDebs(ctx, spec, p)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	if err := b.busyboxLinks(ctx, root, spec.alpine); err != nil {
		return nil, err
	}
	if err := caBundle(root); err != nil {
		return nil, err
	}
	if spec.hasCABundle() {
		if err := appendCA(root, b.testCA); err != nil {
			return nil, err
		}
	}
	sk := skeletonFiles{busybox: true}
	if spec.alpine {
		sk.osRelease = alpineOSRelease
	}
	sk.nsswitch = slices.Contains(spec.Packages, "libc6")
	if err := ensureSkeleton(root, sk); err != nil {
		return nil, err
	}
	layer, err := b.layerFromTree(ctx, key{spec.Name, p}.String(), root, treeOptions{skipContents: rootfsSkip})
	if err != nil {
		return nil, err
	}
	return configure(nil, layer, spec, p, "dpkg-deb -x "+strings.Join(spec.Packages, " ")+" (Debian "+debianSuite+debArchNote(p)+"); busybox --install links; skeleton")
}

const alpineOSRelease = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.22.0
PRETTY_NAME="Alpine Linux v3.22 (minikit stand-in: Debian bookworm busybox-static + musl, no apk)"
HOME_URL="https://alpinelinux.org/"
`

// busyboxLinks links every applet to /bin/busybox under /bin, and for the
// Alpine stand-in also at the applet's usual path (/usr/bin/env ...).
func (b *builder) busyboxLinks(ctx context.Context, root string, fullPaths bool) error {
	bb := filepath.Join(root, "bin", "busybox")
	if _, err := os.Stat(bb); err != nil {
		return fmt.Errorf("busybox applet links: %w", err)
	}
	out, err := b.run.run(ctx, root, nil, true, bb, "--list")
	if err != nil {
		return err
	}
	links := map[string]string{}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			links["bin/"+a] = "busybox"
		}
	}
	if fullPaths {
		out, err := b.run.run(ctx, root, nil, true, bb, "--list-full")
		if err != nil {
			return err
		}
		for _, p := range strings.Fields(string(out)) {
			p = strings.TrimPrefix(p, "/")
			if _, err := cleanRel(p); err != nil || strings.HasPrefix(p, "bin/") {
				continue
			}
			links[p] = "/bin/busybox"
		}
	}
	if _, ok := links["bin/sh"]; !ok {
		return errors.New("busybox has no sh applet")
	}
	names := make([]string, 0, len(links))
	for p := range links {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		full := filepath.Join(root, filepath.FromSlash(p))
		if _, err := os.Lstat(full); err == nil {
			continue // a real file from a package wins
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(links[p], full); err != nil {
			return fmt.Errorf("applet link %s: %w", p, err)
		}
	}
	return nil
}

// caBundle writes etc/ssl/certs/ca-certificates.crt from the PEM files of
// usr/share/ca-certificates, as update-ca-certificates would (dpkg-deb -x
// does not run it). No ca-certificates there: nothing to do.
func caBundle(root string) error {
	src := filepath.Join(root, "usr", "share", "ca-certificates")
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var files []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(p, ".crt") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("CA bundle: %w", err)
	}
	if len(files) == 0 {
		return errors.New("CA bundle: no certificates under usr/share/ca-certificates")
	}
	sort.Strings(files)
	var buf bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("CA bundle: %w", err)
		}
		buf.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			buf.WriteByte('\n')
		}
	}
	dst := filepath.Join(root, "etc", "ssl", "certs", "ca-certificates.crt")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return writeFile(dst, buf.String(), 0o644)
}

// appendCA appends the test CA's certificate to the CA bundle under root
// (etc/ssl/certs/ca-certificates.crt), which must exist.
func appendCA(root string, ca *tlsca.CA) error {
	bundle := filepath.Join(root, "etc", "ssl", "certs", "ca-certificates.crt")
	data, err := os.ReadFile(bundle)
	if err != nil {
		return fmt.Errorf("append the test CA: %w", err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, "# "+tlsca.CommonName+"\n"...)
	data = append(data, ca.CertPEM...)
	return writeFile(bundle, string(data), 0o644)
}

// debArchNote says, in a history line, which architecture's packages a
// foreign stand-in unpacked.
func debArchNote(p Platform) string {
	if p == LinuxAMD64 {
		return ""
	}
	return " " + p.Arch()
}

// fetchDebs returns cached .deb files of pkgs (Debian's candidate versions
// for this host) for linux/amd64, downloading the missing ones with
// apt-get download.
func (b *builder) fetchDebs(ctx context.Context, pkgs []string) ([]string, error) {
	return b.fetchDebsFor(ctx, pkgs, LinuxAMD64)
}

// fetchDebsFor is fetchDebs for p's architecture: a foreign one's
// packages come through a private apt configuration (hostApt).
func (b *builder) fetchDebsFor(ctx context.Context, pkgs []string, p Platform) ([]string, error) {
	var out []string
	aptOpts, err := b.hostApt(p)
	if err != nil {
		return nil, err
	}
	what := "fetch .debs " + strings.Join(pkgs, " ")
	if p != LinuxAMD64 {
		what = "fetch " + p.Arch() + " .debs " + strings.Join(pkgs, " ")
	}
	err = b.prog.step(ctx, what, func(ctx context.Context) error {
		cache := filepath.Join(b.work, "debs")
		if err := os.MkdirAll(cache, 0o755); err != nil {
			return err
		}
		uris, err := b.printURIs(ctx, aptOpts, pkgs)
		if err != nil {
			b.prog.printf("apt-get download --print-uris failed; running apt-get update once")
			if _, uerr := b.run.run(ctx, b.tmp, nil, false, "apt-get", append(append([]string{"-q"}, aptOpts...), "update")...); uerr != nil {
				return fmt.Errorf("%w (and apt-get update failed: %v)", err, uerr)
			}
			if uris, err = b.printURIs(ctx, aptOpts, pkgs); err != nil {
				return err
			}
		}
		// The missing ones in one apt-get download.
		var missing []debURI
		for _, u := range uris {
			if ok, err := fileHasSHA256(filepath.Join(cache, u.file), u.sha256); err != nil || !ok {
				missing = append(missing, u)
			}
		}
		if len(missing) > 0 {
			dl, err := os.MkdirTemp(b.tmp, "dl-*")
			if err != nil {
				return err
			}
			args := append(append([]string{"-q", "-o", "APT::Sandbox::User=root"}, aptOpts...), "download", "--")
			for _, u := range missing {
				args = append(args, u.pkg)
			}
			if _, err := b.run.run(ctx, dl, nil, false, "apt-get", args...); err != nil {
				return err
			}
			for _, u := range missing {
				got, err := filepath.Glob(filepath.Join(dl, u.pkg+"_*.deb"))
				if err != nil || len(got) != 1 {
					return fmt.Errorf("apt-get download %s: expected one .deb, got %d", u.pkg, len(got))
				}
				if ok, err := fileHasSHA256(got[0], u.sha256); err != nil || !ok {
					return fmt.Errorf("apt-get download %s: checksum mismatch (%v)", u.pkg, err)
				}
				if err := os.Rename(got[0], filepath.Join(cache, u.file)); err != nil {
					return err
				}
			}
		}
		for _, u := range uris {
			out = append(out, filepath.Join(cache, u.file))
		}
		return nil
	})
	return out, err
}

type debURI struct {
	pkg, file, sha256 string
}

func (b *builder) printURIs(ctx context.Context, aptOpts, pkgs []string) ([]debURI, error) {
	args := append(append(slices.Clip(aptOpts), "download", "--print-uris", "--"), pkgs...)
	out, err := b.run.run(ctx, b.tmp, nil, true, "apt-get", args...)
	if err != nil {
		return nil, err
	}
	return parsePrintURIs(out, pkgs)
}

// parsePrintURIs reads `apt-get download --print-uris` lines:
// 'URI' FILENAME SIZE SHA256:HEX
func parsePrintURIs(out []byte, pkgs []string) ([]debURI, error) {
	byFile := map[string]debURI{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "'") {
			continue
		}
		file := filepath.Base(f[1])
		pkg, _, _ := strings.Cut(file, "_")
		u := debURI{pkg: pkg, file: file}
		if h, ok := strings.CutPrefix(f[3], "SHA256:"); ok {
			u.sha256 = strings.ToLower(h)
		}
		byFile[pkg] = u
	}
	var res []debURI
	for _, p := range pkgs {
		u, ok := byFile[p]
		if !ok {
			return nil, fmt.Errorf("apt-get download --print-uris: no .deb for %s", p)
		}
		res = append(res, u)
	}
	return res, nil
}

func fileHasSHA256(file, want string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	if want == "" {
		return true, nil // no checksum to compare against
	}
	return hex.EncodeToString(h.Sum(nil)) == want, nil
}

// skeletonFiles says which optional files ensureSkeleton writes.
type skeletonFiles struct {
	busybox   bool   // busybox-style passwd/group when missing
	osRelease string // etc/os-release contents when missing
	nsswitch  bool   // etc/nsswitch.conf for glibc when missing
}

const busyboxPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

const busyboxGroup = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
wheel:x:10:root
users:x:100:
nogroup:x:65534:
`

// ensureSkeleton gives root what every base image has: /tmp and /var/tmp
// (1777), /root (0700), the usual top-level directories, /etc/passwd and
// /etc/group.
func ensureSkeleton(root string, sk skeletonFiles) error {
	dirs := []struct {
		path string
		mode fs.FileMode
	}{
		{"bin", 0o755}, {"dev", 0o755}, {"etc", 0o755}, {"home", 0o755}, {"proc", 0o755},
		{"root", 0o700}, {"run", 0o755}, {"sys", 0o755}, {"tmp", fs.ModeSticky | 0o777},
		{"usr/bin", 0o755}, {"usr/sbin", 0o755}, {"usr/local/bin", 0o755},
		{"var", 0o755}, {"var/tmp", fs.ModeSticky | 0o777},
	}
	for _, d := range dirs {
		full := filepath.Join(root, filepath.FromSlash(d.path))
		fi, err := os.Lstat(full)
		if err == nil && (fi.IsDir() || fi.Mode()&fs.ModeSymlink != 0) {
			if d.mode&fs.ModeSticky != 0 && fi.IsDir() {
				if err := os.Chmod(full, fs.ModeSticky|0o777); err != nil {
					return fmt.Errorf("skeleton %s: %w", d.path, err)
				}
			}
			continue
		}
		if err := os.MkdirAll(full, 0o755); err != nil {
			return fmt.Errorf("skeleton %s: %w", d.path, err)
		}
		if err := os.Chmod(full, d.mode); err != nil {
			return fmt.Errorf("skeleton %s: %w", d.path, err)
		}
	}
	files := map[string]string{}
	if sk.busybox {
		files["etc/passwd"] = busyboxPasswd
		files["etc/group"] = busyboxGroup
	} else {
		files["etc/passwd"] = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
		files["etc/group"] = "root:x:0:\nnogroup:x:65534:\n"
	}
	if sk.osRelease != "" {
		files["etc/os-release"] = sk.osRelease
	}
	if sk.nsswitch {
		files["etc/nsswitch.conf"] = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"
	}
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if _, err := os.Lstat(full); err == nil {
			continue
		}
		if err := writeFile(full, content, 0o644); err != nil {
			return fmt.Errorf("skeleton %s: %w", p, err)
		}
	}
	return nil
}

func writeFile(p, content string, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	_ = os.Remove(p) // do not write through a symlink
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		return err
	}
	return os.Chtimes(p, fixedTime, fixedTime)
}

func emptyFile(p string) error { return writeFile(p, "", 0o644) }

func removeGlob(root, pattern string) error {
	matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(pattern)))
	if err != nil {
		return err
	}
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.IsDir() && filepath.Base(m) == "partial" {
			continue
		}
		if err := os.RemoveAll(m); err != nil {
			return err
		}
	}
	return nil
}

// distrolessPasswd and distrolessGroup are the accounts distroless images
// carry: root, nobody and nonroot (65532), none with a login shell.
const distrolessPasswd = `root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
`

const distrolessGroup = `root:x:0:
tty:x:5:
staff:x:50:
nogroup:x:65534:
nonroot:x:65532:
`

// buildDistroless unpacks spec.Packages with dpkg-deb -x, as distroless
// does (no maintainer scripts run), makes the CA bundle, writes the
// distroless accounts and a skeleton; no shell, no busybox.
func (b *builder) buildDistroless(ctx context.Context, spec Spec, p Platform) (v1.Image, error) {
	root, err := b.unpackDebs(ctx, spec, p)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	if err := caBundle(root); err != nil {
		return nil, err
	}
	if spec.hasCABundle() {
		if err := appendCA(root, b.testCA); err != nil {
			return nil, err
		}
	}
	for p, content := range map[string]string{"etc/passwd": distrolessPasswd, "etc/group": distrolessGroup} {
		if err := writeFile(filepath.Join(root, filepath.FromSlash(p)), content, 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "home", "nonroot"), 0o700); err != nil {
		return nil, err
	}
	if err := os.Lchown(filepath.Join(root, "home", "nonroot"), 65532, 65532); err != nil {
		return nil, err
	}
	sk := skeletonFiles{}
	sk.nsswitch = slices.Contains(spec.Packages, "libc6")
	if err := ensureSkeleton(root, sk); err != nil {
		return nil, err
	}
	layer, err := b.layerFromTree(ctx, key{spec.Name, p}.String(), root, treeOptions{skipContents: rootfsSkip})
	if err != nil {
		return nil, err
	}
	return configure(nil, layer, spec, p, "dpkg-deb -x "+strings.Join(spec.Packages, " ")+" (Debian "+debianSuite+debArchNote(p)+"), distroless-style: no shell; nonroot user")
}
