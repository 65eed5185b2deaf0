package deploy_test

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestComposeHardened checks every compose service for a read-only root
// filesystem, no capabilities and no-new-privileges, and that the three
// images (supflow, NATS, MinIO) are built FROM scratch and end with a
// non-root USER.
func TestComposeHardened(t *testing.T) {
	b, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			User        string   `yaml:"user"`
			ReadOnly    bool     `yaml:"read_only"`
			CapDrop     []string `yaml:"cap_drop"`
			SecurityOpt []string `yaml:"security_opt"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for name, s := range doc.Services {
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: read_only %t, cap_drop %v, security_opt %v", name, s.ReadOnly, s.CapDrop, s.SecurityOpt)
		}
		if s.User == "0" || s.User == "root" || strings.HasPrefix(s.User, "0:") {
			t.Errorf("%s runs as root", name)
		}
	}
	for _, f := range dockerfiles {
		if u := lastUser(t, f); u == "" || u == "0" || u == "root" || strings.HasPrefix(u, "0:") {
			t.Errorf("%s: final USER %q, want a non-root user", f, u)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(string(b), -1) {
			if m[1] != "scratch" {
				t.Errorf("%s: FROM %s: the images are built FROM scratch (no registry)", f, m[1])
			}
		}
	}
}

// dockerfiles are the images' Dockerfiles.
var dockerfiles = []string{"Dockerfile", "Dockerfile.nats", "Dockerfile.minio"}

func lastUser(t *testing.T, dockerfile string) string {
	t.Helper()
	f, err := os.Open(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	user := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 2 && fields[0] == "FROM":
			user = "" // a new stage starts as root
		case len(fields) >= 2 && fields[0] == "USER":
			user = fields[1]
		}
	}
	return user
}

// credentialLine finds an assignment to a credential variable or key.
var credentialLine = regexp.MustCompile(`(?i)\b[a-z0-9_]*(password|secret_key|token|access_key|root_user)"?\s*[:=]\s*"?([^"\s,}]*)`)

// TestNoCommittedCredentials checks that the deployment files and
// pipeline.yaml assign credentials only from variables or secret
// references, and that .env.example holds only placeholders.
func TestNoCommittedCredentials(t *testing.T) {
	files, _ := filepath.Glob("k8s/*.yaml")
	files = append(files, "docker-compose.yml", "docker-compose.gpu.yml", "docker-compose.ha.yml", "nats.conf", "pipeline.compose.yaml", "../pipeline.yaml", "../scripts/images.sh")
	files = append(files, dockerfiles...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			for _, m := range credentialLine.FindAllStringSubmatch(line, -1) {
				if v := m[2]; v != "" && !strings.HasPrefix(v, "$") && !strings.HasPrefix(v, "{") && v != "..." {
					t.Errorf("%s:%d assigns a literal credential: %s", f, i+1, strings.TrimSpace(line))
				}
			}
		}
	}
	b, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && regexp.MustCompile(`PASSWORD|SECRET|TOKEN`).MatchString(k) && !strings.HasPrefix(v, "change-me") {
			t.Errorf(".env.example: %s is not a change-me placeholder", k)
		}
	}
}
