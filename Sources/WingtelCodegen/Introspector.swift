import Foundation
import Logging
import PostgresNIO
import WingtelDatabase

/// Reads the exposed schemas from pg_catalog into a ``CatalogModel``.
public struct Introspector: Sendable {
    public var schemas: [String]
    public var logger: Logger

    public init(schemas: [String] = ["public"], logger: Logger = Logger(label: "wingtel.codegen")) {
        self.schemas = schemas
        self.logger = logger
    }

    struct TypeInfo {
        var schema: String
        var name: String
        var kind: String  // typtype: b base, e enum, c composite, d domain, r range, m multirange, p pseudo
        var element: Int64
        var base: Int64
        var relation: Int64
        var regtype: String
    }

    final class Diagnostics: @unchecked Sendable {
        var messages: Set<String> = []
        func add(_ message: String) { messages.insert(message) }
    }

    /// Everything but the named queries, which ``NamedQueryCompiler`` adds.
    public func introspect(_ connection: PostgresConnection) async throws -> CatalogModel {
        // Fully qualified type names (`public.line_status`), whatever the session's search_path.
        try await connection.execute("set search_path = ''", logger: logger)
        let types = try await loadTypes(connection)
        let relationNames = try await loadRelationNames(connection)
        let diagnostics = Diagnostics()
        let mapper = TypeMapper(types: types, relations: relationNames, exposed: Set(schemas), diagnostics: diagnostics)

        var models: [String: SchemaModel] = [:]
        for schema in schemas {
            models[schema] = SchemaModel(name: schema, enums: [], composites: [], relations: [], functions: [])
        }

        let enumRows = try await connection.query(
            """
            select n.nspname::text, t.typname::text, array_agg(e.enumlabel::text order by e.enumsortorder),
                   pg_catalog.obj_description(t.oid, 'pg_type')
            from pg_catalog.pg_type t
            join pg_catalog.pg_namespace n on n.oid = t.typnamespace
            join pg_catalog.pg_enum e on e.enumtypid = t.oid
            where n.nspname = any(\(schemas))
            group by n.nspname, t.typname, t.oid
            order by 1, 2
            """, logger: logger)
        for try await (schema, name, labels, comment) in enumRows.decode((String, String, [String], String?).self) {
            models[schema]?.enums.append(EnumModel(schema: schema, name: name, labels: labels, comment: comment))
        }

        let columnRows = try await connection.query(
            """
            select n.nspname::text, c.relname::text, c.relkind::text, pg_catalog.obj_description(c.oid, 'pg_class'),
                   a.attname::text, a.atttypid::int8, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   a.atthasdef, a.attidentity::text, a.attgenerated::text, pg_catalog.col_description(c.oid, a.attnum)
            from pg_catalog.pg_class c
            join pg_catalog.pg_namespace n on n.oid = c.relnamespace
            join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
            where n.nspname = any(\(schemas)) and c.relkind in ('r', 'p', 'v', 'm', 'c') and not c.relispartition
            order by 1, 2, a.attnum
            """, logger: logger)
        var relations: [String: (kind: String, comment: String?, columns: [ColumnModel])] = [:]
        var relationOrder: [(String, String)] = []
        for try await (schema, relation, kind, comment, column, typeOID, typeName, notNull, hasDefault, identity, generated, columnComment)
            in columnRows.decode((String, String, String, String?, String, Int64, String, Bool, Bool, String, String, String?).self)
        {
            let key = "\(schema).\(relation)"
            if relations[key] == nil {
                relations[key] = (kind, comment, [])
                relationOrder.append((schema, relation))
            }
            let isView = kind == "v" || kind == "m"
            relations[key]!.columns.append(
                ColumnModel(
                    name: column, sqlType: typeName,
                    swiftType: mapper.swiftType(oid: typeOID, context: "column \(key).\(column)"),
                    nullable: isView || !notNull, hasDefault: hasDefault || identity == "d",
                    writeNever: identity == "a" || !generated.isEmpty, comment: columnComment))
        }
        for (schema, relation) in relationOrder {
            let info = relations["\(schema).\(relation)"]!
            switch info.kind {
            case "c":
                models[schema]?.composites.append(
                    CompositeModel(
                        schema: schema, name: relation,
                        attributes: info.columns.map {
                            var c = $0
                            c.nullable = true
                            return c
                        },
                        comment: info.comment))
            default:
                models[schema]?.relations.append(
                    RelationModel(
                        schema: schema, name: relation, kind: info.kind == "v" || info.kind == "m" ? .view : .table,
                        columns: info.columns, comment: info.comment))
            }
        }

        let functionRows = try await connection.query(
            """
            select n.nspname::text, p.proname::text, p.oid::pg_catalog.regprocedure::text,
                   coalesce(p.proargnames, '{}')::text[], coalesce(p.proargmodes::text[], '{}'),
                   case when p.proallargtypes is null then array(select x::int8 from unnest(p.proargtypes) x)
                        else array(select x::int8 from unnest(p.proallargtypes) x) end,
                   p.pronargs::int8, p.pronargdefaults::int8, p.proretset, p.prorettype::int8,
                   pg_catalog.obj_description(p.oid, 'pg_proc')
            from pg_catalog.pg_proc p
            join pg_catalog.pg_namespace n on n.oid = p.pronamespace
            where n.nspname = any(\(schemas)) and p.prokind = 'f'
              and p.prorettype not in ('pg_catalog.trigger'::pg_catalog.regtype, 'pg_catalog.event_trigger'::pg_catalog.regtype)
              and not exists (select 1 from pg_catalog.pg_depend d where d.objid = p.oid and d.deptype = 'e')
            order by 1, 2, 3
            """, logger: logger)
        var functions: [FunctionModel] = []
        for try await (
            schema, name, signature, argumentNames, modes, argumentTypes, inputCount, defaultCount, returnsSet, returnType, comment
        )
            in functionRows.decode((String, String, String, [String], [String], [Int64], Int64, Int64, Bool, Int64, String?).self)
        {
            var inputs: [ArgumentModel] = []
            var outputs: [ColumnModel] = []
            for (index, typeOID) in argumentTypes.enumerated() {
                let mode = modes.isEmpty ? "i" : modes[index]
                let argumentName = index < argumentNames.count && !argumentNames[index].isEmpty ? argumentNames[index] : "arg\(index + 1)"
                let swiftType = mapper.swiftType(oid: typeOID, context: "function \(signature)")
                let sqlType = types[typeOID]?.regtype ?? "unknown"
                if mode == "i" || mode == "b" || mode == "v" {
                    inputs.append(ArgumentModel(name: argumentName, sqlType: sqlType, swiftType: swiftType, hasDefault: false))
                }
                if mode == "o" || mode == "b" || mode == "t" {
                    outputs.append(
                        ColumnModel(
                            name: argumentName, sqlType: sqlType, swiftType: swiftType, nullable: true, hasDefault: false,
                            writeNever: false, comment: nil))
                }
            }
            // The last pronargdefaults inputs have defaults.
            for index in inputs.indices where index >= Int(inputCount - defaultCount) { inputs[index].hasDefault = true }
            let returns: FunctionModel.Returns
            if !outputs.isEmpty {
                returns = .table(columns: outputs)
            } else if types[returnType]?.name == "void" {
                returns = .void
            } else if returnsSet {
                returns = .set(swiftType: mapper.swiftType(oid: returnType, context: "function \(signature)"))
            } else {
                returns = .single(swiftType: mapper.swiftType(oid: returnType, context: "function \(signature)"))
            }
            functions.append(
                FunctionModel(
                    schema: schema, name: name, signature: signature, arguments: inputs, returns: returns, comment: comment,
                    overloaded: false))
        }
        let counts = Dictionary(grouping: functions, by: { "\($0.schema).\($0.name)" }).mapValues(\.count)
        for index in functions.indices where counts["\(functions[index].schema).\(functions[index].name)", default: 0] > 1 {
            functions[index].overloaded = true
        }
        for function in functions { models[function.schema]?.functions.append(function) }
        try await connection.execute("reset search_path", logger: logger)

        return CatalogModel(
            schemas: schemas.compactMap { models[$0] }, queries: [], diagnostics: diagnostics.messages.sorted())
    }

