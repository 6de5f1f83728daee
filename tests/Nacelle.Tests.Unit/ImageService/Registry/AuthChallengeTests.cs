using Nacelle.ImageService.Registry;

namespace Nacelle.Tests.Unit.ImageService.Registry;

public sealed class AuthChallengeTests
{
    [Fact]
    public void Parses_a_docker_hub_bearer_challenge()
    {
        AuthChallenge c = Assert.Single(AuthChallenge.Parse(
            "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/busybox:pull\""));
        Assert.True(c.IsBearer);
        Assert.Equal("https://auth.docker.io/token", c.Realm);
        Assert.Equal("registry.docker.io", c.Service);
        Assert.Equal("repository:library/busybox:pull", c.Scope);
    }

    [Fact]
    public void Parses_basic_with_spaces_case_and_unquoted_values()
    {
        AuthChallenge c = Assert.Single(AuthChallenge.Parse("basic  Realm = registry , charset=UTF-8"));
        Assert.True(c.IsBasic);
        Assert.Equal("registry", c.Realm);
        Assert.Equal("UTF-8", c.Parameters["charset"]);
    }

    [Fact]
    public void Quoted_values_keep_commas_and_escapes()
    {
        AuthChallenge c = Assert.Single(AuthChallenge.Parse(
            "Bearer realm=\"https://r/token\",scope=\"repository:a:pull,push repository:b:pull\",error=\"say \\\"hi\\\"\""));
        Assert.Equal("repository:a:pull,push repository:b:pull", c.Scope);
        Assert.Equal("say \"hi\"", c.Parameters["error"]);
    }

    [Fact]
    public void Several_challenges_in_one_header()
    {
        IReadOnlyList<AuthChallenge> all = AuthChallenge.Parse("Basic realm=\"a\", Bearer realm=\"https://t/token\",service=\"s\"");
        Assert.Equal(2, all.Count);
        Assert.True(all[0].IsBasic);
        Assert.Equal("a", all[0].Realm);
        Assert.True(all[1].IsBearer);
        Assert.Equal("s", all[1].Service);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(",,")]
    public void Empty_headers_give_no_challenge(string header) => Assert.Empty(AuthChallenge.Parse(header));

    [Fact]
    public void A_scheme_without_parameters_and_a_token68()
    {
        IReadOnlyList<AuthChallenge> all = AuthChallenge.Parse("Negotiate abc==, Bearer realm=\"x\"");
        Assert.Equal(2, all.Count);
        Assert.Equal("Negotiate", all[0].Scheme);
        Assert.Empty(all[0].Parameters);
        Assert.Equal("x", all[^1].Realm);
    }

    [Fact]
    public void A_token68_without_padding_is_not_a_scheme()
    {
        IReadOnlyList<AuthChallenge> all = AuthChallenge.Parse("Negotiate abcdef, Basic realm=\"r\"");
        Assert.Equal(["Negotiate", "Basic"], all.Select(c => c.Scheme));
    }

    [Fact]
    public void Unterminated_quotes_do_not_throw()
    {
        AuthChallenge c = Assert.Single(AuthChallenge.Parse("Bearer realm=\"https://t/token"));
        Assert.Equal("https://t/token", c.Realm);
    }

    [Fact]
    public void Credentials_do_not_print_their_secrets()
    {
        string s = new RegistryCredentials("user", "hunter2", "dXNlcjpodW50ZXIy", "idtok", "regtok").ToString();
        Assert.Contains("user", s);
        Assert.DoesNotContain("hunter2", s);
        Assert.DoesNotContain("dXNlcjpodW50ZXIy", s);
        Assert.DoesNotContain("idtok", s);
        Assert.DoesNotContain("regtok", s);
    }
}
