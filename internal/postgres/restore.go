package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/nself/nself/internal/tenancy"
)

// nonPortable is true for an object (of catalog classid, oid objid) that
// depends on something a database without nself lacks: a function, type,
// operator, operator class or collation outside pg_catalog (such as
// tenants.current_tenant_id(), or an extension's), or a sequence. Enums
// are created by the restore.
const nonPortable = `EXISTS (
	SELECT 1 FROM pg_depend dep
	WHERE dep.classid = %s AND dep.objid = %s AND dep.deptype = 'n'
	  AND ((dep.refclassid IN ('pg_proc'::regclass, 'pg_type'::regclass, 'pg_operator'::regclass,
	                           'pg_opclass'::regclass, 'pg_collation'::regclass)
	        AND (pg_identify_object(dep.refclassid, dep.refobjid, 0)).schema <> 'pg_catalog'
	        AND NOT EXISTS (SELECT 1 FROM pg_type en WHERE dep.refclassid = 'pg_type'::regclass
	                        AND en.oid = dep.refobjid AND en.typtype = 'e'))
	    OR (dep.refclassid = 'pg_class'::regclass
	        AND EXISTS (SELECT 1 FROM pg_class seq WHERE seq.oid = dep.refobjid AND seq.relkind = 'S'))))`

// The enums a table's columns, defaults, constraints and indexes use.
const restoreEnumsSQL = `
	SELECT DISTINCT dep.refobjid
	FROM pg_depend dep
	JOIN pg_type t ON t.oid = dep.refobjid AND t.typtype = 'e'
	WHERE dep.refclassid = 'pg_type'::regclass
	  AND ((dep.classid = 'pg_class'::regclass AND dep.objid = $1::regclass)
	    OR (dep.classid = 'pg_attrdef'::regclass AND dep.objid IN (SELECT oid FROM pg_attrdef WHERE adrelid = $1::regclass))
	    OR (dep.classid = 'pg_constraint'::regclass AND dep.objid IN (SELECT oid FROM pg_constraint WHERE conrelid = $1::regclass))
	    OR (dep.classid = 'pg_class'::regclass AND dep.objid IN (SELECT indexrelid FROM pg_index WHERE indrelid = $1::regclass)))`

// The columns of a table: the type as a database without nself has it (a
// domain becomes its base type, an enum stays, to be created, and other
// types of extensions become text), the default when it is portable, and
// whether a sequence gives the values.
var restoreColumnsSQL = `
	SELECT a.attname,
	       CASE WHEN tn.nspname = 'pg_catalog' THEN format_type(a.atttypid, a.atttypmod)
	            WHEN t.typtype = 'e' OR el.typtype = 'e' THEN format_type(a.atttypid, a.atttypmod)
	            WHEN t.typtype = 'd' AND (SELECT typnamespace FROM pg_type WHERE oid = t.typbasetype) = 'pg_catalog'::regnamespace
	              THEN format_type(t.typbasetype, t.typtypmod)
	            ELSE 'text' END,
	       a.attnotnull,
	       coalesce(CASE WHEN a.attgenerated = '' AND NOT ` + fmt.Sprintf(nonPortable, "'pg_attrdef'::regclass", "d.oid") + `
	                     THEN pg_get_expr(d.adbin, d.adrelid) END, ''),
	       coalesce(CASE WHEN a.attgenerated = 's' AND NOT ` + fmt.Sprintf(nonPortable, "'pg_attrdef'::regclass", "d.oid") + `
	                     THEN pg_get_expr(d.adbin, d.adrelid) END, ''),
	       a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
	         AND (a.attidentity <> '' OR EXISTS (
	           SELECT 1 FROM pg_depend sd JOIN pg_class seq ON seq.oid = sd.refobjid AND seq.relkind = 'S'
	           WHERE sd.classid = 'pg_attrdef'::regclass AND sd.objid = d.oid AND sd.refclassid = 'pg_class'::regclass)),
	       coalesce(CASE WHEN t.typtype = 'e' THEN t.oid WHEN el.typtype = 'e' THEN el.oid END, 0)
	FROM pg_attribute a
	JOIN pg_type t ON t.oid = a.atttypid
	JOIN pg_namespace tn ON tn.oid = t.typnamespace
	LEFT JOIN pg_type el ON el.oid = t.typelem AND t.typcategory = 'A'
	LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
	ORDER BY a.attnum`

// The constraints a restore can make: keys, checks and exclusions that
// depend on nothing outside pg_catalog, and foreign keys (whose targets are
// matched to the archive's tables by the caller). NOT NULL is the
// column's.
var restoreConstraintsSQL = `
	SELECT c.conname, c.contype, pg_get_constraintdef(c.oid), c.confrelid
	FROM pg_constraint c
	WHERE c.conrelid = $1::regclass AND c.contype IN ('p', 'u', 'c', 'x', 'f')
	  AND NOT ` + fmt.Sprintf(nonPortable, "'pg_constraint'::regclass", "c.oid") + `
	  AND (c.conindid = 0 OR c.contype = 'f' OR NOT ` + fmt.Sprintf(nonPortable, "'pg_class'::regclass", "c.conindid") + `)
	ORDER BY CASE c.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'x' THEN 2 ELSE 3 END, c.conname`

