package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// TwoFactorService implements tenancy.TwoFactorService on the application
// role. Secrets are sealed before they are stored and opened only inside
// the transaction that checks a code against them, under the row's lock:
// two requests with one code take turns, and the second finds its step
// used.
type TwoFactorService struct {
	db     *DB
	totp   tenancy.TOTP
	sealer tenancy.Sealer
	now    func() time.Time
}

var _ tenancy.TwoFactorService = (*TwoFactorService)(nil)

// NewTwoFactorService returns a TwoFactorService using db, checking codes
// with t and sealing secrets with sealer.
func NewTwoFactorService(db *DB, t tenancy.TOTP, sealer tenancy.Sealer) *TwoFactorService {
	return &TwoFactorService{db: db, totp: t, sealer: sealer, now: time.Now}
}

// Status reports whether the person has enrolled, and whether the tenant
// requires it of them.
func (s *TwoFactorService) Status(ctx context.Context, tenantID string, id *tenancy.Identity) (tenancy.TwoFactorStatus, error) {
	var st tenancy.TwoFactorStatus
	err := readInTenant(ctx, s.db.App, tenantID, "", func(rows pgx.Rows) error {
		if !rows.Next() {
			return nil
		}
		return rows.Scan(&st.EnrolledAt, &st.RecoveryLeft, &st.PolicyEnabled)
	}, `
		SELECT t.confirmed_at,
		       (SELECT count(*) FROM auth.recovery_codes r WHERE r.tenant_id = $1 AND r.user_id = $2 AND r.used_at IS NULL),
		       coalesce((SELECT p.required_for_admins FROM tenants.tenant_mfa_policy p WHERE p.tenant_id = $1), false)
		FROM (SELECT 1) one
		LEFT JOIN auth.user_totp t ON t.tenant_id = $1 AND t.user_id = $2 AND t.confirmed_at IS NOT NULL`,
		tenantID, id.User.ID)
	if err != nil {
		return st, fmt.Errorf("two-factor status: %w", err)
	}
	st.Enrolled = st.EnrolledAt != nil
	st.Required = tenancy.SecondFactorStep(false, st.PolicyEnabled, id.Role) == tenancy.SecondFactorEnrol
	return st, nil
}

var errAlreadyEnrolled = tenancy.Errorf(tenancy.ECONFLICT, "Two-factor authentication is on already. Turn it off first to set up another app.")

// BeginEnrolment returns the secret being set up, or makes one, sealed:
// opening the set-up page again shows the code already scanned.
func (s *TwoFactorService) BeginEnrolment(ctx context.Context, tenantID string, u *tenancy.User, tenantName string) (tenancy.Enrolment, error) {
	var e tenancy.Enrolment
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var sealed []byte
		var confirmed *time.Time
		err := tx.QueryRow(ctx, `SELECT secret_enc, confirmed_at FROM auth.user_totp WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE`,
			tenantID, u.ID).Scan(&sealed, &confirmed)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case confirmed != nil:
			return errAlreadyEnrolled
		default:
			secret, err := s.sealer.Open(sealed, totpSealContext(tenantID, u.ID))
			if err != nil {
				return err
			}
			e, err = s.totp.KeyFor(tenantName, u.Email, string(secret))
			return err
		}
		if e, err = s.totp.NewKey(tenantName, u.Email); err != nil {
			return err
		}
		if sealed, err = s.sealer.Seal([]byte(e.Secret), totpSealContext(tenantID, u.ID)); err != nil {
			return fmt.Errorf("seal TOTP secret: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO auth.user_totp (tenant_id, user_id, secret_enc) VALUES ($1, $2, $3)`, tenantID, u.ID, sealed)
		return err
	})
	if err != nil {
		return tenancy.Enrolment{}, err
	}
	return e, nil
}

var errNoEnrolment = tenancy.FieldErrorf(tenancy.EINVALID, "code", "Start the set-up again: no authenticator is being set up.")