    func loadTypes(_ connection: PostgresConnection) async throws -> [Int64: TypeInfo] {
        let rows = try await connection.query(
            """
            select t.oid::int8, n.nspname::text, t.typname::text, t.typtype::text, t.typelem::int8, t.typbasetype::int8,
                   t.typrelid::int8, t.oid::pg_catalog.regtype::text
            from pg_catalog.pg_type t join pg_catalog.pg_namespace n on n.oid = t.typnamespace
            """, logger: logger)
        var types: [Int64: TypeInfo] = [:]
        for try await (oid, schema, name, kind, element, base, relation, regtype)
            in rows.decode((Int64, String, String, String, Int64, Int64, Int64, String).self)
        {
            types[oid] = TypeInfo(
                schema: schema, name: name, kind: kind, element: element, base: base, relation: relation, regtype: regtype)
        }
        return types
    }

    func loadRelationNames(_ connection: PostgresConnection) async throws -> [Int64: (schema: String, name: String, kind: String)] {
        let rows = try await connection.query(
            """
            select c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text
            from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
            where c.relkind in ('r', 'p', 'v', 'm', 'c')
            """, logger: logger)
        var relations: [Int64: (schema: String, name: String, kind: String)] = [:]
        for try await (oid, schema, name, kind) in rows.decode((Int64, String, String, String).self) {
            relations[oid] = (schema, name, kind)
        }
        return relations
    }
}

