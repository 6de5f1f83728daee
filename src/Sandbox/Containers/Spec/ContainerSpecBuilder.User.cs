using System.Globalization;
using Nacelle.ImageService.Manifests;

namespace Nacelle.Sandbox.Containers.Spec;

/// <summary>The spec's user: run_as_user/run_as_username/run_as_group or the image's User, and supplemental groups, resolved against the image's /etc/passwd and /etc/group.</summary>
public sealed partial class ContainerSpecBuilder
{
    private static ResolvedUser User(SecurityRequest sc, ImageConfig image, ContainerSpecContext context)
    {
        string user;
        string? group = null;
        string field;
        if (sc.RunAsGroup is { } runAsGroup)
        {
            CheckId(runAsGroup, $"{Sc}.run_as_group");
            group = runAsGroup.ToString(CultureInfo.InvariantCulture);
        }

        if (sc.RunAsUser is { } runAsUser)
        {
            CheckId(runAsUser, $"{Sc}.run_as_user");
            user = runAsUser.ToString(CultureInfo.InvariantCulture);
            field = $"{Sc}.run_as_user";
        }
        else if (!string.IsNullOrEmpty(sc.RunAsUsername))
        {
            user = sc.RunAsUsername;
            field = $"{Sc}.run_as_username";
        }
        else
        {
            if (group is not null)
            {
                throw Invalid($"{Sc}.run_as_group", "is set without run_as_user or run_as_username");
            }

            (user, group) = ImageUsers.SplitImageUser(image.User ?? string.Empty);
            if (user.Length == 0)
            {
                if (!string.IsNullOrEmpty(group))
                {
                    throw Invalid("image config User", $"'{image.User}' has a group but no user");
                }

                user = "0";
            }

            field = "image config User";
        }

        var supplemental = new List<uint>(sc.SupplementalGroups.Count);
        for (var i = 0; i < sc.SupplementalGroups.Count; i++)
        {
            CheckId(sc.SupplementalGroups[i], $"{Sc}.supplemental_groups[{i}]");
            supplemental.Add((uint)sc.SupplementalGroups[i]);
        }

        var merge = sc.SupplementalGroupsPolicy switch
        {
            SupplementalGroupsPolicy.Merge => true,
            SupplementalGroupsPolicy.Strict => false,
            _ => throw Invalid($"{Sc}.supplemental_groups_policy", $"unknown policy {(int)sc.SupplementalGroupsPolicy}"),
        };

        return ImageUsers.Resolve(user, group, field, context.ImagePasswd, context.ImageGroup, merge, supplemental);
    }

    private static void CheckId(long id, string field)
    {
        if (id < 0 || id > ImageUsers.MaxId)
        {
            throw Invalid(field, $"{id} is outside 0..{ImageUsers.MaxId}");
        }
    }
}
