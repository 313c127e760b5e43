// Package billingtest signs webhook deliveries as Stripe does, for tests
// of the packages that receive them: they then need no Stripe library of
// their own.
package billingtest

import (
	"time"

	"github.com/stripe/stripe-go/v76/webhook"
)

// Signature is the Stripe-Signature header Stripe would send with payload,
// signed with secret at at (now when at is zero).
func Signature(payload []byte, secret string, at time.Time) string {
	if at.IsZero() {
		at = time.Now()
	}
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}