// ConfirmEnrolment turns two factors on once a code of the new secret is
// entered, and makes the recovery codes.
func (s *TwoFactorService) ConfirmEnrolment(ctx context.Context, tenantID, userID, code, sessionToken string) ([]string, string, error) {
	codes, hashes := newRecoveryCodes()
	var newToken string
	bad := false
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		var sealed []byte
		var last int64
		var email string
		err := tx.QueryRow(ctx, `
			SELECT t.secret_enc, t.last_step, u.email FROM auth.user_totp t
			JOIN auth.users u ON u.tenant_id = t.tenant_id AND u.id = t.user_id
			WHERE t.tenant_id = $1 AND t.user_id = $2 AND t.confirmed_at IS NULL
			FOR UPDATE OF t`, tenantID, userID).Scan(&sealed, &last, &email)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoEnrolment
		} else if err != nil {
			return err
		}
		step, ok, err := s.match(sealed, totpSealContext(tenantID, userID), code, last)
		if err != nil {
			return err
		}
		if !ok {
			bad = true
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE auth.user_totp SET confirmed_at = now(), last_step = $3 WHERE tenant_id = $1 AND user_id = $2`,
			tenantID, userID, step); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM auth.recovery_codes WHERE tenant_id = $1 AND user_id = $2`, tenantID, userID); err != nil {
			return err
		}
		if err := insertRecoveryCodes(ctx, tx, tenantID, userID, hashes); err != nil {
			return err
		}
		if sessionToken != "" {
			if newToken, err = completeSession(ctx, tx, tenantID, userID, sessionToken); err != nil {
				return err
			}
		}
		if err := announceCompleted(ctx, tx, tenantID, userID, newToken); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "user.two_factor_enable", email,
			fmt.Sprintf("authenticator app set up, %d recovery codes made", len(codes)))
	})
	if err != nil {
		return nil, "", err
	}
	if bad {
		return nil, "", tenancy.ErrBadEnrolmentCode
	}
	return codes, newToken, nil
}

// CompleteSignIn checks the code for a session waiting for one.
func (s *TwoFactorService) CompleteSignIn(ctx context.Context, tenantID, sessionToken, code string) (string, error) {
	if sessionToken == "" || !tenancy.IsUUID(tenantID) {
		return "", errNoSession
	}
	var newToken string
	bad := false
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		u := &tenancy.User{TenantID: tenantID}
		var step *string
		err := tx.QueryRow(ctx, `
			SELECT u.id, u.email, s.second_factor FROM auth.sessions s
			JOIN auth.users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
			WHERE s.tenant_id = $1 AND s.token_hash = $2 AND s.expires_at > now()
			FOR UPDATE OF s`, tenantID, tenancy.HashSecret(sessionToken)).Scan(&u.ID, &u.Email, &step)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoSession
		} else if err != nil {
			return err
		}
		if step == nil || *step != tenancy.SecondFactorCode {
			return tenancy.Errorf(tenancy.EINVALID, "This session does not wait for a code.")
		}
		how, err := s.checkCode(ctx, tx, tenantID, u.ID, code)
		if err != nil {
			return err
		}
		actx := actingUser(ctx, u)
		if how == "" {
			bad = true
			return recordAudit(actx, tx, tenantID, "user.two_factor_fail", u.Email, "wrong or used code at sign-in")
		}
		if newToken, err = completeSession(ctx, tx, tenantID, u.ID, sessionToken); err != nil {
			return err
		}
		if err := announceCompleted(ctx, tx, tenantID, u.ID, newToken); err != nil {
			return err
		}
		return recordAudit(actx, tx, tenantID, "user.two_factor", u.Email, "signed in with "+how)
	})
	if err != nil {
		return "", err
	}
	if bad {
		return "", tenancy.ErrBadSecondFactor
	}
	return newToken, nil
}

// Disable turns two factors off after a current code.
func (s *TwoFactorService) Disable(ctx context.Context, tenantID string, id *tenancy.Identity, code string) error {
	allowed := func(tx pgx.Tx) error {
		var required bool
		if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT required_for_admins FROM tenants.tenant_mfa_policy WHERE tenant_id = $1), false)`,
			tenantID).Scan(&required); err != nil {
			return err
		}
		if tenancy.SecondFactorStep(false, required, id.Role) == tenancy.SecondFactorEnrol {
			return tenancy.Errorf(tenancy.EFORBIDDEN, "This workspace requires two-factor authentication of owners and admins: it cannot be turned off.")
		}
		return nil
	}
	return s.withCurrentCode(ctx, tenantID, id, code, "turn two-factor off", allowed, func(tx pgx.Tx, how string) error {
		if _, err := tx.Exec(ctx, `DELETE FROM auth.user_totp WHERE tenant_id = $1 AND user_id = $2`, tenantID, id.User.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM auth.recovery_codes WHERE tenant_id = $1 AND user_id = $2`, tenantID, id.User.ID); err != nil {
			return err
		}
		return recordAudit(ctx, tx, tenantID, "user.two_factor_disable", id.User.Email, "turned off with "+how)
	})
}

