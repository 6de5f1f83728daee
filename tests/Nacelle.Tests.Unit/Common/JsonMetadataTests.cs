using System.Text.Json;
using Nacelle.Common;
using Nacelle.Common.PodMonitor;
using Nacelle.ContainerCore.Spec;
using Nacelle.Tests.Support;

namespace Nacelle.Tests.Unit.Common;

/// <summary>
/// With <see cref="JsonMetadata.Cached"/> off (nacelle-monitor) every context's <c>Current</c> is a context of its own, built
/// from options written out by hand next to the source generator's attribute and kept until <see cref="JsonMetadata.Release"/>:
/// the options must be the attribute's, or the monitor would write JSON the daemon reads differently.
/// </summary>
[Collection(JsonMetadataCollection.Name)]
public sealed class JsonMetadataTests
{
    private static void AssertSameOptions(JsonSerializerOptions cached, JsonSerializerOptions uncached)
    {
        Assert.Equal(cached.DefaultIgnoreCondition, uncached.DefaultIgnoreCondition);
        Assert.Equal(cached.WriteIndented, uncached.WriteIndented);
        Assert.Equal(cached.PropertyNamingPolicy?.ConvertName("SomeName"), uncached.PropertyNamingPolicy?.ConvertName("SomeName"));
        Assert.Equal(cached.RespectNullableAnnotations, uncached.RespectNullableAnnotations);
        Assert.Equal(cached.PropertyNameCaseInsensitive, uncached.PropertyNameCaseInsensitive);
        Assert.Equal(cached.NumberHandling, uncached.NumberHandling);
    }

    private static T Uncached<T>(Func<T> current)
    {
        JsonMetadata.Cached = false;
        try
        {
            return current();
        }
        finally
        {
            JsonMetadata.Cached = true;
        }
    }

    [Fact]
    public void UncachedContextsHaveTheAttributesOptions()
    {
        AssertSameOptions(MonitorJson.Default.Options, Uncached(() => MonitorJson.Current).Options);
        AssertSameOptions(RuntimeSpecJson.Default.Options, Uncached(() => RuntimeSpecJson.Current).Options);
        AssertSameOptions(Nacelle.ContainerCore.Security.Seccomp.SeccompJson.Default.Options,
            Uncached(() => Nacelle.ContainerCore.Security.Seccomp.SeccompJson.Current).Options);
        AssertSameOptions(Nacelle.ContainerCore.Runtime.ContainerStateJson.Default.Options,
            Uncached(() => Nacelle.ContainerCore.Runtime.ContainerStateJson.Current).Options);
        Assert.NotSame(MonitorJson.Default, Uncached(() => MonitorJson.Current));
        Assert.Same(MonitorJson.Default, MonitorJson.Current);
    }

    [Fact]
    public void AnUncachedContextIsKeptUntilReleased()
    {
        JsonMetadata.Cached = false;
        try
        {
            JsonMetadata.Release();
            var first = MonitorJson.Current;
            Assert.Same(first, MonitorJson.Current);
            Assert.False(JsonMetadata.ReleaseIfUnused()); // used since the last release: kept
            Assert.Same(first, MonitorJson.Current);
            JsonMetadata.Release();
            var second = MonitorJson.Current;
            Assert.NotSame(first, second);
            Assert.False(JsonMetadata.ReleaseIfUnused());
            Assert.True(JsonMetadata.ReleaseIfUnused()); // nothing used it since the last call: dropped
            Assert.NotSame(second, MonitorJson.Current);
        }
        finally
        {
            JsonMetadata.Cached = true;
        }
    }

    [Fact]
    public void UncachedContextsWriteTheSameJson()
    {
        var request = new MonitorRequest { Id = 7, Op = MonitorProtocol.ExecStream, ContainerId = "c1", Stdin = true };
        Assert.Equal(
            JsonSerializer.Serialize(request, MonitorJson.Default.MonitorRequest),
            JsonSerializer.Serialize(request, Uncached(() => MonitorJson.Current).MonitorRequest));
    }

    [Fact]
    public void LargeJsonTextIsReadAndWrittenWithoutLeavingBuffersInTheSharedPool()
    {
        // 2,000 entries, ~150,000 characters: JsonSerializer transcodes text of up to ~350,000 characters into a rented
        // buffer (beyond, into an array of its own); it writes through a rented buffer whatever the size.
        var map = Enumerable.Range(0, 2_000).ToDictionary(i => $"example.com/annotation-{i}", i => $"value-{i}");
        var type = MapJson.Default.DictionaryStringString;
        var text = JsonSerializer.Serialize(map, type);

        // The detector works: JsonSerializer's own string overloads leave their buffers behind (cleared, but kept).
        Assert.True(PooledBuffers.KeptAfter(() => JsonSerializer.Deserialize(text, type)) >= text.Length * 3, "control: reading left nothing");
        Assert.True(PooledBuffers.KeptAfter(() => JsonSerializer.Serialize(map, type)) >= text.Length, "control: writing left nothing");

        Dictionary<string, string>? read = null;
        Assert.Equal(0, PooledBuffers.KeptAfter(() => read = JsonMetadata.Deserialize(text, type)));
        Assert.Equal(map, read);
        string? written = null;
        Assert.Equal(0, PooledBuffers.KeptAfter(() => written = JsonMetadata.SerializeToString(map, type)));
        Assert.Equal(text, written);
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class MapJson : System.Text.Json.Serialization.JsonSerializerContext;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class JsonMetadataCollection
{
    public const string Name = "JsonMetadata.Cached is process-wide";
}
