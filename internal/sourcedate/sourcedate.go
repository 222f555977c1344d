// Package sourcedate chooses the SOURCE_DATE_EPOCH of minikit's images:
// the time every timestamp in an exported image is clamped to, so that
// two builds of the same recipe give the same manifest digest.
//
// The chain, first match wins: the --source-date-epoch flag, then
// $SOURCE_DATE_EPOCH, then the time of the last commit touching the
// samples (git, when minikit runs from its own checkout or --samples names
// a directory in a repository), then the same time stamped into the binary
// at build time (Stamp, by scripts/setup), then Fallback.
package sourcedate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Stamp is the time of the last commit touching samples/ when the binary
// was built, in unix seconds; scripts/setup sets it with
//
//	-ldflags "-X github.com/minikit/minikit/internal/sourcedate.Stamp=..."
//
// Empty in a binary built otherwise.
var Stamp string

// Fallback is the epoch when nothing else gives one: 1970-01-01, the
// convention of ko and Bazel's rules_oci. The images are reproducible, but
// their created time says nothing.
var Fallback = time.Unix(0, 0).UTC()

// Off is the flag value (as is the empty string) that turns reproducible
// timestamps off; Git asks for the git lookup alone.
const (
	Off = "off"
	Git = "git"
)

// Epoch is the chosen time and where it came from.
type Epoch struct {
	// Time is the epoch, UTC, whole seconds; zero when Off.
	Time time.Time
	// Off: images keep their build times (not reproducible).
	Off bool
	// Source says where Time came from, for messages:
	// "--source-date-epoch", "$SOURCE_DATE_EPOCH", "git log -- DIR",
	// "build stamp", "fallback".
	Source string
}

func (e Epoch) String() string {
	if e.Off {
		return "off (" + e.Source + ")"
	}
	return fmt.Sprintf("%d, %s (%s)", e.Time.Unix(), e.Time.Format(time.RFC3339), e.Source)
}

// Lookup is what Resolve chooses from.
type Lookup struct {
	// Flag is --source-date-epoch when given (unix seconds, "git", "off"
	// or ""), nil when not.
	Flag *string
	// Env is $SOURCE_DATE_EPOCH; empty counts as unset, as the
	// reproducible-builds specification says.
	Env string
	// SamplesDir is --samples, "" for the samples built into minikit.
	SamplesDir string
	// WorkDir is where to look for minikit's checkout when SamplesDir is
	// empty; "" is the current directory.
	WorkDir string
	// Stamp is the build stamp, normally the package's Stamp.
	Stamp string
}

// Resolve chooses the epoch (see the package comment). An explicit value
// that cannot be used is an error; in the default chain a missing git, a
// directory outside any repository or a binary without stamp just passes
// to the next candidate.
func Resolve(ctx context.Context, l Lookup) (Epoch, error) {
	if l.Flag != nil {
		return explicit(ctx, "--source-date-epoch", *l.Flag, l)
	}
	if l.Env != "" {
		return explicit(ctx, "$SOURCE_DATE_EPOCH", l.Env, l)
	}
	e, err := fromGit(ctx, l)
	switch {
	case err == nil:
		return e, nil
	case ctx.Err() != nil:
		return Epoch{}, ctx.Err()
	}
	if l.Stamp != "" {
		t, err := parseSeconds(l.Stamp)
		if err != nil {
			return Epoch{}, fmt.Errorf("build stamp %q (scripts/setup's -ldflags): %w", l.Stamp, err)
		}
		return Epoch{Time: t, Source: "build stamp: last commit touching samples/ when minikit was built"}, nil
	}
	return Epoch{Time: Fallback, Source: "fallback: no checkout, no build stamp"}, nil
}

// explicit resolves a value given by the user.
func explicit(ctx context.Context, from, v string, l Lookup) (Epoch, error) {
	switch strings.TrimSpace(v) {
	case Off, "":
		return Epoch{Off: true, Source: from}, nil
	case Git:
		e, err := fromGit(ctx, l)
		if err != nil {
			return Epoch{}, fmt.Errorf("%s=git: %w", from, err)
		}
		return e, nil
	}
	t, err := parseSeconds(v)
	if err != nil {
		return Epoch{}, fmt.Errorf("%s=%s: %w", from, v, err)
	}
	return Epoch{Time: t, Source: from}, nil
}

func parseSeconds(v string) (time.Time, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, errors.New("want unix seconds (0 or more), git or off")
	}
	return time.Unix(n, 0).UTC(), nil
}

// fromGit is the time of the last commit touching the samples: --samples
// DIR's, or samples/ in minikit's checkout around WorkDir.
func fromGit(ctx context.Context, l Lookup) (Epoch, error) {
	dir, path := l.SamplesDir, "."
	if dir == "" {
		top, err := checkout(ctx, l.WorkDir)
		if err != nil {
			return Epoch{}, err
		}
		dir, path = top, "samples"
	}
	out, err := git(ctx, dir, "log", "-1", "--format=%ct", "--", path)
	if err != nil {
		return Epoch{}, err
	}
	if out == "" {
		return Epoch{}, fmt.Errorf("no commit touches %s in %s", path, dir)
	}
	t, err := parseSeconds(out)
	if err != nil {
		return Epoch{}, fmt.Errorf("git log in %s: %q: %w", dir, out, err)
	}
	return Epoch{Time: t, Source: "git: last commit touching " + filepath.Join(dir, path)}, nil
}

// module is the first line of minikit's go.mod.
const module = "module github.com/minikit/minikit"

// checkout returns the top of minikit's git checkout holding dir, or an
// error when dir is in no repository or in another one (whose samples/
// are not the ones built into minikit).
func checkout(ctx context.Context, dir string) (string, error) {
	top, err := git(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(top, "go.mod"))
	if err != nil || !bytes.HasPrefix(mod, []byte(module+"\n")) {
		return "", fmt.Errorf("%s is not minikit's checkout (no go.mod with %q)", top, module)
	}
	if _, err := os.Stat(filepath.Join(top, "samples", "samples.go")); err != nil {
		return "", fmt.Errorf("minikit's checkout %s has no samples: %w", top, err)
	}
	return top, nil
}

// git runs git in dir and returns its trimmed output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	if dir != "" {
		args = append([]string{"-C", dir}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
	}
	return strings.TrimSpace(string(out)), nil
}
