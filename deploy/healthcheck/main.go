// Command healthcheck GETs a URL and exits 0 if the answer is 2xx, 1
// otherwise: the health probe of the FROM-scratch images (deploy/), which
// have no shell, wget or curl. Built static (CGO_ENABLED=0) by
// scripts/images.sh and copied into the nats and MinIO images.
//
//	healthcheck http://127.0.0.1:8222/healthz?js-enabled-only=true
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: healthcheck URL")
		os.Exit(2)
	}
	if err := check(os.Args[1], 3*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		os.Exit(1)
	}
}

// check GETs url within timeout and wants a 2xx status.
func check(url string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
