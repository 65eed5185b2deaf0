package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
)

// s3Error maps a minio-go error to a sentinel, keeping the original in the
// chain. errors.As is used because minio.ToErrorResponse misses wrapped
// errors.
func s3Error(op, key string, err error) error {
	if err == nil || errors.Is(err, ErrTooLarge) {
		return err
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		var sentinel error
		switch resp.Code {
		case minio.NoSuchKey, "NotFound":
			sentinel = ErrNotFound
		case minio.NoSuchBucket:
			sentinel = ErrNoSuchBucket
		case minio.AccessDenied, "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken":
			sentinel = ErrAccessDenied
		default:
			switch resp.StatusCode {
			case http.StatusNotFound:
				sentinel = ErrNotFound
			case http.StatusForbidden:
				sentinel = ErrAccessDenied
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

// transient reports whether err is worth retrying: network failures and the
// server-side codes S3 and MinIO use for overload or restart.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
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
