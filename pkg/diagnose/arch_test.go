package diagnose

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// tinyELF is a small 64-bit little-endian ELF executable for machine m:
// a PT_INTERP naming interp ("" for none) and a .dynamic section whose
// DT_NEEDED entries name needed, with the section headers debug/elf reads.
// No code: these files are only parsed.
func tinyELF(t *testing.T, m elf.Machine, interp string, needed ...string) string {
	t.Helper()
	const (
		ehdrSize = 64
		phdrSize = 56
		shdrSize = 64
	)
	le := binary.LittleEndian
	nPhdr := 0
	if interp != "" {
		nPhdr = 1
	}
	// The data after the headers: interp, .dynstr, .dynamic, .shstrtab.
	var data bytes.Buffer
	base := uint64(ehdrSize + nPhdr*phdrSize)
	interpOff := base + uint64(data.Len())
	if interp != "" {
		data.WriteString(interp + "\x00")
	}
	dynstrOff := base + uint64(data.Len())
	data.WriteByte(0)
	var strOffs []uint64
	for _, n := range needed {
		strOffs = append(strOffs, uint64(data.Len())-(dynstrOff-base))
		data.WriteString(n + "\x00")
	}
	dynstrSize := base + uint64(data.Len()) - dynstrOff
	for data.Len()%8 != 0 {
		data.WriteByte(0)
	}
	dynOff := base + uint64(data.Len())
	for _, o := range strOffs {
		_ = binary.Write(&data, le, [2]uint64{uint64(elf.DT_NEEDED), o})
	}
	_ = binary.Write(&data, le, [2]uint64{uint64(elf.DT_NULL), 0})
	dynSize := base + uint64(data.Len()) - dynOff
	shstrOff := base + uint64(data.Len())
	shstr := "\x00.interp\x00.dynstr\x00.dynamic\x00.shstrtab\x00"
	name := func(s string) uint32 { return uint32(strings.Index(shstr, "\x00"+s+"\x00") + 1) }
	data.WriteString(shstr)
	for data.Len()%8 != 0 {
		data.WriteByte(0)
	}
	shoff := base + uint64(data.Len())

	var f bytes.Buffer
	_ = binary.Write(&f, le, elf.Header64{
		Ident: [16]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:  uint16(elf.ET_EXEC), Machine: uint16(m), Version: uint32(elf.EV_CURRENT),
		Phoff: ehdrSize, Shoff: shoff, Ehsize: ehdrSize,
		Phentsize: phdrSize, Phnum: uint16(nPhdr), Shentsize: shdrSize, Shnum: 5, Shstrndx: 4,
	})
	if interp != "" {
		_ = binary.Write(&f, le, elf.Prog64{Type: uint32(elf.PT_INTERP), Flags: uint32(elf.PF_R), Off: interpOff,
			Vaddr: interpOff, Paddr: interpOff, Filesz: uint64(len(interp) + 1), Memsz: uint64(len(interp) + 1), Align: 1})
	}
	f.Write(data.Bytes())
	interpSize := uint64(0)
	if interp != "" {
		interpSize = uint64(len(interp) + 1)
	}
	for _, sh := range []elf.Section64{
		{},
		{Name: name(".interp"), Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: interpOff, Size: interpSize, Addralign: 1},
		{Name: name(".dynstr"), Type: uint32(elf.SHT_STRTAB), Flags: uint64(elf.SHF_ALLOC), Off: dynstrOff, Size: dynstrSize, Addralign: 1},
		{Name: name(".dynamic"), Type: uint32(elf.SHT_DYNAMIC), Flags: uint64(elf.SHF_ALLOC), Off: dynOff, Size: dynSize, Link: 2, Addralign: 8, Entsize: 16},
		{Name: name(".shstrtab"), Type: uint32(elf.SHT_STRTAB), Off: shstrOff, Size: uint64(len(shstr)), Addralign: 1},
	} {
		_ = binary.Write(&f, le, sh)
	}
	return f.String()
}

