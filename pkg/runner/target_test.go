package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	fstypes "github.com/tonistiigi/fsutil/types"

	"github.com/minikit/minikit/pkg/diagnose"
)

// The image config rules of ImageConfig, one at a time.
func TestImageConfigApply(t *testing.T) {
	base := ocispecs.Image{
		Platform: ocispecs.Platform{OS: "linux", Architecture: "amd64"},
		Config: ocispecs.ImageConfig{
			Env:          []string{"PATH=/base/bin", "LANG=C", "KEEP=1"},
			Entrypoint:   []string{"/entry"},
			Cmd:          []string{"base-cmd"},
			WorkingDir:   "/srv",
			User:         "nobody",
			Labels:       map[string]string{"a": "base", "b": "base"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}},
		},
		RootFS: ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString("l")}},
	}
	arm := ocispecs.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	cases := []struct {
		name    string
		c       ImageConfig
		scratch bool
		check   func(ocispecs.ImageConfig) string
	}{
		{"nothing set keeps the base", ImageConfig{}, false, func(c ocispecs.ImageConfig) string {
			if !slices.Equal(c.Env, base.Config.Env) || !slices.Equal(c.Entrypoint, []string{"/entry"}) || !slices.Equal(c.Cmd, []string{"base-cmd"}) ||
				c.WorkingDir != "/srv" || c.User != "nobody" || len(c.Labels) != 2 || len(c.ExposedPorts) != 1 {
				return fmt.Sprintf("%+v", c)
			}
			return ""
		}},
		{"env replaces a key in place and adds the others", ImageConfig{Env: []string{"LANG=C.UTF-8", "NEW=x=y"}}, false, func(c ocispecs.ImageConfig) string {
			if !slices.Equal(c.Env, []string{"PATH=/base/bin", "LANG=C.UTF-8", "KEEP=1", "NEW=x=y"}) {
				return fmt.Sprint(c.Env)
			}
			return ""
		}},
		{"labels and ports are added", ImageConfig{Labels: map[string]string{"b": "mine", "c": "mine"}, ExposedPorts: []string{"8080", "53/udp"}}, false, func(c ocispecs.ImageConfig) string {
			if c.Labels["a"] != "base" || c.Labels["b"] != "mine" || c.Labels["c"] != "mine" {
				return fmt.Sprint(c.Labels)
			}
			for _, p := range []string{"80/tcp", "8080/tcp", "53/udp"} {
				if _, ok := c.ExposedPorts[p]; !ok || len(c.ExposedPorts) != 3 {
					return fmt.Sprint(c.ExposedPorts)
				}
			}
			return ""
		}},
		{"workdir and user replace", ImageConfig{WorkingDir: "/app", User: "1000:1000"}, false, func(c ocispecs.ImageConfig) string {
			if c.WorkingDir != "/app" || c.User != "1000:1000" {
				return c.WorkingDir + " " + c.User
			}
			return ""
		}},
		{"a relative workdir is the base's", ImageConfig{WorkingDir: "sub/dir"}, false, func(c ocispecs.ImageConfig) string {
			if c.WorkingDir != "/srv/sub/dir" {
				return c.WorkingDir
			}
			return ""
		}},
		{"an entrypoint resets the cmd", ImageConfig{Entrypoint: []string{"/app"}}, false, func(c ocispecs.ImageConfig) string {
			if !slices.Equal(c.Entrypoint, []string{"/app"}) || c.Cmd != nil {
				return fmt.Sprint(c.Entrypoint, c.Cmd)
			}
			return ""
		}},
		{"entrypoint and cmd", ImageConfig{Entrypoint: []string{"/app"}, Cmd: []string{"--flag"}}, false, func(c ocispecs.ImageConfig) string {
			if !slices.Equal(c.Entrypoint, []string{"/app"}) || !slices.Equal(c.Cmd, []string{"--flag"}) {
				return fmt.Sprint(c.Entrypoint, c.Cmd)
			}
			return ""
		}},
		{"a cmd alone keeps the entrypoint", ImageConfig{Cmd: []string{"x"}}, false, func(c ocispecs.ImageConfig) string {
			if !slices.Equal(c.Entrypoint, []string{"/entry"}) || !slices.Equal(c.Cmd, []string{"x"}) {
				return fmt.Sprint(c.Entrypoint, c.Cmd)
			}
			return ""
		}},
		{"an empty, non-nil cmd clears it", ImageConfig{Cmd: []string{}}, false, func(c ocispecs.ImageConfig) string {
			if c.Cmd == nil || len(c.Cmd) != 0 {
				return fmt.Sprint(c.Cmd)
			}
			return ""
		}},
	}
	for _, tc := range cases {
		img := tc.c.Apply(base, tc.scratch, arm)
		if msg := tc.check(img.Config); msg != "" {
			t.Errorf("%s: %s", tc.name, msg)
		}
		if img.Architecture != "arm64" || img.Variant != "v8" || len(img.RootFS.DiffIDs) != 1 {
			t.Errorf("%s: platform %s, rootfs %v", tc.name, formatPlatform(img.Platform), img.RootFS)
		}
	}
	// The base is left alone.
	_ = ImageConfig{Env: []string{"LANG=x"}, Labels: map[string]string{"a": "x"}, ExposedPorts: []string{"1"}}.Apply(base, false, arm)
	if base.Config.Env[1] != "LANG=C" || base.Config.Labels["a"] != "base" || len(base.Config.ExposedPorts) != 1 {
		t.Errorf("Apply changed its base: %+v", base.Config)
	}

	// Scratch: WorkingDir /, Docker's PATH; a base without PATH gets it
	// appended.
	img := ImageConfig{Env: []string{"A=1"}}.Apply(ocispecs.Image{}, true, arm)
	if img.Config.WorkingDir != "/" || !slices.Equal(img.Config.Env, []string{"PATH=" + DefaultPath, "A=1"}) || img.Config.Labels != nil {
		t.Errorf("scratch: %+v", img.Config)
	}
	img = ImageConfig{}.Apply(ocispecs.Image{Config: ocispecs.ImageConfig{Env: []string{"LANG=C"}}}, false, arm)
	if !slices.Equal(img.Config.Env, []string{"LANG=C", "PATH=" + DefaultPath}) || img.Config.WorkingDir != "" {
		t.Errorf("a base without PATH: %+v", img.Config)
	}
	img = ImageConfig{Env: []string{"PATH=/mine"}}.Apply(ocispecs.Image{}, true, arm)
	if !slices.Equal(img.Config.Env, []string{"PATH=/mine"}) {
		t.Errorf("a PATH of the target's own: %v", img.Config.Env)
	}
}

