package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process describes a helper process that Ensure starts, detached, before
// buildkitd: minikit's stand-in registry. Its pid, record and log files are
// kept in Home.Registry() as registry.pid, registry.json and registry.log, so
// the helper must not write files of those names itself.
type Process struct {
	// Name is used in messages ("starting registry ...").
	Name string
	// Args is the command line; Args[0] is the executable (a path, or a name
	// looked up on PATH).
	Args []string
	// Env is added to minikit's own environment.
	Env []string
	// Identity says what the helper serves and how it is configured (for
	// the stand-in registry: its serving version, layout generation,
	// listen address, secret file). A running helper with the same Identity
	// is reused whichever executable started it, so that two minikit
	// binaries sharing a home do not restart each other's helper; one with
	// another Identity is restarted. Empty: Args and Env identify it.
	Identity string
	// Addr is the host:port the helper serves on, if any: Status reports
	// it, and when the helper exits at once Ensure tells whether another
	// program holds it (ErrAddrInUse).
	Addr string
	// Ready, when set, blocks until the process serves (or ctx ends). Ensure
	// calls it after starting the process, watching meanwhile that the
	// process still runs, and before reusing a running one (with a short
	// deadline; a helper that fails it is restarted).
	Ready func(ctx context.Context) error
}

// displayName is Name, or "registry".
func (p *Process) displayName() string {
	if p.Name == "" {
		return "registry"
	}
	return p.Name
}

// fingerprint identifies the helper for reuse (see Identity).
func (p *Process) fingerprint() string {
	h := sha256.New()
	if p.Identity != "" {
		fmt.Fprintf(h, "%s\nidentity\n%s\n", fingerprintFormat, p.Identity)
	} else {
		fmt.Fprintf(h, "%s\nargs\n%s\n%s\n", fingerprintFormat, strings.Join(p.Args, "\x00"), strings.Join(p.Env, "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// procRecord is what minikit knows about a detached process it started. It is
// stored as JSON beside a plain pid file.
type procRecord struct {
	PID int `json:"pid"`
	// StartTicks is field 22 of /proc/<pid>/stat: with the pid it identifies
	// the process, so a recycled pid is not mistaken for ours.
	StartTicks  uint64            `json:"start_ticks"`
	Args        []string          `json:"args"`
	Fingerprint string            `json:"fingerprint"`
	Started     time.Time         `json:"started"`
	Labels      map[string]string `json:"labels,omitempty"`
}

// tracked is a detached process known by its files in dir:
// <name>.pid (the pid, for people and scripts), <name>.json (procRecord)
// and <name>.log (stdout and stderr).
type tracked struct {
	dir  string
	name string
}

func (t tracked) pidFile() string    { return filepath.Join(t.dir, t.name+".pid") }
func (t tracked) recordFile() string { return filepath.Join(t.dir, t.name+".json") }
func (t tracked) logFile() string    { return filepath.Join(t.dir, t.name+".log") }

// start runs args in a new session (so it outlives minikit and its terminal),
// stdin from /dev/null, stdout and stderr appended to the log file (the
// previous log is kept as <name>.log.1), and records it.
func (t tracked) start(args, env []string, fingerprint string, labels map[string]string) (procRecord, error) {
	if len(args) == 0 {
		return procRecord{}, fmt.Errorf("start %s: empty command line", t.name)
	}
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return procRecord{}, fmt.Errorf("start %s: %w", t.name, err)
	}
	if fi, err := os.Stat(t.logFile()); err == nil && fi.Size() > 0 {
		_ = os.Rename(t.logFile(), t.logFile()+".1")
	}
	logf, err := os.OpenFile(t.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return procRecord{}, fmt.Errorf("start %s: %w", t.name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "minikit: %s starting %s\n", time.Now().Format(time.RFC3339), strings.Join(args, " "))

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = t.dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return procRecord{}, fmt.Errorf("start %s: %w", t.name, err)
	}
	pid := cmd.Process.Pid
	// Not yet reaped, so /proc/<pid> exists even if it exited already.
	ticks, _, err := procStat(pid)
	// Reap it if it exits while minikit still runs; otherwise it is
	// inherited by init when minikit exits.
	go func() { _ = cmd.Wait() }()
	if err != nil {
		return procRecord{}, fmt.Errorf("start %s: %w", t.name, err)
	}
	rec := procRecord{
		PID:         pid,
		StartTicks:  ticks,
		Args:        args,
		Fingerprint: fingerprint,
		Started:     time.Now().UTC(),
		Labels:      labels,
	}
	if err := t.write(rec); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return procRecord{}, err
	}
	return rec, nil
}

func (t tracked) write(rec procRecord) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("record %s: %w", t.name, err)
	}
	if err := writeFileAtomic(t.recordFile(), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("record %s: %w", t.name, err)
	}
	if err := writeFileAtomic(t.pidFile(), []byte(strconv.Itoa(rec.PID)+"\n"), 0o600); err != nil {
		return fmt.Errorf("record %s: %w", t.name, err)
	}
	return nil
}