func TestTinyELF(t *testing.T) {
	b, err := ParseELF(strings.NewReader(tinyELF(t, elf.EM_AARCH64, "/lib/ld-linux-aarch64.so.1", "libc.so.6", "libgcc_s.so.1")))
	if err != nil {
		t.Fatal(err)
	}
	if b.Machine != elf.EM_AARCH64 || b.Interp != "/lib/ld-linux-aarch64.so.1" || !slices.Equal(b.Needed, []string{"libc.so.6", "libgcc_s.so.1"}) {
		t.Errorf("parsed %+v", b)
	}
	if a, ok := b.Arch(); !ok || a.Name != "aarch64" || a.GlibcLoader != b.Interp {
		t.Errorf("Arch() = %+v, %v", a, ok)
	}
}

func TestArchOf(t *testing.T) {
	for _, c := range []struct {
		m                    elf.Machine
		platform             string
		name, triplet, glibc string
		musl                 string
	}{
		{elf.EM_X86_64, "linux/amd64", "x86_64", "x86_64-linux-gnu", "/lib64/ld-linux-x86-64.so.2", "/lib/ld-musl-x86_64.so.1"},
		{elf.EM_AARCH64, "linux/arm64", "aarch64", "aarch64-linux-gnu", "/lib/ld-linux-aarch64.so.1", "/lib/ld-musl-aarch64.so.1"},
	} {
		a, ok := ArchOf(c.m)
		if !ok || a.Name != c.name || a.Platform != c.platform || a.Triplet != c.triplet || a.GlibcLoader != c.glibc || a.MuslLoader != c.musl {
			t.Errorf("ArchOf(%v) = %+v, %v", c.m, a, ok)
		}
		for _, p := range []string{c.platform, strings.ToUpper(c.platform)} {
			if b, ok := ArchOfPlatform(p); !ok || b != a {
				t.Errorf("ArchOfPlatform(%q) = %+v, %v; want %+v", p, b, ok, a)
			}
		}
	}
	if b, ok := ArchOfPlatform("linux/arm64/v8"); !ok || b.Name != "aarch64" {
		t.Errorf("linux/arm64/v8: %+v %v", b, ok)
	}
	for _, p := range []string{"linux/arm/v7", "windows/amd64", "linux/amd64x", ""} {
		if _, ok := ArchOfPlatform(p); ok {
			t.Errorf("ArchOfPlatform(%q): want not ok", p)
		}
	}
	if a, ok := ArchOf(elf.EM_RISCV); ok || !slices.Equal(a.glibcDirs(), []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"}) {
		t.Errorf("unknown machine: %+v %v, dirs %v", a, ok, a.glibcDirs())
	}
}

// The libraries of an aarch64 binary are looked for in the aarch64
// directories, not the x86-64 ones; musl's path file is the aarch64 one.
func TestMissingLibrariesAArch64(t *testing.T) {
	arm := tinyELF(t, elf.EM_AARCH64, "/lib/ld-linux-aarch64.so.1", "libc.so.6", "libgcc_s.so.1")
	im := newImage(t).link("lib", "usr/lib").
		file("usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1", "loader", 0o755).
		link("usr/lib/ld-linux-aarch64.so.1", "aarch64-linux-gnu/ld-linux-aarch64.so.1").
		file("usr/lib/aarch64-linux-gnu/libc.so.6", "libc", 0o755).
		file("usr/lib/x86_64-linux-gnu/libgcc_s.so.1", "the x86-64 one", 0o644).
		file("hello", arm, 0o755)
	b, ok, err := InspectELF(ctx, im.fs(), "/hello")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got := MissingLibraries(ctx, im.fs(), b); !slices.Equal(got, []string{"libgcc_s.so.1"}) {
		t.Errorf("missing %v, want [libgcc_s.so.1]: the x86-64 directory is not the loader's", got)
	}
	// The same image with an x86-64 binary needing the same libraries:
	// libc is in the aarch64 directory only.
	im.file("hello64", tinyELF(t, elf.EM_X86_64, "/lib64/ld-linux-x86-64.so.2", "libc.so.6", "libgcc_s.so.1"), 0o755)
	b64, _, err := InspectELF(ctx, im.fs(), "/hello64")
	if err != nil {
		t.Fatal(err)
	}
	if got := MissingLibraries(ctx, im.fs(), b64); !slices.Equal(got, []string{"libc.so.6"}) {
		t.Errorf("x86-64 binary: missing %v, want [libc.so.6]", got)
	}

	musl := newImage(t).file("lib/ld-musl-aarch64.so.1", "musl", 0o755).
		file("etc/ld-musl-aarch64.path", "/opt/arm\n", 0o644).
		file("etc/ld-musl-x86_64.path", "/opt/x86\n", 0o644).
		file("opt/arm/libfoo.so", "x", 0o644).
		file("opt/x86/libbar.so", "x", 0o644).
		file("app", tinyELF(t, elf.EM_AARCH64, "/lib/ld-musl-aarch64.so.1", "libfoo.so", "libbar.so"), 0o755)
	mb, _, err := InspectELF(ctx, musl.fs(), "/app")
	if err != nil {
		t.Fatal(err)
	}
	if got := MissingLibraries(ctx, musl.fs(), mb); !slices.Equal(got, []string{"libbar.so"}) {
		t.Errorf("musl aarch64: missing %v, want [libbar.so] (only /etc/ld-musl-aarch64.path counts)", got)
	}
}