func TestTargetValidate(t *testing.T) {
	llbf := func(context.Context, BuildInput) (llb.State, error) { return llb.Scratch(), nil }
	ok := Target{Name: "a.b-c_1", LLB: llbf, Config: ImageConfig{Env: []string{"A="}, ExposedPorts: []string{"8080/tcp", "53/udp", "1"}},
		Check: &Check{Env: []string{"X=1"}, Probe: &Probe{Port: 65535, Path: "/health"}}}
	if err := ok.validate(); err != nil {
		t.Errorf("valid target: %v", err)
	}
	for want, tg := range map[string]Target{
		"valid image tag":         {Name: "", LLB: llbf},
		"no LLB function":         {Name: "a"},
		"a source without a name": {Name: "a", LLB: llbf, Sources: []Source{{}}},
		`env "=x"`:                {Name: "a", LLB: llbf, Config: ImageConfig{Env: []string{"=x"}}},
		`exposed port "0"`:        {Name: "a", LLB: llbf, Config: ImageConfig{ExposedPorts: []string{"0"}}},
		`exposed port "80/xyz"`:   {Name: "a", LLB: llbf, Config: ImageConfig{ExposedPorts: []string{"80/xyz"}}},
		"empty key":               {Name: "a", LLB: llbf, Config: ImageConfig{Labels: map[string]string{"": "x"}}},
		`check: env "Y"`:          {Name: "a", LLB: llbf, Check: &Check{Env: []string{"Y"}}},
		"probe port 70000":        {Name: "a", LLB: llbf, Check: &Check{Probe: &Probe{Port: 70000}}},
		"negative":                {Name: "a", LLB: llbf, Check: &Check{Probe: &Probe{Port: 1, Timeout: -1}}},
		`probe path "x"`:          {Name: "a", LLB: llbf, Check: &Check{Probe: &Probe{Port: 1, Path: "x"}}},
		"an architecture":         {Name: "a", LLB: llbf, Platforms: []ocispecs.Platform{{OS: "linux"}}},
	} {
		if err := tg.validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: error %v, want %q", tg, err, want)
		}
	}
}

