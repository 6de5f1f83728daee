using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Xunit;

namespace Nacelle.Tests.Unit.Api;

/// <summary>
/// Proves that the C# generated from <c>api/cri/runtime.proto</c> speaks exactly the CRI runtime.v1 wire
/// protocol described by the shared schema file <c>shared/cri-api/runtime-v1-wire-schema.txt</c>:
/// same messages (nested ones included), fields (name, number, type, label, map key/value, options),
/// enums and values, services and rpcs (request/response types, streaming flags), in both directions.
/// The schema is read with a small self-contained parser for the proto3 subset it uses, so an edit to
/// runtime.proto that changes the wire contract makes one of these tests fail and name the culprit.
/// </summary>
public sealed class WireSchemaTests
{
    private const string SchemaEnvironmentVariable = "NACELLE_CRI_SCHEMA";

    private static readonly string[] SchemaRelativePath = ["shared", "cri-api", "runtime-v1-wire-schema.txt"];

    private static readonly Lazy<string> LazySchemaPath = new(LocateSchema);

    private static readonly Lazy<SchemaFile> LazySchema =
        new(() => SchemaParser.Parse(File.ReadAllText(LazySchemaPath.Value), LazySchemaPath.Value));

    private static FileDescriptor Generated => global::Runtime.V1.RuntimeReflection.Descriptor;

    [Fact]
    public void SchemaIsFoundAndDeclaresTheSamePackageAndSyntaxAsTheGeneratedCode()
    {
        var schema = LazySchema.Value;

        Assert.True(schema.Syntax == "proto3", $"{schema.SourceName}: expected syntax \"proto3\", found \"{schema.Syntax}\".");
        Assert.True(schema.Package == "runtime.v1", $"{schema.SourceName}: expected package runtime.v1, found \"{schema.Package}\".");
        Assert.True(schema.Services.Count > 0, $"{schema.SourceName}: the parser found no services.");
        Assert.True(schema.AllMessages.Count > 0, $"{schema.SourceName}: the parser found no messages.");
        Assert.True(schema.AllEnums.Count > 0, $"{schema.SourceName}: the parser found no enums.");

        var comparer = new SchemaComparer(schema, Generated);
        comparer.CheckFile();
        AssertNoDifferences(comparer, "file header");
    }

    [Fact]
    public void EverySchemaMessageExistsInTheGeneratedCodeWithIdenticalFields()
    {
        var comparer = new SchemaComparer(LazySchema.Value, Generated);
        comparer.CheckSchemaMessagesAgainstGenerated();
        AssertNoDifferences(comparer, "messages and fields (schema -> generated)");
    }

    [Fact]
    public void GeneratedCodeHasNoMessagesOrFieldsThatTheSchemaLacks()
    {
        var comparer = new SchemaComparer(LazySchema.Value, Generated);
        comparer.CheckGeneratedMessagesAgainstSchema();
        AssertNoDifferences(comparer, "messages and fields (generated -> schema)");
    }

    [Fact]
    public void EnumsAndTheirValuesMatchTheSchemaBothWays()
    {
        var comparer = new SchemaComparer(LazySchema.Value, Generated);
        comparer.CheckEnums();
        AssertNoDifferences(comparer, "enums");
    }

    [Fact]
    public void ServicesAndRpcsMatchTheSchemaBothWays()
    {
        var comparer = new SchemaComparer(LazySchema.Value, Generated);
        comparer.CheckServices();
        AssertNoDifferences(comparer, "services and rpcs");
    }

    [Fact]
    public void DeclarationOrderMatchesTheSchema()
    {
        var comparer = new SchemaComparer(LazySchema.Value, Generated);
        comparer.CheckDeclarationOrder();
        AssertNoDifferences(comparer, "declaration order");
    }

    [Fact]
    public void ComparisonReportsDeliberateMismatchesByName()
    {
        // A fresh, mutable copy of the schema with a handful of deliberate wire changes: the comparison
        // must notice every one of them and name the element concerned, otherwise the tests above are vacuous.
        var schema = SchemaParser.Parse(File.ReadAllText(LazySchemaPath.Value), LazySchemaPath.Value);

        var renumbered = schema.AllMessages.First(m => m.Fields.Count > 0);
        var renumberedField = renumbered.Fields[0];
        renumberedField.Number += 1000;

        var retyped = schema.AllMessages.First(m => m != renumbered && m.Fields.Any(f => f.Type == "string" && f.MapKey is null));
        var retypedField = retyped.Fields.First(f => f.Type == "string" && f.MapKey is null);
        retypedField.Type = "bytes";

        var shrunk = schema.AllMessages.First(m => m != renumbered && m != retyped && m.Fields.Count > 1);
        var droppedField = shrunk.Fields[^1];
        shrunk.Fields.RemoveAt(shrunk.Fields.Count - 1);

        var method = schema.Services[0].Methods[0];
        method.ServerStreaming = !method.ServerStreaming;

        var renamedEnum = schema.AllEnums[0];
        var renamedValue = renamedEnum.Values[^1];
        var originalValueName = renamedValue.Name;
        renamedValue.Name += "_RENAMED";

        schema.Messages.Add(new SchemaMessage { Name = "NotInGeneratedCode", FullName = schema.Package + ".NotInGeneratedCode", Line = 0 });
        schema.Reindex();

        var comparer = new SchemaComparer(schema, Generated);
        comparer.CheckAll();
        var errors = comparer.Errors;

        void ExpectError(string description, params string[] fragments)
        {
            if (!errors.Any(e => fragments.All(e.Contains)))
            {
                Assert.Fail($"The comparison did not report {description} (looked for an error containing {string.Join(" and ", fragments.Select(f => $"'{f}'"))}). It reported:\n  - {string.Join("\n  - ", errors)}");
            }
        }

        ExpectError("a changed field number", $"{renumbered.FullName}.{renumberedField.Name}", "field number differs");
        ExpectError("a changed field type", $"{retyped.FullName}.{retypedField.Name}", "type differs");
        ExpectError("a field missing from the schema", $"{shrunk.FullName}.{droppedField.Name}", "not in the schema");
        ExpectError("a flipped streaming flag", $"{schema.Services[0].FullName}.{method.Name}", "streaming");
        ExpectError("a renamed enum value (schema side)", $"{renamedEnum.FullName}.{renamedValue.Name}", "missing");
        ExpectError("a renamed enum value (generated side)", $"{renamedEnum.FullName}.{originalValueName}", "not in the schema");
        ExpectError("a message missing from the generated code", $"{schema.Package}.NotInGeneratedCode", "missing");
    }

