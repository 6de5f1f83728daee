namespace Nacelle.Common;

/// <summary>
/// The undo steps of a multi-step create: each acquired resource pushes how to release it; on failure
/// <see cref="RunAsync"/> runs them newest first, each bounded in time and never cancelled by the caller, and keeps
/// going past a failing step (reported through <c>onFailure</c>) so nothing else leaks.
/// </summary>
public sealed class UndoStack
{
    private readonly Stack<(string What, Func<Task> Action)> _steps = new();

    public int Count => _steps.Count;

    public void Push(string what, Func<Task> action) => _steps.Push((what, action));

    public void Push(string what, Action action) => _steps.Push((what, () =>
    {
        action();
        return Task.CompletedTask;
    }));

    public Task RunAsync(TimeSpan bound, Action<string, Exception> onFailure) => RunAsync(bound, TimeProvider.System, onFailure);

    /// <summary>As <see cref="RunAsync(TimeSpan, Action{string, Exception})"/>, each step's bound measured on
    /// <paramref name="time"/> (a process whose event loop keeps the timers passes its loop's clock).</summary>
    public async Task RunAsync(TimeSpan bound, TimeProvider time, Action<string, Exception> onFailure)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(onFailure);
        while (_steps.TryPop(out var step))
        {
            try
            {
                await step.Action().WaitAsync(bound, time, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                onFailure(step.What, e);
            }
        }
    }
}
