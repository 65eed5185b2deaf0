package main

import (
	"slices"

	"github.com/supflow/supflow/store"
)

// otherEnv are the SUPFLOW_* variables that are not settings (a setting's
// variable is config.EnvName of its key), in one place: any other
// SUPFLOW_* variable is refused at start (config.CheckEnv), as an unknown
// key in pipeline.yaml is, so that a misspelled one is not ignored.
var otherEnv = slices.Concat(
	// Credentials (secretVars, from the store and bus packages), each
	// also as <NAME>_FILE.
	secretEnvNames(),
	[]string{
		// store.ConfigFromEnv: the S3 endpoint, bucket and region when
		// pipeline.yaml leaves them empty.
		store.EnvEndpoint, store.EnvBucket, store.EnvRegion,
		// tuneRuntime (runtime.go): nn's AVX-512 loops and GEMM kernel.
		"SUPFLOW_SIMD", "SUPFLOW_SGEMM",
		// deploy/docker-compose.yml's own variables (which pipeline file
		// and image tag), which reach the containers through its env_file.
		"SUPFLOW_PIPELINE", "SUPFLOW_IMAGE_TAG",
		// Tests and scripts, which run supflow with their environment:
		// internal/miniotest (the MinIO binary), internal/faulttest
		// (MinIO's version, the reliability report), internal/fixtures
		// (fixture folders), checkpoint's PyTorch test, .ci/run's cache.
		"SUPFLOW_MINIO_BIN", "SUPFLOW_MINIO_VERSION", "SUPFLOW_RELIABILITY_DOC",
		"SUPFLOW_TESTDATA", "SUPFLOW_SHARED_TESTDATA", "SUPFLOW_TORCH_PYTHON", "SUPFLOW_CACHE",
		// newEngine (backend.go): the PJRT plugin when
		// train.pjrt_plugin is empty; bench/gpu/run.sh sets it too.
		"SUPFLOW_PJRT_PLUGIN",
		// xla/device.EnvDirect: the plugin loaded as go-xla loads it.
		"SUPFLOW_PJRT_DIRECT",
		// bench/gpu/run.sh: the GPU checks' binaries.
		"SUPFLOW_GPU_BIN", "SUPFLOW_BIN",
	},
)

// secretEnvNames are secretVars and their _FILE forms.
func secretEnvNames() []string {
	var out []string
	for _, v := range secretVars {
		out = append(out, v, v+"_FILE")
	}
	return out
}
