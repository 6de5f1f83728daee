using Nacelle.Sandbox.Namespaces;

namespace Nacelle.Tests.Unit.Pods;

/// <summary>The pause root is made on first use, by whichever RunPodSandbox comes first.</summary>
public sealed class PauseRootTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("nacelle-pause-root-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Regression (critest, parallel=2, on a fresh daemon): two RunPodSandbox at once both found no pause binary
    /// and copied it to the same temporary file; the second failed with Internal "IO_SharingViolation_File".</summary>
    [Fact]
    public async Task Pods_run_at_once_on_a_fresh_node_all_get_the_pause_root()
    {
        var binary = Path.Combine(_dir, "nacelle-pause");
        await File.WriteAllBytesAsync(binary, new byte[4 << 20], TestContext.Current.CancellationToken);
        for (var round = 0; round < 5; round++)
        {
            var root = Path.Combine(_dir, $"root-{round}");
            var all = Enumerable.Range(0, 8).Select(_ => Task.Run(() => PauseSpec.PrepareRoot(root, binary))).ToArray();
            await Task.WhenAll(all);
            Assert.Equal(4 << 20, new FileInfo(Path.Combine(root, "pause")).Length);
            Assert.Equal(["pause"], Directory.GetFiles(root).Select(Path.GetFileName));
        }
    }
}
