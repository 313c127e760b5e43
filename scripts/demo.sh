#!/usr/bin/env bash
# Prepares the demo: migrations, the default tenant, and a tenant "acme"
# with an owner who can sign in. Safe to run again. Takes the nself binary
# as its argument; the database settings come from the environment.
set -euo pipefail

nself=${1:?usage: scripts/demo.sh path/to/nself}
export BASE_DOMAIN=${BASE_DOMAIN:-localhost} PUBLIC_SCHEME=${PUBLIC_SCHEME:-http} PUBLIC_PORT=${PUBLIC_PORT:-8080}
owner_email=owner@acme.localhost
owner_password=acme-demo-password

"$nself" tenant init
if ! "$nself" tenant show acme >/dev/null 2>&1; then
  printf '%s\n' "$owner_password" |
    "$nself" tenant create "Acme Corporation" --slug acme --plan pro \
      --owner "$owner_email" --owner-password-stdin
  printf '%s\n' "demo-member-password" |
    "$nself" user create acme member@acme.localhost --name "Demo Member" --password-stdin >/dev/null
fi
"$nself" tenant show acme

cat <<MSG

Demo tenant ready:
  URL:       http://acme.localhost:${PUBLIC_PORT} (served by the web portal)
  Sign in:   ${owner_email} / ${owner_password}
  CLI:       eval "\$(scripts/services.sh env)" && bin/nself tenant list
MSG
