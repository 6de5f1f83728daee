using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Nacelle.CriServer.Streaming;

/// <summary>
/// How an exec or attach ended, as the error stream tells the client: v4 protocols (<c>v4.channel.k8s.io</c> and
/// later) carry a JSON metav1.Status (Success; Failure with reason NonZeroExitCode and the code in
/// details.causes[{reason: ExitCode, message: "N"}]; Failure with reason InternalError), older ones only a failure's
/// message as text.
/// </summary>
internal sealed record CommandOutcome(int ExitCode, string? Error)
{
    public static CommandOutcome Success { get; } = new(0, null);

    public static CommandOutcome Exited(int exitCode) => exitCode == 0 ? Success : new CommandOutcome(exitCode, null);

    public static CommandOutcome Failed(string error) => new(-1, error);

    public bool Succeeded => ExitCode == 0 && Error is null;

    /// <summary>The failure's message (what kubectl prints), or null on success.</summary>
    public string? Message => Error is not null
        ? $"Internal error occurred: {Error}"
        : ExitCode != 0 ? $"command terminated with non-zero exit code: exit code {ExitCode.ToString(CultureInfo.InvariantCulture)}" : null;

    /// <summary>The v4 error stream's content: a metav1.Status in JSON.</summary>
    public byte[] ToStatusJson() => Encoding.UTF8.GetBytes(JsonText.Write(json =>
    {
        json.WriteStartObject();
        json.WriteStartObject("metadata");
        json.WriteEndObject();
        if (Succeeded)
        {
            json.WriteString("status", "Success");
            json.WriteEndObject();
            return;
        }

        json.WriteString("status", "Failure");
        json.WriteString("message", Message);
        if (Error is not null)
        {
            json.WriteString("reason", "InternalError");
            WriteCauses(json, reason: null, Error);
            json.WriteNumber("code", 500);
        }
        else
        {
            json.WriteString("reason", "NonZeroExitCode");
            WriteCauses(json, "ExitCode", ExitCode.ToString(CultureInfo.InvariantCulture));
        }

        json.WriteEndObject();
    }));

    /// <summary>The error stream's content for protocols before v4: the failure's message, nothing on success.</summary>
    public byte[] ToText() => Message is { } message ? Encoding.UTF8.GetBytes(message) : [];

    private static void WriteCauses(Utf8JsonWriter json, string? reason, string message)
    {
        json.WriteStartObject("details");
        json.WriteStartArray("causes");
        json.WriteStartObject();
        if (reason is not null)
        {
            json.WriteString("reason", reason);
        }

        json.WriteString("message", message);
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();
    }
}
