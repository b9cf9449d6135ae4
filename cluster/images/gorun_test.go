package images

import (
	"context"

	"github.com/gatecheck/gatecheck/internal/command"
)

func outputGo(ctx context.Context, dir string, args ...string) ([]byte, error) {
	return command.Output(ctx, append([]string{"go", "-C", dir}, args...)...)
}
