package standin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The ownership proof: Ready sends a random challenge in challengeHeader
// on GET /v2/, the registry answers HMAC-SHA256(secret, challenge) in
// proofHeader. Both are hex.
const (
	challengeHeader = "Minikit-Registry-Challenge"
	proofHeader     = "Minikit-Registry-Proof"
	challengeBytes  = 32
	secretBytes     = 32
)

// LoadSecret returns the registry ownership secret kept at path, creating
// it (32 random bytes, file 0600, parent directories 0700) when missing.
// A secret file others may read is refused: remove it and a new one is
// made.
func LoadSecret(path string) ([]byte, error) {
	secret, err := readSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return secret, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("registry secret: %w", err)
	}
	raw := make([]byte, secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("registry secret: %w", err)
	}
	// Written aside, then linked into place: a concurrent LoadSecret
	// either wins or reads the complete file of the one that did.
	f, err := os.CreateTemp(dir, ".secret-*")
	if err != nil {
		return nil, fmt.Errorf("registry secret: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := io.WriteString(f, hex.EncodeToString(raw)+"\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("registry secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("registry secret: %w", err)
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("registry secret: %w", err)
	}
	return readSecret(path)
}

// readSecret reads the secret file at path; an error for a missing file
// wraps fs.ErrNotExist.
func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("registry secret: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("registry secret: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("registry secret %s: mode %v lets others read it; remove it and minikit makes a new one", path, fi.Mode())
	}
	data, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("registry secret %s: %w", path, err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(secret) < secretBytes {
		return nil, fmt.Errorf("registry secret %s: not %d hex-encoded bytes; remove it and minikit makes a new one", path, secretBytes)
	}
	return secret, nil
}

// newChallenge returns a fresh random challenge.
func newChallenge() (string, error) {
	b := make([]byte, challengeBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("registry challenge: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// prove answers challenge with secret; ok is false for a challenge that
// is not hex of the expected length.
func prove(secret []byte, challenge string) (string, bool) {
	nonce, err := hex.DecodeString(challenge)
	if err != nil || len(nonce) != challengeBytes {
		return "", false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(nonce)
	return hex.EncodeToString(mac.Sum(nil)), true
}

// checkProof says whether proof answers challenge with secret.
func checkProof(secret []byte, challenge, proof string) bool {
	want, ok := prove(secret, challenge)
	if !ok {
		return false
	}
	got, err := hex.DecodeString(proof)
	if err != nil {
		return false
	}
	wantRaw, _ := hex.DecodeString(want)
	return hmac.Equal(got, wantRaw)
}
