using Nacelle.ContainerCore.Reactor;

namespace Nacelle.Monitor.Server;

/// <summary>
/// A flag one side sets and the other awaits, on the event loop: setting it never runs the waiter's code inline (the
/// waiter goes on from the loop's queue, after the setter returns), and waiting never needs another thread.
/// </summary>
internal sealed class Wakeup
{
    private readonly Lock _gate = new();
    private TaskCompletionSource? _waiter;
    private bool _set;

    /// <summary>Completes once the flag is set (at once when it is already); the flag is then cleared.</summary>
    public Task WaitAsync()
    {
        lock (_gate)
        {
            if (_set)
            {
                _set = false;
                return Task.CompletedTask;
            }

            _waiter ??= new TaskCompletionSource();
            return _waiter.Task;
        }
    }

    public void Set()
    {
        TaskCompletionSource? waiter;
        lock (_gate)
        {
            waiter = _waiter;
            _waiter = null;
            _set = waiter is null;
        }

        if (waiter is not null)
        {
            FdReactor.Loop.Post(() => waiter.TrySetResult());
        }
    }
}
