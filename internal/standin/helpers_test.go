package standin

import (
	"bytes"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// amd64Only is what store takes for one linux/amd64 image.
func amd64Only(img v1.Image) map[Platform]v1.Image {
	return map[Platform]v1.Image{LinuxAMD64: img}
}

// safeBuffer is a bytes.Buffer safe for the registry's logger and the test.
type safeBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// mknodWhiteout makes an overlayfs whiteout: a 0/0 character device.
func mknodWhiteout(p string) error {
	return unix.Mknod(p, unix.S_IFCHR|0o000, 0)
}
