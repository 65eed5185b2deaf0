// Package composetest drives deploy/docker-compose.yml from tests: it finds
// the compose command of this machine (the `docker compose` plugin or
// docker-compose v1) and runs it on one project. Its TestIntegrationCompose
// (build tag compose, run by `make test-compose`) builds the images and runs
// the whole job in containers. It must not be imported by non-test code.
package composetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrNoCompose: neither `docker compose` nor docker-compose answers.
var ErrNoCompose = errors.New("composetest: neither `docker compose` nor docker-compose is installed")

// Command returns the compose command line of this machine: `docker
// compose` when the plugin answers, else docker-compose (v1, which takes
// the same arguments for what supflow uses).
func Command(ctx context.Context) ([]string, error) {
	if err := exec.CommandContext(ctx, "docker", "compose", "version").Run(); err == nil {
		return []string{"docker", "compose"}, nil
	}
	if bin, err := exec.LookPath("docker-compose"); err == nil {
		return []string{bin}, nil
	}
	return nil, ErrNoCompose
}

// Project is one compose project: a name (`-p`), the compose files and
// the project directory their relative paths and .env are read from.
type Project struct {
	Compose []string // Command's answer
	Name    string
	Dir     string
	Files   []string // relative to Dir
}

// Cmd returns the command `compose -p Name -f Files... args...` run in Dir.
func (p *Project) Cmd(ctx context.Context, args ...string) *exec.Cmd {
	argv := append([]string{}, p.Compose[1:]...)
	argv = append(argv, "-p", p.Name, "--project-directory", p.Dir)
	for _, f := range p.Files {
		argv = append(argv, "-f", f)
	}
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, p.Compose[0], argv...)
	cmd.Dir = p.Dir
	return cmd
}

// Output runs the command and returns its standard output; the error
// carries its standard error.
func (p *Project) Output(ctx context.Context, args ...string) (string, error) {
	return output(p.Cmd(ctx, args...))
}

// Docker runs docker with args and returns its standard output; the error
// carries its standard error.
func Docker(ctx context.Context, args ...string) (string, error) {
	return output(exec.CommandContext(ctx, "docker", args...))
}

func output(cmd *exec.Cmd) (string, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
