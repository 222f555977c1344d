package tlsca

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Answer is what the loopback server sends: an address from TEST-NET-3
// (RFC 5737), standing in for "your public address".
const Answer = "203.0.113.7"

// A Server is an HTTPS what-is-my-IP service on loopback.
type Server struct {
	// URL is the server's address, https://127.0.0.1:PORT/.
	URL  string
	srv  *http.Server
	hits atomic.Int64
}

// Serve starts a server on 127.0.0.1 (a free port) with a certificate
// issued by ca. It answers every GET with Answer and a newline.
func Serve(ca *CA) (*Server, error) {
	cert, err := ca.ServerCert()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("test HTTPS server: %w", err)
	}
	s := &Server{URL: "https://" + ln.Addr().String() + "/"}
	s.srv = &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.hits.Add(1)
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintln(w, Answer)
		}),
	}
	// TLS handshake errors from clients that do not trust the CA are the
	// point of some tests: keep them out of the log.
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() { _ = s.srv.ServeTLS(ln, "", "") }() // ends with ErrServerClosed

	return s, nil
}

// Hits counts the requests answered.
func (s *Server) Hits() int64 { return s.hits.Load() }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }
