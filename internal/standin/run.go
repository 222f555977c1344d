package standin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// progress prints one line per step, with the time since the build started.
// Steps still running after heartbeat print a line every heartbeat.
type progress struct {
	w         io.Writer
	start     time.Time
	heartbeat time.Duration
	mu        sync.Mutex
	nextID    int
	innermost int // id of the most recently started step still running
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w, start: time.Now(), heartbeat: 10 * time.Second}
}

func (p *progress) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// step runs fn, printing its start, a heartbeat while it runs (only for
// the innermost running step), and its end.
func (p *progress) step(ctx context.Context, what string, fn func(context.Context) error) error {
	p.printf("%s ...", what)
	p.mu.Lock()
	p.nextID++
	id, outer := p.nextID, p.innermost
	p.innermost = id
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.innermost = outer
		p.mu.Unlock()
	}()
	t0 := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(p.heartbeat)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				p.mu.Lock()
				mine := p.innermost == id
				p.mu.Unlock()
				if mine {
					p.printf("%s: still running (%.0fs)", what, time.Since(t0).Seconds())
				}
			}
		}
	}()
	err := fn(ctx)
	close(done)
	wg.Wait()
	if err != nil {
		p.printf("%s: FAILED after %.1fs", what, time.Since(t0).Seconds())
		return err
	}
	p.printf("%s: done in %.1fs", what, time.Since(t0).Seconds())
	return nil
}

// runner runs external commands, appending their output to a log file and
// keeping the tail for error messages.
type runner struct {
	logPath string
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	s := strings.TrimSpace(string(t.buf))
	lines := strings.Split(s, "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// run runs name with args; stdout is returned when capture is set,
// otherwise it goes to the log like stderr.
func (r *runner) run(ctx context.Context, dir string, env []string, capture bool, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	cmd.Stdin = nil
	// Own process group, so cancelling kills apt/dpkg children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second

	tail := &tailBuffer{max: 4096}
	var logw io.Writer = tail
	if r.logPath != "" {
		f, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		defer f.Close()
		fmt.Fprintf(f, "\n$ %s %s\n", name, strings.Join(args, " "))
		logw = io.MultiWriter(f, tail)
	}
	var out bytes.Buffer
	if capture {
		cmd.Stdout = &out
	} else {
		cmd.Stdout = logw
	}
	cmd.Stderr = logw
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", name, ctx.Err())
		}
		msg := tail.String()
		if msg != "" {
			msg = "\n" + msg
		}
		if r.logPath != "" {
			msg += "\n(full log: " + r.logPath + ")"
		}
		return nil, fmt.Errorf("%s %s: %w%s", name, strings.Join(args, " "), err, msg)
	}
	return out.Bytes(), nil
}
