// Package password hashes and checks user passwords with argon2id, a few
// at a time.
package password

import (
	"context"

	"github.com/alexedwards/argon2id"
	"golang.org/x/sync/semaphore"
)

// params follow the library's defaults (the RFC 9106 second recommendation
// scaled to a web server): 64 MiB, one pass, one lane per CPU.
var params = argon2id.DefaultParams

// HashMemory is what one hash or check holds for its whole run, in bytes
// (params.Memory, which argon2id counts in KiB).
const HashMemory = 64 << 20

// MaxConcurrent is how many hashes (or checks) run at once in the process.
// Each takes 64 MiB for its whole run and already keeps every CPU busy
// (one lane per CPU), so more at once would only add memory: unbounded,
// two dozen sign-ins at once took a server past 1 GB. The others wait
// their turn, as long as their caller's context allows.
const MaxConcurrent = 2

var slots = semaphore.NewWeighted(MaxConcurrent)

// Hash returns an encoded argon2id hash of pw, salt and parameters included.
// Call it outside any database transaction: it takes a while and, under
// load, waits for a turn.
func Hash(ctx context.Context, pw string) (string, error) {
	if err := slots.Acquire(ctx, 1); err != nil {
		return "", err
	}
	defer slots.Release(1)
	return argon2id.CreateHash(pw, params)
}

// Check reports whether pw matches the encoded hash, under the same bound
// as Hash.
func Check(ctx context.Context, pw, hash string) (bool, error) {
	if err := slots.Acquire(ctx, 1); err != nil {
		return false, err
	}
	defer slots.Release(1)
	return argon2id.ComparePasswordAndHash(pw, hash)
}
