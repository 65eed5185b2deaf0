// Package deploy_test validates the deployment manifests: the compose file
// through docker-compose's own parser (there is no Docker engine in CI), and
// the Kubernetes manifests as YAML.
package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestComposeConfig(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("docker-compose not installed (.ci/run installs Debian's docker-compose)")
		}
		t.Skip("docker-compose not installed")
	}
	dir := t.TempDir()
	for _, f := range []string{"docker-compose.yml", "nats.conf", "Dockerfile", "Dockerfile.minio"} {
		copyFile(t, f, filepath.Join(dir, f))
	}
	copyFile(t, ".env.example", filepath.Join(dir, ".env"))
	cmd := exec.Command(bin, "-f", filepath.Join(dir, "docker-compose.yml"), "config")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, stderr.String())
	}
	var doc struct {
		Services map[string]map[string]any `yaml:"services"`
	}
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"nats", "minio", "ingest", "feeder", "decode", "augment", "train", "evaluate"} {
		if _, ok := doc.Services[s]; !ok {
			t.Errorf("service %s missing", s)
		}
	}
	for _, s := range []string{"decode", "augment", "train", "evaluate", "feeder"} {
		svc := doc.Services[s]
		if _, ok := svc["container_name"]; ok {
			t.Errorf("%s has a container_name: it could not scale", s)
		}
		if _, ok := svc["ports"]; ok {
			t.Errorf("%s publishes host ports: it could not scale", s)
		}
		if svc["user"] == "0" || svc["read_only"] != true {
			t.Errorf("%s: want a read-only root filesystem", s)
		}
	}
	if hc, _ := doc.Services["nats"]["healthcheck"].(map[string]any); !strings.Contains(strings.Join(toStrings(hc["test"]), " "), ":8222/healthz") {
		t.Errorf("nats health check = %v", hc)
	}
}

func TestKubernetesManifests(t *testing.T) {
	kinds := map[string]int{}
	files, _ := filepath.Glob("k8s/*.yaml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var d struct {
				Kind     string `yaml:"kind"`
				Metadata struct {
					Name string `yaml:"name"`
				} `yaml:"metadata"`
				Spec struct {
					Replicas int `yaml:"replicas"`
				} `yaml:"spec"`
			}
			err := dec.Decode(&d)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kinds[d.Kind]++
			if d.Kind == "Deployment" && d.Metadata.Name == "augment" && d.Spec.Replicas < 2 {
				t.Errorf("augment replicas = %d", d.Spec.Replicas)
			}
		}
	}
	if kinds["Deployment"] < 4 || kinds["StatefulSet"] < 2 || kinds["Job"] < 2 {
		t.Errorf("kinds = %v", kinds)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
