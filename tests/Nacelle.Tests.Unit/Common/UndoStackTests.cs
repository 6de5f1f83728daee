using Nacelle.Common;

namespace Nacelle.Tests.Unit.Common;

public sealed class UndoStackTests
{
    [Fact]
    public async Task Steps_run_newest_first_and_a_failing_or_slow_step_does_not_stop_the_rest()
    {
        var ran = new List<string>();
        var failures = new List<string>();
        var undo = new UndoStack();
        undo.Push("first", () => ran.Add("first"));
        undo.Push("broken", () => throw new InvalidOperationException("boom"));
        undo.Push("slow", () => Task.Delay(Timeout.Infinite));
        undo.Push("last", async () => { await Task.Yield(); ran.Add("last"); });
        await undo.RunAsync(TimeSpan.FromMilliseconds(100), (what, error) => failures.Add($"{what}: {error.GetType().Name}"));
        Assert.Equal(["last", "first"], ran);
        Assert.Equal(["slow: TimeoutException", "broken: InvalidOperationException"], failures);
        Assert.Equal(0, undo.Count);
    }
}
