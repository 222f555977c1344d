//go:build ignore

// whatsmyip makes one HTTPS request to canihazip.com, the service of the
// original experiment, and prints the answer: this host's public address.
// WHATSMYIP_URL points it elsewhere (minikit test uses an HTTPS server on
// loopback). Any error is fatal (exit 1).
//
// Importing net/http makes the default build use the C resolver (cgo),
// so the binary is dynamically linked unless CGO_ENABLED=0.
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	url := "https://canihazip.com/s"
	if u := os.Getenv("WHATSMYIP_URL"); u != "" {
		url = u
	}
	resp, err := http.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", body)
}
