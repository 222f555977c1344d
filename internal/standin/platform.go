package standin

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// A Platform is one that stand-ins are built for, in the OS/ARCH form of
// `--platform`: every stand-in is built for LinuxAMD64, the stand-ins whose
// Spec.Platforms lists it also for LinuxARM64. Under one name, the images
// of several platforms form an OCI image index.
type Platform string

// The platforms stand-ins are built for.
const (
	LinuxAMD64 Platform = "linux/amd64"
	LinuxARM64 Platform = "linux/arm64"
)

// DefaultPlatform is what Build builds when no Platforms option is given.
const DefaultPlatform = LinuxAMD64

// PlatformsEnv is the environment variable `minikit standins build` reads
// its platforms from when no --platform is given: a comma-separated list
// such as "linux/amd64,linux/arm64" (scripts/setup sets it in CI).
const PlatformsEnv = "MINIKIT_STANDIN_PLATFORMS"

// DefaultPlatforms is what `minikit standins build` builds for when no
// --platform is given: $MINIKIT_STANDIN_PLATFORMS if set, else
// DefaultPlatform.
func DefaultPlatforms() string {
	if v := strings.TrimSpace(os.Getenv(PlatformsEnv)); v != "" {
		return v
	}
	return string(DefaultPlatform)
}

// Label names the image in a listing: the stand-in's name, with its
// platform unless linux/amd64.
func (b Built) Label() string { return key{b.Name, b.Platform}.String() }

// ErrNoEmulation marks a build for a platform this machine can neither
// run natively nor emulate: no qemu entry registered in binfmt_misc.
var ErrNoEmulation = errors.New("no emulator registered for the platform")

// ParsePlatform reads a platform as `--platform` takes it: "linux/arm64"
// (also "linux/arm64/v8", "arm64", "linux/aarch64") or "linux/amd64" (also
// "amd64", "linux/x86_64"). Other platforms have no stand-ins.
func ParsePlatform(s string) (Platform, error) {
	p := strings.ToLower(strings.TrimSpace(s))
	os, arch, ok := strings.Cut(p, "/")
	if !ok {
		os, arch = "linux", p
	}
	arch, variant, _ := strings.Cut(arch, "/")
	if os == "linux" {
		switch {
		case (arch == "amd64" || arch == "x86_64") && variant == "":
			return LinuxAMD64, nil
		case (arch == "arm64" || arch == "aarch64") && (variant == "" || variant == "v8"):
			return LinuxARM64, nil
		}
	}
	return "", fmt.Errorf("platform %q: stand-ins are built for %s and %s only", s, LinuxAMD64, LinuxARM64)
}

// ParsePlatforms reads a comma-separated list of platforms (repeats
// dropped), in the order given.
func ParsePlatforms(list string) ([]Platform, error) {
	var out []Platform
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		p, err := ParsePlatform(s)
		if err != nil {
			return nil, err
		}
		if !containsPlatform(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no platform in %q", list)
	}
	return out, nil
}

func containsPlatform(ps []Platform, p Platform) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// Arch is the platform's architecture, in the spelling Go, Debian and OCI
// share: "amd64" or "arm64".
func (p Platform) Arch() string {
	_, arch, _ := strings.Cut(string(p), "/")
	return arch
}

// String returns OS/ARCH.
func (p Platform) String() string { return string(p) }

// OCI is the platform as an image index and an image config name it:
// arm64 with its variant v8, as Docker Hub's images have it.
func (p Platform) OCI() v1.Platform {
	v := v1.Platform{OS: "linux", Architecture: p.Arch()}
	if p == LinuxARM64 {
		v.Variant = "v8"
	}
	return v
}

// native says whether this machine runs the platform's binaries itself.
func (p Platform) native() bool { return p.Arch() == runtime.GOARCH }

// elfMachine is the platform's ELF machine name, as qemu and binfmt_misc
// name their entries.
func (p Platform) elfMachine() string {
	switch p {
	case LinuxARM64:
		return "aarch64"
	default:
		return "x86_64"
	}
}

// platformOf is the stand-in platform of an image config (LinuxAMD64 for
// an old config that names none).
func platformOf(cf *v1.ConfigFile) (Platform, error) {
	if cf.Architecture == "" {
		return LinuxAMD64, nil
	}
	return ParsePlatform(cf.OS + "/" + cf.Architecture)
}

// binfmtDir is where the kernel lists its binfmt_misc entries.
const binfmtDir = "/proc/sys/fs/binfmt_misc"

// checkEmulation returns nil when this machine can run p's binaries:
// natively, or through an enabled binfmt_misc entry for p's machine whose
// emulator the kernel opened at registration (flag F), which is what a
// chroot and a runc container need. Otherwise the error wraps
// ErrNoEmulation and says to run scripts/binfmt.
func checkEmulation(p Platform) error {
	return checkEmulationIn(binfmtDir, p)
}

func checkEmulationIn(dir string, p Platform) error {
	if p.native() {
		return nil
	}
	entry := filepath.Join(dir, "qemu-"+p.elfMachine())
	data, err := os.ReadFile(entry)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s: %s is not registered in binfmt_misc (run scripts/binfmt as root)", ErrNoEmulation, p, filepath.Base(entry))
	case err != nil:
		return fmt.Errorf("%w: %s: %v (run scripts/binfmt as root)", ErrNoEmulation, p, err)
	}
	var enabled, fixed bool
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case line == "enabled":
			enabled = true
		case strings.HasPrefix(line, "flags:"):
			fixed = strings.Contains(strings.TrimPrefix(line, "flags:"), "F")
		}
	}
	switch {
	case !enabled:
		return fmt.Errorf("%w: %s: %s is disabled (run scripts/binfmt as root)", ErrNoEmulation, p, entry)
	case !fixed:
		return fmt.Errorf("%w: %s: %s is registered without the F flag, so chroots and containers cannot use it (run scripts/binfmt as root)", ErrNoEmulation, p, entry)
	}
	return nil
}

// hostApt returns the apt-get options that make the host's apt fetch
// packages of p's architecture from Debian's archive: none for the host's
// own, else a private configuration under the work directory (its own
// lists and status, bookworm's sources) that leaves the host's dpkg
// architectures and lists alone.
func (b *builder) hostApt(p Platform) ([]string, error) {
	if p.native() {
		return nil, nil
	}
	dir := filepath.Join(b.work, "apt-host-"+p.Arch())
	for _, d := range []string{"state/lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d)), 0o755); err != nil {
			return nil, fmt.Errorf("apt for %s: %w", p, err)
		}
	}
	status := filepath.Join(dir, "state", "status")
	if _, err := os.Stat(status); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(status, nil, 0o644); err != nil {
			return nil, fmt.Errorf("apt for %s: %w", p, err)
		}
	}
	sources := filepath.Join(dir, "sources.list")
	want := debianSources(debianSuite)
	if old, err := os.ReadFile(sources); err != nil || !bytes.Equal(old, []byte(want)) {
		if err := os.WriteFile(sources, []byte(want), 0o644); err != nil {
			return nil, fmt.Errorf("apt for %s: %w", p, err)
		}
	}
	return []string{
		"-o", "APT::Architecture=" + p.Arch(),
		"-o", "APT::Architectures=" + p.Arch(),
		"-o", "Dir::State=" + filepath.Join(dir, "state"),
		"-o", "Dir::State::status=" + status,
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "Dir::Etc::SourceList=" + sources,
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(dir, "sources.list.d"),
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(dir, "preferences.d"),
	}, nil
}

// debianKeyring verifies Debian's archive (debian-archive-keyring).
const debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// debianSources is a sources.list for suite, its updates and its security
// updates, from Debian's archive, signed by Debian's keyring.
func debianSources(suite string) string {
	var b strings.Builder
	for _, s := range [][2]string{
		{debianMirror, suite},
		{debianMirror, suite + "-updates"},
		{strings.TrimSuffix(debianMirror, "/debian") + "/debian-security", suite + "-security"},
	} {
		fmt.Fprintf(&b, "deb [signed-by=%s] %s %s main\n", debianKeyring, s[0], s[1])
	}
	return b.String()
}

// key names one image of the build: a stand-in for one platform.
type key struct {
	name     string
	platform Platform
}

// LayoutPlatforms lists, for each stand-in of the layout at layoutDir,
// the platforms it has images for, linux/amd64 first: what a build for a
// platform can pull.
func LayoutPlatforms(layoutDir string) (map[string][]Platform, error) {
	lp, err := layout.FromPath(layoutDir)
	if err != nil {
		return nil, fmt.Errorf("stand-in platforms: %w", err)
	}
	imgs, err := layoutImages(lp)
	if err != nil {
		return nil, fmt.Errorf("stand-in platforms: %w", err)
	}
	out := make(map[string][]Platform, len(imgs))
	for n, byPlatform := range imgs {
		out[n] = sortedPlatforms(byPlatform)
	}
	return out, nil
}
