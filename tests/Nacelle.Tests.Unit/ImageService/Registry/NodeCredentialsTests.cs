using System.Text;
using Nacelle.Common;
using Nacelle.ImageService.Registry;

namespace Nacelle.Tests.Unit.ImageService.Registry;

public sealed class NodeCredentialsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-nodecreds-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private int _writes;

    private string Write(string json)
    {
        var path = Path.Combine(_dir, "config.json");
        File.WriteAllText(path, json);
        // A later modification time than any earlier write, so a rewrite within the clock's resolution is noticed.
        File.SetLastWriteTimeUtc(path, new DateTime(2030, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddMinutes(++_writes));
        return path;
    }

    private static string Base64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    [Fact]
    public void EntriesAreFoundByRegistryHostWhateverTheKeySpelling()
    {
        var credentials = new NodeCredentials(Write($$"""
            {
              "auths": {
                "https://index.docker.io/v1/": { "auth": "{{Base64("hubuser:hubpass")}}" },
                "registry.example:5000": { "username": "u", "password": "p" },
                "HTTPS://Quay.IO": { "identitytoken": "refresh-me" },
                "ghcr.io": { "registrytoken": "bearer-me" }
              },
              "credHelpers": {},
              "credsStore": ""
            }
            """));

        Assert.Equal(4, credentials.Validate());
        Assert.Equal(Base64("hubuser:hubpass"), credentials.For("docker.io")!.Auth);
        Assert.Equal(Base64("hubuser:hubpass"), credentials.For("registry-1.docker.io")!.Auth);
        Assert.Equal(("u", "p"), (credentials.For("registry.example:5000")!.Username, credentials.For("registry.example:5000")!.Password));
        Assert.Null(credentials.For("registry.example")); // the port is part of the registry's name
        Assert.Equal("refresh-me", credentials.For("quay.io")!.IdentityToken);
        Assert.Equal("bearer-me", credentials.For("ghcr.io")!.RegistryToken);
        Assert.Null(credentials.For("other.example"));
    }

    [Fact]
    public void TheFileIsReadAgainWhenItChanges()
    {
        var path = Write("""{"auths": {"a.example": {"username": "one", "password": "1"}}}""");
        var credentials = new NodeCredentials(path);
        Assert.Equal("one", credentials.For("a.example")!.Username);

        Write("""{"auths": {"a.example": {"username": "two", "password": "2"}}}""");
        Assert.Equal("two", credentials.For("a.example")!.Username);

        // Broken after start: the pull fails as a precondition, naming the file.
        Write("""{"auths": {"a.example": {"username": 7}}}""");
        var broken = Assert.Throws<NacelleException>(() => credentials.For("a.example"));
        Assert.Equal(ErrorKind.FailedPrecondition, broken.Kind);
        Assert.Contains($"registry.auth_file {path}", broken.Message);
        Assert.Contains("\"username\" must be a string", broken.Message);
    }

    [Theory]
    [InlineData("""{"credHelpers": {"gcr.io": "gcloud"}}""", "\"credHelpers\" names credential helper programs, which nacelle does not run")]
    [InlineData("""{"auths": {}, "credsStore": "desktop"}""", "\"credsStore\" names credential helper programs")]
    [InlineData("""[1, 2]""", "expected a JSON object")]
    [InlineData("""{"auths": []}""", "\"auths\" must be an object")]
    [InlineData("""{"auths": {"r.example": {}}}""", "has none of auth, username, identitytoken, registrytoken")]
    [InlineData("""{"auths": {"r.example": {"auth": "not base64!"}}}""", "\"auth\" is not base64 of \"user:password\"")]
    [InlineData("""{"auths": {"r.example": {"auth": "c2VjcmV0"}}}""", "\"auth\" is not base64 of \"user:password\"")]
    public void InvalidFilesAreRefusedNamingTheProblem(string json, string why)
    {
        var path = Write(json);
        var e = Assert.Throws<NacelleException>(() => new NodeCredentials(path).Validate());
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.StartsWith($"registry.auth_file {path}: ", e.Message);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void BrokenJsonIsReportedByPositionWithoutQuotingTheSecrets()
    {
        var path = Write("{\"auths\": {\"r.example\": {\"password\": \"hunter2-secret\" \"username\": \"x\"}}}");
        var e = Assert.Throws<NacelleException>(() => new NodeCredentials(path).Validate());
        Assert.Contains("not valid JSON (line 1, byte", e.Message);
        Assert.DoesNotContain("hunter2", e.Message);
    }

    [Fact]
    public void AMissingFileIsNamed()
    {
        var e = Assert.Throws<NacelleException>(() => new NodeCredentials(Path.Combine(_dir, "nope.json")).Validate());
        Assert.Contains("nope.json: the file does not exist", e.Message);
    }
}
