using System.Diagnostics;
using System.Text.Json;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Mounts;

namespace Nacelle.Sandbox.Handlers;

/// <summary>
/// What an external OCI runtime provides for the optional CRI features, from its own account (`&lt;runtime&gt; features`,
/// the OCI runtime features document) combined with what the kernel can do:
/// <list type="bullet">
/// <item>recursive read-only mounts: the runtime knows the "rro" mount option, and the kernel has mount_setattr;</item>
/// <item>user namespaces: the runtime knows the user namespace and idmapped mounts
/// (linux.mountExtensions.idmap.enabled), which a pod's volumes need, and the kernel idmaps the layers nacelle
/// prepares the rootfs from. A runtime that would ignore a volume's mappings (runc before 1.2) is not offered them.</item>
/// </list>
/// A runtime that is missing, fails, or does not answer `features` has neither (with the reason).
/// </summary>
public static class OciRuntimeFeatures
{
    /// <summary>Runs `&lt;path&gt; features` (bounded) and reads the answer.</summary>
    public static async Task<RuntimeHandler> ProbeAsync(ExternalRuntime runtime, KernelFeatures kernel, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(kernel);
        if (!File.Exists(runtime.Path))
        {
            var missing = $"runtime handler \"{runtime.Name}\": its runtime {runtime.Path} does not exist on this node " +
                          $"(install it, or fix runtime.handlers.{runtime.Name}.path)";
            return new RuntimeHandler(runtime.Name, RuntimeHandlerKind.Oci, new HandlerFeatures(false, false, missing), runtime, missing);
        }

        string? document = null;
        string? failure = null;
        try
        {
            var info = new ProcessStartInfo(runtime.Path) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            info.ArgumentList.Add("features");
            using var process = Process.Start(info)!;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(10));
            var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var error = process.StandardError.ReadToEndAsync(timeout.Token);
            try
            {
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                throw;
            }

            document = process.ExitCode == 0 ? await output.ConfigureAwait(false) : null;
            failure = process.ExitCode == 0 ? null : $"`{runtime.Path} features` failed: {(await error.ConfigureAwait(false)).Trim()}";
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or OperationCanceledException)
        {
            failure = $"`{runtime.Path} features` could not be run: {e.Message}";
        }

        return new RuntimeHandler(runtime.Name, RuntimeHandlerKind.Oci, document is null
            ? new HandlerFeatures(false, false, $"runtime handler \"{runtime.Name}\": {failure}")
            : Parse(runtime, document, kernel), runtime);
    }

    /// <summary>The features of <paramref name="runtime"/> given its features document and the kernel's.</summary>
    public static HandlerFeatures Parse(ExternalRuntime runtime, string featuresJson, KernelFeatures kernel)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(kernel);
        bool rro, userNamespace, idmap;
        try
        {
            using var json = JsonDocument.Parse(featuresJson);
            var root = json.RootElement;
            rro = Strings(root, "mountOptions").Contains("rro");
            var linux = root.TryGetProperty("linux", out var l) && l.ValueKind == JsonValueKind.Object ? l : default;
            userNamespace = linux.ValueKind == JsonValueKind.Object && Strings(linux, "namespaces").Contains("user");
            idmap = linux.ValueKind == JsonValueKind.Object &&
                    linux.TryGetProperty("mountExtensions", out var extensions) && extensions.ValueKind == JsonValueKind.Object &&
                    extensions.TryGetProperty("idmap", out var idmapElement) && idmapElement.ValueKind == JsonValueKind.Object &&
                    idmapElement.TryGetProperty("enabled", out var enabled) && enabled.ValueKind == JsonValueKind.True;
        }
        catch (JsonException e)
        {
            return new HandlerFeatures(false, false, $"runtime handler \"{runtime.Name}\": `{runtime.Path} features` is not JSON: {e.Message}");
        }

        string? userMissing = (userNamespace, idmap) switch
        {
            (false, _) => $"runtime handler \"{runtime.Name}\": {runtime.Path} does not support user namespaces",
            (true, false) => $"runtime handler \"{runtime.Name}\": {runtime.Path} has no idmapped mounts (linux.mountExtensions.idmap in " +
                             "its features), which the volumes of a pod in its own user namespace need",
            _ => kernel.UserNamespacesMissing,
        };
        var userNamespaces = userMissing is null && kernel.UserNamespaces;
        return new HandlerFeatures(userNamespaces, rro && kernel.RecursiveReadOnlyMounts, userNamespaces ? null : userMissing ?? kernel.UserNamespacesMissing);
    }

    private static HashSet<string> Strings(JsonElement element, string name) =>
        element.TryGetProperty(name, out var array) && array.ValueKind == JsonValueKind.Array
            ? [.. array.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => e.GetString()!)]
            : [];
}