// Sources are told apart by value: the same value is one source, two
// values (even equal-looking) are two, and values that cannot be
// compared do not panic.
func TestSameFS(t *testing.T) {
	type comparable struct{ dir string }
	type holder struct{ v any }
	a, b := &comparable{"x"}, &comparable{"x"}
	m := map[string]int{}
	for _, c := range []struct {
		x, y any
		want bool
	}{
		{a, a, true},
		{a, b, false},
		{comparable{"x"}, comparable{"x"}, true},
		{comparable{"x"}, comparable{"y"}, false},
		{m, m, true},
		{m, map[string]int{}, false},
		{holder{[]int{1}}, holder{[]int{1}}, false}, // == would panic
		{a, comparable{"x"}, false},
	} {
		if got := sameFS(c.x, c.y); got != c.want {
			t.Errorf("sameFS(%#v, %#v) = %v", c.x, c.y, got)
		}
	}
}

func TestCheckExpected(t *testing.T) {
	for _, c := range []struct {
		check Check
		want  string
		host  bool
	}{
		{Check{}, "0", false},
		{Check{ExpectExit: 127}, "127", false},
		{Check{ExpectOutput: regexp.MustCompile(`^Hello`)}, `0, output matching "^Hello"`, false},
		{Check{Network: true}, "0", true},
		{Check{Probe: &Probe{Port: 8080}}, "answers :8080/", true},
		{Check{Probe: &Probe{Port: 80, Path: "/health"}}, "answers :80/health", true},
	} {
		if got := c.check.expected(); got != c.want || c.check.hostNetwork() != c.host {
			t.Errorf("%+v: expected %q (want %q), host network %v", c.check, got, c.want, c.check.hostNetwork())
		}
	}
	var none *Check
	if none.hostNetwork() {
		t.Error("no check needs the host network")
	}
}

// The builder's own platform is its first worker's first; a failure to
// ask is not remembered; a target's Platform, then the option, come
// first.
func TestPlatformDefault(t *testing.T) {
	calls := 0
	fail := true
	bp := &builderPlatform{list: func(context.Context) ([]*client.WorkerInfo, error) {
		calls++
		if fail {
			return nil, errors.New("unavailable")
		}
		return []*client.WorkerInfo{
			{ID: "none"},
			{ID: "w1", Platforms: []ocispecs.Platform{{OS: "linux", Architecture: "riscv64"}, {OS: "linux", Architecture: "amd64"}}},
		}, nil
	}}
	s := &solver{cfg: &config{}, own: bp}
	platform := func(t Target) (ocispecs.Platform, error) {
		ps, err := s.platforms(context.Background(), t)
		if err != nil {
			return ocispecs.Platform{}, err
		}
		if len(ps) != 1 {
			return ocispecs.Platform{}, fmt.Errorf("%d platforms", len(ps))
		}
		return ps[0], nil
	}
	if _, err := platform(Target{}); err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("failing builder: %v", err)
	}
	fail = false
	for range 2 {
		p, err := platform(Target{})
		if err != nil || p.Architecture != "riscv64" {
			t.Errorf("builder's platform: %v, %v", p, err)
		}
	}
	if calls != 2 {
		t.Errorf("workers listed %d times, want 2 (the failure, then once)", calls)
	}
	if p, _ := platform(Target{Platforms: []ocispecs.Platform{{OS: "linux", Architecture: "s390x"}}}); p.Architecture != "s390x" {
		t.Errorf("target's platform: %v", p)
	}
	s.cfg.platforms = []ocispecs.Platform{{OS: "linux", Architecture: "arm64"}}
	if p, _ := platform(Target{}); p.Architecture != "arm64" {
		t.Errorf("option's platform: %v", p)
	}
	two := []ocispecs.Platform{{OS: "linux", Architecture: "arm64"}, {OS: "linux", Architecture: "amd64"}}
	s.cfg.platforms = two
	if ps, err := s.platforms(context.Background(), Target{}); err != nil || !slices.EqualFunc(ps, two, func(a, b ocispecs.Platform) bool { return formatPlatform(a) == formatPlatform(b) }) {
		t.Errorf("option's platforms: %v, %v; want %v", ps, err, two)
	}
	empty := &builderPlatform{list: func(context.Context) ([]*client.WorkerInfo, error) { return nil, nil }}
	if _, err := empty.get(context.Background()); err == nil {
		t.Error("a builder with no worker has a platform")
	}
}

