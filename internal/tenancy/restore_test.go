package tenancy

import (
	"strings"
	"testing"
)

func TestRestoreLoadsParentsFirst(t *testing.T) {
	fk := func(name, ref string) ForeignKey {
		return ForeignKey{Name: name, References: ref, Definition: "FOREIGN KEY (x) REFERENCES " + ref + "(id)"}
	}
	tables := []TableDefinition{
		{Name: "app.a", ForeignKeys: []ForeignKey{fk("a_b", "app.b")}, Loaded: []string{"id"}},
		{Name: "app.b", ForeignKeys: []ForeignKey{fk("b_c", "app.c"), fk("b_self", "app.b")}, Loaded: []string{"id"}},
		{Name: "app.c", ForeignKeys: []ForeignKey{fk("c_a", "app.a"), fk("c_registry", "tenants.tenants")}, Loaded: []string{"id"}},
		{Name: "app.d", ForeignKeys: []ForeignKey{fk("d_a", "app.a")}, Loaded: []string{"id"}},
	}
	order, deferred := loadOrder(tables)
	var names []string
	for _, t := range order {
		names = append(names, t.Name)
	}
	// a needs b, b needs c, c needs a: the cycle is closed by c's key to
	// a, checked at the commit; d comes after a.
	if got := strings.Join(names, " "); got != "app.c app.b app.a app.d" {
		t.Errorf("order %s", got)
	}
	if len(deferred) != 1 || !deferred["app.c\x00c_a"] {
		t.Errorf("deferred %v", deferred)
	}
	schema, restore := RestoreScripts("acme", nil, tables)
	if !strings.Contains(string(schema), `ADD CONSTRAINT "c_a" FOREIGN KEY (x) REFERENCES app.a(id) DEFERRABLE INITIALLY DEFERRED;`) ||
		strings.Contains(string(schema), `"a_b" FOREIGN KEY (x) REFERENCES app.b(id) DEFERRABLE`) {
		t.Errorf("schema.sql:\n%s", schema)
	}
	if i, j := strings.Index(string(restore), `\copy "app"."c"`), strings.Index(string(restore), `\copy "app"."a"`); i < 0 || j < i {
		t.Errorf("restore.sql:\n%s", restore)
	}
}

func TestRestoreWritesRedactedColumnsNullable(t *testing.T) {
	schema, _ := RestoreScripts("acme", nil, []TableDefinition{{
		Name: "tenants.tenant_invitations",
		Columns: []ColumnDefinition{
			{Name: "token_hash", Type: "bytea", NotNull: true},
			{Name: "email", Type: "text", NotNull: true},
		},
	}})
	if !strings.Contains(string(schema), `"token_hash" bytea,`) || !strings.Contains(string(schema), `"email" text NOT NULL`) {
		t.Errorf("schema.sql:\n%s", schema)
	}
}
