// Package deploy_test validates the deployment manifests: the compose files
// through compose's own parser (`config`; internal/composetest runs them
// for real), the Kubernetes manifests by strict decoding into the
// Kubernetes API types, so an unknown or misspelt field fails.
package deploy_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/supflow/supflow/internal/composetest"
)

// composeService is what the tests read of a service in `config`'s output.
type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	User        string            `yaml:"user"`
	ReadOnly    bool              `yaml:"read_only"`
	Ports       []any             `yaml:"ports"`
	Container   string            `yaml:"container_name"`
	Profiles    []string          `yaml:"profiles"`
	Environment map[string]string `yaml:"environment"`
	CapDrop     []string          `yaml:"cap_drop"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Deploy struct {
		Resources struct {
			Reservations struct {
				Devices []struct {
					Driver       string   `yaml:"driver"`
					Capabilities []string `yaml:"capabilities"`
				} `yaml:"devices"`
			} `yaml:"reservations"`
		} `yaml:"resources"`
	} `yaml:"deploy"`
}

// composeConfig runs `compose config` on files (copied with the .env
// example into a temporary project) and decodes the services.
func composeConfig(t *testing.T, files ...string) map[string]composeService {
	t.Helper()
	compose, err := composetest.Command(t.Context())
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no compose command (.ci/run installs Debian's docker-compose)")
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	for _, f := range files {
		copyFile(t, f, filepath.Join(dir, f))
	}
	copyFile(t, ".env.example", filepath.Join(dir, ".env"))
	p := &composetest.Project{Compose: compose, Name: "supflow-config", Dir: dir, Files: files}
	out, err := p.Output(t.Context(), "config")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Services
}

func TestComposeConfig(t *testing.T) {
	services := composeConfig(t, "docker-compose.yml")
	for _, s := range []string{"nats", "minio", "ingest", "feeder", "decode", "augment", "train", "evaluate"} {
		if _, ok := services[s]; !ok {
			t.Errorf("service %s missing", s)
		}
	}
	for name, svc := range services {
		// Nothing comes from a registry: every image is one make images builds.
		if !regexp.MustCompile(`^supflow(-nats|-minio)?:`).MatchString(svc.Image) {
			t.Errorf("%s: image %q is not built by make images", name, svc.Image)
		}
		if len(svc.Profiles) > 0 {
			t.Errorf("%s: profiles %v: every service of the job starts by default", name, svc.Profiles)
		}
	}
	for _, s := range []string{"decode", "augment", "train", "evaluate", "feeder"} {
		svc := services[s]
		if svc.Container != "" {
			t.Errorf("%s has a container_name: it could not scale", s)
		}
		if len(svc.Ports) > 0 {
			t.Errorf("%s publishes host ports: it could not scale", s)
		}
		if svc.User == "0" || !svc.ReadOnly {
			t.Errorf("%s: want a read-only root filesystem", s)
		}
	}
	if hc := strings.Join(services["nats"].Healthcheck.Test, " "); !strings.Contains(hc, ":8222/healthz") {
		t.Errorf("nats health check = %q", hc)
	}
	if hc := strings.Join(services["minio"].Healthcheck.Test, " "); !strings.Contains(hc, ":9000/minio/health/") {
		t.Errorf("minio health check = %q", hc)
	}
	if !slices.Contains(services["train"].Command, "--resume") {
		t.Errorf("train command %v: a restarted trainer must resume", services["train"].Command)
	}
	if !slices.Contains(services["evaluate"].Command, "--wait") {
		t.Errorf("evaluate command %v: it must wait for the pretraining", services["evaluate"].Command)
	}
	checkOneTrainer(t, services, false)
}

// TestComposeGPU: with docker-compose.gpu.yml the one trainer reserves a
// GPU; there is never a second trainer beside it.
func TestComposeGPU(t *testing.T) {
	checkOneTrainer(t, composeConfig(t, "docker-compose.yml", "docker-compose.gpu.yml"), true)
}

// TestComposeFused: with docker-compose.fused.yml decode runs fused
// (decode --augment) on the job's config.
func TestComposeFused(t *testing.T) {
	services := composeConfig(t, "docker-compose.yml", "docker-compose.fused.yml")
	if c := services["decode"].Command; !slices.Contains(c, "--augment") || !slices.Contains(c, "--config") {
		t.Errorf("decode command %v: want decode --augment with the job's config", c)
	}
	checkOneTrainer(t, services, false)
}

// TestComposeHA: docker-compose.ha.yml over docker-compose.yml gives 3
// NATS nodes routed to each other and 4 MinIO nodes with one server list,
// every supflow service all NATS URLs and bus.replicas 3, and still one
// trainer (also with the GPU file).
func TestComposeHA(t *testing.T) {
	services := composeConfig(t, "docker-compose.yml", "docker-compose.ha.yml")
	var minioCmd []string
	for _, name := range []string{"minio", "minio2", "minio3", "minio4"} {
		cmd := services[name].Command
		if !slices.Contains(cmd, "http://minio{1...4}:9000/data") {
			t.Errorf("%s command %v: want the 4-node server list", name, cmd)
		}
		if minioCmd != nil && !slices.Equal(cmd, minioCmd) {
			t.Errorf("%s command %v differs from minio's %v", name, cmd, minioCmd)
		}
		minioCmd = cmd
	}
	for i, name := range []string{"nats", "nats2", "nats3"} {
		cmd := strings.Join(services[name].Command, " ")
		if !strings.Contains(cmd, fmt.Sprintf("--name nats%d ", i+1)) ||
			!strings.Contains(cmd, "--routes nats://nats1:6222,nats://nats2:6222,nats://nats3:6222") {
			t.Errorf("%s command %q: want its server name and the three routes", name, cmd)
		}
	}
	for name, svc := range services {
		// the nodes the HA file adds are hardened like the base file's
		if !svc.ReadOnly || !slices.Contains(svc.CapDrop, "ALL") {
			t.Errorf("%s: read_only %t, cap_drop %v", name, svc.ReadOnly, svc.CapDrop)
		}
		if !strings.HasPrefix(svc.Image, "supflow:") {
			continue
		}
		env := svc.Environment
		if len(strings.Split(env["SUPFLOW_BUS_URL"], ",")) != 3 || env["SUPFLOW_BUS_REPLICAS"] != "3" {
			t.Errorf("%s: bus.url %q, bus.replicas %q: want the 3 nodes and 3 replicas", name, env["SUPFLOW_BUS_URL"], env["SUPFLOW_BUS_REPLICAS"])
		}
	}
	checkOneTrainer(t, services, false)
	checkOneTrainer(t, composeConfig(t, "docker-compose.yml", "docker-compose.ha.yml", "docker-compose.gpu.yml"), true)
}

func checkOneTrainer(t *testing.T, services map[string]composeService, gpu bool) {
	t.Helper()
	var trainers []string
	for name, svc := range services {
		if len(svc.Command) > 0 && svc.Command[0] == "train" {
			trainers = append(trainers, name)
		}
	}
	if len(trainers) != 1 {
		t.Fatalf("trainer services %v: want exactly one per bus", trainers)
	}
	devs := services[trainers[0]].Deploy.Resources.Reservations.Devices
	if got := len(devs) == 1 && devs[0].Driver == "nvidia" && slices.Contains(devs[0].Capabilities, "gpu"); got != gpu {
		t.Errorf("trainer %s devices %+v, want a GPU: %t", trainers[0], devs, gpu)
	}
}

// manifest is one object of a Kubernetes manifest file.
type manifest struct {
	file, kind, name string
	obj              any
}

// kubeTypes are the kinds deploy/k8s may hold, by apiVersion/kind.
var kubeTypes = map[string]func() any{
	"apps/v1/Deployment":  func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet": func() any { return &appsv1.StatefulSet{} },
	"batch/v1/Job":        func() any { return &batchv1.Job{} },
	"v1/Service":          func() any { return &corev1.Service{} },
	"v1/ConfigMap":        func() any { return &corev1.ConfigMap{} },
	"v1/Secret":           func() any { return &corev1.Secret{} },
}

// readManifests decodes every document of deploy/k8s/*.yaml strictly into
// its API type: an unknown field, a duplicate field or a wrong type fails.
func readManifests(t *testing.T) []manifest {
	t.Helper()
	files, _ := filepath.Glob("k8s/*.yaml")
	if len(files) == 0 {
		t.Fatal("no k8s/*.yaml")
	}
	var out []manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := sigsyaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s document %d: %v", f, i+1, err)
			}
			if head.Kind == "" && strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			newObj, ok := kubeTypes[head.APIVersion+"/"+head.Kind]
			if !ok {
				t.Errorf("%s document %d: unexpected %s %s", f, i+1, head.APIVersion, head.Kind)
				continue
			}
			obj := newObj()
			if err := sigsyaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s: %s %s: %v", f, head.Kind, head.Metadata.Name, err)
				continue
			}
			out = append(out, manifest{file: f, kind: head.Kind, name: head.Metadata.Name, obj: obj})
		}
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestKubernetesStrict: a misspelt field must fail the decoding the other
// tests rely on.
func TestKubernetesStrict(t *testing.T) {
	doc := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 2\n"
	if err := sigsyaml.UnmarshalStrict([]byte(doc), &appsv1.Deployment{}); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Errorf("UnmarshalStrict of a misspelt field: %v", err)
	}
}

func TestKubernetesManifests(t *testing.T) {
	kinds := map[string]int{}
	pods := map[string]corev1.PodSpec{}
	replicas := map[string]int32{}
	var natsConf string
	for _, m := range readManifests(t) {
		kinds[m.kind]++
		switch o := m.obj.(type) {
		case *appsv1.Deployment:
			pods[m.name] = o.Spec.Template.Spec
			if sel, lbl := o.Spec.Selector.MatchLabels, o.Spec.Template.Labels; !subset(sel, lbl) {
				t.Errorf("deployment %s: selector %v does not match the pod labels %v", m.name, sel, lbl)
			}
			if m.name == "augment" && (o.Spec.Replicas == nil || *o.Spec.Replicas < 2) {
				t.Errorf("augment replicas = %v", o.Spec.Replicas)
			}
			if o.Spec.Replicas != nil {
				replicas[m.name] = *o.Spec.Replicas
			}
			if (m.name == "train" || m.name == "train-gpu") && o.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Errorf("%s: strategy %q: one trainer per bus, even during a rollout", m.name, o.Spec.Strategy.Type)
			}
		case *appsv1.StatefulSet:
			spec := *o.Spec.Template.Spec.DeepCopy()
			for _, c := range o.Spec.VolumeClaimTemplates { // volumes of the pod too
				spec.Volumes = append(spec.Volumes, corev1.Volume{Name: c.Name})
			}
			pods[m.name] = spec
			if sel, lbl := o.Spec.Selector.MatchLabels, o.Spec.Template.Labels; !subset(sel, lbl) {
				t.Errorf("statefulset %s: selector %v does not match the pod labels %v", m.name, sel, lbl)
			}
			if o.Spec.Replicas != nil {
				replicas[m.name] = *o.Spec.Replicas
			}
			// A node is ready only with its cluster: ordered start-up
			// would wait for ever on the first one.
			if o.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
				t.Errorf("statefulset %s: podManagementPolicy %q, want Parallel", m.name, o.Spec.PodManagementPolicy)
			}
		case *corev1.ConfigMap:
			if m.name == "nats-cluster" {
				natsConf = o.Data["nats.conf"]
			}
		case *batchv1.Job:
			pods[m.name] = o.Spec.Template.Spec
		}
	}
	if kinds["Deployment"] < 3 || kinds["StatefulSet"] < 2 || kinds["Job"] < 3 || kinds["Service"] < 2 {
		t.Errorf("kinds = %v", kinds)
	}
	if replicas["nats"] != 3 || replicas["minio"] != 4 {
		t.Errorf("nats replicas %d, minio replicas %d: want 3 and 4", replicas["nats"], replicas["minio"])
	}
	if replicas["train"]+replicas["train-gpu"] != 1 {
		t.Errorf("train replicas %d, train-gpu replicas %d: one trainer per bus", replicas["train"], replicas["train-gpu"])
	}
	checkNATSCluster(t, natsConf, int(replicas["nats"]), pods["nats"])
	if args := pods["minio"].Containers[0].Args; !slices.Contains(args, "http://minio-{0...3}.minio-headless:9000/data") {
		t.Errorf("minio args %v: want the 4 nodes", args)
	}
	if gpu := pods["train-gpu"].Containers; len(gpu) != 1 || gpu[0].Resources.Limits.Name("nvidia.com/gpu", resource.DecimalSI).Value() != 1 {
		t.Errorf("train-gpu: want one container with a limit of 1 nvidia.com/gpu")
	}
	for name, spec := range pods {
		for _, c := range spec.Containers {
			if err := checkContainer(spec, c); err != nil {
				t.Errorf("%s/%s: %v", name, c.Name, err)
			}
		}
	}
	args := func(name string) []string {
		if c := pods[name].Containers; len(c) > 0 {
			return c[0].Args
		}
		return nil
	}
	for _, name := range []string{"train", "train-gpu"} {
		if !slices.Contains(args(name), "--resume") {
			t.Errorf("%s args %v: a replaced trainer pod must resume", name, args(name))
		}
	}
	for name, spec := range pods {
		for _, c := range spec.Containers {
			if !strings.HasPrefix(c.Image, "supflow:") {
				continue
			}
			if v := envValue(c, "SUPFLOW_BUS_REPLICAS"); v != "3" {
				t.Errorf("%s: SUPFLOW_BUS_REPLICAS %q, want 3 (nats.yaml's nodes)", name, v)
			}
		}
	}
	if !slices.Contains(args("evaluate"), "--wait") {
		t.Errorf("evaluate args %v: it must wait for the pretraining", args("evaluate"))
	}
}

// checkNATSCluster: the configuration names each pod by its own name and
// routes to every pod of the StatefulSet through the headless service.
func checkNATSCluster(t *testing.T, conf string, n int, pod corev1.PodSpec) {
	t.Helper()
	if !strings.Contains(conf, "server_name: $POD_NAME") {
		t.Error("nats-cluster: want server_name: $POD_NAME")
	}
	for i := range n {
		if route := fmt.Sprintf("nats://nats-%d.nats-headless:6222", i); !strings.Contains(conf, route) {
			t.Errorf("nats-cluster: no route %s", route)
		}
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("nats pod: %d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	var named bool
	for _, e := range c.Env {
		named = named || e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
	}
	if !named {
		t.Error("nats pod: POD_NAME must come from metadata.name")
	}
	if !slices.Contains(c.Args, "/etc/nats-cluster/nats.conf") {
		t.Errorf("nats args %v: want the cluster configuration", c.Args)
	}
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// checkContainer: images from make images, non-root, read-only root, no
// secret on the command line, volume mounts that exist.
func checkContainer(spec corev1.PodSpec, c corev1.Container) error {
	var errs []error
	if !regexp.MustCompile(`^supflow(-nats|-minio)?:`).MatchString(c.Image) {
		errs = append(errs, fmt.Errorf("image %q is not built by make images", c.Image))
	}
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		errs = append(errs, errors.New("want runAsNonRoot with a non-zero runAsUser"))
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		errs = append(errs, errors.New("want a read-only root filesystem and no privilege escalation"))
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		if regexp.MustCompile(`(?i)pass|secret|token|\$\(`).MatchString(a) {
			errs = append(errs, fmt.Errorf("argument %q: secrets stay off the command line", a))
		}
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
	}
	for _, m := range c.VolumeMounts {
		if !volumes[m.Name] {
			errs = append(errs, fmt.Errorf("mount of undeclared volume %q", m.Name))
		}
	}
	for _, q := range c.Resources.Requests {
		if q.Cmp(resource.Quantity{}) <= 0 {
			errs = append(errs, fmt.Errorf("request %v is not positive", q.String()))
		}
	}
	return errors.Join(errs...)
}

func subset(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) > 0
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
