#!/usr/bin/env bash
# Prepares the demo and starts the portal: migrations, the default tenant, a
# tenant "acme" with an owner and a member who can sign in, a platform
# administrator, then `nself serve` in the foreground. Safe to run again.
# Takes the nself binary as its argument; the database and service settings
# come from the environment (scripts/services.sh env).
set -euo pipefail

nself=${1:?usage: scripts/demo.sh path/to/nself}
state=${NSELF_STATE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nself}
port=${PUBLIC_PORT:-8080}
export BASE_DOMAIN=${BASE_DOMAIN:-localhost} PUBLIC_SCHEME=${PUBLIC_SCHEME:-http} PUBLIC_PORT=$port

# One session key for every run, so signing in survives a restart.
mkdir -p "$state"
if [ ! -s "$state/session-secret" ]; then
  head -c 48 /dev/urandom | base64 | tr -d '\n/+=' >"$state/session-secret"
fi
SESSION_SECRET=$(cat "$state/session-secret")
export SESSION_SECRET
# And one key for authenticator secrets, so two-factor sign-in is on in the
# demo and survives a restart too.
if [ ! -s "$state/totp-key" ]; then
  head -c 32 /dev/urandom | base64 | tr -d '\n' >"$state/totp-key"
fi
TOTP_ENCRYPTION_KEY=${TOTP_ENCRYPTION_KEY:-$(cat "$state/totp-key")}
export TOTP_ENCRYPTION_KEY

owner_email=owner@acme.localhost
owner_password=acme-demo-password
admin_email=admin@platform.localhost
admin_password=admin-demo-password

"$nself" tenant init
# Billing against the local stripe-mock: each paid plan sold at a price.
# stripe-mock asks $20.00/month for every price it is asked about, so the
# plans are linked to theirs without asking it (the command warns that it
# did not check; with a real Stripe, leave STRIPE_SECRET_KEY set).
export BILLING_ENABLED=${BILLING_ENABLED:-true}
for plan in starter pro enterprise; do
  env -u STRIPE_SECRET_KEY "$nself" plan update "$plan" --stripe-price "price_$plan" >/dev/null
done
if ! "$nself" tenant show acme >/dev/null 2>&1; then
  printf '%s\n' "$owner_password" |
    "$nself" tenant create "Acme Corporation" --slug acme --plan pro \
      --owner "$owner_email" --owner-password-stdin
fi
printf '%s\n' "$admin_password" |
  "$nself" admin create "$admin_email" --name "Platform admin" --password-stdin >/dev/null 2>&1 || true

cat <<MSG

Demo ready:
  Tenant portal:  http://acme.localhost:${port}
                  sign in as ${owner_email} / ${owner_password}
  Admin console:  http://admin.localhost:${port}
                  sign in as ${admin_email} / ${admin_password}
  Billing:        Stripe calls go to the local stripe-mock (STRIPE_API_BASE); webhooks
                  are accepted at /webhooks/stripe, signed with STRIPE_WEBHOOK_SECRET
  CLI:            eval "\$(scripts/services.sh env)" && bin/nself tenant list

MSG
# No load balancer to drain for: Ctrl-C stops at once.
exec "$nself" serve --addr "127.0.0.1:${port}" --shutdown-drain 0
