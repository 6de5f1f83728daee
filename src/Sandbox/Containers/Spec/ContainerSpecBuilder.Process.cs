using Nacelle.Common;
using Nacelle.ContainerCore.Spec;
using Nacelle.ImageService.Manifests;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>The spec's process: command and args (Docker's rules), working directory, environment, and the stop signal.</summary>
public sealed partial class ContainerSpecBuilder
{
    /// <summary>Docker's rule: command replaces the entrypoint and drops the image's cmd; args replaces the cmd.</summary>
    private static List<string> Args(ProcessRequest process, ImageConfig image)
    {
        var command = process.Command.ToList();
        var args = process.Args.ToList();
        if (command.Count == 0)
        {
            if (args.Count == 0)
            {
                args = [.. image.Cmd];
            }

            // An entrypoint of [""] is Docker's "reset the entrypoint".
            if (!(image.Entrypoint.Count == 1 && image.Entrypoint[0].Length == 0))
            {
                command = [.. image.Entrypoint];
            }
        }

        var all = command.Concat(args).ToList();
        if (all.Count == 0)
        {
            throw Invalid("command", "no command specified: neither the config (command, args) nor the image (Entrypoint, Cmd) gives one");
        }

        if (all[0].Length == 0)
        {
            throw Invalid(process.Command.Count > 0 ? "command[0]" : "args[0]", "no command specified: the program name is empty");
        }

        // execve takes C strings: a NUL would cut the argument short (the spawn helper refuses the whole message).
        string Field(int i) => i < command.Count
            ? (process.Command.Count > 0 ? $"command[{i}]" : $"image config Entrypoint[{i}]")
            : (process.Args.Count > 0 ? $"args[{i - command.Count}]" : $"image config Cmd[{i - command.Count}]");
        for (var i = 0; i < all.Count; i++)
        {
            if (all[i].Contains('\0', StringComparison.Ordinal))
            {
                throw Invalid(Field(i), "must not contain NUL");
            }
        }

        return all;
    }

    private static string WorkingDir(ProcessRequest process, ImageConfig image)
    {
        if (!string.IsNullOrEmpty(process.WorkingDir))
        {
            if (!process.WorkingDir.StartsWith('/'))
            {
                throw Invalid("working_dir", $"'{process.WorkingDir}' must be absolute");
            }

            if (PathLimits.Exceeded(process.WorkingDir) is { } why)
            {
                throw Invalid("working_dir", why);
            }

            if (process.WorkingDir.Contains('\0', StringComparison.Ordinal))
            {
                throw Invalid("working_dir", "must not contain NUL");
            }

            return process.WorkingDir;
        }

        if (!string.IsNullOrEmpty(image.WorkingDir))
        {
            if (!image.WorkingDir.StartsWith('/'))
            {
                throw Invalid("image config WorkingDir", $"'{image.WorkingDir}' must be absolute");
            }

            return image.WorkingDir;
        }

        return "/";
    }

    /// <summary>PATH (default), HOSTNAME, the image's env, then the config's envs, each later one replacing an earlier
    /// variable of the same name in place; HOME from /etc/passwd when nothing set it.</summary>
    private static List<string> Env(ProcessRequest process, ImageConfig image, string hostname, ResolvedUser user)
    {
        var env = new List<KeyValuePair<string, string>>();
        void Set(string key, string value)
        {
            var i = env.FindIndex(e => e.Key == key);
            if (i >= 0)
            {
                env[i] = new(key, value);
            }
            else
            {
                env.Add(new(key, value));
            }
        }

        Set("PATH", LinuxDefaults.Path);
        Set("HOSTNAME", hostname);
        foreach (var entry in image.Env)
        {
            var eq = entry.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                env.RemoveAll(e => e.Key == entry); // "NAME" without a value unsets it (containerd)
            }
            else if (eq > 0)
            {
                Set(entry[..eq], entry[(eq + 1)..]);
            }
        }

        for (var i = 0; i < process.Envs.Count; i++)
        {
            var key = process.Envs[i].Key;
            if (string.IsNullOrEmpty(key))
            {
                throw Invalid($"envs[{i}].key", "must not be empty");
            }

            if (key.Contains('=', StringComparison.Ordinal) || key.Contains('\0', StringComparison.Ordinal))
            {
                throw Invalid($"envs[{i}].key", $"'{key}' must not contain '=' or NUL");
            }

            var value = process.Envs[i].Value;
            if (value.Contains('\0', StringComparison.Ordinal))
            {
                throw Invalid($"envs[{i}].value", "must not contain NUL");
            }

            Set(key, value);
        }

        if (!env.Exists(e => e.Key == "HOME"))
        {
            env.Add(new("HOME", user.Home ?? "/"));
        }

        return env.Select(e => $"{e.Key}={e.Value}").ToList();
    }

    /// <summary>The signal StopContainer sends first: the requested one, else the image's, else SIGTERM.</summary>
    private static StopSignal StopSignalOf(StopSignal? requested, ImageConfig image)
    {
        if (requested is not null)
        {
            return requested;
        }

        if (!string.IsNullOrEmpty(image.StopSignal))
        {
            return StopSignals.Parse(image.StopSignal) is { } parsed
                ? new StopSignal(parsed.Number, parsed.Name)
                : throw Invalid("image config StopSignal", $"'{image.StopSignal}' is not a signal");
        }

        return new StopSignal(StopSignals.Default, "SIGTERM");
    }
}
