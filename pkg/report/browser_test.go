package report

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// chromium finds a headless browser. Without one the test is skipped,
// except under CI (CI=true), where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH: the browser test must run under CI (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH")
	return ""
}

// runChromium runs the browser headless on a page and returns its stdout.
func runChromium(t *testing.T, bin, page string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{
		"--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--window-size=1400,2000",
	}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), "file://"+page)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, stderr.Bytes())
	}
	return stdout.Bytes()
}

// The page as a real browser renders it: one .bar per built recipe in the
// DOM, and a screenshot that is a picture of something.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	rep := sampleReport()
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := WriteHTML(&buf, rep); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	dom := runChromium(t, bin, page, "--dump-dom")
	if !bytes.Contains(dom, []byte("data-recipe")) {
		t.Fatalf("the dumped DOM has no bars:\n%.2000s", dom)
	}
	checkPage(t, rep, parseHTML(t, dom))

	shot := filepath.Join(dir, "report.png")
	runChromium(t, bin, page, "--screenshot="+shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	b := img.Bounds()
	if b.Dx() < 1000 || b.Dy() < 1000 {
		t.Fatalf("screenshot is %v", b)
	}
	// The bars are drawn: the "added" orange (#e8892f) and the "base" blue
	// (#8fa9c9) are both on the picture, among many colours.
	colours := map[[3]uint32]bool{}
	orange, blue := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := [3]uint32{r >> 8, g >> 8, bl >> 8}
			colours[c] = true
			if near(c, [3]uint32{0xe8, 0x89, 0x2f}) {
				orange++
			}
			if near(c, [3]uint32{0x8f, 0xa9, 0xc9}) {
				blue++
			}
		}
	}
	if len(colours) < 20 || orange < 200 || blue < 200 {
		t.Errorf("the screenshot does not show the chart: %d colours, %d orange and %d blue samples", len(colours), orange, blue)
	}
	if out := os.Getenv("MINIKIT_SCREENSHOT_DIR"); out != "" {
		png, err := os.ReadFile(shot)
		if err == nil {
			err = os.WriteFile(filepath.Join(out, "report.png"), png, 0o644)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(out, "report.html"), buf.Bytes(), 0o644)
		}
		if err != nil {
			t.Errorf("keeping the screenshot: %v", err)
		}
	}
}

func near(a, b [3]uint32) bool {
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < -6 || d > 6 {
			return false
		}
	}
	return true
}
