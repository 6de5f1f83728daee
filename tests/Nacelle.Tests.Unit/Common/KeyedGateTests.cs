using Nacelle.Common;

namespace Nacelle.Tests.Unit.Common;

public sealed class KeyedGateTests
{
    [Fact]
    public async Task One_holder_per_key_and_other_keys_are_free()
    {
        var gate = new KeyedGate();
        var first = await gate.EnterAsync("a");
        var second = gate.EnterAsync("a");
        await using (await gate.EnterAsync("b"))
        {
            Assert.False(second.IsCompleted);
        }

        await first.DisposeAsync();
        await first.DisposeAsync(); // twice is once
        await (await second).DisposeAsync();
        Assert.Equal(0, gate.Count);
    }

    [Fact]
    public async Task A_cancelled_wait_leaves_nothing_behind()
    {
        var gate = new KeyedGate();
        await using (await gate.EnterAsync("a"))
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => gate.EnterAsync("a", cancel.Token));
        }

        Assert.Equal(0, gate.Count);
    }
}