func TestExplainAArch64(t *testing.T) {
	arm := tinyELF(t, elf.EM_AARCH64, "/lib/ld-linux-aarch64.so.1", "libc.so.6")
	scratch := func() *image { return newImage(t).file("hello", arm, 0o755) }
	const qemu = "aarch64-binfmt-P: Could not open '/lib/ld-linux-aarch64.so.1': No such file or directory\n"
	for _, c := range []struct {
		name   string
		image  *image
		run    Run
		code   int
		kind   Kind
		reason string
	}{
		// Emulated (qemu-user through binfmt_misc): the exec succeeds,
		// qemu cannot open the loader and exits 255.
		{"emulated, no loader", scratch(), Run{Args: []string{"/hello"}, Code: 255, Stderr: qemu},
			127, MissingLoader, "dynamic binary, but the image has no /lib/ld-linux-aarch64.so.1 (glibc loader), run emulated as aarch64"},
		// Native (an arm64 builder): the kernel's exec fails.
		{"native, no loader", scratch(), Run{Args: []string{"/hello"}, Code: 1, Stderr: "exec /hello: no such file or directory\n"},
			127, MissingLoader, "no /lib/ld-linux-aarch64.so.1 (glibc loader)"},
		{"no emulator", scratch(), Run{Args: []string{"/hello"}, Code: 1, Stderr: "exec /hello: exec format error\n"},
			126, ExecFormat, "/hello is a program for aarch64 (linux/arm64), not for this machine"},
		{"musl loader missing, emulated", newImage(t).file("app", tinyELF(t, elf.EM_AARCH64, "/lib/ld-musl-aarch64.so.1", "libc.musl-aarch64.so.1"), 0o755),
			Run{Args: []string{"/app"}, Code: 255, Stderr: "aarch64-binfmt-P: Could not open '/lib/ld-musl-aarch64.so.1': No such file or directory"},
			127, MissingLoader, "no /lib/ld-musl-aarch64.so.1 (musl loader)"},
		// The message names a file that is not the program's loader: not
		// a missing loader.
		{"qemu names another file", newImage(t).file("lib/ld-linux-aarch64.so.1", "loader", 0o755).file("hello", arm, 0o755),
			Run{Args: []string{"/hello"}, Code: 2, Stderr: "Could not open '/data/in.txt': No such file or directory\n"},
			2, Exited, "exited with code 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := Explain(ctx, c.image.fs(), c.run)
			if d.ExitCode != c.code || d.Kind != c.kind || !strings.Contains(d.Reason, c.reason) {
				t.Errorf("got %d %s %q\nwant %d %s containing %q", d.ExitCode, d.Kind, d.Reason, c.code, c.kind, c.reason)
			}
		})
	}
}