    [Fact]
    public void ParserHandlesTheProto3SubsetAndItsWhitespaceQuirks()
    {
        const string text = """
            Free prose before the syntax line is ignored, even with { braces } and "quotes".
            Second prose line; message Fake { }

            syntax = "proto3";
            package demo.v1;
            option go_package = "example.com/demo";
            service Svc {
                rpc Up(Req) returns (stream Resp) {}
                rpc Down(stream Req) returns (Resp);
            }
            message Req{
            	map<string,int32>   counts  = 1;
                repeated Outer.Inner items = 2 ;
                oneof choice { string a = 3; Kind k = 4 [deprecated=true]; }
                reserved 5, 6 to 8; reserved "old";
                optional int64 maybe = 9; // trailing comment
                message Nested { enum Kind { X = 0; Y = 1; } Kind kind = 1; }
                Nested.Kind nk = 10;
                /* block
                   comment */ .demo.v1.Resp fq = 11;
                string secret = 12 [debug_redact = true, deprecated = true];
            }
            message Resp {}
            enum Kind {
                K0      = 0;
                K1 = 1 [deprecated = true];
            }
            message Outer { message Inner {} }
            """;

        var schema = SchemaParser.Parse(text, "inline");
        var errors = new List<string>();

        Assert.Equal("proto3", schema.Syntax);
        Assert.Equal("demo.v1", schema.Package);
        Assert.Equal(["demo.v1.Req", "demo.v1.Req.Nested", "demo.v1.Resp", "demo.v1.Outer", "demo.v1.Outer.Inner"], schema.AllMessages.Select(m => m.FullName));
        Assert.Equal(["demo.v1.Req.Nested.Kind", "demo.v1.Kind"], schema.AllEnums.Select(e => e.FullName));

        var service = Assert.Single(schema.Services);
        Assert.Equal("demo.v1.Svc", service.FullName);
        Assert.Collection(
            service.Methods,
            up =>
            {
                Assert.Equal("Up", up.Name);
                Assert.False(up.ClientStreaming);
                Assert.True(up.ServerStreaming);
                Assert.Equal("message demo.v1.Req", schema.DescribeReference(up.InputType, schema.Package, up.Line, errors));
                Assert.Equal("message demo.v1.Resp", schema.DescribeReference(up.OutputType, schema.Package, up.Line, errors));
            },
            down =>
            {
                Assert.Equal("Down", down.Name);
                Assert.True(down.ClientStreaming);
                Assert.False(down.ServerStreaming);
            });

        var req = schema.AllMessages[0];
        string Describe(string name)
        {
            var f = req.Fields.Single(x => x.Name == name);
            return $"{f.Number} [{SchemaComparer.SchemaLabel(f)}] {schema.DescribeType(f, errors)} {string.Join(",", f.Options.Select(o => $"{o.Name}={o.Value}"))}".TrimEnd();
        }

        Assert.Equal(["counts", "items", "a", "k", "maybe", "nk", "fq", "secret"], req.Fields.Select(f => f.Name));
        Assert.Equal("1 [] map<string, int32>", Describe("counts"));
        Assert.Equal("2 [repeated] message demo.v1.Outer.Inner", Describe("items"));
        Assert.Equal("3 [oneof choice] string", Describe("a"));
        Assert.Equal("4 [oneof choice] enum demo.v1.Kind deprecated=true", Describe("k"));
        Assert.Equal("9 [optional] int64", Describe("maybe"));
        Assert.Equal("10 [] enum demo.v1.Req.Nested.Kind", Describe("nk"));
        Assert.Equal("11 [] message demo.v1.Resp", Describe("fq"));
        Assert.Equal("12 [] string debug_redact=true,deprecated=true", Describe("secret"));
        Assert.Equal(["choice"], req.Oneofs);

        var nestedKind = schema.AllMessages[1].Fields.Single();
        Assert.Equal("enum demo.v1.Req.Nested.Kind", schema.DescribeType(nestedKind, errors));

        var kind = schema.AllEnums[1];
        Assert.Equal(["K0=0", "K1=1"], kind.Values.Select(v => $"{v.Name}={v.Number}"));
        Assert.Equal("deprecated", Assert.Single(kind.Values[1].Options).Name);

        Assert.True(errors.Count == 0, "unexpected resolution errors: " + string.Join("; ", errors));
    }

    private static void AssertNoDifferences(SchemaComparer comparer, string area)
    {
        if (comparer.Errors.Count > 0)
        {
            Assert.Fail(
                $"{area}: {comparer.Errors.Count} difference(s) between the wire schema {comparer.Schema.SourceName} " +
                $"and the code generated from api/cri/runtime.proto:\n  - {string.Join("\n  - ", comparer.Errors)}");
        }
    }

    private static string LocateSchema()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(SchemaEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            var full = Path.GetFullPath(fromEnvironment);
            if (File.Exists(full))
            {
                return full;
            }

            throw Failure($"{SchemaEnvironmentVariable} is set to '{fromEnvironment}', but no file exists at {full}.");
        }

