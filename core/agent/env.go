package agent

import (
	"fmt"
	"os"
	"syscall"
)

// engineEnv holds settings anacrolix/torrent reads from the environment
// when the program starts, and which pkgtorrent needs different from the
// engine's defaults (64 MiB webseed slices, 25 requests per webseed host).
//
// Webseed requests are contiguous ranges that run to the end of a slice. In
// a burst, hosts that pull long ranges from the mirror at once pull pieces
// the others are about to hand them: with the defaults the origin sent
// markedly more of a batch in the three-host test on a capped origin
// (figures: docs/bench/README.md).
var engineEnv = [][2]string{
	{"TORRENT_WEBSEED_REQUEST_CHUNK_SIZE", "262144"},
	{"TORRENT_WEBSEED_HOST_REQUEST_CONCURRENCY", "2"},
}

// Reexec makes sure the engine's start-up settings are in the environment:
// when one is missing it re-executes the running program with them (values
// already set are kept) and does not return. Call it first in the agent
// process, before any other work.
func Reexec() error {
	env := os.Environ()
	missing := false
	for _, kv := range engineEnv {
		if _, ok := os.LookupEnv(kv[0]); !ok {
			env = append(env, kv[0]+"="+kv[1])
			missing = true
		}
	}
	if !missing {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("re-executing agent: %w", err)
	}
	return fmt.Errorf("re-executing agent: %w", syscall.Exec(exe, os.Args, env))
}
