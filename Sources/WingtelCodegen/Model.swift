/// What the generator knows about the database, read from pg_catalog. Rendering works from
/// this model only, in a fixed order, so unchanged input gives byte-identical output.
public struct CatalogModel: Sendable, Equatable {
    public var schemas: [SchemaModel]
    public var queries: [NamedQuery]
    public var diagnostics: [String]
}

public struct SchemaModel: Sendable, Equatable {
    public var name: String
    public var enums: [EnumModel]
    public var composites: [CompositeModel]
    public var relations: [RelationModel]
    public var functions: [FunctionModel]
}

public struct EnumModel: Sendable, Equatable {
    public var schema: String
    public var name: String
    public var labels: [String]
    public var comment: String?
}

public struct ColumnModel: Sendable, Equatable {
    public var name: String
    /// The SQL type as PostgreSQL names it, schema-qualified where needed (`public.line_status`, `uuid`).
    public var sqlType: String
    public var swiftType: String
    public var nullable: Bool
    public var hasDefault: Bool
    /// `GENERATED ALWAYS AS IDENTITY` or a generated column: never written.
    public var writeNever: Bool
    public var comment: String?
}

public struct CompositeModel: Sendable, Equatable {
    public var schema: String
    public var name: String
    public var attributes: [ColumnModel]
    public var comment: String?
}

public struct RelationModel: Sendable, Equatable {
    public enum Kind: String, Sendable { case table, view }
    public var schema: String
    public var name: String
    public var kind: Kind
    public var columns: [ColumnModel]
    public var comment: String?
}

public struct ArgumentModel: Sendable, Equatable {
    public var name: String
    public var sqlType: String
    public var swiftType: String
    public var hasDefault: Bool
}

public struct FunctionModel: Sendable, Equatable {
    public enum Returns: Sendable, Equatable {
        case void
        /// One value (a scalar, an enum, a composite or a table's row); may be null.
        case single(swiftType: String)
        /// `setof` a type or a table's rows.
        case set(swiftType: String)
        /// `returns table (…)`: a generated result row.
        case table(columns: [ColumnModel])
    }

    public var schema: String
    public var name: String
    /// `public.change_plan(uuid,uuid,uuid)`: where the declaration came from.
    public var signature: String
    public var arguments: [ArgumentModel]
    public var returns: Returns
    public var comment: String?
    /// Set when another function of the schema has the same name: the Swift name then carries the argument types.
    public var overloaded: Bool
}

public struct NamedQuery: Sendable, Equatable {
    public enum Kind: String, Sendable { case one, many, exec, execrows }
    public var file: String
    public var name: String
    public var kind: Kind
    public var sql: String
    public var comment: String?
    public var parameters: [ArgumentModel]
    public var columns: [ColumnModel]
}
