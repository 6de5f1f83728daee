using Nacelle.Tests.Support;

[assembly: AssemblyFixture(typeof(Nacelle.Tests.EndToEnd.Infrastructure.DefaultCgroupParent))]

namespace Nacelle.Tests.EndToEnd.Infrastructure;

/// <summary>
/// The daemons under test put pods without a cgroup parent of their own under nacelle's default parent, <c>/nacelle</c>,
/// which a daemon creates and (like any runtime's top cgroup) never removes. When the test run created it, the run
/// removes it at the end, with whatever empty cgroups are left below it; a parent that existed before (a nacelle
/// installed on this host) is left alone.
/// </summary>
public sealed class DefaultCgroupParent : IDisposable
{
    private const string Parent = "/nacelle";
    private readonly bool _existedBefore = TestCgroups.Exists(Parent);

    public void Dispose()
    {
        if (!_existedBefore)
        {
            TestCgroups.RemoveEmpty(Parent);
        }
    }
}
