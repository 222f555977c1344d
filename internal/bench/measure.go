package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/minikit/minikit/pkg/bake"
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
}

// CPU is the client's user+sys time.
func (u Usage) CPU() time.Duration { return u.User + u.Sys }

// args returns the client command line of a mode.
func (b *bench) args(m Mode) (bin string, args []string, dir string) {
	if m == Bake {
		args = []string{"bake", "--builder", b.builder, "-f", bake.File, "--progress", "quiet",
			"--provenance=false", "--set", "*.output=type=image"}
		for _, r := range b.cfg.Recipes {
			args = append(args, bake.TargetName(r.Name))
		}
		return b.cfg.Buildx, args, b.bakeDir
	}
	args = []string{"solve", "--addr", b.addr, "--progress", "quiet", "--sizes=false", "--format", "json"}
	switch m {
	case Minikit:
		args = append(args, "--compiler-cache=false")
	case Sequential:
		args = append(args, "--parallel", "1", "--compiler-cache=false")
	}
	for _, r := range b.cfg.Recipes {
		args = append(args, r.Name)
	}
	return b.cfg.Minikit, args, string(b.home)
}

// measure runs a mode's client once and returns what it used. A client
// that fails fails the benchmark.
func (b *bench) measure(ctx context.Context, m Mode) (Usage, error) {
	bin, args, dir := b.args(m)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, b.env
	var out tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	before, derr := daemonCPU(b.pid)
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	after, derr2 := daemonCPU(b.pid)
	if err != nil {
		return Usage{}, fmt.Errorf("bench: %s: %w\n%s", m.Describe(), err, out.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return Usage{}, fmt.Errorf("bench: %s: no resource usage for the client", m.Describe())
	}
	u := Usage{
		Wall:   wall,
		User:   time.Duration(ru.Utime.Nano()),
		Sys:    time.Duration(ru.Stime.Nano()),
		MaxRSS: ru.Maxrss * 1024, // kilobytes on Linux
	}
	if derr == nil && derr2 == nil {
		u.DaemonCPU = after - before
	}
	return u, nil
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
