// Package password hashes and checks user passwords with argon2id.
package password

import "github.com/alexedwards/argon2id"

// params follow the library's defaults (the RFC 9106 second recommendation
// scaled to a web server): 64 MiB, one pass, two lanes.
var params = argon2id.DefaultParams

// Hash returns an encoded argon2id hash of pw, salt and parameters included.
func Hash(pw string) (string, error) { return argon2id.CreateHash(pw, params) }

// Check reports whether pw matches the encoded hash.
func Check(pw, hash string) (bool, error) { return argon2id.ComparePasswordAndHash(pw, hash) }
