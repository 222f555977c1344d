package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/minikit/minikit/pkg/bake"
	"github.com/minikit/minikit/pkg/llbdefs"
	"github.com/minikit/minikit/pkg/report"
)

// Usage is what one client process used, and what the daemon did
// meanwhile.
type Usage struct {
	Wall time.Duration // from start to exit
	User time.Duration // client CPU time in user mode
	Sys  time.Duration // client CPU time in the kernel
	// MaxRSS is the client's peak resident set, in bytes.
	MaxRSS int64
	// DaemonCPU is the CPU time (user+sys) buildkitd and the processes it
	// waited for (runc, build steps) spent during the run; 0 if unknown.
	DaemonCPU time.Duration
	// Load is the 1-minute load average when the run ended.
	Load float64
}

// CPU is the client's user+sys time.
func (u Usage) CPU() time.Duration { return u.User + u.Sys }

// output is one client run: what it used, what it printed on stdout
// (minikit's JSON report) and the digests it built (its metadata file:
// target name -> manifest digest).
type output struct {
	mode    Mode
	usage   Usage
	report  []byte
	digests map[string]string
}

// args returns the client command line of a mode, writing its metadata
// to meta.
func (b *bench) args(m Mode, meta string) (bin string, args []string, dir string) {
	if m == Bake {
		args = []string{"bake", "--builder", b.builder, "-f", bake.File, "--progress", "quiet",
			"--provenance=false", "--set", "*.output=type=image", "--metadata-file", meta}
		for _, r := range b.cfg.Recipes {
			args = append(args, bake.TargetName(r.Name))
		}
		return b.cfg.Buildx, args, b.bakeDir
	}
	args = []string{"solve", "--addr", b.addr, "--progress", "quiet", "--format", "json", "--metadata-file", meta}
	switch m {
	case Solve, SolveLayers:
		args = append(args, "--timings")
	case SolveLocked:
		args = append(args, "--timings", "--compiler-cache=locked")
	case MinikitCache:
		args = append(args, "--sizes=false")
	case Minikit:
		args = append(args, "--sizes=false", "--compiler-cache=false")
	case Sequential:
		args = append(args, "--sizes=false", "--compiler-cache=false", "--parallel", "1")
	}
	for _, r := range b.cfg.Recipes {
		args = append(args, r.Name)
	}
	return b.cfg.Minikit, args, string(b.home)
}

// measure runs a mode's client once and returns what it used and
// produced. A client that fails fails the benchmark.
func (b *bench) measure(ctx context.Context, m Mode) (output, error) {
	return b.run(ctx, m, false)
}

// verify runs a minikit mode that does not measure sizes again, untimed,
// measuring them: the images it built, from the cache, for the check.
func (b *bench) verify(ctx context.Context, m Mode) (output, error) {
	return b.run(ctx, m, true)
}

func (b *bench) run(ctx context.Context, m Mode, sized bool) (output, error) {
	meta := filepath.Join(string(b.home), "metadata-"+string(m)+".json")
	if err := os.Remove(meta); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return output{}, fmt.Errorf("bench: %w", err)
	}
	bin, args, dir := b.args(m, meta)
	if sized {
		args = slices.DeleteFunc(args, func(a string) bool { return a == "--sizes=false" })
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, b.env
	var stdout bytes.Buffer
	var stderr tailBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	before, derr := daemonCPU(b.pid)
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	after, derr2 := daemonCPU(b.pid)
	if err != nil {
		return output{}, fmt.Errorf("bench: %s: %w\n%s%s", m.Describe(), err, failures(stdout.Bytes()), stderr.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return output{}, fmt.Errorf("bench: %s: no resource usage for the client", m.Describe())
	}
	out := output{mode: m, usage: Usage{
		Wall:   wall,
		User:   time.Duration(ru.Utime.Nano()),
		Sys:    time.Duration(ru.Stime.Nano()),
		MaxRSS: ru.Maxrss * 1024, // kilobytes on Linux
	}}
	if derr == nil && derr2 == nil {
		out.usage.DaemonCPU = after - before
	}
	if la, err := loadAverage(); err == nil {
		out.usage.Load = la[0]
	}
	if m.minikit() {
		out.report = stdout.Bytes()
	}
	if out.digests, err = readDigests(meta, m, b.cfg.Recipes); err != nil {
		return output{}, err
	}
	return out, nil
}

// readDigests reads a metadata file (minikit's, or bake's, keyed by bake
// target): each recipe's manifest digest.
func readDigests(path string, m Mode, recipes []llbdefs.Recipe) (map[string]string, error) {
	dt, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %s: metadata file: %w", m.Describe(), err)
	}
	var doc map[string]struct {
		Digest string `json:"containerimage.digest"`
	}
	if err := json.Unmarshal(dt, &doc); err != nil {
		return nil, fmt.Errorf("bench: %s: metadata file: %w", m.Describe(), err)
	}
	out := map[string]string{}
	for _, r := range recipes {
		k := r.Name
		if m == Bake {
			k = bake.TargetName(r.Name)
		}
		if e, ok := doc[k]; ok && e.Digest != "" {
			out[r.Name] = e.Digest
		}
	}
	return out, nil
}

// failures lists the recipes of a minikit JSON report that did not end
// as expected, with their errors, a line each; "" for anything else.
func failures(stdout []byte) string {
	rep, err := report.ReadJSON(bytes.NewReader(stdout))
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, r := range rep.Recipes {
		if r.Status != report.StatusOK && r.Status != report.StatusExpectedFailure {
			fmt.Fprintf(&b, "%s: %s: %s\n", r.Name, r.Status, strings.Join(strings.Fields(r.Error), " "))
		}
	}
	return b.String()
}

// buildx runs docker-buildx with the bench's configuration.
func (b *bench) buildx(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, b.cfg.Buildx, args...)
	cmd.Dir, cmd.Env = string(b.home), b.env
	return cmd.CombinedOutput()
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// daemonCPU returns the CPU time of process pid and its waited-for
// children (fields 14 to 17 of /proc/PID/stat: utime, stime, cutime,
// cstime).
func daemonCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("no daemon process")
	}
	dt, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(dt)
}

func parseStatCPU(dt []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(dt, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat")
	}
	f := strings.Fields(string(dt[i+1:]))
	// f[0] is field 3 (state): utime is field 14, f[11].
	if len(f) < 15 {
		return 0, fmt.Errorf("malformed /proc stat")
	}
	var ticks int64
	for _, s := range f[11:15] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() ([3]float64, error) {
	var la [3]float64
	dt, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return la, err
	}
	f := strings.Fields(string(dt))
	if len(f) < 3 {
		return la, fmt.Errorf("malformed /proc/loadavg")
	}
	for i := range la {
		if la[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return la, err
		}
	}
	return la, nil
}

// tailBuffer keeps the last 16 KiB written to it: a client's output, for
// the error message when it fails.
type tailBuffer struct{ b []byte }

const tailMax = 16 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = append(t.b[:0], t.b[len(t.b)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