func TestOutputWriter(t *testing.T) {
	w := &outputWriter{tail: tailWriter{max: 2}, limit: 8}
	fmt.Fprint(w, "line1\nline2\n")
	fmt.Fprint(w, "line3\n")
	if string(w.bytes()) != "line1\nli" || !w.truncated() || strings.Join(w.tail.lines(), "|") != "line2|line3" {
		t.Errorf("kept %q (truncated %v), tail %q", w.bytes(), w.truncated(), w.tail.lines())
	}
	w = &outputWriter{tail: tailWriter{max: 2}, limit: 8}
	fmt.Fprint(w, "12345678")
	if w.truncated() || string(w.bytes()) != "12345678" {
		t.Errorf("exactly the limit: %q, truncated %v", w.bytes(), w.truncated())
	}
}

// Probes of one port take turns; other ports do not wait.
func TestPortLocks(t *testing.T) {
	l := newPortLocks()
	unlock, err := l.lock(context.Background(), 8080)
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.lock(context.Background(), 8081)
	if err != nil {
		t.Fatal(err)
	}
	other()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.lock(ctx, 8080); err == nil {
		t.Fatal("port 8080 locked twice")
	}
	got := make(chan struct{})
	go func() {
		u, err := l.lock(context.Background(), 8080)
		if err == nil {
			u()
		}
		close(got)
	}()
	unlock()
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the lock was not passed on")
	}
}

