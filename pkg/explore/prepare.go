package explore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/platforms"
	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/util/progress/progressui"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"

	"github.com/minikit/minikit/pkg/llbdefs"
)

// What the program needs, and how Explore tells.
//
//   - A Go program needs the CA bundle when crypto/x509 is among its
//     dependencies: the first solve runs `go list -deps` on its main
//     package in the golang image (sharing the variants' module cache,
//     so the dependencies it downloads are there for them) and reads the
//     list through the gateway. That is every program that can verify a
//     TLS certificate (net/http's client links it): more than those that
//     do, never fewer. It needs the time zone database when its main
//     package calls time.LoadLocation (a look at its sources: calls in
//     its dependencies are not seen), unless it links time/tzdata, which
//     embeds the database.
//   - C: the CA bundle when a source includes OpenSSL's, curl's, GnuTLS'
//     or mbed TLS' headers. Rust: when Cargo.toml depends on reqwest,
//     ureq, rustls, native-tls, openssl or hyper's TLS crates (not
//     webpki-roots, which embeds its roots); the time zone database for
//     tz-rs or tzfile. Python and Java run on images that have both.
//
// What a run base has is read from the image itself in the first solve:
// whether /etc/ssl/certs/ca-certificates.crt, /usr/share/zoneinfo and
// /bin/sh exist in it. A base that lacks what the program needs gets it
// copied from the distroless static image (Candidates).

// prepared is what the first solve learned.
type prepared struct {
	facts    Facts
	variants []VariantOutcome
}

// builderPlatform is the platform of c's first worker, what the runner
// builds for by default.
func builderPlatform(ctx context.Context, c *client.Client) (ocispecs.Platform, error) {
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		return ocispecs.Platform{}, fmt.Errorf("explore: list buildkitd's workers: %w", err)
	}
	for _, w := range ws {
		if len(w.Platforms) > 0 {
			return platforms.Normalize(w.Platforms[0]), nil
		}
	}
	return ocispecs.Platform{}, errors.New("explore: buildkitd has no worker with a platform")
}

// prepare runs the first solve: every build variant's stage (the
// executable's size), every base image (what it holds) and, for Go, the
// dependency list, all at once in one build.
func prepare(ctx context.Context, c *client.Client, pl Plan, fsys fsutil.FS, platform ocispecs.Platform, o Options) (*prepared, error) {
	p := pl.Program
	out := &prepared{facts: KnownFacts(p)}
	out.variants = make([]VariantOutcome, len(pl.Variants))
	for i, v := range pl.Variants {
		out.variants[i] = VariantOutcome{Name: v.Name, Flags: v.Flags, Image: v.Image}
	}
	images := pl.images()

	statusCh := make(chan *client.SolveStatus)
	tr := &vertexLog{vertices: map[digest.Digest]*vertexEntry{}}
	disp := make(chan *client.SolveStatus)
	displayDone := make(chan struct{})
	mode := progressui.DisplayMode(progressMode(o.ProgressMode))
	if o.ProgressOut != nil && mode != progressui.QuietMode {
		d, err := progressui.NewDisplay(o.ProgressOut, mode)
		if err != nil {
			return nil, fmt.Errorf("explore: progress display: %w", err)
		}
		go func() {
			defer close(displayDone)
			_, _ = d.UpdateFrom(context.Background(), disp)
		}()
	} else {
		go func() {
			defer close(displayDone)
			for range disp {
			}
		}()
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for ss := range statusCh {
			tr.add(ss)
			disp <- ss
		}
		close(disp)
	}()

	var mu sync.Mutex
	var depsErr error
	failedAt := make([]digest.Digest, len(pl.Variants))
	opt := client.SolveOpt{
		LocalMounts: map[string]fsutil.FS{llbdefs.SamplesName: fsys},
		Session:     []session.Attachable{authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{AuthConfigProvider: authprovider.LoadAuthConfig(dockerconfig.LoadDefaultConfigFile(io.Discard))})},
		Internal:    true,
	}
	_, err := c.Build(ctx, opt, llbdefs.Product, func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		src := llbdefs.Sources{Context: llbdefs.SamplesSource(), Platform: platform, Resolver: gw}
		solve := func(st llb.State) (gateway.Reference, error) {
			def, err := st.Marshal(ctx, llb.Platform(platform))
			if err != nil {
				return nil, err
			}
			r, err := gw.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), Evaluate: true})
			if err != nil {
				return nil, err
			}
			return r.SingleRef()
		}
		var wg sync.WaitGroup
		for i, v := range pl.Variants {
			if v.Image == "" {
				continue // nothing to build: the run stage copies from the context
			}
			wg.Go(func() {
				ref, err := solve(v.Stage.State(src))
				var size int64
				if err == nil && v.Native {
					size, err = statFile(ctx, ref, v.Exe)
				}
				mu.Lock()
				defer mu.Unlock()
				vo := &out.variants[i]
				if err != nil {
					vo.Err = fmt.Errorf("build variant %s: %w", v.Name, err)
					vo.Error = vo.Err.Error()
					failedAt[i] = failedVertex(err)
					return
				}
				vo.ExeBytes = size
			})
		}
		for _, img := range images {
			wg.Go(func() {
				ref, err := solve(llb.Image(img, llb.Platform(platform)))
				if err != nil {
					return // the candidates on it fail to build, saying why
				}
				var bf BaseFacts
				_, e1 := statFile(ctx, ref, caBundle)
				_, e2 := statFile(ctx, ref, zoneinfo)
				_, e3 := statFile(ctx, ref, "/bin/sh")
				bf.CA, bf.TZ, bf.Shell = e1 == nil, e2 == nil, e3 == nil
				mu.Lock()
				out.facts.Bases[img] = bf
				mu.Unlock()
			})
		}
		if p.Kind == Go {
			wg.Go(func() {
				ref, err := solve(goListDeps(p, pl.GoEnv).State(src))
				var dt []byte
				if err == nil {
					dt, err = ref.ReadFile(ctx, gateway.ReadRequest{Filename: depsFile})
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					depsErr = err
					return
				}
				deps := readLines(dt)
				out.facts.NeedsCA = slices.Contains(deps, "crypto/x509")
				out.facts.NeedsTZ = p.NeedsTZ && !slices.Contains(deps, "time/tzdata")
			})
		}
		wg.Wait()
		return gateway.NewResult(), nil
	}, statusCh)
	<-drained
	<-displayDone
	for i, d := range failedAt {
		if d != "" {
			out.variants[i].FailedVertex, out.variants[i].FailedLog = tr.failure(d)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("explore: interrupted: %w", context.Cause(ctx))
		}
		return nil, fmt.Errorf("explore: first solve: %w", err)
	}
	if depsErr != nil {
		logf(o.Log, "go list -deps failed (%s): the CA bundle is added only if a variant needs it and the sources say so", firstLine(depsErr.Error()))
	}
	return out, nil
}

