package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{srv.URL + "/healthz", true},
		{srv.URL + "/other", false},
		{"http://127.0.0.1:1/healthz", false},
	} {
		if err := check(tc.url, time.Second); (err == nil) != tc.want {
			t.Errorf("check(%s) = %v, want ok %t", tc.url, err, tc.want)
		}
	}
}
