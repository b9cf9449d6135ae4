package lifecycle

import "os"

func pidOf() int { return os.Getpid() }
