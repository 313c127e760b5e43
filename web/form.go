package web

import (
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/nself/nself/views"
)

// A form is a struct, one per form, whose string fields are tagged with the
// names of the page's inputs:
//
//	type inviteForm struct {
//		Email string `form:"email"`
//		Role  string `form:"role"`
//	}
//
// parseForm reads a posted form into it, in one place; the handler then
// reads its fields, so that a misspelt field does not compile, and
// TestFormsMatchTheirPages checks each tag against the inputs of the page
// that posts it. A field tagged ",secret" (a password) is never shown
// again: its view's value is empty.
//
// The page is shown again from the form's view (views.Form), whose values
// are the struct's by input name and whose errors are the field errors.

// formField is one field of a form struct.
type formField struct {
	index  int
	name   string
	secret bool
}

var formFields sync.Map // reflect.Type → []formField

// fieldsOf returns the tagged fields of a form struct type.
func fieldsOf(t reflect.Type) []formField {
	if f, ok := formFields.Load(t); ok {
		return f.([]formField)
	}
	var out []formField
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("form")
		if !ok {
			continue
		}
		if sf.Type.Kind() != reflect.String {
			panic("web: form field " + t.Name() + "." + sf.Name + " is not a string")
		}
		name, opt, _ := strings.Cut(tag, ",")
		out = append(out, formField{index: i, name: name, secret: opt == "secret"})
	}
	formFields.Store(t, out)
	return out
}

// parseForm reads the posted form into dst, a pointer to a form struct,
// and returns the form's view with no errors yet.
func parseForm(r *http.Request, dst any) views.Form {
	v := reflect.ValueOf(dst).Elem()
	for _, f := range fieldsOf(v.Type()) {
		v.Field(f.index).SetString(r.PostFormValue(f.name))
	}
	return formView(dst)
}

// formView is the view of a form struct: its values by input name.
func formView(src any) views.Form {
	v := reflect.Indirect(reflect.ValueOf(src))
	f := views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	for _, ff := range fieldsOf(v.Type()) {
		if ff.secret {
			f.Values[ff.name] = ""
		} else {
			f.Values[ff.name] = v.Field(ff.index).String()
		}
	}
	return f
}

// setFieldError puts msg next to one of the form's fields. A name the form
// does not have is a mistake in the handler, and panics in the first test
// that reaches it rather than show the message nowhere.
func setFieldError(f *views.Form, field, msg string) {
	if _, ok := f.Values[field]; !ok {
		panic("web: the form has no field " + field)
	}
	f.Errors[field] = sentence(msg)
}

// formNames are the input names of a form struct, for tests.
func formNames(form any) []string {
	var out []string
	for _, f := range fieldsOf(reflect.Indirect(reflect.ValueOf(form)).Type()) {
		out = append(out, f.name)
	}
	return out
}
