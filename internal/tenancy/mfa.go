package tenancy

import (
	"context"
	"strings"
	"time"
)

// Second factor states of a session opened with a password. A session in
// either state grants nothing but the step it waits for, and signing out.
const (
	// SecondFactorCode waits for a code from the person's authenticator
	// app, or one of their recovery codes.
	SecondFactorCode = "totp"
	// SecondFactorEnrol waits for the person to set up an authenticator:
	// the tenant requires a second factor of their role.
	SecondFactorEnrol = "enrol"
)

// Two-factor settings.
const (
	// RecoveryCodeCount is how many recovery codes an enrolment makes.
	RecoveryCodeCount = 10
	// PendingSignInTTL is how long a password sign-in may wait for its
	// second factor before the session ends.
	PendingSignInTTL = 10 * time.Minute
)

// SecondFactorStep is what a password sign-in still needs: a code when the
// person has enrolled, enrolment when the tenant requires a second factor
// of their role, else nothing ("").
func SecondFactorStep(enrolled, requiredForAdmins bool, role Role) string {
	switch {
	case enrolled:
		return SecondFactorCode
	case requiredForAdmins && RoleRank(role) >= RoleRank(RoleAdmin):
		return SecondFactorEnrol
	}
	return ""
}

// AcceptStep reports whether a code valid at time step step may be taken
// when the last one accepted was at last: a code is used once, and no code
// older than one used since is taken either.
func AcceptStep(step, last int64) bool { return step > last }

// LooksLikeRecoveryCode reports whether input is shaped like a recovery
// code rather than an authenticator's six digits.
func LooksLikeRecoveryCode(input string) bool {
	return len(NormalizeRecoveryCode(input)) == 10
}

// NormalizeRecoveryCode drops spaces and dashes and lowercases, so a code
// typed as shown or without its dash matches.
func NormalizeRecoveryCode(input string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, input)
}

// ErrBadSecondFactor is the answer to a wrong, used or expired code.
var ErrBadSecondFactor = &Error{Code: EINVALID, Field: "code", Message: "That code is not right, or was used already. Enter the current code from your app, or a recovery code."}

// ErrBadEnrolmentCode is the answer to a wrong code while the app is set
// up: there are no recovery codes yet.
var ErrBadEnrolmentCode = &Error{Code: EINVALID, Field: "code", Message: "That code is not right. Enter the code your app shows now for this account; it changes every 30 seconds."}

// Enrolment is an authenticator secret being set up, not confirmed yet.
type Enrolment struct {
	// Secret is the base32 secret, for typing in by hand.
	Secret string
	// URI is the otpauth:// address the QR code carries.
	URI string
	// QRCode is a PNG image of URI.
	QRCode []byte
}

// TwoFactorStatus is what a person's security page shows.
type TwoFactorStatus struct {
	Enrolled      bool
	EnrolledAt    *time.Time
	RecoveryLeft  int
	Required      bool // the tenant requires it of this person's role
	PolicyEnabled bool // the tenant requires it of owners and admins
}

// TOTP makes and checks authenticator secrets and codes.
type TOTP interface {
	// NewKey makes a secret for account at issuer, with its otpauth URI
	// and a QR code of it.
	NewKey(issuer, account string) (Enrolment, error)
	// KeyFor is NewKey for a secret made before.
	KeyFor(issuer, account, secret string) (Enrolment, error)
	// Match returns the time step at which code is valid for secret,
	// within a step either side of now.
	Match(secret, code string, now time.Time) (step int64, ok bool)
}

// TwoFactorService enrols people in two-factor authentication and checks
// their codes. Every call is in one tenant.
type TwoFactorService interface {
	Status(ctx context.Context, tenantID string, id *Identity) (TwoFactorStatus, error)
	// BeginEnrolment makes a new, unconfirmed secret for the person, or
	// returns the one being set up. An enrolled person must turn two
	// factors off first.
	BeginEnrolment(ctx context.Context, tenantID string, u *User, tenantName string) (Enrolment, error)
	// ConfirmEnrolment checks a code of the new secret, turns two factors
	// on and returns the recovery codes, shown once. When sessionToken is
	// a session waiting for enrolment, it is completed: the new token
	// replaces it.
	ConfirmEnrolment(ctx context.Context, tenantID, userID, code, sessionToken string) (codes []string, newToken string, err error)
	// CompleteSignIn checks a code (or a recovery code) for a session
	// waiting for one, and completes it under a new token.
	CompleteSignIn(ctx context.Context, tenantID, sessionToken, code string) (newToken string, err error)
	// Disable turns two factors off after checking a current code; refused
	// when the tenant requires it of the person's role.
	Disable(ctx context.Context, tenantID string, id *Identity, code string) error
	// RenewRecoveryCodes checks a current code (authenticator or
	// recovery), then replaces all of the person's recovery codes with new
	// ones, returned to be shown once.
	RenewRecoveryCodes(ctx context.Context, tenantID string, id *Identity, code string) ([]string, error)
	// SetPolicy requires two factors of owners and admins, or not; owners
	// only.
	SetPolicy(ctx context.Context, tenantID string, id *Identity, requiredForAdmins bool) error
}
