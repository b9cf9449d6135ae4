// Command pause is the host cluster's pod sandbox process: it sleeps, reaps adopted
// children and exits on SIGTERM or SIGINT. Built static into gatecheck.dev/pause so the
// cluster never pulls registry.k8s.io/pause. `pause -v` prints its name and exits (used to
// probe that a container engine can run a privileged container).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("gatecheck pause")
		return
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
