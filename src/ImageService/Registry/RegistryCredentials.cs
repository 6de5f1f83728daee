namespace Nacelle.ImageService.Registry;

/// <summary>
/// Credentials for one pull, as CRI's AuthConfig carries them. <see cref="Auth"/> is base64("user:password");
/// <see cref="IdentityToken"/> is a refresh token for the registry's token server; <see cref="RegistryToken"/> is a
/// bearer token sent as is. Never logged and never put into error messages.
/// </summary>
public sealed record RegistryCredentials(string? Username, string? Password, string? Auth, string? IdentityToken, string? RegistryToken)
{
    /// <summary>Hides the secrets so a record printed by accident leaks nothing.</summary>
    public override string ToString() => $"RegistryCredentials {{ Username = {Username ?? "(none)"}, secrets hidden }}";
}