// load reads the record; ok is false when there is none. running says
// whether the recorded process is still alive.
func (t tracked) load() (rec procRecord, ok, running bool, err error) {
	data, err := os.ReadFile(t.recordFile())
	if errors.Is(err, fs.ErrNotExist) {
		return procRecord{}, false, false, nil
	}
	if err != nil {
		return procRecord{}, false, false, fmt.Errorf("read %s record: %w", t.name, err)
	}
	if err := json.Unmarshal(data, &rec); err != nil || rec.PID <= 0 {
		// A torn or foreign file: treat as no record.
		return procRecord{}, false, false, nil
	}
	return rec, true, alive(rec), nil
}

// stop ends the recorded process: SIGTERM, up to grace for it to exit, then
// SIGKILL to its whole process group. It removes the pid and record files.
// Stopping a process that is not running is not an error. stopped reports
// whether a live process was signalled.
func (t tracked) stop(ctx context.Context, grace time.Duration) (stopped bool, err error) {
	rec, ok, running, err := t.load()
	if err != nil {
		return false, err
	}
	if ok && running {
		stopped = true
		if err := syscall.Kill(rec.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return true, fmt.Errorf("stop %s (pid %d): %w", t.name, rec.PID, err)
		}
		if !waitGone(ctx, rec, grace) {
			if ctx.Err() != nil {
				return true, fmt.Errorf("stop %s (pid %d): %w", t.name, rec.PID, ctx.Err())
			}
			// It leads its own session and process group: kill them all.
			if err := syscall.Kill(-rec.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return true, fmt.Errorf("stop %s (pid %d): %w", t.name, rec.PID, err)
			}
			if !waitGone(ctx, rec, 5*time.Second) {
				return true, fmt.Errorf("stop %s (pid %d): still running after SIGKILL", t.name, rec.PID)
			}
		}
	}
	for _, f := range []string{t.pidFile(), t.recordFile()} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return stopped, fmt.Errorf("stop %s: %w", t.name, err)
		}
	}
	return stopped, nil
}

// waitGone polls until the process is gone, d has passed or ctx ends.
func waitGone(ctx context.Context, rec procRecord, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if !alive(rec) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return !alive(rec)
		case <-tick.C:
		}
	}
}

// alive reports whether the recorded process still runs: the pid exists, is
// not a zombie, and started when the recorded one did.
func alive(rec procRecord) bool {
	ticks, state, err := procStat(rec.PID)
	if err != nil {
		return false
	}
	if state == 'Z' || state == 'X' || state == 'x' {
		return false
	}
	return rec.StartTicks == 0 || ticks == rec.StartTicks
}

// procStat returns the start time (clock ticks since boot) and state of pid
// from /proc/<pid>/stat.
func procStat(pid int) (startTicks uint64, state byte, err error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseProcStat(data)
}

func parseProcStat(data []byte) (startTicks uint64, state byte, err error) {
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
	// split after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, errors.New("malformed /proc stat")
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, errors.New("malformed /proc stat")
	}
	startTicks, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("malformed /proc stat: %w", err)
	}
	return startTicks, fields[0][0], nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place, so readers never see a torn file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, perm)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
	}
	return werr
}

// tailFile returns the last n lines of a file, or a note saying why not.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const maxRead = 64 << 10
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off := max(fi.Size()-maxRead, 0)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
