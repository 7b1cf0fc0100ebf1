import Testing
import WingtelDatabase

@Suite("Statement splitting compatible with the Supabase CLI")
struct SQLSplitterTests {
    @Test("statements are trimmed of their ';' and surrounding whitespace")
    func basicSplit() {
        #expect(
            SQLSplitter.split("create table a (id int);\n\n  insert into a values (1);  \n") == [
                "create table a (id int)", "insert into a values (1)",
            ])
    }

    @Test("comments stay with the statement they precede; a trailing comment is its own statement")
    func comments() {
        let sql = "-- first; not a split\ncreate table a (id int); /* a; block */ select 1;\n-- the end\n"
        #expect(
            SQLSplitter.split(sql) == [
                "-- first; not a split\ncreate table a (id int)", "/* a; block */ select 1", "-- the end",
            ])
        #expect(SQLSplitter.isCommentOnly("-- the end"))
        #expect(SQLSplitter.isCommentOnly("/* a /* nested */ b */\n-- x"))
        #expect(!SQLSplitter.isCommentOnly("-- x\nselect 1"))
    }

    @Test("block comments nest as PostgreSQL's do")
    func nestedBlockComments() {
        #expect(
            SQLSplitter.split("/* outer /* inner; */ still; */ select 1; select 2") == [
                "/* outer /* inner; */ still; */ select 1", "select 2",
            ])
    }

    @Test("semicolons inside quotes, identifiers and doubled quotes do not split")
    func quotes() {
        let sql = #"insert into "we;ird" values ('a;b', 'it''s; fine'); select 'x'"#
        #expect(SQLSplitter.split(sql) == [#"insert into "we;ird" values ('a;b', 'it''s; fine')"#, "select 'x'"])
    }

    @Test("E'' strings honour backslash escapes")
    func escapeStrings() {
        let sql = #"select E'a\'; b'; select 2"#
        #expect(SQLSplitter.split(sql) == [#"select E'a\'; b'"#, "select 2"])
    }

    @Test("dollar-quoted bodies, tagged or not, keep their semicolons")
    func dollarQuotes() {
        let sql = """
            create function f() returns int language plpgsql as $$ begin return 1; end; $$;
            create function g() returns text language plpgsql as $body$ begin return '$$;'; end; $body$;
            select $1::int
            """
        let statements = SQLSplitter.split(sql)
        #expect(statements.count == 3)
        #expect(statements[0].hasSuffix("end; $$"))
        #expect(statements[1].hasSuffix("end; $body$"))
        #expect(statements[2] == "select $1::int")
    }

    @Test("BEGIN ATOMIC bodies run to their END, past CASE … END")
    func beginAtomic() {
        let sql = """
            create function h(x int) returns int language sql
            begin atomic
              select case when x > 0 then 1 else 0 end;
              select 2;
            end;
            select 3;
            """
        let statements = SQLSplitter.split(sql)
        #expect(statements.count == 2)
        #expect(statements[0].hasSuffix("end"))
        #expect(statements[1] == "select 3")
    }

    @Test("semicolons inside parentheses do not split (as in the CLI)")
    func parentheses() {
        #expect(
            SQLSplitter.split("create rule r as on insert to t do also (select 1; select 2); select 3") == [
                "create rule r as on insert to t do also (select 1; select 2)", "select 3",
            ])
    }

    @Test("CRLF files split like LF files, empty pieces are dropped")
    func crlfAndEmpty() {
        #expect(SQLSplitter.split("select 1;\r\n;;\r\nselect 2;\r\n") == ["select 1", "select 2"])
        #expect(SQLSplitter.split("   \n  ").isEmpty)
    }

    @Test("leading comments are stripped for classification")
    func stripLeadingComments() {
        #expect(SQLSplitter.stripLeadingComments("-- a\n/* b */  create index") == "create index")
    }
}
