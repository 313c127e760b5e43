package web

// Forms are every form struct the handlers parse, by name, for
// TestFormsMatchTheirPages: a form added here without a page to check
// fails it.
var Forms = map[string]any{
	"adminSignIn":     adminSignInForm{},
	"tenant":          tenantForm{},
	"confirm":         confirmForm{},
	"plan":            planForm{},
	"tenantPlan":      tenantPlanForm{},
	"signIn":          signInForm{},
	"forgot":          forgotForm{},
	"setPassword":     setPasswordForm{},
	"apiKey":          apiKeyForm{},
	"checkout":        checkoutForm{},
	"billingPortal":   billingPortalForm{},
	"brand":           brandForm{},
	"theme":           themeForm{},
	"setting":         settingForm{},
	"brandingPreview": brandingPreviewForm{},
	"domain":          domainForm{},
	"emailTemplate":   emailTemplateForm{},
	"logo":            logoForm{},
	"memberRole":      memberRoleForm{},
	"invite":          inviteForm{},
	"accept":          acceptForm{},
	"companyDetails":  companyDetailsForm{},
	"code":            codeForm{},
	"org":             orgForm{},
	"orgRename":       orgRenameForm{},
	"orgTenant":       orgTenantForm{},
	"passwordChange":  passwordChangeForm{},
	"ssoSettings":     ssoSettingsForm{},
}

// FormNames are a form struct's input names.
func FormNames(form any) []string { return formNames(form) }
