package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// requireSigV4 lets through only requests whose AWS signature V4
// Authorization header was made with accessKey and secretKey. It checks the
// signature over the method, path, query, signed headers and the declared
// payload hash; like a proxy in front of S3 it leaves the payload hash (and
// streaming chunk signatures) to the backend.
func requireSigV4(accessKey, secretKey string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := checkSigV4(r, accessKey, secretKey); code != "" {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			// The message names no credential, only what failed.
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code +
				`</Code><Message>request signature rejected by the embedded endpoint</Message></Error>`))
			return
		}
		// Go's client sends no Content-Length for an empty PUT body, and
		// gofakes3 refuses a PUT without one.
		next.ServeHTTP(w, r)
	})
}

// checkSigV4 returns "" for a valid request, else the S3 error code.
func checkSigV4(r *http.Request, accessKey, secretKey string) string {
	const algo = "AWS4-HMAC-SHA256"
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), algo+" ")
	if !ok {
		return "AccessDenied"
	}
	var cred, signed, sig string
	for part := range strings.SplitSeq(auth, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		}
	}
	// Credential = <access key>/<date>/<region>/<service>/aws4_request
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || signed == "" || sig == "" {
		return "AuthorizationHeaderMalformed"
	}
	if !hmac.Equal([]byte(scope[0]), []byte(accessKey)) {
		return "InvalidAccessKeyId"
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if len(amzDate) < 8 || amzDate[:8] != scope[1] {
		return "AuthorizationHeaderMalformed"
	}
	headers := strings.Split(signed, ";")
	if !slices.Contains(headers, "host") {
		return "AuthorizationHeaderMalformed"
	}
	var canon strings.Builder
	for _, h := range headers {
		canon.WriteString(h)
		canon.WriteByte(':')
		if h == "host" {
			canon.WriteString(r.Host)
		} else {
			for i, v := range r.Header.Values(h) {
				if i > 0 {
					canon.WriteByte(',')
				}
				canon.WriteString(strings.Join(strings.Fields(v), " "))
			}
		}
		canon.WriteByte('\n')
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = "UNSIGNED-PAYLOAD"
	}
	request := strings.Join([]string{
		r.Method,
		s3utils.EncodePath(r.URL.Path),
		strings.ReplaceAll(r.URL.Query().Encode(), "+", "%20"),
		canon.String(),
		signed,
		payload,
	}, "\n")
	reqHash := sha256.Sum256([]byte(request))
	toSign := algo + "\n" + amzDate + "\n" + strings.Join(scope[1:], "/") + "\n" + hex.EncodeToString(reqHash[:])
	key := []byte("AWS4" + secretKey)
	for _, s := range scope[1:] {
		key = hmacSHA256(key, s)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return "SignatureDoesNotMatch"
	}
	return ""
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