// RenewRecoveryCodes replaces the person's recovery codes after a current
// code; the old ones, used or not, stop working.
func (s *TwoFactorService) RenewRecoveryCodes(ctx context.Context, tenantID string, id *tenancy.Identity, code string) ([]string, error) {
	codes, hashes := newRecoveryCodes()
	enrolled := func(tx pgx.Tx) error {
		var on bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM auth.user_totp WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NOT NULL)`,
			tenantID, id.User.ID).Scan(&on); err != nil {
			return err
		}
		if !on {
			return tenancy.Errorf(tenancy.ECONFLICT, "Two-factor authentication is off: there are no recovery codes to renew.")
		}
		return nil
	}
	err := s.withCurrentCode(ctx, tenantID, id, code, "renew recovery codes", enrolled, func(tx pgx.Tx, how string) error {
		if _, err := tx.Exec(ctx, `DELETE FROM auth.recovery_codes WHERE tenant_id = $1 AND user_id = $2`, tenantID, id.User.ID); err != nil {
			return err
		}
		if err := insertRecoveryCodes(ctx, tx, tenantID, id.User.ID, hashes); err != nil {
			return err
		}
		how, _, _ = strings.Cut(how, " (") // how many were left: none are now
		return recordAudit(ctx, tx, tenantID, "user.recovery_codes_renew", id.User.Email,
			fmt.Sprintf("%d new recovery codes made after %s; the old ones no longer work", len(codes), how))
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// withCurrentCode makes change, in one transaction of the person's tenant,
// once code (an authenticator or recovery code of theirs, used up) is
// right; allowed, run first, may refuse. A wrong or used code is recorded
// in the audit log, saying it was to do what, and is ErrBadSecondFactor.
func (s *TwoFactorService) withCurrentCode(ctx context.Context, tenantID string, id *tenancy.Identity, code, what string,
	allowed func(pgx.Tx) error, change func(tx pgx.Tx, how string) error) error {
	bad := false
	err := inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		if err := allowed(tx); err != nil {
			return err
		}
		how, err := s.checkCode(ctx, tx, tenantID, id.User.ID, code)
		if err != nil {
			return err
		}
		if how == "" {
			bad = true
			return recordAudit(ctx, tx, tenantID, "user.two_factor_fail", id.User.Email, "wrong or used code to "+what)
		}
		return change(tx, how)
	})
	if err == nil && bad {
		return tenancy.ErrBadSecondFactor
	}
	return err
}

// SetPolicy requires two factors of owners and admins, or not.
func (s *TwoFactorService) SetPolicy(ctx context.Context, tenantID string, id *tenancy.Identity, required bool) error {
	if id.Role != tenancy.RoleOwner {
		return tenancy.Errorf(tenancy.EFORBIDDEN, "Only owners may change what sign-in requires.")
	}
	return inTenant(ctx, s.db.App, tenantID, "", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO tenants.tenant_mfa_policy (tenant_id, required_for_admins) VALUES ($1, $2)
			ON CONFLICT (tenant_id) DO UPDATE SET required_for_admins = excluded.required_for_admins, updated_at = excluded.updated_at`,
			tenantID, required); err != nil {
			return err
		}
		summary := "two-factor no longer required"
		if required {
			summary = "two-factor required of owners and admins"
		}
		return recordAudit(ctx, tx, tenantID, "mfa_policy.set", "two-factor", summary)
	})
}

// checkCode checks an authenticator code or a recovery code of the user,
// using it up; it returns what matched ("" for nothing).
func (s *TwoFactorService) checkCode(ctx context.Context, tx pgx.Tx, tenantID, userID, code string) (string, error) {
	if tenancy.LooksLikeRecoveryCode(code) {
		var left int
		err := tx.QueryRow(ctx, `
			WITH used AS (
				UPDATE auth.recovery_codes SET used_at = now()
				WHERE tenant_id = $1 AND user_id = $2 AND code_hash = $3 AND used_at IS NULL
				RETURNING code_hash
			)
			SELECT count(*) FROM auth.recovery_codes
			WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL AND code_hash NOT IN (SELECT code_hash FROM used)
			HAVING EXISTS (SELECT 1 FROM used)`,
			tenantID, userID, tenancy.HashSecret(tenancy.NormalizeRecoveryCode(code))).Scan(&left)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", nil
		} else if err != nil {
			return "", err
		}
		return fmt.Sprintf("a recovery code (%d left)", left), nil
	}
	var sealed []byte
	var last int64
	err := tx.QueryRow(ctx, `
		SELECT secret_enc, last_step FROM auth.user_totp
		WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NOT NULL FOR UPDATE`, tenantID, userID).Scan(&sealed, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	step, ok, err := s.match(sealed, totpSealContext(tenantID, userID), code, last)
	if err != nil || !ok {
		return "", err
	}
	if _, err := tx.Exec(ctx, `UPDATE auth.user_totp SET last_step = $3 WHERE tenant_id = $1 AND user_id = $2`, tenantID, userID, step); err != nil {
		return "", err
	}
	return "an authenticator code", nil
}

