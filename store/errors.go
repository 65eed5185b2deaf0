package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/minio/minio-go/v7"
)

// Sentinels; match them with errors.Is.
var (
	ErrNotFound      = errors.New("store: object not found")
	ErrNoSuchBucket  = errors.New("store: bucket not found")
	ErrAccessDenied  = errors.New("store: access denied")
	ErrTooLarge      = errors.New("store: object larger than the size limit")
	ErrInvalidKey    = errors.New("store: invalid object key")
	ErrInvalidConfig = errors.New("store: invalid config")
	ErrUnavailable   = errors.New("store: endpoint unavailable")
	ErrAnonymous     = errors.New("store: no credentials (anonymous access not allowed)")
	ErrIntegrity     = errors.New("store: object content does not match its size")
	// ErrOutOfRange: a ranged read asked for bytes past the object's end
	// (a truncated object, or a reference that points past it).
	ErrOutOfRange = errors.New("store: byte range past the end of the object")
)

// s3Error maps a minio-go error to a sentinel, keeping the original in the
// chain. errors.As is used because minio.ToErrorResponse misses wrapped
// errors.
func s3Error(op, key string, err error) error {
	if err == nil || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrOutOfRange) {
		return err
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		sentinel := codeSentinel(resp.Code)
		if sentinel == nil {
			switch resp.StatusCode {
			case http.StatusNotFound:
				sentinel = ErrNotFound
			case http.StatusForbidden:
				sentinel = ErrAccessDenied
			case http.StatusRequestedRangeNotSatisfiable:
				sentinel = ErrOutOfRange
			}
		}
		if sentinel != nil {
			return fmt.Errorf("%w: %s %q: %s (%s)", sentinel, op, key, resp.Code, resp.Message)
		}
		return fmt.Errorf("store: %s %q: %w", op, key, err)
	}
	if transient(err) {
		return fmt.Errorf("%w: %s %q: %w", ErrUnavailable, op, key, err)
	}
	return fmt.Errorf("store: %s %q: %w", op, key, err)
}

// codeSentinel is the sentinel of an S3 error code, nil for none.
func codeSentinel(code string) error {
	switch code {
	case minio.NoSuchKey, "NotFound":
		return ErrNotFound
	case minio.NoSuchBucket:
		return ErrNoSuchBucket
	case "InvalidRange":
		return ErrOutOfRange
	case minio.AccessDenied, "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken":
		return ErrAccessDenied
	}
	return nil
}

// transient reports whether err is worth retrying: network failures and the
// server-side codes S3 and MinIO use for overload or restart.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	if tlsFailure(err) {
		return false // retrying cannot fix a certificate or protocol mismatch
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case "SlowDown", "SlowDownRead", "SlowDownWrite", "ServiceUnavailable", "InternalError",
			"RequestTimeout", "XMinioServerNotInitialized":
			return true
		}
		return resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusBadGateway ||
			resp.StatusCode == http.StatusGatewayTimeout || resp.StatusCode == http.StatusInternalServerError
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE)
}

// tlsFailure reports an HTTPS failure that is a matter of configuration: an
// unverifiable certificate, an alert from the server (a client certificate
// it wants), or a plain HTTP server answering an HTTPS client.
func tlsFailure(err error) bool {
	var (
		verify *tls.CertificateVerificationError
		alert  tls.AlertError
		record tls.RecordHeaderError
		ca     x509.UnknownAuthorityError
		host   x509.HostnameError
		cert   x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &record) ||
		errors.As(err, &ca) || errors.As(err, &host) || errors.As(err, &cert) ||
		// net/http replaces the tls.RecordHeaderError with this text.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}