// images lists the base images the plan's candidates start from, and
// their build images, each once, scratch left out.
func (pl Plan) images() []string {
	var out []string
	add := func(img string) {
		if img != "" && !slices.Contains(out, img) {
			out = append(out, img)
		}
	}
	for _, v := range pl.Variants {
		for _, b := range pl.bases(v) {
			add(v.baseImage(b))
		}
	}
	return out
}

// statFile returns the size of name in ref (symlinks followed).
func statFile(ctx context.Context, ref gateway.Reference, name string) (int64, error) {
	st, err := ref.StatFile(ctx, gateway.StatRequest{Path: name})
	if err != nil {
		return 0, err
	}
	return st.Size, nil
}

func readLines(dt []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(dt))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// vertexLog keeps each vertex's name and last log lines from a build's
// status stream, to say which step of a variant failed and what it
// printed.
type vertexLog struct {
	mu       sync.Mutex
	vertices map[digest.Digest]*vertexEntry
}

type vertexEntry struct {
	name  string
	err   string
	lines []string
	part  []byte
}

// logTail is how many lines of a failed step's output are kept.
const logTail = 10

func (t *vertexLog) entry(d digest.Digest) *vertexEntry {
	e, ok := t.vertices[d]
	if !ok {
		e = &vertexEntry{}
		t.vertices[d] = e
	}
	return e
}

func (t *vertexLog) add(ss *client.SolveStatus) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, v := range ss.Vertexes {
		e := t.entry(v.Digest)
		if v.Name != "" {
			e.name = v.Name
		}
		if v.Error != "" {
			e.err = v.Error
		}
	}
	for _, l := range ss.Logs {
		e := t.entry(l.Vertex)
		data := append(e.part, l.Data...)
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				break
			}
			e.lines = append(e.lines, string(bytes.TrimRight(data[:i], "\r")))
			data = data[i+1:]
		}
		e.part = append([]byte(nil), data...)
		if len(e.lines) > logTail {
			e.lines = slices.Clone(e.lines[len(e.lines)-logTail:])
		}
	}
}

// failedVertex is the step a build error comes from, when BuildKit says
// which (errdefs.VertexError); "" otherwise.
func failedVertex(err error) digest.Digest {
	var ve *errdefs.VertexError
	if !errors.As(err, &ve) || ve.Vertex == nil {
		return ""
	}
	return digest.Digest(ve.Digest)
}

// failure names the step d and gives its last lines of output.
func (t *vertexLog) failure(d digest.Digest) (string, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.vertices[d]
	if !ok {
		return "", nil
	}
	lines := slices.Clone(e.lines)
	if len(e.part) > 0 {
		lines = append(lines, string(e.part))
	}
	if len(lines) > logTail {
		lines = lines[len(lines)-logTail:]
	}
	return e.name, lines
}
