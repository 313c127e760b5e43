package tenancy

import (
	"context"
	"errors"
)

// Asks writes what a provider's price asks: "$29.00/month", or "$29.00,
// not monthly".
func (p *BillingPrice) Asks() string {
	s := FormatAmount(p.AmountCents, p.Currency)
	if p.Monthly {
		return s + "/month"
	}
	return s + ", not monthly"
}

// SoldAt is the Stripe price whose amount the plan's price must agree with
// once in is saved over old (nil for a new plan): the one given, or old's
// when the price changes; "" for none.
func (in *PlanInput) SoldAt(old *Plan) string {
	switch {
	case in.StripePriceID != nil:
		return *in.StripePriceID
	case old != nil && in.PriceCents != nil:
		return old.StripePriceID
	}
	return ""
}

// AgreeStripePrice keeps a plan's price and the Stripe price that sells it
// in agreement, before anything is saved and outside any transaction (the
// console's plan form and `nself plan update` both call it). A Stripe price
// asks a fixed amount, so a new price on a plan sold at its own Stripe
// price (old's) gets a new Stripe price beside it, on the same product,
// which in takes; a Stripe price given that is not the plan's own must ask
// what the plan says. in.StripePriceID nil keeps old's. Whatever Stripe
// cannot confirm is an error and nothing may be saved: EINVALID on
// stripe_price, or EUNAVAILABLE on price when Stripe cannot be reached.
// It returns what to tell the administrator. Without billing (b nil),
// Stripe is not asked.
func AgreeStripePrice(ctx context.Context, b Billing, old *Plan, in *PlanInput) (string, error) {
	id := in.SoldAt(old)
	if b == nil || id == "" {
		return "", nil
	}
	// What will not save is refused before Stripe is asked: a new Stripe
	// price for a plan that is then not saved would sell nothing.
	if err := in.Validate(); err != nil {
		return "", err
	}
	var cents int64
	switch {
	case in.PriceCents != nil:
		cents = *in.PriceCents
	case old != nil:
		cents = old.PriceMonthlyCent
	}
	ours := old != nil && old.StripePriceID == id
	var (
		p       *BillingPrice
		created bool
		err     error
	)
	if ours {
		p, created, err = b.PriceAt(ctx, in.Name, id, cents)
	} else {
		p, err = b.Price(ctx, id)
	}
	switch code := ErrorCode(err); {
	case err == nil:
	case code == EINVALID, errors.Is(err, context.Canceled):
		return "", err
	case code == EUNAVAILABLE:
		// The cause as it came, without the "unavailable" sentence that
		// this message says in its own words.
		var e *Error
		if errors.As(err, &e) && e.Err != nil {
			err = e.Err
		}
		return "", &Error{Code: EUNAVAILABLE, Field: "price", Service: ServiceStripe, Err: err,
			Message: "Stripe could not be reached to check the price, so nothing was saved: a plan's price and its Stripe price must agree. Try again in a minute."}
	default:
		// Stripe answered and refused (a key it does not accept, say):
		// trying again will not help; its words say why.
		return "", FieldErrorf(EINVALID, "price", "Stripe refused to check the price, so nothing was saved: %s", err.Error())
	}
	if !ours && (p.AmountCents != cents || !p.Monthly) {
		return "", FieldErrorf(EINVALID, "stripe_price", "Stripe price %s asks %s, not the %s/month of this plan: give the price it asks, or a monthly Stripe price of that amount.",
			id, p.Asks(), FormatPrice(cents))
	}
	in.StripePriceID = &p.ID
	if created {
		return "Its new price is Stripe price " + p.ID + " at " + p.Asks() + "; subscriptions already on " + id +
			" keep paying its amount until they change plan.", nil
	}
	return "", nil
}
