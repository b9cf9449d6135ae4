package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/gatecheck/gatecheck/cluster/images"
)

// BuildAndLoadImages builds specs (images.Default() when nil) from moduleRoot into
// CacheDir()/images and loads them into p. Specs whose main package does not exist yet are
// skipped with a log line.
func BuildAndLoadImages(ctx context.Context, p Provider, moduleRoot string, specs []images.Spec, log *slog.Logger) ([]images.Built, error) {
	if specs == nil {
		specs = images.Default()
	}
	if moduleRoot == "" {
		var err error
		if moduleRoot, err = ModuleRoot(""); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	built, err := images.Builder{ModuleRoot: moduleRoot, OutDir: filepath.Join(CacheDir(), "images"), Logger: log}.Build(ctx, specs)
	if err != nil {
		return built, err
	}
	var archives []string
	for _, b := range built {
		archives = append(archives, b.Archive)
	}
	if err := p.LoadImages(ctx, archives); err != nil {
		return built, fmt.Errorf("load images: %w", err)
	}
	if log != nil {
		log.Info("images built and loaded", "count", len(built), "took", time.Since(start).Round(10*time.Millisecond))
	}
	return built, nil
}