        var relative = Path.Combine(SchemaRelativePath);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            foreach (var candidate in new[] { Path.Combine(dir.FullName, "..", relative), Path.Combine(dir.FullName, relative) })
            {
                var full = Path.GetFullPath(candidate);
                if (File.Exists(full))
                {
                    return full;
                }
            }
        }

        throw Failure(
            $"The CRI wire schema was not found: looked for '{relative}' and '../{relative}' in {AppContext.BaseDirectory} " +
            $"and every parent directory. Set {SchemaEnvironmentVariable} to the path of runtime-v1-wire-schema.txt to point the tests at it.");
    }

    private static Exception Failure(string message)
    {
        Assert.Fail(message);
        return new InvalidOperationException(message);
    }

    // ------------------------------------------------------------------------------------------------
    // Schema model
    // ------------------------------------------------------------------------------------------------

    private sealed class SchemaFile
    {
        private static readonly HashSet<string> Scalars =
        [
            "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
            "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
        ];

        public required string SourceName { get; init; }

        public string? Syntax { get; set; }

        public string Package { get; set; } = "";

        public List<SchemaOption> Options { get; } = [];

        public List<SchemaMessage> Messages { get; } = [];

        public List<SchemaEnum> Enums { get; } = [];

        public List<SchemaService> Services { get; } = [];

        /// <summary>All messages, nested ones included, in declaration order (parents before children).</summary>
        public List<SchemaMessage> AllMessages { get; } = [];

        /// <summary>All enums, nested ones included, in declaration order.</summary>
        public List<SchemaEnum> AllEnums { get; } = [];

        private Dictionary<string, string> Kinds { get; } = new(StringComparer.Ordinal);

        public void Reindex()
        {
            AllMessages.Clear();
            AllEnums.Clear();
            Kinds.Clear();

            void AddKind(string fullName, string kind, int line)
            {
                if (!Kinds.TryAdd(fullName, kind))
                {
                    throw new FormatException($"{SourceName}({line}): '{fullName}' is declared more than once.");
                }
            }

            void Walk(SchemaMessage message)
            {
                AllMessages.Add(message);
                AddKind(message.FullName, "message", message.Line);
                foreach (var nestedEnum in message.NestedEnums)
                {
                    AllEnums.Add(nestedEnum);
                    AddKind(nestedEnum.FullName, "enum", nestedEnum.Line);
                }

                foreach (var nested in message.NestedMessages)
                {
                    Walk(nested);
                }
            }

            foreach (var message in Messages)
            {
                Walk(message);
            }

            foreach (var topLevelEnum in Enums)
            {
                AllEnums.Add(topLevelEnum);
                AddKind(topLevelEnum.FullName, "enum", topLevelEnum.Line);
            }
        }

        /// <summary>
        /// Resolves a type reference the way protoc does: a leading dot means fully qualified, otherwise the
        /// innermost enclosing scope that declares the name wins.
        /// </summary>
        public string? Resolve(string reference, string scope, out string kind)
        {
            if (reference.StartsWith('.'))
            {
                var fullName = reference[1..];
                if (Kinds.TryGetValue(fullName, out var fullKind))
                {
                    kind = fullKind;
                    return fullName;
                }

                kind = "";
                return null;
            }

            for (var current = scope; ; current = current[..Math.Max(current.LastIndexOf('.'), 0)])
            {
                var candidate = current.Length == 0 ? reference : current + "." + reference;
                if (Kinds.TryGetValue(candidate, out var candidateKind))
                {
                    kind = candidateKind;
                    return candidate;
                }

                if (current.Length == 0)
                {
                    kind = "";
                    return null;
                }
            }
        }

        /// <summary>"string", "message runtime.v1.ImageSpec", "enum runtime.v1.Protocol", ...</summary>
        public string DescribeReference(string reference, string scope, int line, List<string> errors)
        {
            if (Scalars.Contains(reference))
            {
                return reference;
            }

            var fullName = Resolve(reference, scope, out var kind);
            if (fullName is null)
            {
                errors.Add($"schema line {line}: type '{reference}' (used in {scope}) is not declared in the schema");
                return $"unresolved {reference}";
            }

            return $"{kind} {fullName}";
        }

        /// <summary>Canonical type of a field: element type, or "map&lt;key, value&gt;".</summary>
        public string DescribeType(SchemaField field, List<string> errors) =>
            field.MapKey is null
                ? DescribeReference(field.Type, field.Scope, field.Line, errors)
                : $"map<{DescribeReference(field.MapKey, field.Scope, field.Line, errors)}, {DescribeReference(field.Type, field.Scope, field.Line, errors)}>";
    }

    private sealed class SchemaMessage
    {
        public required string Name { get; init; }

        public required string FullName { get; init; }

        public required int Line { get; init; }

        public List<SchemaField> Fields { get; } = [];

        public List<string> Oneofs { get; } = [];

        public List<SchemaMessage> NestedMessages { get; } = [];

        public List<SchemaEnum> NestedEnums { get; } = [];

        public List<SchemaOption> Options { get; } = [];
    }

    private sealed class SchemaField
    {
        public required string Name { get; init; }

        public required int Number { get; set; }

        /// <summary>The element type as written (for maps: the value type).</summary>
        public required string Type { get; set; }

        /// <summary>The key type as written, for map fields; null otherwise.</summary>
        public string? MapKey { get; init; }

        /// <summary>"", "repeated" or "optional".</summary>
        public string Label { get; init; } = "";

        public string? Oneof { get; init; }

        /// <summary>Full name of the message that declares the field (the scope its type names resolve in).</summary>
        public required string Scope { get; init; }

        public required int Line { get; init; }

        public List<SchemaOption> Options { get; init; } = [];
    }

    private sealed class SchemaEnum
    {
        public required string Name { get; init; }

        public required string FullName { get; init; }

        public required int Line { get; init; }

        public List<SchemaEnumValue> Values { get; } = [];

        public List<SchemaOption> Options { get; } = [];
    }

    private sealed class SchemaEnumValue
    {
        public required string Name { get; set; }

        public required int Number { get; init; }

        public required int Line { get; init; }

        public List<SchemaOption> Options { get; init; } = [];
    }

    private sealed class SchemaService
    {
        public required string Name { get; init; }

        public required string FullName { get; init; }

        public required int Line { get; init; }

        public List<SchemaMethod> Methods { get; } = [];

        public List<SchemaOption> Options { get; } = [];
    }

    private sealed class SchemaMethod
    {
        public required string Name { get; init; }

        public required string InputType { get; init; }

        public required string OutputType { get; init; }

        public bool ClientStreaming { get; init; }

        public bool ServerStreaming { get; set; }

        public required int Line { get; init; }

        public List<SchemaOption> Options { get; } = [];
    }

    private sealed record SchemaOption(string Name, string Value, bool IsString, int Line);

    // ------------------------------------------------------------------------------------------------
    // Parser for the proto3 subset of the schema file
    // ------------------------------------------------------------------------------------------------

    private enum TokenKind
    {
        Identifier,
        Number,
        String,
        Symbol,
    }

    private readonly record struct Token(TokenKind Kind, string Text, int Line);

    private sealed class SchemaParser
    {
        private static readonly Regex SyntaxLine = new(@"^\s*syntax\s*=", RegexOptions.CultureInvariant);

        private readonly List<Token> _tokens;
        private readonly string _source;
        private int _position;

        private SchemaParser(List<Token> tokens, string source)
        {
            _tokens = tokens;
            _source = source;
        }

        /// <summary>
        /// Parses schema text. Everything before the first "syntax = ..." line is free prose and ignored
        /// (blanked, so line numbers in messages still match the file).
        /// </summary>
        public static SchemaFile Parse(string text, string source)
        {
            var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
            var start = Array.FindIndex(lines, l => SyntaxLine.IsMatch(l));
            if (start < 0)
            {
                throw new FormatException($"{source}: no 'syntax = \"proto3\";' line found.");
            }

            for (var i = 0; i < start; i++)
            {
                lines[i] = "";
            }

            var parser = new SchemaParser(Tokenize(string.Join('\n', lines), source), source);
            var file = parser.ParseFile();
            file.Reindex();
            return file;
        }

        private static List<Token> Tokenize(string text, string source)
        {
            var tokens = new List<Token>();
            var line = 1;
            var i = 0;
            while (i < text.Length)
            {
                var c = text[i];
                var next = i + 1 < text.Length ? text[i + 1] : '\0';
                if (c == '\n')
                {
                    line++;
                    i++;
                }
                else if (char.IsWhiteSpace(c))
                {
                    i++;
                }
                else if (c == '/' && next == '/')
                {
                    while (i < text.Length && text[i] != '\n')
                    {
                        i++;
                    }
                }
                else if (c == '/' && next == '*')
                {
                    var startLine = line;
                    i += 2;
                    while (i < text.Length && !(text[i] == '*' && i + 1 < text.Length && text[i + 1] == '/'))
                    {
                        if (text[i] == '\n')
                        {
                            line++;
                        }

                        i++;
                    }

                    if (i >= text.Length)
                    {
                        throw new FormatException($"{source}({startLine}): unterminated block comment.");
                    }

                    i += 2;
                }
                else if (c is '"' or '\'')
                {
                    var value = new StringBuilder();
                    i++;
                    while (i < text.Length && text[i] != c)
                    {
                        if (text[i] == '\n')
                        {
                            throw new FormatException($"{source}({line}): unterminated string literal.");
                        }

                        if (text[i] == '\\' && i + 1 < text.Length)
                        {
                            value.Append(text[i]);
                            i++;
                        }

                        value.Append(text[i]);
                        i++;
                    }

                    if (i >= text.Length)
                    {
                        throw new FormatException($"{source}({line}): unterminated string literal.");
                    }

                    i++;
                    tokens.Add(new Token(TokenKind.String, value.ToString(), line));
                }
                else if (char.IsAsciiLetter(c) || c == '_' || (c == '.' && (char.IsAsciiLetter(next) || next == '_')))
                {
                    var start = i;
                    while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] is '_' or '.'))
                    {
                        i++;
                    }

                    tokens.Add(new Token(TokenKind.Identifier, text[start..i], line));
                }
                else if (char.IsAsciiDigit(c) || (c is '-' or '+' or '.' && (char.IsAsciiDigit(next) || next == '.')))
                {
                    var start = i;
                    i++;
                    while (i < text.Length
                        && (char.IsAsciiLetterOrDigit(text[i]) || text[i] is '.' or '_'
                            || (text[i] is '+' or '-' && text[i - 1] is 'e' or 'E' && !text[start..i].Contains('x', StringComparison.OrdinalIgnoreCase))))
                    {
                        i++;
                    }

                    tokens.Add(new Token(TokenKind.Number, text[start..i], line));
                }
                else if ("{}()[]<>,;=".Contains(c, StringComparison.Ordinal))
                {
                    tokens.Add(new Token(TokenKind.Symbol, c.ToString(), line));
                    i++;
                }
                else
                {
                    throw new FormatException($"{source}({line}): unexpected character '{c}'.");
                }
            }

            return tokens;
        }

        private bool AtEnd => _position >= _tokens.Count;

        private Token Peek(int ahead = 0) =>
            _position + ahead < _tokens.Count
                ? _tokens[_position + ahead]
                : new Token(TokenKind.Symbol, "<end of file>", _tokens.Count > 0 ? _tokens[^1].Line : 0);

        private Token Next()
        {
            var token = Peek();
            if (AtEnd)
            {
                throw Error(token, "unexpected end of file");
            }

            _position++;
            return token;
        }

        private bool IsSymbol(Token token, string symbol) => token.Kind == TokenKind.Symbol && token.Text == symbol;

        private bool IsKeyword(Token token, string keyword) => token.Kind == TokenKind.Identifier && token.Text == keyword;

        private FormatException Error(Token token, string message) => new($"{_source}({token.Line}): {message} (at '{token.Text}').");

        private void Expect(string symbol)
        {
            var token = Next();
            if (!IsSymbol(token, symbol))
            {
                throw Error(token, $"expected '{symbol}'");
            }
        }

        private void ExpectKeyword(string keyword)
        {
            var token = Next();
            if (!IsKeyword(token, keyword))
            {
                throw Error(token, $"expected '{keyword}'");
            }
        }

        private string ExpectIdentifier(string what)
        {
            var token = Next();
            if (token.Kind != TokenKind.Identifier)
            {
                throw Error(token, $"expected {what}");
            }

            return token.Text;
        }

        private string ExpectString()
        {
            var token = Next();
            if (token.Kind != TokenKind.String)
            {
                throw Error(token, "expected a string literal");
            }

            var value = token.Text;
            while (Peek().Kind == TokenKind.String)
            {
                value += Next().Text;
            }

            return value;
        }

        private int ExpectInteger(string what)
        {
            var token = Next();
            if (token.Kind != TokenKind.Number)
            {
                throw Error(token, $"expected {what}");
            }

            var text = token.Text;
            var negative = text.StartsWith('-');
            var digits = text.TrimStart('-', '+');
            long value;
            var ok = digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                ? long.TryParse(digits[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
                : long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out value);
            value = negative ? -value : value;
            if (!ok || value is < int.MinValue or > int.MaxValue)
            {
                throw Error(token, $"expected {what} (an integer)");
            }

            return (int)value;
        }

        private void SkipPast(string symbol)
        {
            while (!IsSymbol(Next(), symbol))
            {
            }
        }

        private static string Join(string scope, string name) => scope.Length == 0 ? name : scope + "." + name;

        private SchemaFile ParseFile()
        {
            var file = new SchemaFile { SourceName = _source };
            var declaredSomething = false;
            while (!AtEnd)
            {
                var token = Next();
                if (IsSymbol(token, ";"))
                {
                    continue;
                }

                if (token.Kind != TokenKind.Identifier)
                {
                    throw Error(token, "expected a top-level declaration");
                }

                switch (token.Text)
                {
                    case "syntax":
                        Expect("=");
                        file.Syntax = ExpectString();
                        Expect(";");
                        break;
                    case "package":
                        if (declaredSomething || file.Package.Length > 0)
                        {
                            throw Error(token, "'package' must come once, before any declaration");
                        }

                        file.Package = ExpectIdentifier("a package name");
                        Expect(";");
                        break;
                    case "import":
                        if (IsKeyword(Peek(), "public") || IsKeyword(Peek(), "weak"))
                        {
                            Next();
                        }

                        ExpectString();
                        Expect(";");
                        break;
                    case "option":
                        file.Options.Add(ParseOptionAssignment());
                        Expect(";");
                        break;
                    case "message":
                        declaredSomething = true;
                        file.Messages.Add(ParseMessage(file.Package, token.Line));
                        break;
                    case "enum":
                        declaredSomething = true;
                        file.Enums.Add(ParseEnum(file.Package, token.Line));
                        break;
                    case "service":
                        declaredSomething = true;
                        file.Services.Add(ParseService(file.Package, token.Line));
                        break;
                    default:
                        throw Error(token, "unsupported top-level declaration");
                }
            }

            return file;
        }

        private SchemaMessage ParseMessage(string scope, int line)
        {
            var name = ExpectIdentifier("a message name");
            var message = new SchemaMessage { Name = name, FullName = Join(scope, name), Line = line };
            Expect("{");
            ParseMessageBody(message, oneof: null);
            return message;
        }

        private void ParseMessageBody(SchemaMessage message, string? oneof)
        {
            while (true)
            {
                var token = Peek();
                if (IsSymbol(token, "}"))
                {
                    Next();
                    return;
                }

                if (IsSymbol(token, ";"))
                {
                    Next();
                    continue;
                }

                if (token.Kind != TokenKind.Identifier)
                {
                    throw Error(token, $"expected a field or declaration in message {message.FullName}");
                }

                switch (token.Text)
                {
                    case "message" when oneof is null:
                        Next();
                        message.NestedMessages.Add(ParseMessage(message.FullName, token.Line));
                        continue;
                    case "enum" when oneof is null:
                        Next();
                        message.NestedEnums.Add(ParseEnum(message.FullName, token.Line));
                        continue;
                    case "oneof" when oneof is null:
                        Next();
                        var oneofName = ExpectIdentifier("a oneof name");
                        message.Oneofs.Add(oneofName);
                        Expect("{");
                        ParseMessageBody(message, oneofName);
                        continue;
                    case "reserved" when oneof is null:
                        Next();
                        SkipPast(";");
                        continue;
                    case "option":
                        if (oneof is not null)
                        {
                            throw Error(token, $"oneof options (oneof {oneof} in {message.FullName}) are not supported by this parser");
                        }

                        Next();
                        message.Options.Add(ParseOptionAssignment());
                        Expect(";");
                        continue;
                    case "extensions" or "extend" or "group" or "required":
                        throw Error(token, $"'{token.Text}' is not part of the proto3 subset this parser supports");
                    case "map" when IsSymbol(Peek(1), "<"):
                        message.Fields.Add(ParseMapField(message, oneof));
                        continue;
                    default:
                        message.Fields.Add(ParseField(message, oneof));
                        continue;
                }
            }
        }

        private SchemaField ParseField(SchemaMessage message, string? oneof)
        {
            var first = Next();
            var label = "";
            var typeToken = first;
            if ((first.Text is "repeated" or "optional") && Peek().Kind == TokenKind.Identifier && Peek(1).Kind == TokenKind.Identifier)
            {
                label = first.Text;
                typeToken = Next();
            }

            if (typeToken.Kind != TokenKind.Identifier)
            {
                throw Error(typeToken, "expected a field type");
            }

            if (oneof is not null && label.Length > 0)
            {
                throw Error(first, $"oneof {oneof} in {message.FullName}: fields inside a oneof cannot be '{label}'");
            }

            var name = ExpectIdentifier("a field name");
            Expect("=");
            var number = ExpectInteger($"the number of field {message.FullName}.{name}");
            var options = ParseOptionList();
            Expect(";");
            return new SchemaField
            {
                Name = name,
                Number = number,
                Type = typeToken.Text,
                Label = label,
                Oneof = oneof,
                Scope = message.FullName,
                Line = first.Line,
                Options = options,
            };
        }

        private SchemaField ParseMapField(SchemaMessage message, string? oneof)
        {
            var first = Next();
            if (oneof is not null)
            {
                throw Error(first, $"oneof {oneof} in {message.FullName}: map fields cannot be inside a oneof");
            }

            Expect("<");
            var key = ExpectIdentifier("a map key type");
            Expect(",");
            var value = ExpectIdentifier("a map value type");
            Expect(">");
            var name = ExpectIdentifier("a field name");
            Expect("=");
            var number = ExpectInteger($"the number of field {message.FullName}.{name}");
            var options = ParseOptionList();
            Expect(";");
            return new SchemaField
            {
                Name = name,
                Number = number,
                Type = value,
                MapKey = key,
                Scope = message.FullName,
                Line = first.Line,
                Options = options,
            };
        }

        private List<SchemaOption> ParseOptionList()
        {
            var options = new List<SchemaOption>();
            if (!IsSymbol(Peek(), "["))
            {
                return options;
            }

            Next();
            while (true)
            {
                options.Add(ParseOptionAssignment());
                var token = Next();
                if (IsSymbol(token, "]"))
                {
                    return options;
                }

                if (!IsSymbol(token, ","))
                {
                    throw Error(token, "expected ',' or ']' in an option list");
                }
            }
        }

        private SchemaOption ParseOptionAssignment()
        {
            var start = Peek();
            string name;
            if (IsSymbol(start, "("))
            {
                Next();
                name = "(" + ExpectIdentifier("a custom option name") + ")";
                Expect(")");
                if (Peek().Kind == TokenKind.Identifier && Peek().Text.StartsWith('.'))
                {
                    name += Next().Text;
                }
            }
            else
            {
                name = ExpectIdentifier("an option name");
            }

            Expect("=");
            var value = Next();
            if (IsSymbol(value, "{"))
            {
                var depth = 1;
                while (depth > 0)
                {
                    var token = Next();
                    depth += IsSymbol(token, "{") ? 1 : IsSymbol(token, "}") ? -1 : 0;
                }

                return new SchemaOption(name, "{...}", false, start.Line);
            }

            if (value.Kind == TokenKind.Symbol)
            {
                throw Error(value, $"expected a value for option '{name}'");
            }

            var text = value.Text;
            if (value.Kind == TokenKind.String)
            {
                while (Peek().Kind == TokenKind.String)
                {
                    text += Next().Text;
                }
            }

            return new SchemaOption(name, text, value.Kind == TokenKind.String, start.Line);
        }

        private SchemaEnum ParseEnum(string scope, int line)
        {
            var name = ExpectIdentifier("an enum name");
            var result = new SchemaEnum { Name = name, FullName = Join(scope, name), Line = line };
            Expect("{");
            while (true)
            {
                var token = Next();
                if (IsSymbol(token, "}"))
                {
                    return result;
                }

                if (IsSymbol(token, ";"))
                {
                    continue;
                }

                if (IsKeyword(token, "option"))
                {
                    result.Options.Add(ParseOptionAssignment());
                    Expect(";");
                    continue;
                }

                if (IsKeyword(token, "reserved"))
                {
                    SkipPast(";");
                    continue;
                }

                if (token.Kind != TokenKind.Identifier)
                {
                    throw Error(token, $"expected an enum value in enum {result.FullName}");
                }

                Expect("=");
                var number = ExpectInteger($"the number of enum value {result.FullName}.{token.Text}");
                var options = ParseOptionList();
                Expect(";");
                result.Values.Add(new SchemaEnumValue { Name = token.Text, Number = number, Line = token.Line, Options = options });
            }
        }

        private SchemaService ParseService(string scope, int line)
        {
            var name = ExpectIdentifier("a service name");
            var service = new SchemaService { Name = name, FullName = Join(scope, name), Line = line };
            Expect("{");
            while (true)
            {
                var token = Next();
                if (IsSymbol(token, "}"))
                {
                    return service;
                }

                if (IsSymbol(token, ";"))
                {
                    continue;
                }

                if (IsKeyword(token, "option"))
                {
                    service.Options.Add(ParseOptionAssignment());
                    Expect(";");
                    continue;
                }

                if (!IsKeyword(token, "rpc"))
                {
                    throw Error(token, $"expected 'rpc' in service {service.FullName}");
                }

                var methodName = ExpectIdentifier("an rpc name");
                var (clientStreaming, input) = ParseRpcType();
                ExpectKeyword("returns");
                var (serverStreaming, output) = ParseRpcType();
                var method = new SchemaMethod
                {
                    Name = methodName,
                    InputType = input,
                    OutputType = output,
                    ClientStreaming = clientStreaming,
                    ServerStreaming = serverStreaming,
                    Line = token.Line,
                };
                service.Methods.Add(method);

                if (IsSymbol(Peek(), ";"))
                {
                    Next();
                    continue;
                }

                Expect("{");
                while (true)
                {
                    var inner = Next();
                    if (IsSymbol(inner, "}"))
                    {
                        break;
                    }

                    if (IsSymbol(inner, ";"))
                    {
                        continue;
                    }

                    if (!IsKeyword(inner, "option"))
                    {
                        throw Error(inner, $"expected 'option' or '}}' in rpc {service.FullName}.{methodName}");
                    }

                    method.Options.Add(ParseOptionAssignment());
                    Expect(";");
                }
            }
        }

        private (bool Streaming, string Type) ParseRpcType()
        {
            Expect("(");
            var streaming = false;
            if (IsKeyword(Peek(), "stream") && Peek(1).Kind == TokenKind.Identifier)
            {
                Next();
                streaming = true;
            }

            var type = ExpectIdentifier("a message type");
            Expect(")");
            return (streaming, type);
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Comparison of the parsed schema with the generated descriptors
    // ------------------------------------------------------------------------------------------------

    private sealed class SchemaComparer
    {
        private readonly Dictionary<string, MessageDescriptor> _generatedMessages = new(StringComparer.Ordinal);
        private readonly Dictionary<string, EnumDescriptor> _generatedEnums = new(StringComparer.Ordinal);
        private readonly Dictionary<string, SchemaMessage> _schemaMessages;
        private readonly Dictionary<string, SchemaEnum> _schemaEnums;

        public SchemaComparer(SchemaFile schema, FileDescriptor generated)
        {
            Schema = schema;
            GeneratedFile = generated;
            _schemaMessages = schema.AllMessages.ToDictionary(m => m.FullName, StringComparer.Ordinal);
            _schemaEnums = schema.AllEnums.ToDictionary(e => e.FullName, StringComparer.Ordinal);

            void Walk(MessageDescriptor message)
            {
                if (message.IsMapEntry)
                {
                    return;
                }

                _generatedMessages[message.FullName] = message;
                foreach (var nestedEnum in message.EnumTypes)
                {
                    _generatedEnums[nestedEnum.FullName] = nestedEnum;
                }

                foreach (var nested in message.NestedTypes)
                {
                    Walk(nested);
                }
            }

            foreach (var message in generated.MessageTypes)
            {
                Walk(message);
            }

            foreach (var topLevelEnum in generated.EnumTypes)
            {
                _generatedEnums[topLevelEnum.FullName] = topLevelEnum;
            }
        }

        public SchemaFile Schema { get; }

        public FileDescriptor GeneratedFile { get; }

        public List<string> Errors { get; } = [];

        public void CheckAll()
        {
            CheckFile();
            CheckSchemaMessagesAgainstGenerated();
            CheckGeneratedMessagesAgainstSchema();
            CheckEnums();
            CheckServices();
            CheckDeclarationOrder();
        }

        public void CheckFile()
        {
            if (GeneratedFile.Package != Schema.Package)
            {
                Errors.Add($"package differs: schema '{Schema.Package}', generated '{GeneratedFile.Package}'");
            }

            var generatedSyntax = GeneratedFile.ToProto().Syntax;
            if (generatedSyntax != Schema.Syntax)
            {
                Errors.Add($"syntax differs: schema '{Schema.Syntax}', generated '{generatedSyntax}'");
            }

            if (GeneratedFile.Dependencies.Count > 0)
            {
                Errors.Add($"generated file imports {string.Join(", ", GeneratedFile.Dependencies.Select(d => d.Name))}; the schema imports nothing");
            }
        }

        public void CheckSchemaMessagesAgainstGenerated()
        {
            foreach (var message in Schema.AllMessages)
            {
                if (!_generatedMessages.TryGetValue(message.FullName, out var generated))
                {
                    var hint = _generatedEnums.ContainsKey(message.FullName) ? " (the generated code declares an enum of that name)" : "";
                    Errors.Add($"message {message.FullName} (schema line {message.Line}) is missing from the generated code{hint}");
                    continue;
                }

                CompareOptions(message.Options, generated.GetOptions(), $"message {message.FullName}");

                foreach (var field in message.Fields)
                {
                    var where = $"field {message.FullName}.{field.Name} (schema line {field.Line})";
                    var generatedField = generated.FindFieldByName(field.Name);
                    if (generatedField is null)
                    {
                        var sameNumber = generated.FindFieldByNumber(field.Number);
                        var hint = sameNumber is null ? "" : $"; number {field.Number} is used there by field '{sameNumber.Name}'";
                        Errors.Add($"{where} is missing from the generated message{hint}");
                        continue;
                    }

                    if (generatedField.FieldNumber != field.Number)
                    {
                        Errors.Add($"{where}: field number differs: schema {field.Number}, generated {generatedField.FieldNumber}");
                    }

                    var schemaType = Schema.DescribeType(field, Errors);
                    var generatedType = DescribeType(generatedField);
                    if (schemaType != generatedType)
                    {
                        Errors.Add($"{where}: type differs: schema '{schemaType}', generated '{generatedType}'");
                    }

                    var schemaLabel = SchemaLabel(field);
                    var generatedLabel = GeneratedLabel(generatedField);
                    if (schemaLabel != generatedLabel)
                    {
                        Errors.Add($"{where}: label differs: schema '{ShowLabel(schemaLabel)}', generated '{ShowLabel(generatedLabel)}'");
                    }

                    CompareOptions(field.Options, generatedField.GetOptions(), where);
                }

                var generatedOneofs = generated.Oneofs.Where(o => !o.IsSynthetic).Select(o => o.Name).ToList();
                foreach (var oneof in message.Oneofs.Except(generatedOneofs))
                {
                    Errors.Add($"oneof {message.FullName}.{oneof} is missing from the generated code");
                }

                foreach (var oneof in generatedOneofs.Except(message.Oneofs))
                {
                    Errors.Add($"oneof {message.FullName}.{oneof} exists in the generated code but not in the schema");
                }
            }
        }

        public void CheckGeneratedMessagesAgainstSchema()
        {
            foreach (var generated in _generatedMessages.Values)
            {
                if (!_schemaMessages.TryGetValue(generated.FullName, out var message))
                {
                    Errors.Add($"message {generated.FullName} exists in the generated code but not in the schema");
                    continue;
                }

                foreach (var generatedField in generated.Fields.InDeclarationOrder())
                {
                    if (!message.Fields.Any(f => f.Name == generatedField.Name))
                    {
                        Errors.Add(
                            $"field {generated.FullName}.{generatedField.Name} = {generatedField.FieldNumber} " +
                            $"({ShowLabel(GeneratedLabel(generatedField))} {DescribeType(generatedField)}) exists in the generated code but not in the schema");
                    }
                }
            }
        }

        public void CheckEnums()
        {
            foreach (var schemaEnum in Schema.AllEnums)
            {
                if (!_generatedEnums.TryGetValue(schemaEnum.FullName, out var generated))
                {
                    var hint = _generatedMessages.ContainsKey(schemaEnum.FullName) ? " (the generated code declares a message of that name)" : "";
                    Errors.Add($"enum {schemaEnum.FullName} (schema line {schemaEnum.Line}) is missing from the generated code{hint}");
                    continue;
                }

                CompareOptions(schemaEnum.Options, generated.GetOptions(), $"enum {schemaEnum.FullName}");

                foreach (var value in schemaEnum.Values)
                {
                    var where = $"enum value {schemaEnum.FullName}.{value.Name} (schema line {value.Line})";
                    var generatedValue = generated.FindValueByName(value.Name);
                    if (generatedValue is null)
                    {
                        Errors.Add($"{where} is missing from the generated code");
                        continue;
                    }

                    if (generatedValue.Number != value.Number)
                    {
                        Errors.Add($"{where}: number differs: schema {value.Number}, generated {generatedValue.Number}");
                    }

                    CompareOptions(value.Options, generatedValue.GetOptions(), where);
                }

                foreach (var generatedValue in generated.Values)
                {
                    if (!schemaEnum.Values.Any(v => v.Name == generatedValue.Name))
                    {
                        Errors.Add($"enum value {schemaEnum.FullName}.{generatedValue.Name} = {generatedValue.Number} exists in the generated code but not in the schema");
                    }
                }
            }

            foreach (var generated in _generatedEnums.Values)
            {
                if (!_schemaEnums.ContainsKey(generated.FullName))
                {
                    Errors.Add($"enum {generated.FullName} exists in the generated code but not in the schema");
                }
            }
        }

        public void CheckServices()
        {
            foreach (var service in Schema.Services)
            {
                var generated = GeneratedFile.Services.FirstOrDefault(s => s.FullName == service.FullName);
                if (generated is null)
                {
                    Errors.Add($"service {service.FullName} (schema line {service.Line}) is missing from the generated code");
                    continue;
                }

                CompareOptions(service.Options, generated.GetOptions(), $"service {service.FullName}");

                foreach (var method in service.Methods)
                {
                    var where = $"rpc {service.FullName}.{method.Name} (schema line {method.Line})";
                    var generatedMethod = generated.FindMethodByName(method.Name);
                    if (generatedMethod is null)
                    {
                        Errors.Add($"{where} is missing from the generated code");
                        continue;
                    }

                    var schemaInput = Schema.DescribeReference(method.InputType, Schema.Package, method.Line, Errors);
                    var generatedInput = "message " + generatedMethod.InputType.FullName;
                    if (schemaInput != generatedInput)
                    {
                        Errors.Add($"{where}: request type differs: schema '{schemaInput}', generated '{generatedInput}'");
                    }

                    var schemaOutput = Schema.DescribeReference(method.OutputType, Schema.Package, method.Line, Errors);
                    var generatedOutput = "message " + generatedMethod.OutputType.FullName;
                    if (schemaOutput != generatedOutput)
                    {
                        Errors.Add($"{where}: response type differs: schema '{schemaOutput}', generated '{generatedOutput}'");
                    }

                    if (generatedMethod.IsClientStreaming != method.ClientStreaming)
                    {
                        Errors.Add($"{where}: client streaming (stream request) differs: schema {method.ClientStreaming}, generated {generatedMethod.IsClientStreaming}");
                    }

                    if (generatedMethod.IsServerStreaming != method.ServerStreaming)
                    {
                        Errors.Add($"{where}: server streaming (stream response) differs: schema {method.ServerStreaming}, generated {generatedMethod.IsServerStreaming}");
                    }

                    CompareOptions(method.Options, generatedMethod.GetOptions(), where);
                }

                foreach (var generatedMethod in generated.Methods)
                {
                    if (!service.Methods.Any(m => m.Name == generatedMethod.Name))
                    {
                        Errors.Add($"rpc {service.FullName}.{generatedMethod.Name} exists in the generated code but not in the schema");
                    }
                }
            }

            foreach (var generated in GeneratedFile.Services)
            {
                if (!Schema.Services.Any(s => s.FullName == generated.FullName))
                {
                    Errors.Add($"service {generated.FullName} exists in the generated code but not in the schema");
                }
            }
        }

        public void CheckDeclarationOrder()
        {
            CompareOrder($"top-level messages of package {Schema.Package}", Schema.Messages.Select(m => m.Name), GeneratedFile.MessageTypes.Select(m => m.Name));
            CompareOrder($"top-level enums of package {Schema.Package}", Schema.Enums.Select(e => e.Name), GeneratedFile.EnumTypes.Select(e => e.Name));

            foreach (var message in Schema.AllMessages)
            {
                if (_generatedMessages.TryGetValue(message.FullName, out var generated))
                {
                    CompareOrder($"fields of message {message.FullName}", message.Fields.Select(f => f.Name), generated.Fields.InDeclarationOrder().Select(f => f.Name));
                    CompareOrder($"nested messages of message {message.FullName}", message.NestedMessages.Select(m => m.Name), generated.NestedTypes.Where(m => !m.IsMapEntry).Select(m => m.Name));
                    CompareOrder($"nested enums of message {message.FullName}", message.NestedEnums.Select(e => e.Name), generated.EnumTypes.Select(e => e.Name));
                }
            }

            foreach (var schemaEnum in Schema.AllEnums)
            {
                if (_generatedEnums.TryGetValue(schemaEnum.FullName, out var generated))
                {
                    CompareOrder($"values of enum {schemaEnum.FullName}", schemaEnum.Values.Select(v => v.Name), generated.Values.Select(v => v.Name));
                }
            }

            CompareOrder($"services of package {Schema.Package}", Schema.Services.Select(s => s.Name), GeneratedFile.Services.Select(s => s.Name));
            foreach (var service in Schema.Services)
            {
                var generated = GeneratedFile.Services.FirstOrDefault(s => s.FullName == service.FullName);
                if (generated is not null)
                {
                    CompareOrder($"rpcs of service {service.FullName}", service.Methods.Select(m => m.Name), generated.Methods.Select(m => m.Name));
                }
            }
        }

        public static string SchemaLabel(SchemaField field) =>
            field.MapKey is not null ? "" : field.Oneof is not null ? "oneof " + field.Oneof : field.Label;

        private static string GeneratedLabel(FieldDescriptor field)
        {
            if (field.IsMap)
            {
                return "";
            }

            if (field.IsRepeated)
            {
                return "repeated";
            }

            if (field.ContainingOneof is { IsSynthetic: true })
            {
                return "optional";
            }

            return field.RealContainingOneof is { } oneof ? "oneof " + oneof.Name : "";
        }

        private static string ShowLabel(string label) => label.Length == 0 ? "(singular)" : label;

        private static string DescribeType(FieldDescriptor field)
        {
            if (field.IsMap)
            {
                var entry = field.MessageType;
                return $"map<{DescribeElementType(entry.FindFieldByNumber(1))}, {DescribeElementType(entry.FindFieldByNumber(2))}>";
            }

            return DescribeElementType(field);
        }

        private static string DescribeElementType(FieldDescriptor field) => field.FieldType switch
        {
            FieldType.Message => "message " + field.MessageType.FullName,
            FieldType.Group => "group " + field.MessageType.FullName,
            FieldType.Enum => "enum " + field.EnumType.FullName,
            FieldType.Double => "double",
            FieldType.Float => "float",
            FieldType.Int32 => "int32",
            FieldType.Int64 => "int64",
            FieldType.UInt32 => "uint32",
            FieldType.UInt64 => "uint64",
            FieldType.SInt32 => "sint32",
            FieldType.SInt64 => "sint64",
            FieldType.Fixed32 => "fixed32",
            FieldType.Fixed64 => "fixed64",
            FieldType.SFixed32 => "sfixed32",
            FieldType.SFixed64 => "sfixed64",
            FieldType.Bool => "bool",
            FieldType.String => "string",
            FieldType.Bytes => "bytes",
            _ => "unknown " + field.FieldType,
        };

        private void CompareOrder(string what, IEnumerable<string> schemaOrder, IEnumerable<string> generatedOrder)
        {
            var schemaList = schemaOrder.ToList();
            var generatedList = generatedOrder.ToList();
            if (schemaList.SequenceEqual(generatedList, StringComparer.Ordinal))
            {
                return;
            }

            var index = 0;
            while (index < schemaList.Count && index < generatedList.Count && schemaList[index] == generatedList[index])
            {
                index++;
            }

            var schemaItem = index < schemaList.Count ? schemaList[index] : "(nothing)";
            var generatedItem = index < generatedList.Count ? generatedList[index] : "(nothing)";
            Errors.Add($"{what}: declaration order differs at position {index + 1}: schema has '{schemaItem}', generated has '{generatedItem}'");
        }

        /// <summary>
        /// Builds the options message the schema asks for (e.g. FieldOptions with deprecated = true) and
        /// compares it with the generated one, so both missing and extra options are reported.
        /// </summary>
        private void CompareOptions<T>(List<SchemaOption> schemaOptions, T? generatedOptions, string where)
            where T : class, IMessage<T>, new()
        {
            var expected = new T();
            foreach (var option in schemaOptions)
            {
                var problem = TrySetOption(expected, option);
                if (problem is not null)
                {
                    Errors.Add($"{where}: schema option '{option.Name} = {option.Value}' cannot be checked by WireSchemaTests ({problem}); teach the test about it");
                }
            }

            var actual = generatedOptions ?? new T();
            if (!expected.Equals(actual))
            {
                Errors.Add($"{where}: options differ: schema {expected}, generated {actual}");
            }
        }

        private static string? TrySetOption(IMessage target, SchemaOption option)
        {
            if (option.Name.StartsWith('('))
            {
                return "custom options are not supported";
            }

            var field = target.Descriptor.FindFieldByName(option.Name);
            if (field is null)
            {
                return $"{target.Descriptor.Name} has no field named '{option.Name}'";
            }

            if (field.IsRepeated)
            {
                return "repeated options are not supported";
            }

            object? value = field.FieldType switch
            {
                FieldType.Bool when !option.IsString => option.Value switch { "true" => true, "false" => false, _ => null },
                FieldType.String when option.IsString => option.Value,
                FieldType.Int32 when !option.IsString && int.TryParse(option.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i32) => i32,
                FieldType.Int64 when !option.IsString && long.TryParse(option.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i64) => i64,
                FieldType.Enum when !option.IsString && field.EnumType.FindValueByName(option.Value) is { } enumValue =>
                    Enum.ToObject(field.EnumType.ClrType, enumValue.Number),
                _ => null,
            };

            if (value is null)
            {
                return $"value '{option.Value}' is not supported for an option of type {field.FieldType}";
            }

            field.Accessor.SetValue(target, value);
            return null;
        }
    }
}
