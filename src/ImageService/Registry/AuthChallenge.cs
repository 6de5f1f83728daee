using System.Text;

namespace Nacelle.ImageService.Registry;

/// <summary>One challenge of a <c>WWW-Authenticate</c> header: a scheme (Bearer, Basic) and its parameters.</summary>
public sealed record AuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    /// <summary>The <c>realm</c> parameter (the token endpoint for Bearer).</summary>
    public string? Realm => Parameters.GetValueOrDefault("realm");

    /// <summary>The <c>service</c> parameter.</summary>
    public string? Service => Parameters.GetValueOrDefault("service");

    /// <summary>The <c>scope</c> parameter, when the registry names the scope it wants.</summary>
    public string? Scope => Parameters.GetValueOrDefault("scope");

    /// <summary>Whether the scheme is Bearer (case-insensitive).</summary>
    public bool IsBearer => Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether the scheme is Basic (case-insensitive).</summary>
    public bool IsBasic => Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Parses a header value that may hold several challenges (<c>Basic realm="a", Bearer realm="b",service="c"</c>).
    /// Parameter names are case-insensitive; quoted values may contain commas and backslash escapes. Malformed
    /// trailing text is ignored.
    /// </summary>
    public static IReadOnlyList<AuthChallenge> Parse(string header)
    {
        List<AuthChallenge> result = [];
        int i = 0;
        string? scheme = null;
        Dictionary<string, string>? parameters = null;
        bool justAfterScheme = false; // only whitespace since the scheme name: a bare token here is a token68
        while (i < header.Length)
        {
            if (SkipSeparators(header, ref i))
                justAfterScheme = false;
            if (i >= header.Length)
                break;
            string token = ReadToken(header, ref i);
            if (token.Length == 0)
            {
                i++; // unexpected character: skip it
                continue;
            }
            int save = i;
            SkipSpaces(header, ref i);
            bool equals = i < header.Length && header[i] == '=';
            if (equals && IsToken68End(header, i))
            {
                // token68 ("abc==") after a scheme: not a parameter; skip it and its padding.
                while (i < header.Length && header[i] == '=')
                    i++;
                justAfterScheme = false;
                continue;
            }
            if (equals && scheme is not null)
            {
                i++;
                SkipSpaces(header, ref i);
                string value = i < header.Length && header[i] == '"' ? ReadQuoted(header, ref i) : ReadToken(header, ref i);
                parameters![token] = value;
                justAfterScheme = false;
                continue;
            }
            if (equals)
            {
                i++; // a parameter before any scheme: ignore its name
                continue;
            }
            i = save;
            if (justAfterScheme)
            {
                justAfterScheme = false; // token68 without padding
                continue;
            }
            if (scheme is not null)
                result.Add(new AuthChallenge(scheme, parameters!));
            scheme = token;
            parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            justAfterScheme = true;
        }
        if (scheme is not null)
            result.Add(new AuthChallenge(scheme, parameters!));
        return result;
    }

    // "Negotiate abc==" style token68: '=' followed by '=' or end/comma. Treat as end of a token68 (no parameter).
    private static bool IsToken68End(string s, int eq)
    {
        int j = eq + 1;
        while (j < s.Length && s[j] == '=')
            j++;
        return j > eq + 1 && (j >= s.Length || s[j] == ',' || s[j] == ' ');
    }

    private static void SkipSpaces(string s, ref int i)
    {
        while (i < s.Length && (s[i] == ' ' || s[i] == '\t'))
            i++;
    }

    private static bool SkipSeparators(string s, ref int i)
    {
        bool comma = false;
        while (i < s.Length && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
        {
            comma |= s[i] == ',';
            i++;
        }
        return comma;
    }

    private static string ReadToken(string s, ref int i)
    {
        int start = i;
        while (i < s.Length && s[i] is not (' ' or '\t' or ',' or '=' or '"'))
            i++;
        return s[start..i];
    }

    private static string ReadQuoted(string s, ref int i)
    {
        var sb = new StringBuilder();
        i++; // opening quote
        while (i < s.Length && s[i] != '"')
        {
            if (s[i] == '\\' && i + 1 < s.Length)
                i++;
            sb.Append(s[i]);
            i++;
        }
        if (i < s.Length)
            i++; // closing quote
        return sb.ToString();
    }
}