// match opens the secret and checks code against it: a step at or before
// the last one accepted is refused, so a code is good once.
func (s *TwoFactorService) match(sealed []byte, context, code string, last int64) (int64, bool, error) {
	secret, err := s.sealer.Open(sealed, context)
	if err != nil {
		return 0, false, err
	}
	step, ok := s.totp.Match(string(secret), code, s.now())
	return step, ok && tenancy.AcceptStep(step, last), nil
}

// completeSession ends the wait of a session for its second factor, under
// a new token: the old one, seen before the second factor, is worth
// nothing from now on, and the change is announced to every process.
func completeSession(ctx context.Context, tx pgx.Tx, tenantID, userID, oldToken string) (string, error) {
	secret, hash := tenancy.NewSecret()
	// The session's end is reckoned here from its start: Citus refuses a
	// timestamp plus an interval over a column in an UPDATE.
	var created time.Time
	err := tx.QueryRow(ctx, `
		SELECT created_at FROM auth.sessions
		WHERE tenant_id = $1 AND user_id = $2 AND token_hash = $3 AND second_factor IS NOT NULL
		FOR UPDATE`, tenantID, userID, tenancy.HashSecret(oldToken)).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `
		UPDATE auth.sessions SET token_hash = $4, second_factor = NULL, expires_at = $5, last_seen_at = now()
		WHERE tenant_id = $1 AND user_id = $2 AND token_hash = $3`,
		tenantID, userID, tenancy.HashSecret(oldToken), hash, created.Add(tenancy.AbsoluteTimeout)); err != nil {
		return "", err
	}
	return secret, nil
}

// recoveryAlphabet leaves out letters and digits read alike (o, 1, l, i):
// 32 characters, so a random byte picks one without bias.
const recoveryAlphabet = "abcdefghjkmnpqrstuvwxyz023456789"

// newRecoveryCodes makes the codes, as shown (xxxxx-xxxxx), and their
// hashes.
func newRecoveryCodes() ([]string, [][]byte) {
	codes := make([]string, tenancy.RecoveryCodeCount)
	hashes := make([][]byte, tenancy.RecoveryCodeCount)
	for i := range codes {
		b := make([]byte, 10)
		rand.Read(b)
		var sb strings.Builder
		for j, c := range b {
			if j == 5 {
				sb.WriteByte('-')
			}
			sb.WriteByte(recoveryAlphabet[int(c)%len(recoveryAlphabet)])
		}
		codes[i] = sb.String()
		hashes[i] = tenancy.HashSecret(tenancy.NormalizeRecoveryCode(codes[i]))
	}
	return codes, hashes
}

// totpSealContext binds a sealed authenticator secret to its account, so a
// secret copied to another row does not open.
func totpSealContext(tenantID, userID string) string { return "totp|" + tenantID + "|" + userID }

// insertRecoveryCodes adds a user's recovery codes in one INSERT … VALUES:
// Citus runs an INSERT … SELECT from unnest as a COPY, which row-level
// security refuses.
func insertRecoveryCodes(ctx context.Context, tx pgx.Tx, tenantID, userID string, hashes [][]byte) error {
	if len(hashes) == 0 {
		return nil
	}
	var sql strings.Builder
	sql.WriteString(`INSERT INTO auth.recovery_codes (tenant_id, user_id, code_hash) VALUES `)
	args := []any{tenantID, userID}
	for i, h := range hashes {
		if i > 0 {
			sql.WriteString(", ")
		}
		args = append(args, h)
		fmt.Fprintf(&sql, "($1, $2, $%d)", len(args))
	}
	_, err := tx.Exec(ctx, sql.String(), args...)
	return err
}
