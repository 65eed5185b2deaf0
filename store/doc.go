// Package store owns every access to object storage: S3-compatible Get, Stat,
// Put, Exists and List through minio-go, the mapping of S3 error codes to the
// store sentinels, retries across short outages, credentials, and the
// embedded S3 endpoint that `supflow run` starts when no external MinIO is
// configured.
//
// It imports minio-go, and gofakes3 with afero for the embedded endpoint
// (whose GETs of files fileBackend serves itself: docs/architecture.md);
// it must not import messages, bus or any stage. It never reads the environment itself: ConfigFromEnv takes the
// lookup function from the caller (cmd/supflow passes os.Getenv).
//
// Credentials never appear in errors or logs: Config redacts them in String
// and LogValue, and errors carry only the endpoint, bucket and key.
package store