/// PostgreSQL type → Swift type. Unsupported types become `JSONValue` (they decode from
/// `to_jsonb` whatever they are) with a diagnostic naming the type and where it was used.
struct TypeMapper {
    var types: [Int64: Introspector.TypeInfo]
    var relations: [Int64: (schema: String, name: String, kind: String)]
    var exposed: Set<String>
    var diagnostics: Introspector.Diagnostics

    static let builtins: [String: String] = [
        "bool": "Bool", "int2": "Int16", "int4": "Int32", "int8": "Int64", "float4": "Float", "float8": "Double",
        "numeric": "Decimal", "text": "String", "varchar": "String", "bpchar": "String", "name": "String", "char": "String",
        "citext": "String", "uuid": "UUID", "timestamptz": "Date", "timestamp": "Date", "date": "WingtelDate",
        "time": "String", "timetz": "String", "interval": "String", "json": "JSONValue", "jsonb": "JSONValue",
        "bytea": "String", "inet": "String", "cidr": "String", "macaddr": "String", "money": "String", "xml": "String",
        "vector": "WingtelVector", "tsvector": "String", "oid": "Int64", "xid8": "String", "regclass": "String",
    ]

    func swiftType(oid: Int64, context: String) -> String {
        guard let info = types[oid] else {
            diagnostics.add("unsupported type oid \(oid) in \(context): emitted as JSONValue")
            return "JSONValue"
        }
        if info.kind == "b" && info.element != 0 && info.name.hasPrefix("_") {
            return "[\(swiftType(oid: info.element, context: context))]"
        }
        switch info.kind {
        case "e":
            if exposed.contains(info.schema) { return "\(Naming.namespace(info.schema)).\(Naming.typeName(info.name))" }
            diagnostics.add("enum \(info.regtype) in \(context) is outside the exposed schemas: emitted as String")
            return "String"
        case "d":
            return swiftType(oid: info.base, context: context)
        case "r", "m":
            return "String"
        case "c":
            if let relation = relations[info.relation], exposed.contains(relation.schema) {
                return "\(Naming.namespace(relation.schema)).\(Naming.typeName(relation.name))\(relation.kind == "c" ? "" : ".Row")"
            }
            diagnostics.add("composite type \(info.regtype) in \(context) is outside the exposed schemas: emitted as JSONValue")
            return "JSONValue"
        case "p":
            if info.name == "record" {
                diagnostics.add("anonymous record in \(context): emitted as JSONValue")
            } else if info.name != "void" {
                diagnostics.add("pseudo-type \(info.name) in \(context): emitted as JSONValue")
            }
            return "JSONValue"
        default:
            if let mapped = Self.builtins[info.name] { return mapped }
            diagnostics.add("unsupported type \(info.regtype) in \(context): emitted as JSONValue")
            return "JSONValue"
        }
    }
}