// The indexes no constraint makes, and the start PostgreSQL gives their
// definition, which names the table with its schema whatever the search
// path: the restore names it as the archive does.
var restoreIndexesSQL = `
	SELECT ic.relname, i.indisunique, pg_get_indexdef(i.indexrelid),
	       'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(ic.relname)
	         || ' ON ' || CASE WHEN tc.relkind = 'p' THEN 'ONLY ' ELSE '' END
	         || quote_ident(tn.nspname) || '.' || quote_ident(tc.relname) || ' USING '
	FROM pg_index i
	JOIN pg_class ic ON ic.oid = i.indexrelid
	JOIN pg_class tc ON tc.oid = i.indrelid
	JOIN pg_namespace tn ON tn.oid = tc.relnamespace
	WHERE i.indrelid = $1::regclass
	  AND NOT EXISTS (SELECT 1 FROM pg_constraint c
	                  WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
	  AND NOT ` + fmt.Sprintf(nonPortable, "'pg_class'::regclass", "i.indexrelid") + `
	ORDER BY ic.relname`

// tableDefinitions reads from the catalog how to create the exported
// tables in another database. Definitions are printed with the search path
// set to the data schema (then pg_catalog only), so they name the tenant's
// own tables without a schema, whether those live in the shared schema or
// in a schema tenant's: the restore scripts set the search path to the
// schema the archive names them in.
func tableDefinitions(ctx context.Context, tx pgx.Tx, tables []*tenantTable, dataSchema string) ([]tenancy.EnumType, []tenancy.TableDefinition, error) {
	var was string
	if err := tx.QueryRow(ctx, `SELECT current_setting('search_path')`).Scan(&was); err != nil {
		return nil, nil, err
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true)`,
		pgx.Identifier{dataSchema}.Sanitize()+", pg_catalog"); err != nil {
		return nil, nil, err
	}
	// The rest of the transaction reads with the search path it had.
	defer tx.Exec(context.WithoutCancel(ctx), `SELECT set_config('search_path', $1, true)`, was)

	byOID := map[uint32]string{}
	for _, t := range tables {
		var oid uint32
		if err := tx.QueryRow(ctx, `SELECT $1::regclass::oid`, t.real).Scan(&oid); err != nil {
			return nil, nil, err
		}
		byOID[oid] = t.name
	}
	enums := map[uint32]bool{}
	var defs []tenancy.TableDefinition
	for _, t := range tables {
		d := tenancy.TableDefinition{Name: t.name, Loaded: t.columnNames()}
		rows, err := tx.Query(ctx, restoreColumnsSQL, t.real)
		if err != nil {
			return nil, nil, fmt.Errorf("columns of %s: %w", t.name, err)
		}
		for rows.Next() {
			var c tenancy.ColumnDefinition
			var enum uint32
			if err := rows.Scan(&c.Name, &c.Type, &c.NotNull, &c.Default, &c.Generated, &c.Identity, &enum); err != nil {
				rows.Close()
				return nil, nil, err
			}
			if enum != 0 {
				enums[enum] = true
			}
			d.Columns = append(d.Columns, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("columns of %s: %w", t.name, err)
		}
		rows, err = tx.Query(ctx, restoreConstraintsSQL, t.real)
		if err != nil {
			return nil, nil, fmt.Errorf("constraints of %s: %w", t.name, err)
		}
		for rows.Next() {
			var name, kind, def string
			var target uint32
			if err := rows.Scan(&name, &kind, &def, &target); err != nil {
				rows.Close()
				return nil, nil, err
			}
			if kind != "f" {
				d.Constraints = append(d.Constraints, tenancy.Constraint{Name: name, Definition: def})
			} else if ref, ok := byOID[target]; ok {
				// A reference to a table the archive does not hold (the
				// tenant registry) has nothing to point at.
				d.ForeignKeys = append(d.ForeignKeys, tenancy.ForeignKey{Name: name, Definition: def, References: ref})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("constraints of %s: %w", t.name, err)
		}
		rows, err = tx.Query(ctx, restoreIndexesSQL, t.real)
		if err != nil {
			return nil, nil, fmt.Errorf("indexes of %s: %w", t.name, err)
		}
		for rows.Next() {
			var name, def, start string
			var unique bool
			if err := rows.Scan(&name, &unique, &def, &start); err != nil {
				rows.Close()
				return nil, nil, err
			}
			rest, ok := strings.CutPrefix(def, start)
			if !ok {
				continue // a form this code does not know: left out rather than guessed
			}
			kind := "INDEX "
			if unique {
				kind = "UNIQUE INDEX "
			}
			d.Indexes = append(d.Indexes, "CREATE "+kind+tenancy.QuoteIdent(name)+" ON "+tenancy.QuoteQualified(t.name)+" USING "+rest)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("indexes of %s: %w", t.name, err)
		}
		rows, err = tx.Query(ctx, restoreEnumsSQL, t.real)
		if err != nil {
			return nil, nil, fmt.Errorf("types of %s: %w", t.name, err)
		}
		used, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
		if err != nil {
			return nil, nil, fmt.Errorf("types of %s: %w", t.name, err)
		}
		for _, oid := range used {
			enums[oid] = true
		}
		defs = append(defs, d)
	}
	var types []tenancy.EnumType
	for oid := range enums {
		var schema, name string
		var labels []string
		if err := tx.QueryRow(ctx, `
			SELECT n.nspname, t.typname, array(SELECT enumlabel FROM pg_enum WHERE enumtypid = t.oid ORDER BY enumsortorder)
			FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1`, oid).Scan(&schema, &name, &labels); err != nil {
			return nil, nil, err
		}
		if schema == dataSchema {
			schema = tenancy.DataSchema
		}
		types = append(types, tenancy.EnumType{Name: schema + "." + name, Labels: labels})
	}
	slices.SortFunc(types, func(a, b tenancy.EnumType) int { return strings.Compare(a.Name, b.Name) })
	return types, defs, nil
}