func TestPoll(t *testing.T) {
	var mu sync.Mutex
	asked := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		asked++
		if asked < 3 || r.URL.Path != "/ready" {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := poll(ctx, &Probe{Port: port, Path: "/ready"}); err != nil || asked != 3 {
		t.Errorf("poll: %v after %d requests, want nil after 3", err, asked)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := poll(short, &Probe{Port: port, Path: "/never"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("poll of a path that never answers 2xx: %v", err)
	}
}

// imageRef is a solved image for diagnose: a few files, one a symlink.
type imageRef struct {
	gateway.Reference
	files map[string]*fstypes.Stat // by absolute path
}

func (r imageRef) StatFile(_ context.Context, req gateway.StatRequest) (*fstypes.Stat, error) {
	st, ok := r.files[req.Path]
	if !ok {
		return nil, fs.ErrNotExist
	}
	if st.Linkname != "" { // BuildKit follows a final symlink
		return r.files[st.Linkname], nil
	}
	return st, nil
}

func (r imageRef) ReadDir(_ context.Context, req gateway.ReadDirRequest) ([]*fstypes.Stat, error) {
	var out []*fstypes.Stat
	for p, st := range r.files {
		dir, base := p[:strings.LastIndex(p, "/")+1], p[strings.LastIndex(p, "/")+1:]
		if dir == req.Path && (req.IncludePattern == "" || req.IncludePattern == base) {
			out = append(out, &fstypes.Stat{Path: base, Mode: st.Mode, Size: st.Size, Linkname: st.Linkname})
		}
	}
	return out, nil
}

func (r imageRef) ReadFile(context.Context, gateway.ReadRequest) ([]byte, error) {
	return nil, fs.ErrNotExist
}

// refFS.Lstat sees a symlink as a symlink, not as its target.
func TestRefFSLstat(t *testing.T) {
	ref := imageRef{files: map[string]*fstypes.Stat{
		"/lib64/ld-linux-x86-64.so.2":      {Mode: uint32(fs.ModeSymlink | 0o777), Linkname: "/lib/x86_64-linux-gnu/ld-2.36.so"},
		"/lib/x86_64-linux-gnu/ld-2.36.so": {Mode: 0o755, Size: 210000},
	}}
	f := refFS{ref}
	st, err := f.Lstat(context.Background(), "/lib64/ld-linux-x86-64.so.2")
	if err != nil || st.Mode&fs.ModeSymlink == 0 || st.Linkname != "/lib/x86_64-linux-gnu/ld-2.36.so" {
		t.Errorf("symlink: %+v, %v", st, err)
	}
	st, err = f.Lstat(context.Background(), "/lib/x86_64-linux-gnu/ld-2.36.so")
	if err != nil || !st.Mode.IsRegular() || st.Size != 210000 {
		t.Errorf("file: %+v, %v", st, err)
	}
	if _, err := f.Lstat(context.Background(), "/lib64/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// runGateway runs fake containers: each process prints stdout and stderr
// and exits with code, or, with serve, runs until it is signalled.
type runGateway struct {
	gateway.Client
	stdout, stderr string
	code           int
	serve          bool

	mu       sync.Mutex
	req      gateway.NewContainerRequest
	start    gateway.StartRequest
	released bool
	signals  []syscall.Signal
}

func (g *runGateway) NewContainer(_ context.Context, req gateway.NewContainerRequest) (gateway.Container, error) {
	g.mu.Lock()
	g.req = req
	g.mu.Unlock()
	return &runContainer{g: g}, nil
}

type runContainer struct {
	gateway.Container
	g *runGateway
}

func (c *runContainer) Start(_ context.Context, req gateway.StartRequest) (gateway.ContainerProcess, error) {
	c.g.mu.Lock()
	c.g.start = req
	c.g.mu.Unlock()
	fmt.Fprint(req.Stdout, c.g.stdout)
	fmt.Fprint(req.Stderr, c.g.stderr)
	p := &runProcess{g: c.g, done: make(chan struct{})}
	if !c.g.serve {
		close(p.done)
	}
	return p, nil
}

func (c *runContainer) Release(context.Context) error {
	c.g.mu.Lock()
	c.g.released = true
	c.g.mu.Unlock()
	return nil
}

type runProcess struct {
	gateway.ContainerProcess
	g    *runGateway
	once sync.Once
	done chan struct{}
}

func (p *runProcess) Wait() error {
	<-p.done
	if p.g.serve {
		return &gatewaypb.ExitError{ExitCode: 137}
	}
	if p.g.code != 0 {
		return &gatewaypb.ExitError{ExitCode: uint32(p.g.code)}
	}
	return nil
}

func (p *runProcess) Signal(_ context.Context, sig syscall.Signal) error {
	p.g.mu.Lock()
	p.g.signals = append(p.g.signals, sig)
	p.g.mu.Unlock()
	p.once.Do(func() { close(p.done) })
	return nil
}

// RunImage checks what the Check says: the exit code, the output, the
// arguments and environment it gives, the network, a probe.
func TestRunImageCheck(t *testing.T) {
	ctx := context.Background()
	img := ocispecs.Image{Config: ocispecs.ImageConfig{Entrypoint: []string{"/app"}, Cmd: []string{"--default"}, Env: []string{"PATH=/bin", "MODE=a"}, WorkingDir: "/w", User: "app"}}
	ref := imageRef{files: map[string]*fstypes.Stat{}}
	o := TestOptions{Timeout: 5 * time.Second, NetworkEnv: []string{"URL=https://127.0.0.1:1/"}}

	g := &runGateway{stdout: "Hello, world!\n"}
	out := RunImage(ctx, g, ref, img, amd64, Check{}, o)
	if !out.Matches || out.ExitCode != 0 || out.Kind != diagnose.OK || out.Expected != "0" || out.Network != "none" ||
		!slices.Equal(out.StdoutTail, []string{"Hello, world!"}) || !g.released {
		t.Errorf("exit 0: %+v (released %v)", out, g.released)
	}
	if !slices.Equal(g.start.Args, []string{"/app", "--default"}) || g.start.Cwd != "/w" || g.start.User != "app" ||
		!slices.Equal(g.start.Env, []string{"PATH=/bin", "MODE=a"}) || g.req.NetMode != pb.NetMode_NONE || g.req.Platform.Architecture != "amd64" {
		t.Errorf("started %+v in %+v", g.start, g.req)
	}

	g = &runGateway{stdout: "Hello, world!\n"}
	out = RunImage(ctx, g, ref, img, amd64, Check{Args: []string{"x", "y"}, Env: []string{"MODE=b", "EXTRA=1"}, Network: true,
		ExpectOutput: regexp.MustCompile(`(?m)^Hello, world!$`)}, o)
	if !out.Matches || out.Network != "host" || g.req.NetMode != pb.NetMode_HOST {
		t.Errorf("network run: %+v", out)
	}
	if !slices.Equal(g.start.Args, []string{"/app", "x", "y"}) || !slices.Equal(g.start.Env, []string{"PATH=/bin", "MODE=b", "URL=https://127.0.0.1:1/", "EXTRA=1"}) {
		t.Errorf("Args replace Cmd, Env is added: %v %v", g.start.Args, g.start.Env)
	}

	g = &runGateway{stdout: "Goodbye\n"}
	out = RunImage(ctx, g, ref, img, amd64, Check{ExpectOutput: regexp.MustCompile(`Hello`)}, o)
	if out.Matches || out.Kind != KindOutputMismatch || out.ExitCode != 0 || !strings.Contains(out.Reason, `"Hello"`) {
		t.Errorf("output mismatch: %+v", out)
	}

	g = &runGateway{code: 3, stderr: "boom\n"}
	out = RunImage(ctx, g, ref, img, amd64, Check{ExpectExit: 3}, o)
	if !out.Matches || out.ExitCode != 3 || out.Expected != "3" {
		t.Errorf("expected exit 3: %+v", out)
	}
	out = RunImage(ctx, g, ref, img, amd64, Check{}, o)
	if out.Matches || out.ExitCode != 3 || out.Kind != diagnose.Exited || !strings.Contains(out.Reason, "boom") {
		t.Errorf("unexpected exit 3: %+v", out)
	}

	// A server: it answers, or it does not in time.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "up") }))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	g = &runGateway{serve: true}
	out = RunImage(ctx, g, ref, img, amd64, Check{Probe: &Probe{Port: port}}, o)
	if !out.Matches || out.ExitCode != 0 || out.Kind != diagnose.OK || out.Expected != "answers :"+strconv.Itoa(port)+"/" ||
		out.Network != "host" || !slices.Contains(g.signals, syscall.SIGKILL) || !g.released {
		t.Errorf("probe answered: %+v, signals %v", out, g.signals)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // a port nothing answers on
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().(*net.TCPAddr).Port
	l.Close()
	g = &runGateway{serve: true}
	start := time.Now()
	out = RunImage(ctx, g, ref, img, amd64, Check{Probe: &Probe{Port: dead, Timeout: 300 * time.Millisecond}}, o)
	want := fmt.Sprintf("no answer on :%d/ after 300ms", dead)
	if out.Matches || out.Kind != KindNoAnswer || out.ExitCode != -1 || out.Reason != want || !g.released {
		t.Errorf("probe unanswered: %+v; want %q", out, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("an unanswered probe of 300ms took %s", d)
	}
	// A server that ends before answering is explained as any run.
	g = &runGateway{code: 2, stderr: "bind: address already in use\n"}
	out = RunImage(ctx, g, ref, img, amd64, Check{Probe: &Probe{Port: dead}}, o)
	if out.Matches || out.ExitCode != 2 || !strings.Contains(out.Reason, "address already in use") {
		t.Errorf("server exited: %+v", out)
	}

	// Interrupted: the process is killed and the container released.
	g = &runGateway{serve: true}
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel)
	out = RunImage(cctx, g, ref, img, amd64, Check{}, o)
	if out.Matches || !g.released || !slices.Contains(g.signals, syscall.SIGKILL) {
		t.Errorf("interrupted: %+v, released %v, signals %v", out, g.released, g.signals)
	}
}
