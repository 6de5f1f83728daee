using Nacelle.Common;

namespace Nacelle.ImageService.Registry;

/// <summary>
/// Credentials for one pull, as CRI's AuthConfig carries them. <see cref="Auth"/> is base64("user:password");
/// <see cref="IdentityToken"/> is a refresh token for the registry's token server; <see cref="RegistryToken"/> is a
/// bearer token sent as is. Never logged and never put into error messages.
/// </summary>
public sealed record RegistryCredentials(string? Username, string? Password, string? Auth, string? IdentityToken, string? RegistryToken)
{
    /// <summary>
    /// Refuses a field with a line break or NUL (InvalidArgument naming the AuthConfig field, not its value): such a
    /// value cannot travel in an HTTP header or form, and no registry issues one. Returns this record.
    /// </summary>
    public RegistryCredentials Validate()
    {
        Check(Username, "auth.username");
        Check(Password, "auth.password");
        Check(Auth, "auth.auth");
        Check(IdentityToken, "auth.identity_token");
        Check(RegistryToken, "auth.registry_token");
        return this;
    }

    /// <summary>Hides the secrets so a record printed by accident leaks nothing.</summary>
    public override string ToString() => $"RegistryCredentials {{ Username = {Username ?? "(none)"}, secrets hidden }}";

    private static void Check(string? value, string field)
    {
        if (value is not null && value.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
        {
            throw NacelleException.InvalidArgument($"{field} contains a line break or NUL, which no registry credential can hold");
        }
    }
}
